"""DistilBERT: no token types, pre_classifier + ReLU on [CLS] then the classifier, WordPiece."""

from __future__ import annotations

from .base import Architecture

# fmt: off
EMBEDDINGS = (
    ("{p}embeddings.word_embeddings.weight",     ("vocab", "hidden")),
    ("{p}embeddings.position_embeddings.weight", ("positions", "hidden")),
    ("{p}embeddings.LayerNorm.weight",           ("hidden",)),
    ("{p}embeddings.LayerNorm.bias",             ("hidden",)),
)
LAYER = (
    ("{p}transformer.layer.{i}.attention.q_lin.weight",   ("hidden", "hidden")),
    ("{p}transformer.layer.{i}.attention.q_lin.bias",     ("hidden",)),
    ("{p}transformer.layer.{i}.attention.k_lin.weight",   ("hidden", "hidden")),
    ("{p}transformer.layer.{i}.attention.k_lin.bias",     ("hidden",)),
    ("{p}transformer.layer.{i}.attention.v_lin.weight",   ("hidden", "hidden")),
    ("{p}transformer.layer.{i}.attention.v_lin.bias",     ("hidden",)),
    ("{p}transformer.layer.{i}.attention.out_lin.weight", ("hidden", "hidden")),
    ("{p}transformer.layer.{i}.attention.out_lin.bias",   ("hidden",)),
    ("{p}transformer.layer.{i}.sa_layer_norm.weight",     ("hidden",)),
    ("{p}transformer.layer.{i}.sa_layer_norm.bias",       ("hidden",)),
    ("{p}transformer.layer.{i}.ffn.lin1.weight",          ("intermediate", "hidden")),
    ("{p}transformer.layer.{i}.ffn.lin1.bias",            ("intermediate",)),
    ("{p}transformer.layer.{i}.ffn.lin2.weight",          ("hidden", "intermediate")),
    ("{p}transformer.layer.{i}.ffn.lin2.bias",            ("hidden",)),
    ("{p}transformer.layer.{i}.output_layer_norm.weight", ("hidden",)),
    ("{p}transformer.layer.{i}.output_layer_norm.bias",   ("hidden",)),
)
HEAD = (
    ("pre_classifier.weight", ("hidden", "hidden")),
    ("pre_classifier.bias",   ("hidden",)),
    ("classifier.weight",     ("labels", "hidden")),
    ("classifier.bias",       ("labels",)),
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
    head_rows=HEAD,
    keys={"hidden": "dim", "layers": "n_layers", "heads": "n_heads", "intermediate": "hidden_dim", "types": "-"},
    token_types=False,
)
