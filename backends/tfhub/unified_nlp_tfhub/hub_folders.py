"""TF Hub SavedModels as their users have them, without a unified_nlp.json.

Three kinds, told apart by what the SavedModel can be called with:

- ``encoder-pair``: a text encoder (a dict of int32 input_word_ids, input_mask,
  input_type_ids -> pooled_output, sequence_output) and its BERT preprocessor
  (``tokenize`` + ``bert_pack_inputs``), as tfhub.dev and Kaggle Models publish
  them: two folders (``preprocessor=``), or one folder holding both as
  subfolders. The head reads ``pooled_output`` (TF Hub's classifiers) or the
  mean over the mask;
- ``embedding``: strings [batch] -> float [batch, dim] (NNLM, Universal Sentence
  Encoder): the module under a trainable linear head;
- ``keras-classifier``: a whole Keras model saved with tf_keras ``model.save``
  or Keras 3 ``model.export``: strings in, logits out, run as a black box;
- ``classify``: TF Serving's classify shape (strings in, ``classes`` and ``scores`` out, as an
  Estimator or ``tf.Module`` classification export has it), run as a black box (classify.py).

The core calls `savedmodel_spec` (a ModelSpec) and then ``TFHubBackend.load(path,
spec)``, or `recover.to_canonical` for every other backend.

>>> spec = savedmodel_spec(Path("bert_en_uncased_L-2_H-128"), labels=["neg", "pos"])   # doctest: +SKIP
>>> spec.extra["kind"], spec.pooling, spec.extra["convertible"]   # doctest: +SKIP
('encoder-pair', 'pooled_output', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    HEAD_FILE,
    PROBLEM_TYPES,
    SAVEDMODEL_FORMAT,
    InvalidInputError,
    InvalidModelError,
    ModelSpec,
    initial_head,
    load_file,
    read_header,
)

from ._tf import tf
from .classify import WHY_SAVEDMODEL as WHY_CLASSIFY
from .classify import ClassifyFunction, classify_signature
from .encoder import INPUT_KEYS
from .kinds import Located, encoder_shapes, head_file_of, load_object, locate, role, strings_function
from .model import TFHubModel
from .recover import keras_parts, to_canonical
from .savedmodel import DEFAULT_MAX_LENGTH, EncoderCall, check_preprocessor, default_seq_length
from .strings import StringsTokenizer
from .strings_model import StringsModel
from .tokenizer import TFHubTokenizer
from .weight_map import bert_layout

FORMAT = SAVEDMODEL_FORMAT
KINDS = ("encoder-pair", "embedding", "keras-classifier", "classify")
POOLINGS = ("pooled_output", "mean")

# --- the spec ---------------------------------------------------------------------------


def _labels(labels, width: int | None, where: Path) -> list[str] | None:
    if labels is None:
        return None
    labels = [str(x) for x in labels]
    if not labels or len(set(labels)) != len(labels) or not all(labels):
        raise InvalidInputError(f"labels must be distinct non-empty names, got {labels}")
    if width is not None and len(labels) != width:
        raise InvalidInputError(f"{where}: the model gives {width} outputs, but {len(labels)} labels were given")
    return labels


def _head_width(file: Path, names: Sequence[str], hidden: int) -> int:
    """The number of outputs of a given head.safetensors, checked against the features it reads."""
    header = read_header(file)
    weight, bias = names
    if weight not in header or bias not in header:
        raise InvalidModelError(f"{file}: expected tensors {weight!r} and {bias!r} (found {sorted(header)})")
    w, b = header[weight]["shape"], header[bias]["shape"]
    if len(w) != 2 or w[1] != hidden or b != [w[0]]:
        raise InvalidModelError(f"{file}: expected {weight!r} [num_labels, {hidden}] and {bias!r} [num_labels]")
    return int(w[0])


def preprocessor_vocab_size(obj) -> int | None:
    get = getattr(getattr(obj, "tokenize", None), "get_special_tokens_dict", None)
    if get is None:
        return None
    special = get()
    return int(special["vocab_size"].numpy()) if "vocab_size" in special else None


def _pair_spec(found: Located, labels, pooling, require_head: bool = True) -> dict[str, Any]:
    encoder = EncoderCall(load_object(found.model_dir, "encoder"), found.model_dir)
    pre = load_object(found.preprocessor_dir, "preprocessor")
    check_preprocessor(pre, found.preprocessor_dir)
    shapes = encoder_shapes(encoder)
    probe = encoder(
        {k: tf.ones([1, 2], tf.int32) if k == "input_mask" else tf.zeros([1, 2], tf.int32) for k in INPUT_KEYS}
    )
    hidden = int(probe["sequence_output"].shape[-1])
    config = bert_layout(shapes)
    vocab = preprocessor_vocab_size(pre)
    rows = config["vocab_size"] if config else shapes.get("word_embeddings/embeddings", (None,))[0]
    if vocab is not None and rows is not None and vocab > rows:
        raise InvalidModelError(
            f"{found.preprocessor_dir}: the preprocessor's vocabulary has {vocab} tokens, but the encoder "
            f"{found.model_dir} embeds only {rows}: they are not a pair"
        )
    pooling = {"pooled": "pooled_output", None: "pooled_output"}.get(pooling, pooling)
    if pooling not in POOLINGS:
        raise InvalidInputError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    spec: dict[str, Any] = {"pooling": pooling, "head": "native" if pooling == "pooled_output" else "mean"}
    head_file = head_file_of(found)
    names = ("classifier.weight", "classifier.bias") if spec["head"] == "native" else ("weight", "bias")
    width = _head_width(head_file, names, hidden) if head_file and head_file.is_file() else None
    given = _labels(labels, None, found.root)
    spec["fresh_head"] = width is None or (given is not None and len(given) != width)
    if given is None and width is None and require_head:
        raise InvalidModelError(
            f"{found.root}: a TF Hub encoder + preprocessor without a classification head; pass labels=[...] to "
            "start a fresh head (then fit it), or put the head in head.safetensors"
        )
    spec["labels"] = given or [f"LABEL_{i}" for i in range(width or 0)]
    spec["architecture"] = "bert" if config else None
    spec["convertible"] = config is not None
    spec["why"] = (
        None
        if config
        else (
            "its variables do not follow TF Hub's BERT naming (word_embeddings/embeddings, "
            "transformer/layer_{i}/...), so there is no architecture to map them to"
        )
    )
    # as long as the pair's own default call packs (tfhub.dev's: 128), within the encoder's positions
    limits = [config["max_position_embeddings"] if config else DEFAULT_MAX_LENGTH, default_seq_length(pre)]
    spec["max_length"] = int(min(x for x in limits if x))
    # the head's shape (and, for a named encoder, its layout): TFHubModel reads it instead of config.json
    spec["config"] = config or {
        "model_type": "bert", "hidden_size": hidden, "num_hidden_layers": 1, "num_attention_heads": 1,
        "intermediate_size": hidden, "vocab_size": int(rows or vocab or 1),
    }  # fmt: skip
    spec["token_types"] = True
    spec["hidden"] = hidden
    spec["encoder_path"], spec["preprocessor_path"] = str(found.model_dir), str(found.preprocessor_dir)
    spec["head_path"] = str(head_file) if width is not None and not spec["fresh_head"] else None
    return spec


def _classify_function(obj) -> ClassifyFunction:
    name, key = classify_signature(obj)
    return ClassifyFunction(obj.signatures[name], key, owner=obj)


def _classify_spec(found: Located, labels) -> dict[str, Any]:
    """A TF Serving classify export (classify.py): labels from its classes, renamed by `labels`."""
    classes = _classify_function(load_object(found.model_dir)).labels
    spec: dict[str, Any] = {"model_path": str(found.model_dir), "token_types": False, "max_length": None}
    spec.update(head="keras", pooling=None, fresh_head=False, head_path=None, architecture=None)
    spec["labels"] = _labels(labels, len(classes), found.model_dir) or list(classes)
    spec["convertible"], spec["why"] = False, WHY_CLASSIFY
    return spec


def _strings_spec(found: Located, labels, require_head: bool = True) -> dict[str, Any]:
    if found.kind == "classify":
        return _classify_spec(found, labels)
    obj = load_object(found.model_dir)
    width = StringsModel(strings_function(obj, found.model_dir, found.kind), head=None).width
    spec: dict[str, Any] = {"model_path": str(found.model_dir), "token_types": False, "max_length": None}
    if found.kind == "embedding":
        spec.update(head="linear", pooling=None, hidden=width, architecture=None, convertible=False)
        spec["why"] = (
            "a text-embedding SavedModel is its own graph (tokenizer included) with no architecture to map its "
            "variables to"
        )
        head_file = found.root / HEAD_FILE
        n = _head_width(head_file, ("weight", "bias"), width) if head_file.is_file() else None
        given = _labels(labels, None, found.root)
        if given is None and n is None and require_head:
            raise InvalidModelError(
                f"{found.root}: a text-embedding SavedModel has no classification head; pass labels=[...] to put a "
                "fresh linear head on it (then fit it)"
            )
        spec["fresh_head"] = n is None or (given is not None and len(given) != n)
        spec["labels"] = given or [f"LABEL_{i}" for i in range(n or 0)]
        spec["head_path"] = None if spec["fresh_head"] else str(head_file)
        spec["trainable"] = bool(list(getattr(obj, "trainable_variables", []) or []))
        return spec
    spec.update(head="keras", pooling=None, fresh_head=False, head_path=None)
    spec["labels"] = _labels(labels, width, found.model_dir) or [f"LABEL_{i}" for i in range(width)]
    parts = keras_parts(found.model_dir)
    spec["architecture"] = "bert" if parts.config else None
    spec["convertible"], spec["why"] = parts.why is None, parts.why
    return spec


def savedmodel_spec(
    path: Path,
    *,
    preprocessor: Path | None = None,
    labels: Sequence[str] | None = None,
    problem_type: str | None = None,
    seed: int = 0,
    pooling: str | None = None,
    require_head: bool = True,
) -> ModelSpec:
    """The spec of a native TF Hub SavedModel (see the module docstring), which
    ``TFHubBackend.load(path, spec)`` takes: format, labels, head, pooling, problem_type,
    max_length, seed, fresh_head, architecture (a transformers model_type when the
    variables map, else None), head_path, and in `extra` kind, convertible and why (None,
    or why it cannot leave TensorFlow), the SavedModel paths and the encoder's layout.

    >>> savedmodel_spec(Path("nnlm-en-dim50"), labels=["neg", "pos"]).extra["kind"]   # doctest: +SKIP
    'embedding'
    """
    path = Path(path).absolute()
    found = locate(path, Path(preprocessor).absolute() if preprocessor is not None else None)
    if pooling is not None and found.kind != "encoder-pair":
        raise InvalidInputError(f"pooling applies to an encoder + preprocessor pair, not to a {found.kind}")
    spec: dict[str, Any] = {"format": FORMAT, "kind": found.kind, "seed": int(seed)}
    if found.kind == "encoder-pair":
        spec.update(_pair_spec(found, labels, pooling, require_head))
    else:
        spec.update(_strings_spec(found, labels, require_head))
    spec["problem_type"] = problem_type or "single_label_classification"
    if spec["problem_type"] not in PROBLEM_TYPES:
        raise InvalidInputError(f"problem_type must be one of {', '.join(PROBLEM_TYPES)}, got {spec['problem_type']!r}")
    if spec["problem_type"] == PROBLEM_TYPES[0] and len(spec["labels"]) < 2 and (spec["labels"] or require_head):
        raise InvalidInputError(f"a single-label classifier needs at least two labels, got {spec['labels']}")
    return ModelSpec.from_dict(spec)


def inspect_savedmodel(path: Path, *, preprocessor: Path | None = None) -> dict[str, Any]:
    """What a native SavedModel is, without labels (for ``unified-nlp inspect``): savedmodel_spec's
    keys, labels None when it has no head, and where its tokenizer lives.

    >>> inspect_savedmodel(Path("nnlm-en-dim50"))["convertible"]   # doctest: +SKIP
    False
    """
    spec = savedmodel_spec(path, preprocessor=preprocessor, require_head=False)
    extra = spec.extra
    out = {
        "format": spec.format,
        "kind": extra["kind"],
        "architecture": spec.architecture,
        "head": spec.head,
        "pooling": spec.pooling,
        "max_length": spec.max_length,
        "convertible": extra["convertible"],
        "why": extra["why"],
    }
    out["labels"] = list(spec.labels) or None
    out["tokenizer"] = {
        "encoder-pair": f"the preprocessor SavedModel {extra.get('preprocessor_path')} (tokenize, bert_pack_inputs)",
        "embedding": "inside the SavedModel (strings in)",
        "keras-classifier": "inside the SavedModel (strings in)",
        "classify": "inside the SavedModel (strings in)",
    }[extra["kind"]]
    out["trainable"] = extra.get("trainable", extra["kind"] not in ("keras-classifier", "classify"))
    return out


# --- loading on the tfhub backend -------------------------------------------------------


def load_savedmodel(spec: ModelSpec):
    """(tokenizer, model) for a spec from `savedmodel_spec`."""
    extra = spec.extra
    kind = extra.get("kind")
    if kind == "encoder-pair":
        encoder_dir, pre_dir = Path(extra["encoder_path"]), Path(extra["preprocessor_path"])
        head_dir = Path(spec.head_path).parent if spec.head_path else encoder_dir
        model = TFHubModel(head_dir, spec.replace(architecture="bert"), encoder_dir)
        max_length = int(spec.max_length or DEFAULT_MAX_LENGTH)
        if model.max_positions is not None:
            max_length = min(max_length, model.max_positions)
        return TFHubTokenizer(pre_dir, max_length), model
    if kind not in KINDS:
        raise InvalidModelError(f"unknown TF Hub SavedModel kind {kind!r} (known: {', '.join(KINDS)})")
    folder = Path(extra["model_path"])
    obj = load_object(folder)
    if kind == "classify":
        model = StringsModel(_classify_function(obj), head=None, what="TF Serving classify export")
        return StringsTokenizer(), model
    fn = strings_function(obj, folder, kind)
    if kind == "keras-classifier":
        model = StringsModel(fn, head=None, what="Keras classifier", problem_type=spec.problem_type)
        if model.num_labels != spec.num_labels:
            raise InvalidInputError(f"{folder}: {model.num_labels} outputs, but {spec.num_labels} labels")
        return StringsTokenizer(), model
    width = int(extra["hidden"])
    if spec.fresh_head or not spec.head_path:
        head = initial_head(spec.num_labels, width, spec.seed)
    else:
        head = {k: np.asarray(v, np.float32) for k, v in load_file(Path(spec.head_path)).items()}
    variables = list(getattr(obj, "trainable_variables", []) or [])
    model = StringsModel(fn, head=head, encoder_variables=variables, problem_type=spec.problem_type)
    return StringsTokenizer(), model


__all__ = [
    "FORMAT",
    "KINDS",
    "inspect_savedmodel",
    "load_savedmodel",
    "locate",
    "role",
    "savedmodel_spec",
    "to_canonical",
]
