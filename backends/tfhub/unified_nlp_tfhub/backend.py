"""TFHubBackend: the entry point of the `tfhub` backend (aliases tf, tensorflow)."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    INTER_OP,
    KERAS_FILE_FORMAT,
    SPEC_FILE,
    BackendAdapter,
    FastTokenizer,
    InvalidModelError,
    ModelSpec,
    atomic_dir,
    converted_dir,
    notice,
    safe_join,
)

from ._tf import tf
from .classify import inspect_keras_file, keras_file_spec, load_keras_file_model
from .converter import ENCODER_DIR, EXPORT_VERSION, FORMAT, PREPROCESSOR_DIR, export, export_canonical
from .hub_folders import FORMAT as NATIVE_FORMAT
from .hub_folders import inspect_savedmodel, load_savedmodel, savedmodel_spec
from .model import TFHubModel
from .placement import GPU_INSTALL, Placed, pinned, scope
from .placement import devices as gpu_devices
from .recover import to_canonical as import_savedmodel
from .savedmodel import DEFAULT_MAX_LENGTH
from .tokenizer import TFHubTokenizer


def _is_current_export(folder: Path) -> bool:
    try:
        meta = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("export_version") == EXPORT_VERSION


def _paths(options: dict[str, Any]) -> dict[str, Any]:
    """`preprocessor` as a Path (a worker's caller sends it as text)."""
    if options.get("preprocessor") is not None:
        options["preprocessor"] = Path(options["preprocessor"])
    return options


class TFHubBackend(BackendAdapter):
    """TensorFlow Hub backend: encoder SavedModels of the supported families (BERT,
    DistilBERT, RoBERTa, XLM-RoBERTa, ELECTRA, ALBERT, ERNIE, ModernBERT, DeBERTa-v2/v3)
    with their own heads, run in TensorFlow.

    Loads three kinds of folder: a canonical (Hugging Face classifier) folder, which
    is converted once into the model store and reused; a folder written by
    ``convert`` (``unified_nlp.json`` says ``"format": "tfhub"``); and a user's
    own TF Hub BERT pair laid out the same way (``encoder/``, ``preprocessor/``,
    ``unified_nlp.json`` with ``"format": "tfhub"`` and ``"labels"``, optional
    ``head.safetensors``). The first two tokenize with the folder's tokenizer.json;
    the last with its preprocessor SavedModel. A native SavedModel without any
    unified_nlp.json (format ``tfhub-savedmodel``: a pair, a text embedding, a Keras
    classifier) loads from the spec of ``describe_native``.

    >>> import unified_nlp as un
    >>> clf = un.load_classifier("default", backend="tfhub")   # doctest: +SKIP
    >>> un.convert("default", to="tfhub", out="minilm-tfhub")  # doctest: +SKIP
    """

    name = "tfhub"

    def set_threads(self, n: int) -> int:
        """TensorFlow's intra-op threads (inter-op: one). Its pools are sized when its runtime
        starts, at this package's import (with unified_nlp.threads.requested()); later, a
        different count cannot take effect and the current one is returned (0: TF's default)."""
        threading = tf.config.threading
        with contextlib.suppress(RuntimeError):  # "cannot be modified after initialization"
            threading.set_intra_op_parallelism_threads(int(n))
            threading.set_inter_op_parallelism_threads(INTER_OP)
        return threading.get_intra_op_parallelism_threads()

    gpu_install = GPU_INSTALL

    @property
    def devices(self) -> tuple[str, ...]:
        """The devices here: "cpu", and "cuda:N" for each GPU TensorFlow sees."""
        return gpu_devices()

    def load(self, path: Path, spec: ModelSpec) -> tuple[FastTokenizer | TFHubTokenizer, TFHubModel | Placed]:
        """The model built inside its device's scope, and run inside it (placement.py) where there
        is a choice of device; a CPU-only TensorFlow runs it as it is."""
        if not pinned(spec.device):
            return self._load(Path(path), spec)
        where = scope(spec.device)
        with tf.device(where):
            tokenizer, model = self._load(Path(path), spec)
        return tokenizer, Placed(model, where)

    def _load(self, path: Path, spec: ModelSpec) -> tuple[FastTokenizer | TFHubTokenizer, TFHubModel]:
        fmt = spec.format
        if fmt == NATIVE_FORMAT:  # a user's own SavedModel(s), described by savedmodel_spec
            return load_savedmodel(spec)
        if fmt == KERAS_FILE_FORMAT:  # a single-file Keras model taking strings (classify.py)
            return load_keras_file_model(spec)
        if fmt == CANONICAL_FORMAT:
            folder = converted_dir(path, self.name)
            if not _is_current_export(folder):
                export(path, folder)
            tokenizer_dir = path
        elif fmt == FORMAT:
            folder = tokenizer_dir = path
        else:
            raise InvalidModelError(
                f"{path}: a {fmt!r} folder; the tfhub backend loads the canonical format or its own "
                "(convert it with `unified-nlp convert --to tfhub`)"
            )
        encoder_dir = safe_join(folder, spec.extra.get("encoder_dir", ENCODER_DIR), folder / SPEC_FILE)
        model = TFHubModel(folder, spec, encoder_dir)
        max_length = int(spec.max_length or DEFAULT_MAX_LENGTH)
        if model.max_positions is not None:
            max_length = min(max_length, model.max_positions)
        if any((tokenizer_dir / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
            # the folder's own tokenizer (copied into our exports): ids identical to transformers, any family
            tokenizer = FastTokenizer.from_folder(tokenizer_dir, max_length, spec.token_types)
            return tokenizer, model
        # a user's own TF Hub pair: its preprocessor SavedModel is the tokenizer
        preprocessor_dir = safe_join(folder, spec.extra.get("preprocessor_dir", PREPROCESSOR_DIR), folder / SPEC_FILE)
        return TFHubTokenizer(preprocessor_dir, max_length), model

    def convert(self, source: Path, out: Path) -> None:
        """Write the TF Hub form of the canonical folder `source` to `out`, atomically; a
        conversion already in the model store (from an earlier load) is copied, not redone."""
        cached = converted_dir(Path(source), self.name)
        if not _is_current_export(cached):
            export(Path(source), Path(out))
            return
        notice(f"copying the TF Hub conversion cached in {cached}")
        with atomic_dir(out) as tmp:
            shutil.copytree(cached, tmp, dirs_exist_ok=True)

    def describe_native(self, path: Path, **options: Any) -> ModelSpec:
        """The spec of a native TF Hub SavedModel (see hub_folders.savedmodel_spec), or of a single-file
        Keras model (classify.keras_file_spec), for load."""
        if Path(path).is_file():
            return keras_file_spec(Path(path), **options)
        return savedmodel_spec(Path(path), **_paths(options))

    def import_native(self, path: Path, out: Path, **options: Any) -> None:
        """The canonical folder of a native TF Hub SavedModel (see recover.to_canonical), atomically."""
        import_savedmodel(Path(path), Path(out), **_paths(options))

    def inspect_native(self, path: Path, **options: Any) -> dict[str, Any]:
        """What a native TF Hub SavedModel (hub_folders.inspect_savedmodel) or a Keras file holds."""
        if Path(path).is_file():
            return inspect_keras_file(Path(path))
        return inspect_savedmodel(Path(path), **_paths(options))

    def export_canonical(self, source: Path, out: Path) -> None:
        """Write the canonical folder of the TF Hub-format folder `source` to `out`, atomically."""
        export_canonical(Path(source), Path(out))
