"""The supported encoder families, one module each, keyed by config.json's model_type.

>>> sorted(ARCHITECTURES)
['albert', 'bert', 'distilbert', 'electra', 'ernie', 'roberta', 'xlm-roberta']
"""

from __future__ import annotations

from ..errors import InvalidModelError
from . import albert, bert, distilbert, electra, ernie, roberta, xlm_roberta
from .base import HEAD_KINDS, Architecture

ARCHITECTURES: dict[str, Architecture] = {
    m.ARCHITECTURE.model_type: m.ARCHITECTURE for m in (bert, distilbert, roberta, xlm_roberta, electra, albert, ernie)
}
# transformers' class names also identify the family (config.json's "architectures")
BY_CLASS = {a.classifier_class: a for a in ARCHITECTURES.values()} | {
    a.encoder_class: a for a in ARCHITECTURES.values()
}

__all__ = ["ARCHITECTURES", "HEAD_KINDS", "Architecture", "get"]


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
