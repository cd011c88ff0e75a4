"""What every architecture module declares, and the shared row tables.

An architecture is one module (bert.py, roberta.py, ...) holding one
`Architecture`: the config keys of its family, one literal line per tensor
family (the Hugging Face name with ``{p}`` for the model's prefix and ``{i}``
for the layer, and its shape in config terms), its head and its tokenizer
family. The core validates folders with it; adapters read it to build their
framework's model and to map weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Row = tuple[str, tuple[str, ...]]  # (tensor name template, shape in dims)

# The standard dims of an encoder, and the config.json key of each in most families;
# an architecture overrides the keys its family names differently (DistilBERT's "dim").
STANDARD_KEYS: dict[str, str] = {
    "hidden": "hidden_size",
    "layers": "num_hidden_layers",
    "heads": "num_attention_heads",
    "intermediate": "intermediate_size",
    "vocab": "vocab_size",
    "positions": "max_position_embeddings",
    "types": "type_vocab_size",
    "embedding": "embedding_size",
}
DEFAULTS: dict[str, int] = {"positions": 512, "types": 2}

# fmt: off
# The BERT encoder layer, shared by BERT, RoBERTa, XLM-RoBERTa, ELECTRA and ERNIE.
BERT_LAYER: tuple[Row, ...] = (
    ("{p}encoder.layer.{i}.attention.self.query.weight",       ("hidden", "hidden")),
    ("{p}encoder.layer.{i}.attention.self.query.bias",         ("hidden",)),
    ("{p}encoder.layer.{i}.attention.self.key.weight",         ("hidden", "hidden")),
    ("{p}encoder.layer.{i}.attention.self.key.bias",           ("hidden",)),
    ("{p}encoder.layer.{i}.attention.self.value.weight",       ("hidden", "hidden")),
    ("{p}encoder.layer.{i}.attention.self.value.bias",         ("hidden",)),
    ("{p}encoder.layer.{i}.attention.output.dense.weight",     ("hidden", "hidden")),
    ("{p}encoder.layer.{i}.attention.output.dense.bias",       ("hidden",)),
    ("{p}encoder.layer.{i}.attention.output.LayerNorm.weight", ("hidden",)),
    ("{p}encoder.layer.{i}.attention.output.LayerNorm.bias",   ("hidden",)),
    ("{p}encoder.layer.{i}.intermediate.dense.weight",         ("intermediate", "hidden")),
    ("{p}encoder.layer.{i}.intermediate.dense.bias",           ("intermediate",)),
    ("{p}encoder.layer.{i}.output.dense.weight",               ("hidden", "intermediate")),
    ("{p}encoder.layer.{i}.output.dense.bias",                 ("hidden",)),
    ("{p}encoder.layer.{i}.output.LayerNorm.weight",           ("hidden",)),
    ("{p}encoder.layer.{i}.output.LayerNorm.bias",             ("hidden",)),
)
BERT_EMBEDDINGS: tuple[Row, ...] = (
    ("{p}embeddings.word_embeddings.weight",       ("vocab", "embedding")),
    ("{p}embeddings.position_embeddings.weight",   ("positions", "embedding")),
    ("{p}embeddings.token_type_embeddings.weight", ("types", "embedding")),
    ("{p}embeddings.LayerNorm.weight",             ("embedding",)),
    ("{p}embeddings.LayerNorm.bias",               ("embedding",)),
)
POOLER_HEAD: tuple[Row, ...] = (  # BERT, ERNIE: tanh dense on the first token, then the classifier
    ("{p}pooler.dense.weight", ("hidden", "hidden")),
    ("{p}pooler.dense.bias",   ("hidden",)),
    ("classifier.weight",      ("labels", "hidden")),
    ("classifier.bias",        ("labels",)),
)
DENSE_HEAD: tuple[Row, ...] = (  # RoBERTa, XLM-R, ELECTRA: dense + activation + out_proj on the first token
    ("classifier.dense.weight",    ("hidden", "hidden")),
    ("classifier.dense.bias",      ("hidden",)),
    ("classifier.out_proj.weight", ("labels", "hidden")),
    ("classifier.out_proj.bias",   ("labels",)),
)
# fmt: on

HEAD_KINDS = {
    "pooler": "tanh(dense) on the first token (the pooler), then a linear classifier",
    "dense": "dense + activation on the first token, then out_proj",
    "pre_classifier": "pre_classifier + ReLU on the first token, then a linear classifier",
    "mean": "mean pooling over the attention mask, then a linear layer (unified_nlp extension)",
}


@dataclass(frozen=True)
class Architecture:
    """One encoder family: how its config, tensors, head and tokenizer look.

    >>> from unified_nlp.architectures import get
    >>> arch = get("bert")
    >>> arch.classifier_class, arch.head, arch.tokenizer
    ('BertForSequenceClassification', 'pooler', 'wordpiece')
    """

    model_type: str
    classifier_class: str  # transformers' sequence-classification class
    encoder_class: str  # transformers' bare encoder class
    prefix: str  # the encoder's attribute in the task model ("bert" -> "bert.embeddings...")
    head: str  # one of HEAD_KINDS
    tokenizer: str  # "wordpiece", "bpe" (byte-level) or "sentencepiece"
    embeddings: tuple[Row, ...]
    layer: tuple[Row, ...]  # rows with {i}, repeated `layers` times (or `layer_count`)
    encoder_extra: tuple[Row, ...] = ()  # rows outside the repeated layer (projections)
    head_rows: tuple[Row, ...] = ()
    keys: Mapping[str, str] = field(default_factory=dict)  # dim -> config key, overriding STANDARD_KEYS
    token_types: bool = True  # transformers' tokenizer of the family hands the model token_type_ids
    position_offset: bool = False  # positions start past the padding id (RoBERTa)
    dense_activation: str = "tanh"  # of a "dense" head: RobertaClassificationHead tanh, ElectraClassificationHead gelu
    optional: tuple[str, ...] = ()  # rows a checkpoint may leave out (transformers then draws them)
    notes: str = ""

    @property
    def reads_token_types(self) -> bool:
        """The encoder has a token-type embedding (and takes token_type_ids)."""
        return any("token_type" in name for name, _ in self.embeddings)

    def key(self, dim: str) -> str:
        return self.keys.get(dim, STANDARD_KEYS[dim])

    def dims(self, config: Mapping[str, Any]) -> dict[str, int]:
        """The standard dims from a config.json of this family; ValueError naming a bad key."""
        out: dict[str, int] = {}
        for dim in STANDARD_KEYS:
            key = self.key(dim)
            value = 0 if key == "-" else config.get(key, DEFAULTS.get(dim))  # "-": the family has none
            if value is None and dim == "embedding":
                value = out["hidden"]
            if value is None and dim == "types":
                value = 0
            if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key!r} must be a non-negative integer, got {value!r}")
            out[dim] = value
        for dim in ("hidden", "layers", "heads", "vocab", "positions", "intermediate"):
            if out[dim] <= 0:
                raise ValueError(f"{self.key(dim)!r} must be a positive integer, got {out[dim]}")
        if out["hidden"] % out["heads"]:
            raise ValueError(f"{self.key('hidden')} ({out['hidden']}) is not a multiple of {self.key('heads')}")
        out["layer_count"] = self.layer_count(config, out)
        return out

    def layer_count(self, config: Mapping[str, Any], dims: Mapping[str, int]) -> int:
        """How many times `layer` repeats in the state dict (ALBERT shares layers)."""
        return dims["layers"]

    def encoder_shapes(self, config: Mapping[str, Any], *, prefixed: bool = True) -> dict[str, tuple[int, ...]]:
        """Every encoder tensor of this family and its shape, from config.json."""
        dims = self.dims(config)
        p = self.prefix + "." if prefixed else ""
        rows = list(self.embeddings) + list(self.encoder_extra)
        out = {name.format(p=p): _shape(shape, dims) for name, shape in rows if self._wanted(name, config, dims)}
        for i in range(dims["layer_count"]):
            for name, shape in self.layer:
                out[self.layer_name(name, i, config, p)] = _shape(shape, dims)
        return out

    def layer_name(self, name: str, i: int, config: Mapping[str, Any], p: str) -> str:
        return name.format(p=p, i=i)

    def head_shapes(self, config: Mapping[str, Any], num_labels: int) -> dict[str, tuple[int, ...]]:
        """The native head's tensors (classifier, pooler where it belongs to the head)."""
        dims = {**self.dims(config), "labels": num_labels}
        return {name.format(p=self.prefix + "."): _shape(shape, dims) for name, shape in self.head_rows}

    def classifier_shapes(self, config: Mapping[str, Any], num_labels: int) -> dict[str, tuple[int, ...]]:
        """Encoder and native head: the state dict of transformers' classifier class."""
        return {**self.encoder_shapes(config), **self.head_shapes(config, num_labels)}

    def fresh_head(self, config: Mapping[str, Any], num_labels: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Newly drawn head tensors, in numpy so that every backend starts from the same
        weights for a seed: N(0, 0.02) as transformers initialises, zero biases. A pooler
        that belongs to the encoder (BERT, ALBERT, ERNIE) is kept, not redrawn."""
        rng = np.random.default_rng(seed)
        out = {}
        for name, shape in self.head_shapes(config, num_labels).items():
            if ".pooler." in name or name.startswith(self.prefix + ".pooler"):
                continue
            if name.endswith("bias"):
                out[name] = np.zeros(shape, np.float32)
            else:
                out[name] = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        return out

    def missing_tensors(self, config: Mapping[str, Any], names, seed: int = 1) -> dict[str, np.ndarray]:
        """Values for optional tensors a checkpoint lacks (a pooler), drawn in numpy as
        transformers would draw them (N(0, 0.02), zero biases) but from a fixed seed, so
        that every backend computes with the same ones (seed 1: not the fresh head's default
        0, so the two draws differ). `names` as the task model has them."""
        shapes = {**self.encoder_shapes(config), **self.head_shapes(config, 1)}
        rng = np.random.default_rng(seed)
        out = {}
        for name in sorted(names):
            shape = shapes[name]
            out[name] = (
                np.zeros(shape, np.float32)
                if name.endswith("bias")
                else (rng.standard_normal(shape) * 0.02).astype(np.float32)
            )
        return out

    def _wanted(self, name: str, config: Mapping[str, Any], dims: Mapping[str, int]) -> bool:
        if "token_type_embeddings" in name:
            return dims["types"] > 0
        if "embeddings_project" in name:
            return dims["embedding"] != dims["hidden"]
        return True

    def position_limit(self, config: Mapping[str, Any]) -> int:
        """The longest input in tokens that the position embeddings allow."""
        positions = self.dims(config)["positions"]
        if self.position_offset:  # RoBERTa numbers positions from pad_token_id + 1
            return positions - int(config.get("pad_token_id", 1)) - 1
        return positions

    def is_optional(self, name: str) -> bool:
        return any(name.endswith(suffix) for suffix in self.optional)


def _shape(shape: tuple[str, ...], dims: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(dims[d] for d in shape)
