"""What every architecture module declares, and the shared row tables.

An architecture is one module (bert.py, roberta.py, ...) holding one
`Architecture`: the config keys of its family, one literal line per tensor
family (its role, the Hugging Face name with ``{p}`` for the model's prefix and
``{i}`` for the layer, and its shape in config terms), its heads by task and its
tokenizer family. The core validates folders with it; adapters read it to build
their framework's model, and map weights by role (``"layer.query.weight"``) to
their own names, so that transformers' names are typed here only.

The package finds the modules itself (architectures/__init__.py): a new family
is a new module holding an ``ARCHITECTURE``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Row = tuple[str, str, tuple[str, ...]]  # (role, tensor name template, shape in dims)

# The tasks a head serves; `Architecture.heads` maps each to its rows.
SEQUENCE_CLASSIFICATION = "sequence_classification"

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
    ("layer.query.weight",            "{p}encoder.layer.{i}.attention.self.query.weight",       ("hidden", "hidden")),
    ("layer.query.bias",              "{p}encoder.layer.{i}.attention.self.query.bias",         ("hidden",)),
    ("layer.key.weight",              "{p}encoder.layer.{i}.attention.self.key.weight",         ("hidden", "hidden")),
    ("layer.key.bias",                "{p}encoder.layer.{i}.attention.self.key.bias",           ("hidden",)),
    ("layer.value.weight",            "{p}encoder.layer.{i}.attention.self.value.weight",       ("hidden", "hidden")),
    ("layer.value.bias",              "{p}encoder.layer.{i}.attention.self.value.bias",         ("hidden",)),
    ("layer.attention_output.weight", "{p}encoder.layer.{i}.attention.output.dense.weight",     ("hidden", "hidden")),
    ("layer.attention_output.bias",   "{p}encoder.layer.{i}.attention.output.dense.bias",       ("hidden",)),
    ("layer.attention_norm.weight",   "{p}encoder.layer.{i}.attention.output.LayerNorm.weight", ("hidden",)),
    ("layer.attention_norm.bias",     "{p}encoder.layer.{i}.attention.output.LayerNorm.bias",   ("hidden",)),
    ("layer.intermediate.weight",     "{p}encoder.layer.{i}.intermediate.dense.weight",         ("intermediate", "hidden")),
    ("layer.intermediate.bias",       "{p}encoder.layer.{i}.intermediate.dense.bias",           ("intermediate",)),
    ("layer.output.weight",           "{p}encoder.layer.{i}.output.dense.weight",               ("hidden", "intermediate")),
    ("layer.output.bias",             "{p}encoder.layer.{i}.output.dense.bias",                 ("hidden",)),
    ("layer.output_norm.weight",      "{p}encoder.layer.{i}.output.LayerNorm.weight",           ("hidden",)),
    ("layer.output_norm.bias",        "{p}encoder.layer.{i}.output.LayerNorm.bias",             ("hidden",)),
)
BERT_EMBEDDINGS: tuple[Row, ...] = (
    ("embeddings.word",        "{p}embeddings.word_embeddings.weight",       ("vocab", "embedding")),
    ("embeddings.position",    "{p}embeddings.position_embeddings.weight",   ("positions", "embedding")),
    ("embeddings.token_type",  "{p}embeddings.token_type_embeddings.weight", ("types", "embedding")),
    ("embeddings.norm.weight", "{p}embeddings.LayerNorm.weight",             ("embedding",)),
    ("embeddings.norm.bias",   "{p}embeddings.LayerNorm.bias",               ("embedding",)),
)
BERT_POOLER: tuple[Row, ...] = (  # BertPooler: tanh dense on the first token, part of the bare encoder
    ("pooler.weight", "{p}pooler.dense.weight", ("hidden", "hidden")),
    ("pooler.bias",   "{p}pooler.dense.bias",   ("hidden",)),
)
LINEAR_HEAD: tuple[Row, ...] = (  # BERT, ALBERT, ERNIE: a linear classifier on the pooled output
    ("head.classifier.weight", "classifier.weight", ("labels", "hidden")),
    ("head.classifier.bias",   "classifier.bias",   ("labels",)),
)
DENSE_HEAD: tuple[Row, ...] = (  # RoBERTa, XLM-R, ELECTRA: dense + activation + out_proj on the first token
    ("head.dense.weight",    "classifier.dense.weight",    ("hidden", "hidden")),
    ("head.dense.bias",      "classifier.dense.bias",      ("hidden",)),
    ("head.out_proj.weight", "classifier.out_proj.weight", ("labels", "hidden")),
    ("head.out_proj.bias",   "classifier.out_proj.bias",   ("labels",)),
)
# fmt: on
POOLER_HEAD = BERT_POOLER + LINEAR_HEAD  # BERT, ERNIE: the pooler, then the classifier

HEAD_KINDS = {
    "pooler": "tanh(dense) on the first token (the pooler), then a linear classifier",
    "dense": "dense + activation on the first token, then out_proj",
    "pre_classifier": "pre_classifier + ReLU on the first token, then a linear classifier",
    "prediction": "first token or masked mean (classifier_pooling), dense + activation + LayerNorm, then a classifier",
    "mean": "mean pooling over the attention mask, then a linear layer (unified_nlp extension)",
}
# Architecture.attention: what a family's layers compute beyond BERT's (a backend without it refuses the family)
ATTENTION_KINDS = {
    "scaled_dot_product": "BERT's scaled dot-product attention over absolute position embeddings",
    "disentangled": "disentangled attention (relative position buckets, c2p/p2c terms over shared relative embeddings)",
    "rotary_local_global": "rotary position embeddings, a GeGLU feed-forward, sliding-window local attention layers",
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
    pooler: tuple[Row, ...] = ()  # the bare encoder's pooler (transformers' BertModel...), where it has one
    heads: Mapping[str, tuple[Row, ...]] = field(default_factory=dict)  # task -> the task model's head rows
    keys: Mapping[str, str] = field(default_factory=dict)  # dim -> config key, overriding STANDARD_KEYS
    token_types: bool = True  # transformers' tokenizer of the family hands the model token_type_ids
    position_offset: bool = False  # positions start past the padding id (RoBERTa)
    dense_activation: str = "tanh"  # of a "dense" head: RobertaClassificationHead tanh, ElectraClassificationHead gelu
    activation: tuple[str, str] = ("hidden_act", "gelu")  # the encoder's: config key, transformers' default
    fixed_layer_norm_eps: float | None = None  # where transformers ignores the config's layer_norm_eps
    # the attention's mathematics: "scaled_dot_product" (BERT's, through transformers' attention interface)
    # or "disentangled" (DeBERTa's relative c2p/p2c terms); a backend without it refuses the family
    attention: str = "scaled_dot_product"
    optional: tuple[str, ...] = ()  # rows a checkpoint may leave out (transformers then draws them)
    notes: str = ""

    @property
    def head_rows(self) -> tuple[Row, ...]:
        """The sequence-classification head (with the pooler where the head reads it)."""
        return self.heads[SEQUENCE_CLASSIFICATION]

    @property
    def reads_token_types(self) -> bool:
        """The encoder has a token-type embedding (and takes token_type_ids)."""
        return any(role == "embeddings.token_type" for role, _, _ in self.embeddings)

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
        out = {
            name.format(p=p): _shape(shape, dims)
            for role, name, shape in rows
            if self._wanted(role, name, config, dims)
        }
        for i in range(dims["layer_count"]):
            for _, name, shape in self.layer:
                out[self.layer_name(name, i, config, p)] = _shape(shape, dims)
        return out

    def layer_name(self, name: str, i: int, config: Mapping[str, Any], p: str) -> str:
        return name.format(p=p, i=i)

    def layer_schedule(self, config: Mapping[str, Any]) -> tuple[int, ...]:
        """Which set of layer weights each step of the encoder applies (ALBERT shares them)."""
        return tuple(range(self.dims(config)["layers"]))

    def has_role(self, role: str) -> bool:
        """The family has a tensor of this role (ERNIE's "embeddings.task_type")."""
        rows = self.embeddings + self.encoder_extra + self.layer + self.pooler
        return any(r == role for r, _, _ in rows) or any(r == role for h in self.heads.values() for r, _, _ in h)

    def encoder_activation(self, config: Mapping[str, Any]) -> tuple[str, Any]:
        """The config key of the encoder's activation and its value (transformers' default when absent)."""
        key, default = self.activation
        return key, config.get(key, default)

    def layer_norm_eps(self, config: Mapping[str, Any]) -> float:
        """The LayerNorm epsilon transformers computes with."""
        if self.fixed_layer_norm_eps is not None:
            return self.fixed_layer_norm_eps
        return float(config.get("layer_norm_eps", 1e-12))

    def head_shapes(self, config: Mapping[str, Any], num_labels: int) -> dict[str, tuple[int, ...]]:
        """The native head's tensors (classifier, pooler where it belongs to the head)."""
        dims = {**self.dims(config), "labels": num_labels}
        return {name.format(p=self.prefix + "."): _shape(shape, dims) for _, name, shape in self.head_rows}

    def classifier_shapes(self, config: Mapping[str, Any], num_labels: int) -> dict[str, tuple[int, ...]]:
        """Encoder and native head: the state dict of transformers' classifier class."""
        return {**self.encoder_shapes(config), **self.head_shapes(config, num_labels)}

    def fresh_head(self, config: Mapping[str, Any], num_labels: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Newly drawn head tensors, in numpy so that every backend starts from the same
        weights for a seed: N(0, 0.02) as transformers initialises, zero biases. A pooler
        that belongs to the encoder (BERT, ALBERT, ERNIE) is kept, not redrawn."""
        rng = np.random.default_rng(seed)
        out = {}
        pooler = {name.format(p=self.prefix + ".") for role, name, _ in self.head_rows if role.startswith("pooler.")}
        for name, shape in self.head_shapes(config, num_labels).items():
            if name in pooler:
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

    def _wanted(self, role: str, name: str, config: Mapping[str, Any], dims: Mapping[str, int]) -> bool:
        if role == "embeddings.token_type":
            return dims["types"] > 0
        if role == "embeddings.task_type":  # ERNIE's, only with use_task_id
            return bool(config.get("use_task_id"))
        if "embeddings_project" in name:  # ELECTRA's projection, only when the sizes differ (ALBERT's always)
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


def discover(package: str, path: Iterable[str], attribute: str, kind: type) -> dict[str, Any]:
    """Every module of `package` (at `path`) whose `attribute` is a `kind`, keyed by its
    model_type: a new family is a new module, with no list to edit."""
    found = {}
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        value = getattr(importlib.import_module(f"{package}.{info.name}"), attribute, None)
        if isinstance(value, kind):
            found[value.model_type] = value
    return found
