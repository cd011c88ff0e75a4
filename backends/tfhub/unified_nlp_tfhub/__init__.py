"""TensorFlow Hub adapter for unified_nlp.

Models run as TF Hub SavedModels: a BERT text encoder and its preprocessor,
following TF Hub's "common SavedModel APIs for text", loaded with
tensorflow_hub. Canonical (Hugging Face style) folders are converted once,
with a literal weight map (weight_map.py), and cached in the model store.

>>> import unified_nlp as un
>>> clf = un.load_classifier("default", backend="tfhub")   # doctest: +SKIP
>>> clf.predict(["This is a great movie!"])                # doctest: +SKIP
[Prediction(label='POSITIVE', score=0.99)]
"""

from __future__ import annotations

from . import _tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS and quiet logging before TensorFlow loads)
from .backend import TFHubBackend
from .converter import export
from .model import TFHubModel
from .tokenizer import TFHubTokenizer

__all__ = ["TFHubBackend", "TFHubModel", "TFHubTokenizer", "export"]
