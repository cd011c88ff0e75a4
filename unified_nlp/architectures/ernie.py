"""ERNIE (1.0/2.0/3.0, as transformers' ErnieModel): BERT's network with optional task-type
embeddings, pooler + classifier, WordPiece (Chinese or English vocabularies)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import BERT_EMBEDDINGS, BERT_LAYER, BERT_POOLER, POOLER_HEAD, SEQUENCE_CLASSIFICATION, Architecture

# fmt: off
EMBEDDINGS = BERT_EMBEDDINGS + (  # the task-type embeddings are there with use_task_id only
    ("embeddings.task_type", "{p}embeddings.task_type_embeddings.weight", ("tasks", "hidden")),
)
# fmt: on


@dataclass(frozen=True)
class _Ernie(Architecture):
    def dims(self, config: Mapping[str, Any]) -> dict[str, int]:
        out = super().dims(config)
        if config.get("use_task_id"):
            out["tasks"] = int(config.get("task_type_vocab_size", 3))
        return out


ARCHITECTURE = _Ernie(
    model_type="ernie",
    classifier_class="ErnieForSequenceClassification",
    encoder_class="ErnieModel",
    prefix="ernie",
    head="pooler",
    tokenizer="wordpiece",
    embeddings=EMBEDDINGS,
    layer=BERT_LAYER,
    pooler=BERT_POOLER,
    heads={SEQUENCE_CLASSIFICATION: POOLER_HEAD},
    optional=(
        "pooler.dense.weight",
        "pooler.dense.bias",
    ),  # an encoder-only checkpoint may have no pooler: the core draws one
)
