"""The families PaddleNLP 2.8 runs, one module each (found, not listed), keyed by transformers' model_type.

>>> sorted(FAMILIES)
['albert', 'bert', 'distilbert', 'electra', 'ernie', 'roberta', 'xlm-roberta']
>>> FAMILIES["xlm-roberta"].paddle_class
'RobertaForSequenceClassification'
"""

from __future__ import annotations

import importlib
import pkgutil

from unified_nlp.errors import InvalidModelError

from .base import Family, same, transpose


def _discover() -> dict[str, Family]:
    """Every module of this package that holds a FAMILY, keyed by transformers' model_type:
    a new family is a new module, with no list to edit."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        family = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FAMILY", None)
        if isinstance(family, Family):
            found[family.model_type] = family
    return found


FAMILIES: dict[str, Family] = _discover()

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
