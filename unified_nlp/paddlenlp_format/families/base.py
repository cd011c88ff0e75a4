"""What every family table declares, and the rows the BERT-like families share.

A family module (bert.py, roberta.py, ...) holds one `Family`: the PaddleNLP 2.8
classes that run it, the config mapping (transformers key -> PaddleNLP key, with
transformers' default), and PaddleNLP's name for every tensor role with the
transform from transformers' layout (one literal line per role). transformers'
names come from the core's architecture module of the family (its rows carry the
same roles), so they are typed there only. In the templates ``{p}`` is the
encoder's prefix in transformers (``bert.`` in BertForSequenceClassification,
empty in a bare BertModel), ``{q}`` the same in PaddleNLP (``bert.``; ALBERT's
``transformer.``), ``{i}`` the layer.

PaddleNLP stores every Linear weight as [in, out] (torch: [out, in]), so Linear
weights are transposed and everything else is copied; both transforms are their own
inverse, so canonical -> PaddleNLP -> canonical is bit-exact.

Imports numpy and the core only: converting needs no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unified_nlp.architectures import Architecture
from unified_nlp.architectures import get as get_architecture
from unified_nlp.architectures.base import Row as ArchitectureRow

Transform = Callable[[np.ndarray], np.ndarray]
Row = tuple[str, str, Transform]  # (transformers template, PaddleNLP template, transform)


def transpose(x: np.ndarray) -> np.ndarray:
    """torch Linear [out, in] <-> paddle Linear [in, out]."""
    return np.ascontiguousarray(x.T)


def same(x: np.ndarray) -> np.ndarray:
    return x


Names = Mapping[str, tuple[str, Transform]]  # role -> (PaddleNLP template, transform from transformers)
ConfigRow = tuple[str, str, Any]  # (transformers key, PaddleNLP key, transformers' default)

# fmt: off
# PaddleNLP's name for every role of the BERT-like families (BERT, DistilBERT, RoBERTa, XLM-R,
# ELECTRA, ERNIE): the encoder layer is paddle.nn.TransformerEncoderLayer (self_attn.{q,k,v,out}_proj,
# linear1/linear2, norm1/norm2); the heads keep transformers' names.
NAMES: Names = {
    "embeddings.word":               ("{q}embeddings.word_embeddings.weight",       same),
    "embeddings.position":           ("{q}embeddings.position_embeddings.weight",   same),
    "embeddings.token_type":         ("{q}embeddings.token_type_embeddings.weight", same),
    "embeddings.task_type":          ("{q}embeddings.task_type_embeddings.weight",  same),
    "embeddings.norm.weight":        ("{q}embeddings.layer_norm.weight",            same),
    "embeddings.norm.bias":          ("{q}embeddings.layer_norm.bias",              same),
    "projection.weight":             ("{q}embeddings_project.weight",               transpose),
    "projection.bias":               ("{q}embeddings_project.bias",                 same),
    "layer.query.weight":            ("{q}encoder.layers.{i}.self_attn.q_proj.weight",   transpose),
    "layer.query.bias":              ("{q}encoder.layers.{i}.self_attn.q_proj.bias",     same),
    "layer.key.weight":              ("{q}encoder.layers.{i}.self_attn.k_proj.weight",   transpose),
    "layer.key.bias":                ("{q}encoder.layers.{i}.self_attn.k_proj.bias",     same),
    "layer.value.weight":            ("{q}encoder.layers.{i}.self_attn.v_proj.weight",   transpose),
    "layer.value.bias":              ("{q}encoder.layers.{i}.self_attn.v_proj.bias",     same),
    "layer.attention_output.weight": ("{q}encoder.layers.{i}.self_attn.out_proj.weight", transpose),
    "layer.attention_output.bias":   ("{q}encoder.layers.{i}.self_attn.out_proj.bias",   same),
    "layer.attention_norm.weight":   ("{q}encoder.layers.{i}.norm1.weight",              same),
    "layer.attention_norm.bias":     ("{q}encoder.layers.{i}.norm1.bias",                same),
    "layer.intermediate.weight":     ("{q}encoder.layers.{i}.linear1.weight",            transpose),
    "layer.intermediate.bias":       ("{q}encoder.layers.{i}.linear1.bias",              same),
    "layer.output.weight":           ("{q}encoder.layers.{i}.linear2.weight",            transpose),
    "layer.output.bias":             ("{q}encoder.layers.{i}.linear2.bias",              same),
    "layer.output_norm.weight":      ("{q}encoder.layers.{i}.norm2.weight",              same),
    "layer.output_norm.bias":        ("{q}encoder.layers.{i}.norm2.bias",                same),
    "pooler.weight":                 ("{q}pooler.dense.weight",  transpose),  # BertPooler / ErniePooler / RobertaPooler
    "pooler.bias":                   ("{q}pooler.dense.bias",    same),
    "head.classifier.weight":        ("classifier.weight",          transpose),
    "head.classifier.bias":          ("classifier.bias",            same),
    "head.dense.weight":             ("classifier.dense.weight",    transpose),
    "head.dense.bias":               ("classifier.dense.bias",      same),
    "head.out_proj.weight":          ("classifier.out_proj.weight", transpose),
    "head.out_proj.bias":            ("classifier.out_proj.bias",   same),
    "head.pre_classifier.weight":    ("pre_classifier.weight",      transpose),
    "head.pre_classifier.bias":      ("pre_classifier.bias",        same),
}
# The config keys BERT's family shares: transformers key, PaddleNLP key, transformers' default.
BERT_CONFIG: tuple[ConfigRow, ...] = (
    ("vocab_size",                   "vocab_size",                   30522),
    ("hidden_size",                  "hidden_size",                  768),
    ("num_hidden_layers",            "num_hidden_layers",            12),
    ("num_attention_heads",          "num_attention_heads",          12),
    ("intermediate_size",            "intermediate_size",            3072),
    ("hidden_act",                   "hidden_act",                   "gelu"),
    ("hidden_dropout_prob",          "hidden_dropout_prob",          0.1),
    ("attention_probs_dropout_prob", "attention_probs_dropout_prob", 0.1),
    ("max_position_embeddings",      "max_position_embeddings",      512),
    ("type_vocab_size",              "type_vocab_size",              2),
    ("initializer_range",            "initializer_range",            0.02),
    ("layer_norm_eps",               "layer_norm_eps",               1e-12),
    ("pad_token_id",                 "pad_token_id",                 0),
    ("classifier_dropout",           "classifier_dropout",           None),
)
# fmt: on

# Activations that are the same function in transformers and in paddle.nn.functional, which
# paddle.nn.TransformerEncoderLayer looks its activation up in ("gelu" is the exact erf form in both).
ENCODER_ACTIVATIONS = ("gelu", "relu", "silu", "swish")


@dataclass(frozen=True)
class TokenizerClass:
    """A PaddleNLP tokenizer class a family's folders name (tokenizer_config.json's
    tokenizer_class), and what reads the same files in transformers."""

    name: str  # PaddleNLP's class
    transformers_class: str  # transformers' tokenizer class for the same files
    kind: str  # "wordpiece", "bpe" (byte-level) or "sentencepiece", as Architecture.tokenizer
    pair_types: bool = True  # a pair's second text gets token type 1 (RobertaBPETokenizer: 0 throughout)


def position_ids(config: Mapping[str, Any], key: str = "max_position_embeddings") -> np.ndarray:
    """The position_ids buffer both frameworks build: arange(max_positions)[None]."""
    return np.arange(int(config.get(key, 512)), dtype=np.int64)[None, :]


@dataclass(frozen=True)
class Family:
    """How one transformers family runs on PaddleNLP 2.8: its classes, config and tensors."""

    model_type: str  # transformers' model_type (the core's architecture key)
    display: str  # the family's name in messages
    paddle_class: str  # paddlenlp.transformers sequence-classification class
    paddle_base: str  # paddlenlp.transformers bare encoder class (mean-pooling head)
    paddle_config: str  # paddlenlp.transformers config class
    paddle_model_type: str  # PaddleNLP's model_type (XLM-R runs as "roberta")
    paddle_prefix: str  # the encoder's attribute in the PaddleNLP task model
    config: tuple[ConfigRow, ...]
    names: Names = field(default_factory=lambda: NAMES)  # role -> PaddleNLP template, transform
    pooler_in_task: bool = True  # False: the task model builds its encoder without one (RoBERTa)
    paddle_only: Mapping[str, Any] = field(default_factory=dict)  # PaddleNLP config keys transformers lacks
    paddle_buffers: Mapping[str, Callable[[Mapping[str, Any]], np.ndarray]] = field(default_factory=dict)
    activations: tuple[str, ...] = ENCODER_ACTIVATIONS
    # PaddleNLP's tokenizer classes for the family's files, the one an export writes first
    tokenizers: tuple[TokenizerClass, ...] = ()
    # the family whose PaddleNLP classes this one runs on (XLM-R: RoBERTa's); a PaddleNLP
    # folder naming those classes is read as that family, not as this one
    shares_classes_of: str | None = None
    # where PaddleNLP's _init_weights gives every LayerNorm one epsilon whatever the config says (ERNIE)
    paddle_layer_norm_eps: float | None = None
    # the config key whose activation PaddleNLP's dense head applies (ELECTRA's hidden_act), where
    # transformers' head applies the architecture's dense_activation whatever the config says
    head_activation_key: str | None = None
    # the PaddleNLP module whose softmax_with_mask masks with -inf (NaN rows under Paddle Inference):
    # the adapter gives it transformers' finite mask (DeBERTa-v2)
    paddle_masked_softmax: str | None = None
    notes: str = ""

    @property
    def architecture(self) -> Architecture:
        return get_architecture(self.model_type)

    @property
    def tokenizer_class(self) -> str | None:
        """PaddleNLP's tokenizer class an export writes (None: PaddleNLP has none for the family)."""
        return self.tokenizers[0].name if self.tokenizers else None

    def paddle_tokenizer(self, kind: str) -> TokenizerClass | None:
        """The family's PaddleNLP tokenizer class for files of `kind`, or None."""
        return next((t for t in self.tokenizers if t.kind == kind), None)

    @property
    def pooler(self) -> tuple[Row, ...]:
        """The PaddleNLP encoder's pooler: (transformers template, PaddleNLP template, transform)."""
        return self._rows(self.architecture.pooler)

    @property
    def head(self) -> tuple[Row, ...]:
        """The classifier rows of the task model (the pooler left out)."""
        return self._rows(row for row in self.architecture.head_rows if not row[0].startswith("pooler."))

    def _rows(self, rows: Iterable[ArchitectureRow]) -> tuple[Row, ...]:
        """The core's rows (role, transformers template, shape) with PaddleNLP's name for each role."""
        return tuple((hf, *self.names[role]) for role, hf, _ in rows)

    # --- numerics -------------------------------------------------------------

    @property
    def activation_key(self) -> str:
        """The config key of the encoder's activation (DistilBERT's "activation")."""
        return self.architecture.activation[0]

    def epsilon(self, config: Mapping[str, Any]) -> float:
        """The LayerNorm epsilon transformers computes with."""
        return self.architecture.layer_norm_eps(config)

    def paddle_epsilon(self, config: Mapping[str, Any]) -> float:
        """The epsilon a plain PaddleNLP from_pretrained gives its LayerNorms (its _init_weights)."""
        if self.paddle_layer_norm_eps is not None:
            return self.paddle_layer_norm_eps
        return self.epsilon(config)

    def paddle_head_activation(self, config: Mapping[str, Any]) -> str | None:
        """The activation plain PaddleNLP's dense head applies for this config, where it
        follows the config (see head_activation_key); None where it is fixed, as in transformers."""
        if self.head_activation_key is None:
            return None
        defaults = {hf: default for hf, _, default in self.config}
        return config.get(self.head_activation_key, defaults.get(self.head_activation_key))

    def plain_paddlenlp_differences(self, config: Mapping[str, Any]) -> list[str]:
        """Why plain PaddleNLP would compute another function than transformers for this
        config (this adapter corrects each on load); empty when it computes the same."""
        out = []
        if self.paddle_epsilon(config) != self.epsilon(config):
            out.append(
                f"PaddleNLP's {self.paddle_class} uses LayerNorm epsilon {self.paddle_epsilon(config):g}, "
                f"the checkpoint {self.epsilon(config):g}"
            )
        head_act, wanted = self.paddle_head_activation(config), self.architecture.dense_activation
        if head_act is not None and head_act != wanted:
            out.append(
                f"PaddleNLP's {self.paddle_class} head applies {self.head_activation_key} {head_act!r}, "
                f"transformers' {wanted}"
            )
        return out

    # --- tensors --------------------------------------------------------------

    def layer_index(self, i: int, config: Mapping[str, Any]) -> str:
        return str(i)

    def rows(self, config: Mapping[str, Any], *, task: bool = True) -> list[tuple[str, str, Transform]]:
        """Every (transformers name, PaddleNLP name, transform) of the task model (``task``:
        encoder, pooler and classifier, prefixed) or of the bare encoder (no prefixes, no
        classifier). Rows the config leaves out (ERNIE without token types, ELECTRA
        without a projection) are dropped, as the core's architecture table drops them."""
        arch = self.architecture
        p, q = (arch.prefix + ".", self.paddle_prefix + ".") if task else ("", "")
        wanted = set(arch.encoder_shapes(config, prefixed=task))
        layers = arch.dims(config)["layer_count"]
        encoder = self._rows(arch.embeddings + arch.encoder_extra)
        out = [(hf.format(p=p, q=q), pd.format(p=p, q=q), fn) for hf, pd, fn in encoder]
        layer = self._rows(arch.layer)
        for i in range(layers):
            index = self.layer_index(i, config)
            out += [(hf.format(p=p, q=q, i=index), pd.format(p=p, q=q, i=index), fn) for hf, pd, fn in layer]
        out = [row for row in out if row[0] in wanted]
        if self.pooler_in_task or not task:
            out += [(hf.format(p=p, q=q), pd.format(p=p, q=q), fn) for hf, pd, fn in self.pooler]
        if task:
            out += [(hf.format(p=p, q=q), pd.format(p=p, q=q), fn) for hf, pd, fn in self.head]
        return out

    def buffers(self, config: Mapping[str, Any], *, task: bool = True) -> dict[str, np.ndarray]:
        """The PaddleNLP model's buffers that its state dict holds (ALBERT's position_ids)."""
        q = self.paddle_prefix + "." if task else ""
        return {name.format(q=q): build(config) for name, build in self.paddle_buffers.items()}

    # --- config ---------------------------------------------------------------

    def unsupported(self, config: Mapping[str, Any]) -> str | None:
        """Why PaddleNLP's classes cannot compute this config at all, or None."""
        if config.get("position_embedding_type", "absolute") != "absolute":
            return (
                f"position_embedding_type {config['position_embedding_type']!r}; PaddleNLP's "
                f"{self.paddle_class} has absolute positions only"
            )
        act = config.get(self.activation_key, dict((k, d) for k, _, d in self.config).get(self.activation_key))
        if act not in self.activations:
            return (
                f"{self.activation_key} {act!r} has no identical activation in PaddleNLP's {self.paddle_class} "
                f"(supported: {', '.join(self.activations)})"
            )
        return None

    def to_paddle_config(self, config: Mapping[str, Any], *, task: bool = True) -> dict[str, Any]:
        """transformers config.json -> PaddleNLP config.json (every value written out:
        PaddleNLP's own defaults differ, e.g. type_vocab_size 16)."""
        out: dict[str, Any] = {
            "architectures": [self.paddle_class if task else self.paddle_base],
            "model_type": self.paddle_model_type,
        }
        for hf, pd, default in self.config:
            out[pd] = config.get(hf, default)
        out.update(self.paddle_only)
        return out

    def from_paddle_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """PaddleNLP config.json -> transformers config.json (the inverse of to_paddle_config)."""
        arch = self.architecture
        out: dict[str, Any] = {"model_type": self.model_type}
        for hf, pd, default in self.config:
            out[hf] = config.get(pd, default)
        task = self.paddle_class in (config.get("architectures") or [])
        out["architectures"] = [arch.classifier_class if task else arch.encoder_class]
        return out
