"""ALBERT: factorised embeddings, one set of layer weights shared by every layer
(per group), pooler + classifier, SentencePiece."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import BERT_EMBEDDINGS, Architecture

# fmt: off
LAYER = (  # "{i}" is "{group}.albert_layers.{inner}"
    ("{p}encoder.albert_layer_groups.{i}.attention.query.weight",           ("hidden", "hidden")),
    ("{p}encoder.albert_layer_groups.{i}.attention.query.bias",             ("hidden",)),
    ("{p}encoder.albert_layer_groups.{i}.attention.key.weight",             ("hidden", "hidden")),
    ("{p}encoder.albert_layer_groups.{i}.attention.key.bias",               ("hidden",)),
    ("{p}encoder.albert_layer_groups.{i}.attention.value.weight",           ("hidden", "hidden")),
    ("{p}encoder.albert_layer_groups.{i}.attention.value.bias",             ("hidden",)),
    ("{p}encoder.albert_layer_groups.{i}.attention.dense.weight",           ("hidden", "hidden")),
    ("{p}encoder.albert_layer_groups.{i}.attention.dense.bias",             ("hidden",)),
    ("{p}encoder.albert_layer_groups.{i}.attention.LayerNorm.weight",       ("hidden",)),
    ("{p}encoder.albert_layer_groups.{i}.attention.LayerNorm.bias",         ("hidden",)),
    ("{p}encoder.albert_layer_groups.{i}.ffn.weight",                       ("intermediate", "hidden")),
    ("{p}encoder.albert_layer_groups.{i}.ffn.bias",                         ("intermediate",)),
    ("{p}encoder.albert_layer_groups.{i}.ffn_output.weight",                ("hidden", "intermediate")),
    ("{p}encoder.albert_layer_groups.{i}.ffn_output.bias",                  ("hidden",)),
    ("{p}encoder.albert_layer_groups.{i}.full_layer_layer_norm.weight",     ("hidden",)),
    ("{p}encoder.albert_layer_groups.{i}.full_layer_layer_norm.bias",       ("hidden",)),
)
HEAD = (
    ("{p}pooler.weight",  ("hidden", "hidden")),
    ("{p}pooler.bias",    ("hidden",)),
    ("classifier.weight", ("labels", "hidden")),
    ("classifier.bias",   ("labels",)),
)
# fmt: on


@dataclass(frozen=True)
class _Albert(Architecture):
    def layer_count(self, config: Mapping[str, Any], dims: Mapping[str, int]) -> int:
        return int(config.get("num_hidden_groups", 1)) * int(config.get("inner_group_num", 1))

    def layer_name(self, name: str, i: int, config: Mapping[str, Any], p: str) -> str:
        inner = int(config.get("inner_group_num", 1))
        return name.format(p=p, i=f"{i // inner}.albert_layers.{i % inner}")


ARCHITECTURE = _Albert(
    model_type="albert",
    classifier_class="AlbertForSequenceClassification",
    encoder_class="AlbertModel",
    prefix="albert",
    head="pooler",
    tokenizer="sentencepiece",
    embeddings=BERT_EMBEDDINGS,
    encoder_extra=(
        ("{p}encoder.embedding_hidden_mapping_in.weight", ("hidden", "embedding")),
        ("{p}encoder.embedding_hidden_mapping_in.bias", ("hidden",)),
    ),
    layer=LAYER,
    token_types=False,  # transformers' AlbertTokenizer returns no token_type_ids, even for pairs
    head_rows=HEAD,
    optional=("pooler.weight", "pooler.bias"),  # an encoder-only checkpoint may have no pooler: the core draws one
)
