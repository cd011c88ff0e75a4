"""The Paddle classes a family names (Family.paddle_class, paddle_base, paddle_config), by name:
this package's own ports first (modernbert.py: PaddleNLP 2.8 has no ModernBERT), then
paddlenlp.transformers (BertForSequenceClassification, RobertaConfig, ...)."""

from __future__ import annotations

from ._framework import paddlenlp_transformers
from .modernbert import classes

_OWN = classes()


def paddlenlp_class(name: str):
    """The class named `name`: ours where PaddleNLP has none, else paddlenlp.transformers'."""
    own = _OWN.get(name)
    return own if own is not None else getattr(paddlenlp_transformers, name)
