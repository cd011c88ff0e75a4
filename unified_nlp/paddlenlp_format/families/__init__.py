"""The families PaddleNLP 2.8 runs, one module each, keyed by transformers' model_type.

>>> sorted(FAMILIES)
['albert', 'bert', 'distilbert', 'electra', 'ernie', 'roberta', 'xlm-roberta']
>>> FAMILIES["xlm-roberta"].paddle_class
'RobertaForSequenceClassification'
"""

from __future__ import annotations

from unified_nlp.errors import InvalidModelError

from . import albert, bert, distilbert, electra, ernie, roberta, xlm_roberta
from .base import Family, same, transpose

FAMILIES: dict[str, Family] = {
    m.FAMILY.model_type: m.FAMILY for m in (bert, distilbert, roberta, xlm_roberta, electra, albert, ernie)
}

__all__ = ["FAMILIES", "Family", "get", "same", "transpose"]


def get(model_type: object, source: object = "config.json") -> Family:
    """The family of a model_type, or an InvalidModelError listing the supported ones."""
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise InvalidModelError(
            f"{source}: model_type {model_type!r} does not run on PaddleNLP here; "
            f"supported: {', '.join(sorted(FAMILIES))}"
        )
    return family
