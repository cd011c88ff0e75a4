"""The supported encoder families, one module each (found, not listed), keyed by config.json's model_type.

>>> sorted(ARCHITECTURES)
['albert', 'bert', 'distilbert', 'electra', 'ernie', 'roberta', 'xlm-roberta']
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import InvalidModelError
from .base import HEAD_KINDS, SEQUENCE_CLASSIFICATION, Architecture


def _discover() -> dict[str, Architecture]:
    """Every module of this package that holds an ARCHITECTURE, keyed by its model_type:
    a new family is a new module, with no list to edit."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        arch = getattr(importlib.import_module(f"{__name__}.{info.name}"), "ARCHITECTURE", None)
        if isinstance(arch, Architecture):
            found[arch.model_type] = arch
    return found


ARCHITECTURES: dict[str, Architecture] = _discover()
# transformers' class names also identify the family (config.json's "architectures")
BY_CLASS = {a.classifier_class: a for a in ARCHITECTURES.values()} | {
    a.encoder_class: a for a in ARCHITECTURES.values()
}

__all__ = ["ARCHITECTURES", "HEAD_KINDS", "SEQUENCE_CLASSIFICATION", "Architecture", "get"]


def get(model_type: object, source: object = "config.json") -> Architecture:
    """The architecture for a model_type, or an InvalidModelError listing the supported ones.

    >>> get("xlm-roberta").classifier_class
    'XLMRobertaForSequenceClassification'
    """
    arch = ARCHITECTURES.get(model_type) if isinstance(model_type, str) else None
    if arch is None:
        raise InvalidModelError(
            f"{source}: model_type {model_type!r} is not supported; supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return arch
