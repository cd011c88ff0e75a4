"""RoBERTa: BERT's encoder, positions offset past the padding id, dense + tanh + out_proj
on <s>, byte-level BPE."""

from __future__ import annotations

from .base import BERT_EMBEDDINGS, BERT_LAYER, BERT_POOLER, DENSE_HEAD, SEQUENCE_CLASSIFICATION, Architecture

ARCHITECTURE = Architecture(
    model_type="roberta",
    classifier_class="RobertaForSequenceClassification",
    encoder_class="RobertaModel",
    prefix="roberta",
    head="dense",
    tokenizer="bpe",
    embeddings=BERT_EMBEDDINGS,
    layer=BERT_LAYER,
    token_types=False,  # transformers' RobertaTokenizer returns no token_type_ids, even for pairs
    pooler=BERT_POOLER,  # RobertaModel has one; the task model does not
    heads={SEQUENCE_CLASSIFICATION: DENSE_HEAD},
    position_offset=True,
    optional=("pooler.dense.weight", "pooler.dense.bias"),
    notes="position ids start at pad_token_id + 1 (transformers' create_position_ids_from_input_ids)",
)
