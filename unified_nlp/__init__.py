"""unified_nlp: one Model/Tokenizer protocol in front of four backends (the registry's
list, `unified_nlp.registry.backend_names()`): Hugging Face Transformers (PyTorch),
TF Hub (TensorFlow), PaddleNLP (PaddlePaddle) and ONNX Runtime.

>>> import unified_nlp as un
>>> clf = un.load_classifier("default", backend="huggingface")  # doctest: +SKIP
>>> clf.predict(["This is a great movie!"])                      # doctest: +SKIP
[Prediction(label='POSITIVE', score=0.97)]

Importing this package imports only the standard library and numpy; a
framework is imported when a backend that needs it is first used.
"""

from __future__ import annotations

from .api import convert, inspect_model, load_classifier
from .classifier import TextClassifier
from .datasets.classify import classify_dataset
from .errors import (
    BackendNotInstalledError,
    ConversionError,
    InvalidInputError,
    InvalidModelError,
    ModelNotFoundError,
    NotWritableError,
    ParityError,
    UnifiedNLPError,
    UnknownBackendError,
    WorkerError,
)
from .parity import ParityReport, compare
from .protocols import Encoding, Model, ModelOutput, Prediction, Tokenizer
from .registry import list_backends
from .zero_shot import zero_shot

__version__ = "0.1.0"

inspect = inspect_model  # as the CLI's `unified-nlp inspect`: what a model folder is and where it runs

__all__ = [
    "BackendNotInstalledError",
    "ConversionError",
    "Encoding",
    "InvalidInputError",
    "InvalidModelError",
    "Model",
    "ModelNotFoundError",
    "ModelOutput",
    "NotWritableError",
    "ParityError",
    "ParityReport",
    "Prediction",
    "TextClassifier",
    "Tokenizer",
    "UnifiedNLPError",
    "UnknownBackendError",
    "WorkerError",
    "classify_dataset",
    "compare",
    "convert",
    "inspect",
    "inspect_model",
    "list_backends",
    "load_classifier",
    "zero_shot",
]
