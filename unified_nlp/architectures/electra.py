"""ELECTRA (discriminator): BERT's encoder with an embedding projection when
embedding_size != hidden_size, dense + GELU + out_proj on [CLS], WordPiece."""

from __future__ import annotations

from .base import BERT_EMBEDDINGS, BERT_LAYER, DENSE_HEAD, SEQUENCE_CLASSIFICATION, Architecture

ARCHITECTURE = Architecture(
    model_type="electra",
    classifier_class="ElectraForSequenceClassification",
    encoder_class="ElectraModel",
    prefix="electra",
    head="dense",
    tokenizer="wordpiece",
    embeddings=BERT_EMBEDDINGS,
    encoder_extra=(
        ("projection.weight", "{p}embeddings_project.weight", ("hidden", "embedding")),
        ("projection.bias", "{p}embeddings_project.bias", ("hidden",)),
    ),
    layer=BERT_LAYER,
    heads={SEQUENCE_CLASSIFICATION: DENSE_HEAD},
    dense_activation="gelu",  # transformers' ElectraClassificationHead: exact (erf) GELU
)
