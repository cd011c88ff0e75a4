"""What a model folder is, read from its files alone (no framework is imported).

The layouts recognised, in this order:

- an export: a folder written by ``convert --to NAME`` (its unified_nlp.json says
  ``"format": "NAME"``, a backend's name: ``tfhub``, ``paddlenlp``, ``onnxruntime``);
  but a folder with such a unified_nlp.json, no config.json and the SavedModels of a
  TF Hub pair (a user's own pair, as earlier versions described it) is that native
  pair, with the labels and head kind its unified_nlp.json gives;
- ``paddlenlp-native``: a folder PaddleNLP's ``save_pretrained`` wrote (config.json
  with ``paddlenlp_version`` or PaddleNLP classes, ``model_state.pdparams`` or
  safetensors with PaddleNLP parameter names, sharded or not);
- ``huggingface``: the canonical folder (config.json + model.safetensors or
  pytorch_model.bin, sharded or not; the default model's mean-pooling extension);
- ``huggingface-tf``: a Hugging Face folder whose weights are ``tf_model.h5`` (sharded or
  not), as transformers 4's TF classes saved it: read with h5py (`unified_nlp.tf_h5`);
- ``tfhub-savedmodel``: a SavedModel (``saved_model.pb``): a TF Hub encoder, alone or
  with its preprocessor (``encoder/`` + ``preprocessor/``, or ``preprocessor=``),
  a text-embedding module, or a whole Keras classifier. Which of these it is, the
  tfhub adapter reads from the SavedModel itself.
- deployment exports (`BLACK_BOXES`), run as they are by their own stack's backend with
  the tokenizer of their folder: ``onnx-optimum`` (config.json + model.onnx or
  model_quantized.onnx, as Hugging Face Optimum exports a classifier), ``keras-file``
  (one ``.keras`` or Keras ``.h5`` file taking strings, given as the model) and
  ``paddle-inference`` (paddle.jit.save's program and .pdiparams, as PaddleNLP's export_model.py
  writes them).

A tf_model.h5 folder, and native PaddleNLP and TF Hub folders whose architecture maps to a
transformers class, are imported once into a canonical folder in the model store (``imported/``, keyed
by the bytes of their files) and run from there on every backend; the others run
only on their own backend, and `convert` says why they cannot leave it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import InvalidModelError
from .folder import SAFETENSORS, SAFETENSORS_INDEX, SPEC_FILE, TORCH_BIN, TORCH_INDEX, read_spec
from .format_names import HUGGINGFACE, KERAS_FILE, ONNX_EXPORT, PADDLE_INFERENCE, PADDLE_NATIVE, SAVEDMODEL, TF_H5
from .paddlenlp_format import is_native as is_paddle_native
from .registry import export_backends
from .registry import title as backend_title
from .resolve import MODEL_FILE_SUFFIXES as KERAS_SUFFIXES
from .store import note_use
from .store_keys import content_key
from .store_paths import store_dir
from .tf_h5 import is_tf_h5

# the backend whose framework alone reads a native format (every backend runs its imported canonical folder)
READ_BY = {
    PADDLE_NATIVE: "paddlenlp",
    SAVEDMODEL: "tfhub",
    ONNX_EXPORT: "onnxruntime",
    KERAS_FILE: "tfhub",
    PADDLE_INFERENCE: "paddlenlp",
}
# deployment exports: graphs their own stack runs as they are, with the tokenizer of their folder; their
# weights are compiled into the graph (folded, fused, quantised, unnamed), so they neither train nor convert
BLACK_BOXES = {
    ONNX_EXPORT: "an ONNX graph is a deployment export: its weights are graph initializers (folded, fused or "
    "quantised) with no mapping back to a training checkpoint. To fine-tune it or run it on another stack, "
    "use the checkpoint it was exported from (config.json + model.safetensors)",
    KERAS_FILE: "a single-file Keras model taking strings is a black box (its tokenizer and layers are its own "
    "graph, with no architecture to map them to). To fine-tune it or run it elsewhere, use the checkpoint it was "
    "built from, or fit it in Keras",
    PADDLE_INFERENCE: "a Paddle Inference model is a deployment export: its program and parameters are an inference "
    "graph with no mapping back to a training checkpoint. To fine-tune it or run it on another stack, use the "
    "PaddleNLP save_pretrained folder it was exported from",
}
ONNX_FILES = ("model.onnx", "model_quantized.onnx")  # what Optimum writes (ORTQuantizer: the second)
SAVEDMODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
DESCRIPTIONS = {
    HUGGINGFACE: "Hugging Face classifier folder (the canonical format)",
    PADDLE_NATIVE: "PaddleNLP save_pretrained folder",
    TF_H5: "Hugging Face TensorFlow folder (tf_model.h5, as transformers 4's TF classes saved it)",
    SAVEDMODEL: "TensorFlow SavedModel (TF Hub encoder, text embedding, Keras classifier or TF Serving classify)",
    ONNX_EXPORT: "ONNX classifier in Hugging Face Optimum's layout (model.onnx, config.json, tokenizer), run as a black box",
    KERAS_FILE: "single-file Keras model (.keras or .h5) taking strings, run as a black box",
    PADDLE_INFERENCE: "Paddle Inference model (paddle.jit.save: inference.json or .pdmodel + .pdiparams, tokenizer), "
    "run as a black box",
}
_LOOKED_FOR = (
    "config.json with model.safetensors, pytorch_model.bin or tf_model.h5 (Hugging Face); config.json with "
    "model_state.pdparams or PaddleNLP-named model.safetensors (PaddleNLP save_pretrained); saved_model.pb, "
    "or encoder/ and preprocessor/ SavedModels (TF Hub, Keras); config.json with model.onnx (Optimum); "
    "inference.pdiparams with inference.json or .pdmodel (Paddle Inference); "
    "unified_nlp.json (written by convert)"
)


@dataclass(frozen=True)
class Detected:
    """A model folder's layout: `format` is one of DESCRIPTIONS or an export format (a
    backend's name); `preprocessor` is the TF Hub preprocessor SavedModel that goes with
    an encoder, when there is one. `metadata` is our own unified_nlp.json found beside a
    native layout (as earlier versions described a user's TF Hub pair): its labels,
    problem_type and head kind are the defaults of what the native reader recovers."""

    format: str
    path: Path
    preprocessor: Path | None = None
    root: Path | None = None  # the folder given, when `path` is inside it (encoder/ of a pair's folder)
    metadata: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def description(self) -> str:
        if self.format in DESCRIPTIONS:
            return DESCRIPTIONS[self.format]
        return f"{backend_title(self.format)} export written by unified_nlp convert"


def export_formats() -> tuple[str, ...]:
    """Formats `convert` writes, each named by its backend (a folder whose unified_nlp.json
    says ``"format": "<backend>"``): the registry's backends that write one."""
    return tuple(export_backends())


def is_savedmodel(path: Path) -> bool:
    return any((path / name).is_file() for name in SAVEDMODEL_FILES)


def detect(path: Path, preprocessor: Path | None = None) -> Detected:
    """The layout of the model folder `path`; InvalidModelError listing what was looked
    for when it is none of them. `preprocessor` goes with a TF Hub encoder only.

    >>> detect(Path("bert_en_uncased_L-2_H-128_A-2"), Path("bert_en_uncased_preprocess")).format  # doctest: +SKIP
    'tfhub-savedmodel'
    """
    path = Path(path)
    if path.is_file() and path.suffix in KERAS_SUFFIXES and preprocessor is None:
        return Detected(KERAS_FILE, path)
    if preprocessor is not None:
        preprocessor = Path(preprocessor)
        if not is_savedmodel(preprocessor):
            raise InvalidModelError(f"{preprocessor}: a preprocessor must be a SavedModel folder (saved_model.pb)")
    spec = read_spec(path) if (path / SPEC_FILE).is_file() else {}
    fmt = spec.get("format")
    if fmt in export_formats():
        # our spec without config.json, beside a native layout: the native folder it is (a user's own
        # TF Hub pair, as earlier versions described it), so it runs wherever that runs
        native = None if (path / "config.json").is_file() else _savedmodel_layout(path, preprocessor)
        found = replace(native, metadata=spec) if native is not None else Detected(fmt, path)
    elif fmt not in (None, HUGGINGFACE):
        raise InvalidModelError(
            f"{path / SPEC_FILE}: unknown format {fmt!r} (known: {HUGGINGFACE}, {', '.join(export_formats())})"
        )
    else:
        found = _layout(path, preprocessor)
    if preprocessor is not None and found.format != SAVEDMODEL:
        raise InvalidModelError(
            f"{path}: preprocessor= goes with a TF Hub encoder SavedModel, this is a {fmt or found.format} folder"
        )
    return found


def _savedmodel_layout(path: Path, preprocessor: Path | None) -> Detected | None:
    """A SavedModel at `path`, or an ``encoder/`` (+ ``preprocessor/``) pair in it; else None."""
    if is_savedmodel(path):
        return Detected(SAVEDMODEL, path, preprocessor)
    if is_savedmodel(path / "encoder"):
        if preprocessor is None and is_savedmodel(path / "preprocessor"):
            preprocessor = path / "preprocessor"
        return Detected(SAVEDMODEL, path / "encoder", preprocessor, root=path)
    return None


def _layout(path: Path, preprocessor: Path | None) -> Detected:
    """The layout of a folder that names no export format, read from its files."""
    if _paddle_inference(path):
        return Detected(PADDLE_INFERENCE, path)
    if is_paddle_native(path):
        return Detected(PADDLE_NATIVE, path)
    if (path / "config.json").is_file() and any(
        (path / name).is_file() for name in (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_INDEX)
    ):
        return Detected(HUGGINGFACE, path)
    if is_tf_h5(path):
        return Detected(TF_H5, path)
    found = _savedmodel_layout(path, preprocessor)
    if found is not None:
        return found
    if (path / "config.json").is_file() and any((path / name).is_file() for name in ONNX_FILES):
        return Detected(ONNX_EXPORT, path)
    if (path / "config.json").is_file():
        return Detected(HUGGINGFACE, path)  # canonical_spec names what is missing
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())[:8] if path.is_dir() else []
    seen = f"; found only {', '.join(names)}" if names else "; the folder is empty"
    raise InvalidModelError(f"{path}: not a model folder this library knows. Looked for {_LOOKED_FOR}{seen}")


def _paddle_inference(path: Path) -> bool:
    """paddle.jit.save's files (<prefix>.pdiparams beside <prefix>.json or .pdmodel), no training weights beside."""
    if not path.is_dir() or any((path / name).is_file() for name in ("model_state.pdparams", SAFETENSORS)):
        return False
    programs = (".json", ".pdmodel")
    return any(p.with_suffix(s).is_file() for p in path.glob("*.pdiparams") for s in programs)


def model_files(path: Path) -> list[Path]:
    """Every file under `path` (a SavedModel has subfolders), in a stable order."""
    return sorted(p for p in path.rglob("*") if p.is_file())


def imported(detected: Detected, write: Callable[[Path], None], *options: str) -> Path:
    """The canonical folder of a native folder, written once by `write(out)` into the
    store's imported/ (keyed by the bytes of the folder given, of its preprocessor and by
    `options` that change what is written), reused after."""
    root = detected.root or detected.path
    extra = [detected.format, *options]
    if detected.preprocessor is not None and root not in detected.preprocessor.parents:
        extra.append(content_key(model_files(detected.preprocessor), root=detected.preprocessor))
    key = content_key(model_files(root), *extra, root=root)
    out = store_dir() / "imported" / f"{detected.format}-{key}"
    note_use(out, detected.path)  # last use and origin, for `unified-nlp cache list`
    if (out / "config.json").is_file():
        return out
    write(out)  # the writers are atomic: a failed import leaves nothing behind
    return out
