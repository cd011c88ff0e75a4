"""The supported encoder families, one module each (found, not listed), keyed by config.json's model_type.

>>> sorted(ARCHITECTURES)
['albert', 'bert', 'deberta-v2', 'distilbert', 'electra', 'ernie', 'modernbert', 'roberta', 'xlm-roberta']
"""

from __future__ import annotations

from ..errors import InvalidModelError
from .base import ATTENTION_KINDS, HEAD_KINDS, SEQUENCE_CLASSIFICATION, Architecture, discover

ARCHITECTURES: dict[str, Architecture] = discover(__name__, __path__, "ARCHITECTURE", Architecture)
# transformers' class names also identify the family (config.json's "architectures")
BY_CLASS = {a.classifier_class: a for a in ARCHITECTURES.values()} | {
    a.encoder_class: a for a in ARCHITECTURES.values()
}

__all__ = ["ARCHITECTURES", "ATTENTION_KINDS", "HEAD_KINDS", "SEQUENCE_CLASSIFICATION", "Architecture", "get"]


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
