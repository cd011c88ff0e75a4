"""BERT (MiniLM included) on PaddleNLP's BertForSequenceClassification / BertModel.

PaddleNLP's BertModel runs paddle.nn.TransformerEncoder (post-LayerNorm, as BERT) and
BertPooler (dense + tanh on [CLS]); the classifier reads the pooled output, as in
transformers. PaddleNLP's own _get_name_mappings for this class leaves out
``classifier.bias`` (measured with 2.8.1); the table below has it.
"""

from __future__ import annotations

from .base import BERT_CONFIG, Family, TokenizerClass

FAMILY = Family(
    model_type="bert",
    display="BERT",
    paddle_class="BertForSequenceClassification",
    paddle_base="BertModel",
    paddle_config="BertConfig",
    paddle_model_type="bert",
    paddle_prefix="bert",
    config=BERT_CONFIG,
    paddle_only={"pool_act": "tanh", "fuse": False},
    tokenizers=(TokenizerClass("BertTokenizer", "BertTokenizer", "wordpiece"),),
)
