"""XLM-RoBERTa: PaddleNLP 2.8 has no XLM-R class. XLM-R is RoBERTa's network under
RoBERTa's tensor names (transformers' XLMRobertaForSequenceClassification is a copy of
RobertaForSequenceClassification), so it runs on PaddleNLP's
RobertaForSequenceClassification, with model_type "roberta" in PaddleNLP's config.

PaddleNLP has no XLM-R tokenizer class either: an export writes no PaddleNLP
tokenizer files for it (the canonical tokenizer.json stays beside).
"""

from __future__ import annotations

from dataclasses import replace

from .roberta import FAMILY as ROBERTA

FAMILY = replace(
    ROBERTA, model_type="xlm-roberta", display="XLM-RoBERTa", tokenizers=(), shares_classes_of=ROBERTA.model_type
)
