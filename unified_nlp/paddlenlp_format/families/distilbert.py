"""DistilBERT on PaddleNLP's DistilBertForSequenceClassification / DistilBertModel.

No token types; pre_classifier + ReLU on [CLS], then the classifier, as in
transformers. transformers' DistilBERT hard-codes LayerNorm epsilon 1e-12 and PaddleNLP's
_init_weights sets the same; its config names (dim, n_layers, activation, ...) map to
PaddleNLP's BERT-style keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import Family, same, transpose

# fmt: off
EMBEDDINGS = (
    ("{p}embeddings.word_embeddings.weight",     "{q}embeddings.word_embeddings.weight",     same),
    ("{p}embeddings.position_embeddings.weight", "{q}embeddings.position_embeddings.weight", same),
    ("{p}embeddings.LayerNorm.weight",           "{q}embeddings.layer_norm.weight",          same),
    ("{p}embeddings.LayerNorm.bias",             "{q}embeddings.layer_norm.bias",            same),
)
LAYER = (
    ("{p}transformer.layer.{i}.attention.q_lin.weight",   "{q}encoder.layers.{i}.self_attn.q_proj.weight",   transpose),
    ("{p}transformer.layer.{i}.attention.q_lin.bias",     "{q}encoder.layers.{i}.self_attn.q_proj.bias",     same),
    ("{p}transformer.layer.{i}.attention.k_lin.weight",   "{q}encoder.layers.{i}.self_attn.k_proj.weight",   transpose),
    ("{p}transformer.layer.{i}.attention.k_lin.bias",     "{q}encoder.layers.{i}.self_attn.k_proj.bias",     same),
    ("{p}transformer.layer.{i}.attention.v_lin.weight",   "{q}encoder.layers.{i}.self_attn.v_proj.weight",   transpose),
    ("{p}transformer.layer.{i}.attention.v_lin.bias",     "{q}encoder.layers.{i}.self_attn.v_proj.bias",     same),
    ("{p}transformer.layer.{i}.attention.out_lin.weight", "{q}encoder.layers.{i}.self_attn.out_proj.weight", transpose),
    ("{p}transformer.layer.{i}.attention.out_lin.bias",   "{q}encoder.layers.{i}.self_attn.out_proj.bias",   same),
    ("{p}transformer.layer.{i}.sa_layer_norm.weight",     "{q}encoder.layers.{i}.norm1.weight",              same),
    ("{p}transformer.layer.{i}.sa_layer_norm.bias",       "{q}encoder.layers.{i}.norm1.bias",                same),
    ("{p}transformer.layer.{i}.ffn.lin1.weight",          "{q}encoder.layers.{i}.linear1.weight",            transpose),
    ("{p}transformer.layer.{i}.ffn.lin1.bias",            "{q}encoder.layers.{i}.linear1.bias",              same),
    ("{p}transformer.layer.{i}.ffn.lin2.weight",          "{q}encoder.layers.{i}.linear2.weight",            transpose),
    ("{p}transformer.layer.{i}.ffn.lin2.bias",            "{q}encoder.layers.{i}.linear2.bias",              same),
    ("{p}transformer.layer.{i}.output_layer_norm.weight", "{q}encoder.layers.{i}.norm2.weight",              same),
    ("{p}transformer.layer.{i}.output_layer_norm.bias",   "{q}encoder.layers.{i}.norm2.bias",                same),
)
HEAD = (
    ("pre_classifier.weight", "pre_classifier.weight", transpose),
    ("pre_classifier.bias",   "pre_classifier.bias",   same),
    ("classifier.weight",     "classifier.weight",     transpose),
    ("classifier.bias",       "classifier.bias",       same),
)
CONFIG = (  # transformers key, PaddleNLP key, transformers' default
    ("vocab_size",              "vocab_size",                   30522),
    ("dim",                     "hidden_size",                  768),
    ("n_layers",                "num_hidden_layers",            6),
    ("n_heads",                 "num_attention_heads",          12),
    ("hidden_dim",              "intermediate_size",            3072),
    ("activation",              "hidden_act",                   "gelu"),
    ("dropout",                 "hidden_dropout_prob",          0.1),
    ("attention_dropout",       "attention_probs_dropout_prob", 0.1),
    ("seq_classif_dropout",     "classifier_dropout",           0.2),
    ("max_position_embeddings", "max_position_embeddings",      512),
    ("initializer_range",       "initializer_range",            0.02),
    ("pad_token_id",            "pad_token_id",                 0),
)
# fmt: on


@dataclass(frozen=True)
class _DistilBert(Family):
    def epsilon(self, config: Mapping[str, Any]) -> float:
        return 1e-12  # nn.LayerNorm(config.dim, eps=1e-12) in transformers; PaddleNLP's _init_weights agrees


FAMILY = _DistilBert(
    model_type="distilbert",
    display="DistilBERT",
    paddle_class="DistilBertForSequenceClassification",
    paddle_base="DistilBertModel",
    paddle_config="DistilBertConfig",
    paddle_model_type="distilbert",
    paddle_prefix="distilbert",
    embeddings=EMBEDDINGS,
    layer=LAYER,
    head=HEAD,
    config=CONFIG,
    paddle_only={"layer_norm_eps": 1e-12, "pool_act": "tanh", "fuse": False},
    activation_key="activation",
    tokenizer_class="DistilBertTokenizer",
)
