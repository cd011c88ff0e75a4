"""BERT (MiniLM included): post-LayerNorm encoder, [CLS] pooler + linear classifier, WordPiece."""

from __future__ import annotations

from .base import BERT_EMBEDDINGS, BERT_LAYER, BERT_POOLER, POOLER_HEAD, SEQUENCE_CLASSIFICATION, Architecture

ARCHITECTURE = Architecture(
    model_type="bert",
    classifier_class="BertForSequenceClassification",
    encoder_class="BertModel",
    prefix="bert",
    head="pooler",
    tokenizer="wordpiece",
    embeddings=BERT_EMBEDDINGS,
    layer=BERT_LAYER,
    pooler=BERT_POOLER,
    heads={SEQUENCE_CLASSIFICATION: POOLER_HEAD},
    # some encoder-only checkpoints (sentence-transformers) have no pooler; transformers draws one
    optional=("pooler.dense.weight", "pooler.dense.bias"),
)
