"""ALBERT on PaddleNLP's AlbertForSequenceClassification / AlbertModel.

Factorised embeddings (embedding_size -> hidden_size through
encoder.embedding_hidden_mapping_in), one set of layer weights per group shared by
its layers, pooler (dense + tanh on [CLS]) + classifier. PaddleNLP names the encoder
``transformer`` in the task model where transformers says ``albert``, and keeps a
position_ids buffer in its state dict. Its activations come from PaddleNLP's ACT2FN,
which has transformers' "gelu_new" (ALBERT's default). PaddleNLP's
_get_name_mappings covers albert_layers.0 only; the table repeats the layer for every
(group, inner layer) as transformers names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import NAMES as BASE_NAMES
from .base import Family, TokenizerClass, position_ids, same, transpose

# fmt: off
# PaddleNLP's names where ALBERT's differ from the BERT-like families': the layer keeps
# transformers' structure (LayerNorm -> layer_norm), the pooler and projection their names.
NAMES = BASE_NAMES | {
    "projection.weight":             ("{q}encoder.embedding_hidden_mapping_in.weight", transpose),
    "projection.bias":               ("{q}encoder.embedding_hidden_mapping_in.bias",   same),
    "layer.query.weight":            ("{q}encoder.albert_layer_groups.{i}.attention.query.weight",       transpose),
    "layer.query.bias":              ("{q}encoder.albert_layer_groups.{i}.attention.query.bias",         same),
    "layer.key.weight":              ("{q}encoder.albert_layer_groups.{i}.attention.key.weight",         transpose),
    "layer.key.bias":                ("{q}encoder.albert_layer_groups.{i}.attention.key.bias",           same),
    "layer.value.weight":            ("{q}encoder.albert_layer_groups.{i}.attention.value.weight",       transpose),
    "layer.value.bias":              ("{q}encoder.albert_layer_groups.{i}.attention.value.bias",         same),
    "layer.attention_output.weight": ("{q}encoder.albert_layer_groups.{i}.attention.dense.weight",       transpose),
    "layer.attention_output.bias":   ("{q}encoder.albert_layer_groups.{i}.attention.dense.bias",         same),
    "layer.attention_norm.weight":   ("{q}encoder.albert_layer_groups.{i}.attention.layer_norm.weight",  same),
    "layer.attention_norm.bias":     ("{q}encoder.albert_layer_groups.{i}.attention.layer_norm.bias",    same),
    "layer.intermediate.weight":     ("{q}encoder.albert_layer_groups.{i}.ffn.weight",                   transpose),
    "layer.intermediate.bias":       ("{q}encoder.albert_layer_groups.{i}.ffn.bias",                     same),
    "layer.output.weight":           ("{q}encoder.albert_layer_groups.{i}.ffn_output.weight",            transpose),
    "layer.output.bias":             ("{q}encoder.albert_layer_groups.{i}.ffn_output.bias",              same),
    "layer.output_norm.weight":      ("{q}encoder.albert_layer_groups.{i}.full_layer_layer_norm.weight", same),
    "layer.output_norm.bias":        ("{q}encoder.albert_layer_groups.{i}.full_layer_layer_norm.bias",   same),
    "pooler.weight":                 ("{q}pooler.weight", transpose),
    "pooler.bias":                   ("{q}pooler.bias",   same),
}
CONFIG = (  # transformers key, PaddleNLP key, transformers' default
    ("vocab_size",                   "vocab_size",                   30000),
    ("embedding_size",               "embedding_size",               128),
    ("hidden_size",                  "hidden_size",                  4096),
    ("num_hidden_layers",            "num_hidden_layers",            12),
    ("num_hidden_groups",            "num_hidden_groups",            1),
    ("inner_group_num",              "inner_group_num",              1),
    ("num_attention_heads",          "num_attention_heads",          64),
    ("intermediate_size",            "intermediate_size",            16384),
    ("hidden_act",                   "hidden_act",                   "gelu_new"),
    ("hidden_dropout_prob",          "hidden_dropout_prob",          0.0),
    ("attention_probs_dropout_prob", "attention_probs_dropout_prob", 0.0),
    ("classifier_dropout_prob",      "classifier_dropout_prob",      0.1),
    ("max_position_embeddings",      "max_position_embeddings",      512),
    ("type_vocab_size",              "type_vocab_size",              2),
    ("initializer_range",            "initializer_range",            0.02),
    ("layer_norm_eps",               "layer_norm_eps",               1e-12),
    ("pad_token_id",                 "pad_token_id",                 0),
    ("bos_token_id",                 "bos_token_id",                 2),
    ("eos_token_id",                 "eos_token_id",                 3),
)
# fmt: on


@dataclass(frozen=True)
class _Albert(Family):
    def layer_index(self, i: int, config: Mapping[str, Any]) -> str:
        inner = int(config.get("inner_group_num", 1))
        return f"{i // inner}.albert_layers.{i % inner}"


FAMILY = _Albert(
    model_type="albert",
    display="ALBERT",
    paddle_class="AlbertForSequenceClassification",
    paddle_base="AlbertModel",
    paddle_config="AlbertConfig",
    paddle_model_type="albert",
    paddle_prefix="transformer",
    names=NAMES,
    config=CONFIG,
    paddle_only={"add_pooling_layer": True},
    paddle_buffers={"{q}embeddings.position_ids": position_ids},
    # the activations of PaddleNLP's ACT2FN that are transformers' ACT2FN functions too
    activations=("gelu", "gelu_new", "relu", "silu", "swish"),
    tokenizers=(TokenizerClass("AlbertEnglishTokenizer", "AlbertTokenizer", "sentencepiece"),),
)
