"""What a SavedModel is: told apart by what it can be called with, loaded once.

A TF Hub text encoder takes a dict of int32 input_word_ids, input_mask and
input_type_ids; a BERT preprocessor has ``tokenize`` and ``bert_pack_inputs``; a
text embedding's ``__call__`` takes strings; a Keras classifier (tf_keras
``model.save``: keras_metadata.pb, or Keras 3 ``export``: only serving signatures)
takes strings through its serving signature. Anything else is an InvalidModelError
that names what it takes.

>>> locate(Path("bert_en_uncased_L-2_H-128_A-2"), Path("bert_en_uncased_preprocess")).kind   # doctest: +SKIP
'encoder-pair'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_nlp.backend_kit import HEAD_FILE, InvalidModelError

from ._tf import tf
from .classify import classify_signature
from .encoder import INPUT_KEYS
from .savedmodel import EncoderCall, load_saved_model
from .strings_model import StringsFunction

SUBFOLDERS = ("encoder", "preprocessor")  # the names tfhub.dev's pages and our exports use

_LOADED: dict[tuple, Any] = {}  # (folder, saved_model.pb size and mtime) -> loaded object: savedmodel_spec, then load
_KEEP = 6  # a pair is two; savedmodel_spec, to_canonical and load of a few models reuse them


def variable_name(v) -> str:
    return v.name.split(":")[0]


def encoder_shapes(encoder: EncoderCall) -> dict[str, tuple[int, ...]]:
    return {variable_name(v): tuple(v.shape) for v in encoder.trainable_variables()}


def _check_variables(folder: Path) -> None:
    """A SavedModel whose graph holds variables but whose variables/ folder is gone:
    TensorFlow would fail later with an unrelated message."""
    pb = folder / "saved_model.pb"
    if not pb.is_file() or (folder / "variables" / "variables.index").is_file():
        return
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(pb.read_bytes())
    except Exception as e:  # protobuf's DecodeError
        raise InvalidModelError(f"{pb}: corrupt, not a SavedModel protocol buffer ({e})") from None
    count = sum(
        1
        for graph in proto.meta_graphs
        for node in graph.object_graph_def.nodes
        if node.WhichOneof("kind") == "variable"
    )
    if count:
        raise InvalidModelError(
            f"{folder / 'variables' / 'variables.index'}: missing; the SavedModel has {count} variables "
            "and its variables folder is gone or incomplete"
        )


def load_object(folder: Path, what: str = "model") -> Any:
    """The SavedModel at `folder`, loaded once per process (savedmodel_spec, then load, reuse it)."""
    folder = Path(folder).resolve()
    pb = folder / "saved_model.pb"
    if folder.is_dir() and pb.is_file():
        _check_variables(folder)
    key = (str(folder), *((pb.stat().st_size, pb.stat().st_mtime_ns) if pb.is_file() else ()))
    if key not in _LOADED:
        while len(_LOADED) >= _KEEP:  # the oldest goes: a long session that loads many models does not grow
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_saved_model(folder, what)
    return _LOADED[key]


# --- what a SavedModel is ---------------------------------------------------------------


def _call_signature(obj) -> tuple[Any, Any] | None:
    """(inputs, outputs) of the reusable-SavedModel ``__call__``, or None."""
    concrete = list(getattr(getattr(obj, "__call__", None), "concrete_functions", []) or [])  # noqa: B004
    if not concrete:
        return None
    args = concrete[0].structured_input_signature[0]
    return (args[0] if args else None), concrete[0].structured_outputs


def _string_signature(obj) -> tuple[str, str, int] | None:
    """(signature name, input name, input rank) of a serving signature taking one string tensor."""
    for name in ("serving_default", "serve"):
        fn = getattr(obj, "signatures", {}).get(name)
        if fn is None:
            continue
        inputs = fn.structured_input_signature[1]
        if len(inputs) == 1:
            ((key, spec),) = inputs.items()
            if spec.dtype == tf.string and len(spec.shape) in (1, 2):
                return name, key, len(spec.shape)
    return None


def role(obj, folder: Path) -> str:
    """What a loaded SavedModel is: "preprocessor", "encoder", "embedding",
    "keras-classifier" or "classify"; InvalidModelError naming what it takes when it is none of them."""
    if all(callable(getattr(obj, part, None)) for part in ("tokenize", "bert_pack_inputs")):
        return "preprocessor"
    call = _call_signature(obj)
    serving = getattr(obj, "signatures", {}).get("serving_default")
    serving_inputs = serving.structured_input_signature[1] if serving is not None else {}
    if (call and isinstance(call[0], dict) and all(k in call[0] for k in INPUT_KEYS)) or all(
        k in serving_inputs for k in INPUT_KEYS
    ):
        return "encoder"
    if classify_signature(obj) is not None:  # TF Serving's classify shape: classes and scores (classify.py)
        return "classify"
    keras = (folder / "keras_metadata.pb").is_file() or hasattr(obj, "keras_api")
    string_call = call is not None and isinstance(call[0], tf.TensorSpec) and call[0].dtype == tf.string
    if keras or (not string_call and _string_signature(obj)):
        if _string_signature(obj) is None:
            raise InvalidModelError(f"{folder}: a Keras SavedModel whose serving signature does not take strings")
        return "keras-classifier"
    if string_call:
        return "embedding"
    found = call[0] if call else serving_inputs or None
    raise InvalidModelError(
        f"{folder}: a SavedModel with an unknown signature (it takes {found!r}); known: a TF Hub text encoder "
        f"(a dict of {', '.join(INPUT_KEYS)}), a BERT preprocessor (tokenize, bert_pack_inputs), a text embedding "
        "(strings -> [batch, dim]) or a Keras classifier (strings -> logits)"
    )


def strings_function(obj, folder: Path, kind: str) -> StringsFunction:
    """The strings -> [batch, width] function of an embedding or Keras classifier SavedModel."""
    call = _call_signature(obj)
    if kind == "embedding" and call is not None:
        return StringsFunction(obj.__call__, by_signature=False, input_name=None, rank=len(call[0].shape), owner=obj)
    found = _string_signature(obj)
    if found is None:
        raise InvalidModelError(f"{folder}: no serving signature that takes strings")
    name, key, rank = found
    return StringsFunction(obj.signatures[name], by_signature=True, input_name=key, rank=rank, owner=obj)


@dataclass(frozen=True)
class Located:
    kind: str
    model_dir: Path  # the encoder, embedding or Keras SavedModel
    preprocessor_dir: Path | None = None
    root: Path | None = None  # the folder given (head.safetensors lives here)


def head_file_of(found: Located) -> Path | None:
    """head.safetensors beside the SavedModel: in the folder given, or above an ``encoder/`` subfolder."""
    if found.root is None:
        return None
    for folder in (found.root, found.root.parent if found.root.name == SUBFOLDERS[0] else None):
        if folder is not None and (folder / HEAD_FILE).is_file():
            return folder / HEAD_FILE
    return found.root / HEAD_FILE


def _saved_models(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and (p / "saved_model.pb").is_file())


def locate(path: Path, preprocessor: Path | None = None) -> Located:
    """Find the SavedModels of `path` (one SavedModel, or a folder of them) and their kind."""
    path = Path(path)
    if not path.is_dir():
        raise InvalidModelError(f"{path}: not a folder")
    if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        candidates = [path]
    else:
        candidates = _saved_models(path)
        if not candidates:
            raise InvalidModelError(f"{path}: no saved_model.pb, in the folder or in a subfolder")
    roles: dict[str, list[Path]] = {}
    for folder in candidates:
        roles.setdefault(role(load_object(folder), folder), []).append(folder)
    if preprocessor is not None:
        pre = Path(preprocessor)
        if role(load_object(pre, "preprocessor"), pre) != "preprocessor":
            raise InvalidModelError(f"{pre}: not a BERT preprocessor SavedModel (no tokenize and bert_pack_inputs)")
        roles.setdefault("preprocessor", []).insert(0, pre)
    for kind in ("keras-classifier", "classify", "embedding"):
        if kind in roles and len(candidates) == 1:
            return Located(kind, roles[kind][0], None, path)
    encoders, pres = roles.get("encoder", []), roles.get("preprocessor", [])
    if len(encoders) > 1:
        named = [e for e in encoders if e.name == SUBFOLDERS[0]]
        encoders = named or encoders
    if len(encoders) == 1 and pres:
        named = [p for p in pres if p.name == SUBFOLDERS[1]]
        return Located("encoder-pair", encoders[0], (named or pres)[0], path)
    if encoders:
        raise InvalidModelError(
            f"{encoders[0]}: a TF Hub text encoder without its preprocessor; pass the preprocessor SavedModel "
            "(preprocessor=PATH, or a `preprocessor/` folder beside `encoder/`)"
        )
    if pres:
        raise InvalidModelError(f"{pres[0]}: a BERT preprocessor only; pass the encoder SavedModel as the model")
    raise InvalidModelError(
        f"{path}: holds {', '.join(f'{k} ({len(v)})' for k, v in roles.items())}; expected one encoder + "
        "preprocessor, one text embedding or one Keras classifier"
    )
