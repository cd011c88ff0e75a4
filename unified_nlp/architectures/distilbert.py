"""DistilBERT: no token types, pre_classifier + ReLU on [CLS] then the classifier, WordPiece."""

from __future__ import annotations

from .base import SEQUENCE_CLASSIFICATION, Architecture

# fmt: off
EMBEDDINGS = (
    ("embeddings.word",        "{p}embeddings.word_embeddings.weight",     ("vocab", "hidden")),
    ("embeddings.position",    "{p}embeddings.position_embeddings.weight", ("positions", "hidden")),
    ("embeddings.norm.weight", "{p}embeddings.LayerNorm.weight",           ("hidden",)),
    ("embeddings.norm.bias",   "{p}embeddings.LayerNorm.bias",             ("hidden",)),
)
LAYER = (
    ("layer.query.weight",            "{p}transformer.layer.{i}.attention.q_lin.weight",   ("hidden", "hidden")),
    ("layer.query.bias",              "{p}transformer.layer.{i}.attention.q_lin.bias",     ("hidden",)),
    ("layer.key.weight",              "{p}transformer.layer.{i}.attention.k_lin.weight",   ("hidden", "hidden")),
    ("layer.key.bias",                "{p}transformer.layer.{i}.attention.k_lin.bias",     ("hidden",)),
    ("layer.value.weight",            "{p}transformer.layer.{i}.attention.v_lin.weight",   ("hidden", "hidden")),
    ("layer.value.bias",              "{p}transformer.layer.{i}.attention.v_lin.bias",     ("hidden",)),
    ("layer.attention_output.weight", "{p}transformer.layer.{i}.attention.out_lin.weight", ("hidden", "hidden")),
    ("layer.attention_output.bias",   "{p}transformer.layer.{i}.attention.out_lin.bias",   ("hidden",)),
    ("layer.attention_norm.weight",   "{p}transformer.layer.{i}.sa_layer_norm.weight",     ("hidden",)),
    ("layer.attention_norm.bias",     "{p}transformer.layer.{i}.sa_layer_norm.bias",       ("hidden",)),
    ("layer.intermediate.weight",     "{p}transformer.layer.{i}.ffn.lin1.weight",          ("intermediate", "hidden")),
    ("layer.intermediate.bias",       "{p}transformer.layer.{i}.ffn.lin1.bias",            ("intermediate",)),
    ("layer.output.weight",           "{p}transformer.layer.{i}.ffn.lin2.weight",          ("hidden", "intermediate")),
    ("layer.output.bias",             "{p}transformer.layer.{i}.ffn.lin2.bias",            ("hidden",)),
    ("layer.output_norm.weight",      "{p}transformer.layer.{i}.output_layer_norm.weight", ("hidden",)),
    ("layer.output_norm.bias",        "{p}transformer.layer.{i}.output_layer_norm.bias",   ("hidden",)),
)
HEAD = (
    ("head.pre_classifier.weight", "pre_classifier.weight", ("hidden", "hidden")),
    ("head.pre_classifier.bias",   "pre_classifier.bias",   ("hidden",)),
    ("head.classifier.weight",     "classifier.weight",     ("labels", "hidden")),
    ("head.classifier.bias",       "classifier.bias",       ("labels",)),
)
# fmt: on

ARCHITECTURE = Architecture(
    model_type="distilbert",
    classifier_class="DistilBertForSequenceClassification",
    encoder_class="DistilBertModel",
    prefix="distilbert",
    head="pre_classifier",
    tokenizer="wordpiece",
    embeddings=EMBEDDINGS,
    layer=LAYER,
    heads={SEQUENCE_CLASSIFICATION: HEAD},
    keys={"hidden": "dim", "layers": "n_layers", "heads": "n_heads", "intermediate": "hidden_dim", "types": "-"},
    token_types=False,
    activation=("activation", "gelu"),
    fixed_layer_norm_eps=1e-12,  # nn.LayerNorm(config.dim, eps=1e-12) in transformers
)
