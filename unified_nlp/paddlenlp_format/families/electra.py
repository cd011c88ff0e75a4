"""ELECTRA (discriminator) on PaddleNLP's ElectraForSequenceClassification / ElectraModel.

BERT's encoder with an embedding projection when embedding_size != hidden_size; the
head is dense + activation + out_proj on [CLS]. transformers' head always uses GELU
(the architecture's dense_activation), PaddleNLP's config.hidden_act
(head_activation_key): the same function for the usual hidden_act "gelu"; for
another this adapter sets GELU on load, and plain PaddleNLP would differ (the export
says so).
"""

from __future__ import annotations

from .base import BERT_CONFIG, Family, TokenizerClass

_DEFAULTS = {"hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024}
CONFIG = tuple((hf, pd, _DEFAULTS.get(hf, default)) for hf, pd, default in BERT_CONFIG) + (
    ("embedding_size", "embedding_size", 128),
)

FAMILY = Family(
    model_type="electra",
    display="ELECTRA",
    paddle_class="ElectraForSequenceClassification",
    paddle_base="ElectraModel",
    paddle_config="ElectraConfig",
    paddle_model_type="electra",
    paddle_prefix="electra",
    config=CONFIG,
    head_activation_key="hidden_act",  # PaddleNLP's ElectraClassificationHead: get_activation(config.hidden_act)
    tokenizers=(TokenizerClass("ElectraTokenizer", "ElectraTokenizer", "wordpiece"),),
)
