"""The families the paddlenlp backend runs, one module each (found, not listed), keyed by transformers'
model_type: on PaddleNLP 2.8's classes, or on the adapter's own Paddle port where PaddleNLP has
none (ModernBERT).

>>> sorted(FAMILIES)
['albert', 'bert', 'deberta-v2', 'distilbert', 'electra', 'ernie', 'modernbert', 'roberta', 'xlm-roberta']
>>> FAMILIES["xlm-roberta"].paddle_class
'RobertaForSequenceClassification'
>>> TOKENIZERS["ErnieTokenizer"].transformers_class
'BertTokenizer'
"""

from __future__ import annotations

from unified_nlp.errors import InvalidModelError

from ...architectures import ARCHITECTURES
from ...architectures.base import ATTENTION_KINDS, discover
from .base import Family, TokenizerClass, same, transpose

FAMILIES: dict[str, Family] = discover(__name__, __path__, "FAMILY", Family)
# every PaddleNLP tokenizer class the families name, by its name
TOKENIZERS: dict[str, TokenizerClass] = {t.name: t for f in FAMILIES.values() for t in f.tokenizers}

__all__ = ["FAMILIES", "TOKENIZERS", "Family", "TokenizerClass", "get", "missing", "same", "transpose"]


def get(model_type: object, source: object = "config.json") -> Family:
    """The family of a model_type, or an InvalidModelError listing the supported ones."""
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        why = missing(model_type)
        raise InvalidModelError(
            f"{source}: model_type {model_type!r} does not run on PaddleNLP here{f' ({why})' if why else ''}; "
            f"supported: {', '.join(sorted(FAMILIES))}"
        )
    return family


def missing(model_type: object) -> str | None:
    """Why a family the other backends run has no PaddleNLP family here, or None (every
    architecture of the core has one now; ModernBERT's runs on the adapter's own port).

    >>> missing("modernbert") is None and missing("gpt2") is None
    True
    """
    arch = ARCHITECTURES.get(model_type) if isinstance(model_type, str) else None
    if arch is None or model_type in FAMILIES:
        return None
    return (
        f"PaddleNLP 2.8 has no counterpart of transformers' {arch.encoder_class}, and its "
        f"{ATTENTION_KINDS[arch.attention]} are not written in Paddle here; run it on another backend"
    )
