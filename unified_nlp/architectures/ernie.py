"""ERNIE (1.0/2.0/3.0, as transformers' ErnieModel): BERT's network with optional task-type
embeddings, pooler + classifier, WordPiece (Chinese or English vocabularies)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import BERT_EMBEDDINGS, BERT_LAYER, POOLER_HEAD, Architecture


@dataclass(frozen=True)
class _Ernie(Architecture):
    def encoder_shapes(self, config: Mapping[str, Any], *, prefixed: bool = True) -> dict[str, tuple[int, ...]]:
        out = super().encoder_shapes(config, prefixed=prefixed)
        if config.get("use_task_id"):
            p = self.prefix + "." if prefixed else ""
            tasks = int(config.get("task_type_vocab_size", 3))
            out[f"{p}embeddings.task_type_embeddings.weight"] = (tasks, self.dims(config)["hidden"])
        return out


ARCHITECTURE = _Ernie(
    model_type="ernie",
    classifier_class="ErnieForSequenceClassification",
    encoder_class="ErnieModel",
    prefix="ernie",
    head="pooler",
    tokenizer="wordpiece",
    embeddings=BERT_EMBEDDINGS,
    layer=BERT_LAYER,
    head_rows=POOLER_HEAD,
    optional=(
        "pooler.dense.weight",
        "pooler.dense.bias",
    ),  # an encoder-only checkpoint may have no pooler: the core draws one
)
