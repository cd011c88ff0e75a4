"""TensorFlow Hub adapter for unified_nlp.

Models run as TF Hub SavedModels: a text encoder (BERT and MiniLM, DistilBERT,
RoBERTa, XLM-RoBERTa, ELECTRA, ALBERT or ERNIE) following TF Hub's "common
SavedModel APIs for text", loaded with tensorflow_hub, and the architecture's own
classification head in TF ops. Canonical (Hugging Face classifier) folders are
converted once, with one literal weight table per family (weight_map.py), and
cached in the model store. TF Hub SavedModels as users have them (an encoder +
preprocessor pair, a text embedding, a whole Keras classifier) load without any
unified_nlp.json and convert where their weights allow (hub_folders.py, recover.py).

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
