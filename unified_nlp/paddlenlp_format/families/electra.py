"""ELECTRA (discriminator) on PaddleNLP's ElectraForSequenceClassification / ElectraModel.

BERT's encoder with an embedding projection when embedding_size != hidden_size; the
head is dense + activation + out_proj on [CLS]. transformers' head always uses GELU
(get_activation("gelu")), PaddleNLP's config.hidden_act: the same function for the
usual hidden_act "gelu"; for another this adapter sets GELU on load, and plain
PaddleNLP would differ (the export says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import BERT_CONFIG, Family

_DEFAULTS = {"hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024}
CONFIG = tuple((hf, pd, _DEFAULTS.get(hf, default)) for hf, pd, default in BERT_CONFIG) + (
    ("embedding_size", "embedding_size", 128),
)


@dataclass(frozen=True)
class _Electra(Family):
    def plain_paddlenlp_differences(self, config: Mapping[str, Any]) -> list[str]:
        out = super().plain_paddlenlp_differences(config)
        if config.get("hidden_act", "gelu") != "gelu":
            out.append(
                f"PaddleNLP's ElectraClassificationHead applies hidden_act {config['hidden_act']!r}, transformers' GELU"
            )
        return out


FAMILY = _Electra(
    model_type="electra",
    display="ELECTRA",
    paddle_class="ElectraForSequenceClassification",
    paddle_base="ElectraModel",
    paddle_config="ElectraConfig",
    paddle_model_type="electra",
    paddle_prefix="electra",
    config=CONFIG,
    tokenizer_class="ElectraTokenizer",
)
