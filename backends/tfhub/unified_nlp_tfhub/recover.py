"""A native TF Hub SavedModel -> the canonical Hugging Face folder, where the weights allow.

An encoder whose variables follow TF Hub's BERT naming (the names of weight_map.py,
which tfhub.dev's BERT encoders use) maps onto transformers' BertModel. What the
variable names cannot say (the activation, the LayerNorm epsilon) is found by
running: the SavedModel's own forward is compared with this adapter's Encoder
built from the same variables, for each candidate, and the conversion is refused
when none reproduces it. A whole Keras classifier converts when it is exactly
preprocessor -> such an encoder -> one Dense layer on pooled_output (or on the
mean over the mask), again checked against its own logits. The tokenizer files
(vocab.txt, tokenizer.json) are written from the preprocessor's vocabulary with
the normalisation its tokenize op shows (lower-casing, accent stripping, CJK
splitting, probed), and checked against it on sample texts.

>>> to_canonical(Path("bert_en_uncased_L-2_H-128"), Path("bert-hf"))   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    ENCODER_FILE,
    HEAD_FILE,
    SAVEDMODEL_FORMAT,
    SPEC_FILE,
    ConversionError,
    InvalidModelError,
    atomic_dir,
    load_file,
    save_file,
    write_config,
)

from ._tf import tf
from .classify import WHY_SAVEDMODEL as WHY_CLASSIFY
from .encoder import Encoder, EncoderOptions
from .kinds import Located, encoder_shapes, head_file_of, load_object, locate, strings_function, variable_name
from .savedmodel import DEFAULT_MAX_LENGTH, EncoderCall, default_seq_length
from .tokenizer import TFHubTokenizer
from .vocab_tokenizer import PROBE_TEXTS, write_tokenizer
from .weight_map import bert_layout, tf_to_hf, weight_rows

# (hidden_act, layer_norm_eps) that TF Hub's BERT encoders are known to use, most common first
CANDIDATES = (("gelu", 1e-12), ("gelu_new", 1e-12), ("gelu", 1e-6), ("relu", 1e-12))
TOLERANCE = 1e-4  # an exact map reproduces a SavedModel within a few 1e-6; a wrong guess misses by far more


def _bert_config(layout: Mapping[str, Any], act: str, eps: float, pad_id: int) -> dict[str, Any]:
    return {
        **layout,
        "hidden_act": act,
        "layer_norm_eps": eps,
        "pad_token_id": int(pad_id),
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
    }


def _fit_config(
    layout: Mapping[str, Any], values: Mapping[str, np.ndarray], pad_id: int, diff: Callable[[Encoder], float], where
) -> dict[str, Any]:
    """The BERT config (activation, epsilon) under which our Encoder reproduces the SavedModel."""
    best = (float("inf"), None)
    for act, eps in CANDIDATES:
        config = _bert_config(layout, act, eps, pad_id)
        encoder = Encoder(EncoderOptions.from_config("bert", config), config, values)
        best = min(best, (diff(encoder), act), key=lambda x: x[0])
        if best[0] <= TOLERANCE:
            return config
    raise ConversionError(
        f"{where}: the variables follow TF Hub's BERT naming, but no BERT configuration reproduces this "
        f"SavedModel's outputs (closest: {best[1]}, max difference {best[0]:.2e})"
    )


def _probe_inputs(vocab: int, types: int) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=(3, 9)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    kinds = np.zeros_like(ids) if types < 2 else (np.arange(9)[None, :] >= 4).astype(np.int32).repeat(3, 0)
    return {"input_word_ids": tf.constant(ids), "input_mask": tf.constant(mask), "input_type_ids": tf.constant(kinds)}


def _max_diff(a, b, mask) -> float:
    keep = np.asarray(mask, bool)
    return float(np.max(np.abs(np.asarray(a)[keep] - np.asarray(b)[keep]), initial=0.0))


# --- a whole Keras classifier -----------------------------------------------------------


def _children(obj) -> Iterator[Any]:
    # a restored SavedModel's object graph has no public walk; _trackable_children is what
    # tf.train.Checkpoint itself uses to enumerate it
    try:
        return iter(obj._trackable_children().values())
    except Exception:  # not a Trackable, or one that cannot list children
        return iter(())


def _find_preprocessor(root) -> Any | None:
    seen, queue = set(), [root]
    while queue:
        obj = queue.pop(0)
        if id(obj) in seen or len(seen) > 5000:
            continue
        seen.add(id(obj))
        if all(callable(getattr(obj, p, None)) for p in ("tokenize", "bert_pack_inputs")):
            return obj
        queue.extend(_children(obj))
    return None


@dataclass
class KerasParts:
    """What a Keras classifier SavedModel is made of, where it follows TF Hub's BERT."""

    config: dict[str, Any] | None = None  # the BERT layout read off the variable names
    why: str | None = None  # why it cannot be converted, or None
    values: dict[str, np.ndarray] = field(default_factory=dict)
    kernel: np.ndarray | None = None  # the Dense head, [hidden, num_labels]
    bias: np.ndarray | None = None
    preprocessor: Any = None
    owner: Any = None  # the loaded SavedModel, kept alive with its preprocessor


@functools.lru_cache(maxsize=8)
def _keras_parts(folder: str, stamp: tuple) -> KerasParts:
    obj = load_object(Path(folder))
    variables = {variable_name(v): v for v in list(getattr(obj, "variables", []) or [])}
    shapes = {k: tuple(v.shape) for k, v in variables.items()}
    layout = bert_layout(shapes)
    if layout is None:
        return KerasParts(why="its variables do not follow TF Hub's BERT naming, so there is no architecture to map "
                          "them to")  # fmt: skip
    names = {t for _, t, _ in weight_rows("bert", layout)}
    rest = {k: v for k, v in variables.items() if k not in names}
    matrices = [k for k, v in rest.items() if len(v.shape) == 2]
    vectors = [k for k, v in rest.items() if len(v.shape) == 1]
    hidden = layout["hidden_size"]
    if len(rest) != 2 or len(matrices) != 1 or len(vectors) != 1 or shapes[matrices[0]][0] != hidden:
        return KerasParts(layout, f"besides its BERT encoder it holds {sorted(rest)}: not one Dense layer on it")
    pre = _find_preprocessor(obj)
    if pre is None:
        return KerasParts(
            layout, "it holds no BERT preprocessor (tokenize, bert_pack_inputs) to write a tokenizer from"
        )
    values = {k: variables[k].numpy() for k in names}
    return KerasParts(layout, None, values, rest[matrices[0]].numpy(), rest[vectors[0]].numpy(), pre, obj)


def keras_parts(folder: Path) -> KerasParts:
    pb = Path(folder) / "saved_model.pb"
    return _keras_parts(str(Path(folder).resolve()), (pb.stat().st_size, pb.stat().st_mtime_ns))


def _keras_canonical(found: Located, out: Path, pooling: str | None) -> None:
    parts = keras_parts(found.model_dir)
    if parts.why:
        raise ConversionError(f"{found.model_dir}: cannot convert this Keras classifier: {parts.why}")
    obj = load_object(found.model_dir)
    black_box = strings_function(obj, found.model_dir, "keras-classifier")
    max_length = _max_length(parts.config, parts.preprocessor)
    tokenizer = TFHubTokenizer(found.model_dir, max_length, loaded=parts.preprocessor)
    enc = tokenizer(PROBE_TEXTS)
    reference = black_box(tf.constant(PROBE_TEXTS)).numpy()
    inputs = {
        "input_word_ids": tf.constant(enc.input_ids, tf.int32),
        "input_mask": tf.constant(enc.attention_mask, tf.int32),
        "input_type_ids": tf.constant(enc.token_type_ids, tf.int32),
    }
    mask = tf.cast(inputs["input_mask"], tf.float32)[:, :, None]
    heads = {
        "pooled_output": lambda out: out["pooled_output"],
        "mean": lambda out: tf.reduce_sum(out["sequence_output"] * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1e-9),
    }
    chosen = {}

    def diff(encoder: Encoder) -> float:
        out = encoder(inputs)
        best = float("inf")
        for name, features in heads.items():
            if pooling and name != pooling:
                continue
            logits = features(out).numpy() @ parts.kernel + parts.bias
            d = float(np.max(np.abs(logits - reference)))
            if d < best:
                best, chosen["pooling"] = d, name
        return best

    pad_id = int(tokenizer._special_tokens().get("padding_id", 0))
    config = _fit_config(parts.config, parts.values, pad_id, diff, found.model_dir)
    labels = [f"LABEL_{i}" for i in range(parts.kernel.shape[1])]
    head = {"classifier.weight": parts.kernel.T.copy(), "classifier.bias": parts.bias.copy()}
    _write(out, config, parts.values, head, labels, chosen["pooling"], parts.preprocessor,
           [found.model_dir / "assets"], max_length)  # fmt: skip


# --- an encoder + preprocessor pair -----------------------------------------------------


def _pair_canonical(found: Located, out: Path, pooling: str | None) -> None:
    encoder = EncoderCall(load_object(found.model_dir, "encoder"), found.model_dir)
    layout = bert_layout(encoder_shapes(encoder))
    if layout is None:
        raise ConversionError(
            f"{found.model_dir}: its variables do not follow TF Hub's BERT naming (word_embeddings/embeddings, "
            "transformer/layer_{i}/...), so there is no architecture to map them to"
        )
    values = {variable_name(v): v.numpy() for v in encoder.trainable_variables()}
    pre = load_object(found.preprocessor_dir, "preprocessor")
    inputs = _probe_inputs(layout["vocab_size"], layout["type_vocab_size"])
    reference = encoder(inputs)
    mask = inputs["input_mask"].numpy()

    def diff(ours: Encoder) -> float:
        out = ours(inputs)
        seq = _max_diff(out["sequence_output"], reference["sequence_output"], mask)
        return max(seq, float(np.max(np.abs(out["pooled_output"].numpy() - reference["pooled_output"].numpy()))))

    special = pre.tokenize.get_special_tokens_dict() if hasattr(pre.tokenize, "get_special_tokens_dict") else {}
    pad_id = int(special["padding_id"].numpy()) if "padding_id" in special else 0
    config = _fit_config(layout, values, pad_id, diff, found.model_dir)
    head, labels = None, None
    head_file = head_file_of(found)
    mean = pooling == "mean"
    if head_file is not None and head_file.is_file():
        saved = load_file(head_file)
        names = ("weight", "bias") if mean else ("classifier.weight", "classifier.bias")
        if all(n in saved for n in names):
            head = {"classifier.weight": saved[names[0]], "classifier.bias": saved[names[1]]}
            labels = [f"LABEL_{i}" for i in range(head["classifier.bias"].shape[0])]
    max_length = _max_length(layout, pre)
    _write(out, config, values, head, labels, "mean" if mean else "pooled_output", pre,
           [found.preprocessor_dir / "assets"], max_length)  # fmt: skip


def _max_length(layout: Mapping[str, Any], pre) -> int:
    """The token limit the SavedModel itself applies: its preprocessor's default seq_length
    (tfhub.dev's: 128; a Keras classifier calls it so), within the encoder's positions."""
    limits = [layout["max_position_embeddings"], DEFAULT_MAX_LENGTH, default_seq_length(pre)]
    return int(min(x for x in limits if x))


def _write(out, config, values, head, labels, pooling, pre, asset_dirs, max_length) -> None:
    """The canonical folder: BertForSequenceClassification (or BertModel without a head), or
    for mean pooling the encoder with head.safetensors and unified_nlp.json (the extension)."""
    state = tf_to_hf(values, "bert", config, config["num_attention_heads"])
    mean = pooling == "mean"
    with atomic_dir(Path(out)) as tmp:
        write_tokenizer(pre, asset_dirs, max_length, tmp)
        full = dict(config, model_type="bert")
        if head is not None and not mean:
            full["architectures"] = ["BertForSequenceClassification"]
            full["id2label"] = {str(i): n for i, n in enumerate(labels)}
            full["label2id"] = {n: i for i, n in enumerate(labels)}
            full["problem_type"] = "single_label_classification"
            state = {f"bert.{k}": v for k, v in state.items()}
            state.update({k: np.ascontiguousarray(v, np.float32) for k, v in head.items()})
        else:
            full["architectures"] = ["BertModel"]
        write_config(full, tmp / "config.json")
        save_file(state, tmp / ENCODER_FILE, metadata={"format": "pt"})
        if mean:
            meta = {"format": CANONICAL_FORMAT, "architecture": "bert", "head": "mean", "pooling": "mean",
                    "converted_from": SAVEDMODEL_FORMAT, "max_length": max_length}  # fmt: skip
            if head is not None:
                save_file({"weight": head["classifier.weight"], "bias": head["classifier.bias"]}, tmp / HEAD_FILE)
                meta["labels"] = labels
            (tmp / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def to_canonical(path: Path, out: Path, *, preprocessor: Path | None = None, pooling: str | None = None) -> None:
    """Write the canonical Hugging Face folder of a native TF Hub SavedModel at `out`,
    atomically: BertForSequenceClassification with the recovered Dense head (LABEL_i
    labels) for a Keras classifier, the bare BertModel (pooler included) for a pair
    without head.safetensors; with ``pooling="mean"`` the mean-pooling extension.
    ConversionError saying why for what cannot leave TensorFlow.

    >>> to_canonical(Path("my-keras-bert-classifier"), Path("my-bert-hf"))   # doctest: +SKIP
    """
    path = Path(path).absolute()
    found = locate(path, Path(preprocessor).absolute() if preprocessor is not None else None)
    pooling = {"pooled": "pooled_output"}.get(pooling, pooling)
    if found.kind == "classify":
        raise ConversionError(f"{found.model_dir}: {WHY_CLASSIFY}")
    if found.kind == "embedding":
        raise ConversionError(
            f"{found.model_dir}: a text-embedding SavedModel is its own graph (its tokenizer included) with no "
            "architecture to map its variables to"
        )
    try:
        if found.kind == "keras-classifier":
            _keras_canonical(found, Path(out), pooling)
        else:
            _pair_canonical(found, Path(out), pooling)
    except (ConversionError, InvalidModelError):
        raise
    except Exception as e:  # TensorFlow's own errors while probing the SavedModel
        raise ConversionError(f"converting {path} failed: {type(e).__name__}: {str(e).strip()[:300]}") from None
