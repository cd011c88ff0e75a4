"""What a model folder is, read from its files alone (no framework is imported).

Five layouts are recognised, in this order:

- ``tfhub`` / ``paddlenlp``: a folder written by ``convert`` (its unified_nlp.json
  says so);
- ``paddlenlp-native``: a folder PaddleNLP's ``save_pretrained`` wrote (config.json
  with ``paddlenlp_version`` or PaddleNLP classes, ``model_state.pdparams`` or
  safetensors with PaddleNLP parameter names, sharded or not);
- ``huggingface``: the canonical folder (config.json + model.safetensors or
  pytorch_model.bin, sharded or not; the default model's mean-pooling extension);
- ``tfhub-savedmodel``: a SavedModel (``saved_model.pb``): a TF Hub encoder, alone or
  with its preprocessor (``encoder/`` + ``preprocessor/``, or ``preprocessor=``),
  a text-embedding module, or a whole Keras classifier. Which of these it is, the
  tfhub adapter reads from the SavedModel itself.

Native PaddleNLP and TF Hub folders whose architecture maps to a transformers class
are imported once into a canonical folder in the model store (``imported/``, keyed
by the bytes of their files) and run from there on every backend; the others run
only on their own backend, and `convert` says why they cannot leave it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_INDEX
from .errors import InvalidModelError
from .models import SPEC_FILE, content_key, read_spec, store_dir
from .store import note_use

HUGGINGFACE, PADDLE_NATIVE, SAVEDMODEL = "huggingface", "paddlenlp-native", "tfhub-savedmodel"
EXPORTS = ("tfhub", "paddlenlp")  # formats `convert` writes, named in their unified_nlp.json
SAVEDMODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
DESCRIPTIONS = {
    HUGGINGFACE: "Hugging Face classifier folder (the canonical format)",
    PADDLE_NATIVE: "PaddleNLP save_pretrained folder",
    SAVEDMODEL: "TensorFlow SavedModel (TF Hub encoder, text embedding or Keras classifier)",
    "tfhub": "TF Hub export written by unified_nlp convert",
    "paddlenlp": "PaddleNLP export written by unified_nlp convert",
}
_LOOKED_FOR = (
    "config.json with model.safetensors or pytorch_model.bin (Hugging Face); config.json with "
    "model_state.pdparams or PaddleNLP-named model.safetensors (PaddleNLP save_pretrained); saved_model.pb, "
    "or encoder/ and preprocessor/ SavedModels (TF Hub, Keras); unified_nlp.json (written by convert)"
)


@dataclass(frozen=True)
class Detected:
    """A model folder's layout: `format` is one of DESCRIPTIONS; `preprocessor` is the
    TF Hub preprocessor SavedModel that goes with an encoder, when there is one."""

    format: str
    path: Path
    preprocessor: Path | None = None
    root: Path | None = None  # the folder given, when `path` is inside it (encoder/ of a pair's folder)

    @property
    def description(self) -> str:
        return DESCRIPTIONS.get(self.format, f"{self.format} export written by unified_nlp convert")


def export_formats() -> tuple[str, ...]:
    """Formats `convert` writes: the built-in backends' and each third-party adapter's own,
    named by its backend (a folder whose unified_nlp.json says ``"format": "<backend>"``)."""
    from . import registry

    return EXPORTS + tuple(n for n in registry.backend_names() if n not in registry.KNOWN_BACKENDS)


def is_savedmodel(path: Path) -> bool:
    return any((path / name).is_file() for name in SAVEDMODEL_FILES)


def detect(path: Path, preprocessor: Path | None = None) -> Detected:
    """The layout of the model folder `path`; InvalidModelError listing what was looked
    for when it is none of them. `preprocessor` goes with a TF Hub encoder only.

    >>> detect(Path("bert_en_uncased_L-2_H-128_A-2"), Path("bert_en_uncased_preprocess")).format  # doctest: +SKIP
    'tfhub-savedmodel'
    """
    from . import paddlenlp_format

    path = Path(path)
    if preprocessor is not None:
        preprocessor = Path(preprocessor)
        if not is_savedmodel(preprocessor):
            raise InvalidModelError(f"{preprocessor}: a preprocessor must be a SavedModel folder (saved_model.pb)")
    fmt = read_spec(path).get("format") if (path / SPEC_FILE).is_file() else None
    if fmt in export_formats():
        found = Detected(fmt, path)
    elif fmt not in (None, HUGGINGFACE):
        raise InvalidModelError(
            f"{path / SPEC_FILE}: unknown format {fmt!r} (known: {HUGGINGFACE}, {', '.join(export_formats())})"
        )
    elif paddlenlp_format.is_native(path):
        found = Detected(PADDLE_NATIVE, path)
    elif (path / "config.json").is_file() and any(
        (path / name).is_file() for name in (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_INDEX)
    ):
        found = Detected(HUGGINGFACE, path)
    elif is_savedmodel(path):
        found = Detected(SAVEDMODEL, path, preprocessor)
    elif is_savedmodel(path / "encoder"):
        if preprocessor is None and is_savedmodel(path / "preprocessor"):
            preprocessor = path / "preprocessor"
        found = Detected(SAVEDMODEL, path / "encoder", preprocessor, root=path)
    elif (path / "config.json").is_file():
        found = Detected(HUGGINGFACE, path)  # describe names what is missing
    else:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())[:8] if path.is_dir() else []
        seen = f"; found only {', '.join(names)}" if names else "; the folder is empty"
        raise InvalidModelError(f"{path}: not a model folder this library knows. Looked for {_LOOKED_FOR}{seen}")
    if preprocessor is not None and found.format != SAVEDMODEL:
        raise InvalidModelError(
            f"{path}: preprocessor= goes with a TF Hub encoder SavedModel, this is a {fmt or found.format} folder"
        )
    return found


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
