"""The front door for backend adapters: everything an adapter may use of the core.

An adapter package (``backends/<name>/``, or a third party's) imports the core through
this module only, as Keras backends share ``backend/common``: the contract it
implements (`BackendAdapter`, `Model`, and the numpy types that cross it), the error
hierarchy, the architecture modules that hold each family's knowledge, and the folder,
weight and store helpers that make its files the way every other backend's are made.
The core never imports an adapter; what moves inside the core moves behind this module.

>>> from unified_nlp.backend_kit import BackendAdapter, Encoding, ModelOutput
>>> class EchoBackend(BackendAdapter):     # doctest: +SKIP
...     name = "echo"
...     def load(self, path, spec): ...
"""

from __future__ import annotations

from . import architectures, cpu
from .architectures import HEAD_KINDS
from .architectures import get as get_architecture
from .atomic import atomic_dir
from .batching import batches_by_length
from .benchdata import read_tsv, sst2_path
from .devices import CPU as CPU_DEVICE
from .devices import index as device_index
from .devices import usable as usable_devices
from .errors import (
    BackendNotInstalledError,
    ConversionError,
    InvalidInputError,
    InvalidInputTypeError,
    InvalidModelError,
    NotSupportedError,
    UnifiedNLPError,
)
from .fast_tokenizer import FastTokenizer
from .fit_options import no_decay
from .folder import (
    ENCODER_FILE,
    HEAD_FILE,
    SPEC_FILE,
    TOKENIZER_FILES,
    check_shapes,
    copy_canonical,
    initial_head,
    load_head,
    read_json,
    read_spec,
    read_state,
    safe_join,
    token_limit,
)
from .folder_spec import canonical_spec, check, config_labels, model_spec, read_config, write_config
from .format_names import HUGGINGFACE as CANONICAL_FORMAT
from .format_names import KERAS_FILE as KERAS_FILE_FORMAT
from .format_names import ONNX_EXPORT as ONNX_EXPORT_FORMAT
from .format_names import PADDLE_INFERENCE as PADDLE_INFERENCE_FORMAT
from .format_names import PADDLE_NATIVE as PADDLE_NATIVE_FORMAT
from .format_names import SAVEDMODEL as SAVEDMODEL_FORMAT
from .paddlenlp_format import families as paddle_families
from .paddlenlp_format import paddle_folder
from .paddlenlp_format import tensors as paddle_tensors
from .paddlenlp_format import to_canonical as paddle_folder_to_canonical
from .paddlenlp_format.tokenizer_files import paddle_tokenizer_files
from .progress import notice
from .protocols import BackendAdapter, Encoding, Model, ModelOutput, Tokenizer
from .registry import KNOWN_BACKENDS, training_backends
from .resolve import DEFAULT_HEAD, DEFAULT_SPEC, default_model_dir, minilm_dir
from .spec import PROBLEM_TYPES, ModelSpec
from .store import note_use
from .store_keys import content_key, converted_dir
from .store_paths import store_dir
from .threads import INTER_OP, default_threads
from .threads import requested as requested_threads
from .tokens import encoding_from_rows, join_wordpieces, padded_width
from .weights import load_file, read_header, save_file

__all__ = [
    "CANONICAL_FORMAT",
    "CPU_DEVICE",
    "DEFAULT_HEAD",
    "DEFAULT_SPEC",
    "ENCODER_FILE",
    "HEAD_FILE",
    "HEAD_KINDS",
    "INTER_OP",
    "KNOWN_BACKENDS",
    "PADDLE_NATIVE_FORMAT",
    "SAVEDMODEL_FORMAT",
    "KERAS_FILE_FORMAT",
    "ONNX_EXPORT_FORMAT",
    "PADDLE_INFERENCE_FORMAT",
    "PROBLEM_TYPES",
    "SPEC_FILE",
    "TOKENIZER_FILES",
    "BackendAdapter",
    "BackendNotInstalledError",
    "ConversionError",
    "Encoding",
    "FastTokenizer",
    "InvalidInputError",
    "InvalidInputTypeError",
    "InvalidModelError",
    "Model",
    "ModelOutput",
    "ModelSpec",
    "NotSupportedError",
    "Tokenizer",
    "UnifiedNLPError",
    "architectures",
    "cpu",
    "atomic_dir",
    "batches_by_length",
    "device_index",
    "usable_devices",
    "check",
    "check_shapes",
    "config_labels",
    "content_key",
    "converted_dir",
    "copy_canonical",
    "default_model_dir",
    "default_threads",
    "canonical_spec",
    "encoding_from_rows",
    "get_architecture",
    "initial_head",
    "join_wordpieces",
    "load_file",
    "load_head",
    "minilm_dir",
    "model_spec",
    "no_decay",
    "note_use",
    "notice",
    "paddle_families",
    "paddle_folder_to_canonical",
    "paddle_folder",
    "paddle_tensors",
    "paddle_tokenizer_files",
    "padded_width",
    "read_config",
    "read_header",
    "read_json",
    "read_spec",
    "read_state",
    "read_tsv",
    "requested_threads",
    "safe_join",
    "save_file",
    "sst2_path",
    "store_dir",
    "token_limit",
    "training_backends",
    "write_config",
]
