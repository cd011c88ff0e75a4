"""What every family table declares, and the rows the BERT-like families share.

A family module (bert.py, roberta.py, ...) holds one `Family`: the PaddleNLP 2.8
classes that run it, the config mapping (transformers key -> PaddleNLP key, with
transformers' default), and one literal line per tensor family: the transformers
name, the PaddleNLP name and the transform between them. In the templates ``{p}``
is the encoder's prefix in transformers (``bert.`` in BertForSequenceClassification,
empty in a bare BertModel), ``{q}`` the same in PaddleNLP (``bert.``; ALBERT's
``transformer.``), ``{i}`` the layer.

PaddleNLP stores every Linear weight as [in, out] (torch: [out, in]), so Linear
weights are transposed and everything else is copied; both transforms are their own
inverse, so canonical -> PaddleNLP -> canonical is bit-exact.

Imports numpy and the core only: converting needs no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unified_nlp.architectures import Architecture
from unified_nlp.architectures import get as get_architecture

Transform = Callable[[np.ndarray], np.ndarray]


def transpose(x: np.ndarray) -> np.ndarray:
    """torch Linear [out, in] <-> paddle Linear [in, out]."""
    return np.ascontiguousarray(x.T)


def same(x: np.ndarray) -> np.ndarray:
    return x


Row = tuple[str, str, Transform]  # (transformers template, PaddleNLP template, transform)
ConfigRow = tuple[str, str, Any]  # (transformers key, PaddleNLP key, transformers' default)

# fmt: off
# The BERT encoder layer (BERT, RoBERTa, XLM-R, ELECTRA, ERNIE): PaddleNLP builds it from
# paddle.nn.TransformerEncoderLayer (self_attn.{q,k,v,out}_proj, linear1/linear2, norm1/norm2).
BERT_LAYER: tuple[Row, ...] = (
    ("{p}encoder.layer.{i}.attention.self.query.weight",       "{q}encoder.layers.{i}.self_attn.q_proj.weight",   transpose),
    ("{p}encoder.layer.{i}.attention.self.query.bias",         "{q}encoder.layers.{i}.self_attn.q_proj.bias",     same),
    ("{p}encoder.layer.{i}.attention.self.key.weight",         "{q}encoder.layers.{i}.self_attn.k_proj.weight",   transpose),
    ("{p}encoder.layer.{i}.attention.self.key.bias",           "{q}encoder.layers.{i}.self_attn.k_proj.bias",     same),
    ("{p}encoder.layer.{i}.attention.self.value.weight",       "{q}encoder.layers.{i}.self_attn.v_proj.weight",   transpose),
    ("{p}encoder.layer.{i}.attention.self.value.bias",         "{q}encoder.layers.{i}.self_attn.v_proj.bias",     same),
    ("{p}encoder.layer.{i}.attention.output.dense.weight",     "{q}encoder.layers.{i}.self_attn.out_proj.weight", transpose),
    ("{p}encoder.layer.{i}.attention.output.dense.bias",       "{q}encoder.layers.{i}.self_attn.out_proj.bias",   same),
    ("{p}encoder.layer.{i}.attention.output.LayerNorm.weight", "{q}encoder.layers.{i}.norm1.weight",              same),
    ("{p}encoder.layer.{i}.attention.output.LayerNorm.bias",   "{q}encoder.layers.{i}.norm1.bias",                same),
    ("{p}encoder.layer.{i}.intermediate.dense.weight",         "{q}encoder.layers.{i}.linear1.weight",            transpose),
    ("{p}encoder.layer.{i}.intermediate.dense.bias",           "{q}encoder.layers.{i}.linear1.bias",              same),
    ("{p}encoder.layer.{i}.output.dense.weight",               "{q}encoder.layers.{i}.linear2.weight",            transpose),
    ("{p}encoder.layer.{i}.output.dense.bias",                 "{q}encoder.layers.{i}.linear2.bias",              same),
    ("{p}encoder.layer.{i}.output.LayerNorm.weight",           "{q}encoder.layers.{i}.norm2.weight",              same),
    ("{p}encoder.layer.{i}.output.LayerNorm.bias",             "{q}encoder.layers.{i}.norm2.bias",                same),
)
BERT_EMBEDDINGS: tuple[Row, ...] = (
    ("{p}embeddings.word_embeddings.weight",       "{q}embeddings.word_embeddings.weight",       same),
    ("{p}embeddings.position_embeddings.weight",   "{q}embeddings.position_embeddings.weight",   same),
    ("{p}embeddings.token_type_embeddings.weight", "{q}embeddings.token_type_embeddings.weight", same),
    ("{p}embeddings.LayerNorm.weight",             "{q}embeddings.layer_norm.weight",            same),
    ("{p}embeddings.LayerNorm.bias",               "{q}embeddings.layer_norm.bias",              same),
)
BERT_POOLER: tuple[Row, ...] = (  # BertPooler / ErniePooler: dense + tanh on the first token
    ("{p}pooler.dense.weight", "{q}pooler.dense.weight", transpose),
    ("{p}pooler.dense.bias",   "{q}pooler.dense.bias",   same),
)
LINEAR_HEAD: tuple[Row, ...] = (  # BERT, ALBERT, ERNIE: dropout + classifier on the pooled output
    ("classifier.weight", "classifier.weight", transpose),
    ("classifier.bias",   "classifier.bias",   same),
)
DENSE_HEAD: tuple[Row, ...] = (  # RoBERTa, XLM-R, ELECTRA: dense + activation + out_proj on the first token
    ("classifier.dense.weight",    "classifier.dense.weight",    transpose),
    ("classifier.dense.bias",      "classifier.dense.bias",      same),
    ("classifier.out_proj.weight", "classifier.out_proj.weight", transpose),
    ("classifier.out_proj.bias",   "classifier.out_proj.bias",   same),
)
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
    embeddings: tuple[Row, ...]
    layer: tuple[Row, ...]
    config: tuple[ConfigRow, ...]
    extra: tuple[Row, ...] = ()  # encoder rows outside the repeated layer (projections)
    pooler: tuple[Row, ...] = ()  # the PaddleNLP encoder's pooler
    pooler_in_task: bool = True  # False: the task model builds its encoder without one (RoBERTa)
    head: tuple[Row, ...] = ()  # the classifier rows of the task model
    paddle_only: Mapping[str, Any] = field(default_factory=dict)  # PaddleNLP config keys transformers lacks
    paddle_buffers: Mapping[str, Callable[[Mapping[str, Any]], np.ndarray]] = field(default_factory=dict)
    activation_key: str = "hidden_act"
    activations: tuple[str, ...] = ENCODER_ACTIVATIONS
    tokenizer_class: str | None = None  # PaddleNLP's tokenizer class for the family's tokenizer files
    notes: str = ""

    @property
    def architecture(self) -> Architecture:
        return get_architecture(self.model_type)

    # --- numerics -------------------------------------------------------------

    def epsilon(self, config: Mapping[str, Any]) -> float:
        """The LayerNorm epsilon transformers computes with."""
        return float(config.get("layer_norm_eps", 1e-12))

    def paddle_epsilon(self, config: Mapping[str, Any]) -> float:
        """The epsilon a plain PaddleNLP from_pretrained gives its LayerNorms (its _init_weights)."""
        return self.epsilon(config)

    def plain_paddlenlp_differences(self, config: Mapping[str, Any]) -> list[str]:
        """Why plain PaddleNLP would compute another function than transformers for this
        config (this adapter corrects each on load); empty when it computes the same."""
        out = []
        if self.paddle_epsilon(config) != self.epsilon(config):
            out.append(
                f"PaddleNLP's {self.paddle_class} uses LayerNorm epsilon {self.paddle_epsilon(config):g}, "
                f"the checkpoint {self.epsilon(config):g}"
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
        out = [(hf.format(p=p, q=q), pd.format(p=p, q=q), fn) for hf, pd, fn in self.embeddings + self.extra]
        for i in range(layers):
            index = self.layer_index(i, config)
            out += [(hf.format(p=p, q=q, i=index), pd.format(p=p, q=q, i=index), fn) for hf, pd, fn in self.layer]
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
