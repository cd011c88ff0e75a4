"""XLM-RoBERTa: RoBERTa's network and head under the same names, SentencePiece (Unigram)."""

from __future__ import annotations

from dataclasses import replace

from .roberta import ARCHITECTURE as ROBERTA

ARCHITECTURE = replace(
    ROBERTA,
    model_type="xlm-roberta",
    classifier_class="XLMRobertaForSequenceClassification",
    encoder_class="XLMRobertaModel",
    tokenizer="sentencepiece",
)
