"""ERNIE (1.0/2.0/3.0, as transformers' ErnieModel) on PaddleNLP's ErnieForSequenceClassification / ErnieModel.

BERT's network with optional task-type embeddings (transformers feeds task type 0 by
default; PaddleNLP feeds config.task_id, written as 0), pooler + classifier.
PaddleNLP's _init_weights sets every LayerNorm's epsilon to 1e-12 whatever the
config says, so plain PaddleNLP matches transformers only for layer_norm_eps 1e-12;
this adapter sets the checkpoint's epsilon on load. ErniePretrainedModel has no
_get_name_mappings (PaddleNLP cannot convert ERNIE from torch itself): the table
is BERT's under the prefix ``ernie.``, checked against the class's state dict.
"""

from __future__ import annotations

from .base import BERT_CONFIG, Family, TokenizerClass

CONFIG = BERT_CONFIG + (
    ("use_task_id", "use_task_id", False),
    ("task_type_vocab_size", "task_type_vocab_size", 3),
)

FAMILY = Family(
    model_type="ernie",
    display="ERNIE",
    paddle_class="ErnieForSequenceClassification",
    paddle_base="ErnieModel",
    paddle_config="ErnieConfig",
    paddle_model_type="ernie",
    paddle_prefix="ernie",
    config=CONFIG,
    paddle_only={"task_id": 0, "pool_act": "tanh", "fuse": False},
    paddle_layer_norm_eps=1e-12,  # ErniePretrainedModel._init_weights: layer._epsilon = 1e-12
    tokenizers=(TokenizerClass("ErnieTokenizer", "BertTokenizer", "wordpiece"),),
)
