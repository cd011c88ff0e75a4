"""RoBERTa on PaddleNLP's RobertaForSequenceClassification / RobertaModel.

PaddleNLP's RobertaEmbeddings numbers positions from pad_token_id + 1 as transformers
does (create_position_ids_from_input_ids); the task model builds its encoder without
a pooler, as transformers; its head is dense + tanh + out_proj on <s>.
"""

from __future__ import annotations

from .base import BERT_CONFIG, Family, TokenizerClass

# RobertaConfig's defaults in transformers where they differ from BERT's
CONFIG = tuple(
    (hf, pd, {"vocab_size": 50265, "pad_token_id": 1}.get(hf, default)) for hf, pd, default in BERT_CONFIG
) + (
    ("bos_token_id", "bos_token_id", 0),
    ("eos_token_id", "eos_token_id", 2),
)

FAMILY = Family(
    model_type="roberta",
    display="RoBERTa",
    paddle_class="RobertaForSequenceClassification",
    paddle_base="RobertaModel",
    paddle_config="RobertaConfig",
    paddle_model_type="roberta",
    paddle_prefix="roberta",
    pooler_in_task=False,
    config=CONFIG,
    tokenizers=(
        TokenizerClass("RobertaBPETokenizer", "RobertaTokenizer", "bpe", pair_types=False),
        # PaddleNLP's Chinese RoBERTa: a WordPiece vocab.txt, read with BERT's settings
        TokenizerClass("RobertaChineseTokenizer", "BertTokenizer", "wordpiece"),
    ),
)
