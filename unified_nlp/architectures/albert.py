"""ALBERT: factorised embeddings, one set of layer weights shared by every layer
(per group), pooler + classifier, SentencePiece."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import BERT_EMBEDDINGS, LINEAR_HEAD, SEQUENCE_CLASSIFICATION, Architecture

# fmt: off
LAYER = (  # "{i}" is "{group}.albert_layers.{inner}"
    ("layer.query.weight",            "{p}encoder.albert_layer_groups.{i}.attention.query.weight",       ("hidden", "hidden")),
    ("layer.query.bias",              "{p}encoder.albert_layer_groups.{i}.attention.query.bias",         ("hidden",)),
    ("layer.key.weight",              "{p}encoder.albert_layer_groups.{i}.attention.key.weight",         ("hidden", "hidden")),
    ("layer.key.bias",                "{p}encoder.albert_layer_groups.{i}.attention.key.bias",           ("hidden",)),
    ("layer.value.weight",            "{p}encoder.albert_layer_groups.{i}.attention.value.weight",       ("hidden", "hidden")),
    ("layer.value.bias",              "{p}encoder.albert_layer_groups.{i}.attention.value.bias",         ("hidden",)),
    ("layer.attention_output.weight", "{p}encoder.albert_layer_groups.{i}.attention.dense.weight",       ("hidden", "hidden")),
    ("layer.attention_output.bias",   "{p}encoder.albert_layer_groups.{i}.attention.dense.bias",         ("hidden",)),
    ("layer.attention_norm.weight",   "{p}encoder.albert_layer_groups.{i}.attention.LayerNorm.weight",   ("hidden",)),
    ("layer.attention_norm.bias",     "{p}encoder.albert_layer_groups.{i}.attention.LayerNorm.bias",     ("hidden",)),
    ("layer.intermediate.weight",     "{p}encoder.albert_layer_groups.{i}.ffn.weight",                   ("intermediate", "hidden")),
    ("layer.intermediate.bias",       "{p}encoder.albert_layer_groups.{i}.ffn.bias",                     ("intermediate",)),
    ("layer.output.weight",           "{p}encoder.albert_layer_groups.{i}.ffn_output.weight",            ("hidden", "intermediate")),
    ("layer.output.bias",             "{p}encoder.albert_layer_groups.{i}.ffn_output.bias",              ("hidden",)),
    ("layer.output_norm.weight",      "{p}encoder.albert_layer_groups.{i}.full_layer_layer_norm.weight", ("hidden",)),
    ("layer.output_norm.bias",        "{p}encoder.albert_layer_groups.{i}.full_layer_layer_norm.bias",   ("hidden",)),
)
PROJECTION = (  # always there, even when embedding_size == hidden_size
    ("projection.weight", "{p}encoder.embedding_hidden_mapping_in.weight", ("hidden", "embedding")),
    ("projection.bias",   "{p}encoder.embedding_hidden_mapping_in.bias",   ("hidden",)),
)
POOLER = (
    ("pooler.weight", "{p}pooler.weight", ("hidden", "hidden")),
    ("pooler.bias",   "{p}pooler.bias",   ("hidden",)),
)
# fmt: on


@dataclass(frozen=True)
class _Albert(Architecture):
    def layer_count(self, config: Mapping[str, Any], dims: Mapping[str, int]) -> int:
        return int(config.get("num_hidden_groups", 1)) * int(config.get("inner_group_num", 1))

    def layer_name(self, name: str, i: int, config: Mapping[str, Any], p: str) -> str:
        inner = int(config.get("inner_group_num", 1))
        return name.format(p=p, i=f"{i // inner}.albert_layers.{i % inner}")

    def layer_schedule(self, config: Mapping[str, Any]) -> tuple[int, ...]:
        layers = self.dims(config)["layers"]
        groups, inner = int(config.get("num_hidden_groups", 1)), int(config.get("inner_group_num", 1))
        # as transformers' AlbertTransformer: step i runs every layer of group int(i / (layers / groups))
        return tuple(int(i / (layers / groups)) * inner + k for i in range(layers) for k in range(inner))


ARCHITECTURE = _Albert(
    model_type="albert",
    classifier_class="AlbertForSequenceClassification",
    encoder_class="AlbertModel",
    prefix="albert",
    head="pooler",
    tokenizer="sentencepiece",
    embeddings=BERT_EMBEDDINGS,
    encoder_extra=PROJECTION,
    layer=LAYER,
    activation=("hidden_act", "gelu_new"),
    token_types=False,  # transformers' AlbertTokenizer returns no token_type_ids, even for pairs
    pooler=POOLER,
    heads={SEQUENCE_CLASSIFICATION: POOLER + LINEAR_HEAD},
    optional=("pooler.weight", "pooler.bias"),  # an encoder-only checkpoint may have no pooler: the core draws one
)
