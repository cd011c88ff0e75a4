"""DistilBERT on PaddleNLP's DistilBertForSequenceClassification / DistilBertModel.

No token types; pre_classifier + ReLU on [CLS], then the classifier, as in
transformers. transformers' DistilBERT hard-codes LayerNorm epsilon 1e-12 and PaddleNLP's
_init_weights sets the same; its config names (dim, n_layers, activation, ...) map to
PaddleNLP's BERT-style keys.
"""

from __future__ import annotations

from .base import Family, TokenizerClass

# fmt: off
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


FAMILY = Family(
    model_type="distilbert",
    display="DistilBERT",
    paddle_class="DistilBertForSequenceClassification",
    paddle_base="DistilBertModel",
    paddle_config="DistilBertConfig",
    paddle_model_type="distilbert",
    paddle_prefix="distilbert",
    config=CONFIG,
    paddle_only={"layer_norm_eps": 1e-12, "pool_act": "tanh", "fuse": False},
    tokenizers=(TokenizerClass("DistilBertTokenizer", "DistilBertTokenizer", "wordpiece"),),
)
