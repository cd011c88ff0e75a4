"""TextClassifier: one pipeline, preprocess -> _forward -> postprocess, for every backend.

Only `_forward` touches a framework (through the adapter's Model); validation,
batching by length, softmax and labels are shared numpy code here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import postprocess
from .inputs import check_texts, clean_text
from .models import ENCODER_FILE, HEAD_FILE, SPEC_FILE, TOKENIZER_FILES
from .protocols import Encoding, Model, ModelOutput, Tokenizer
from .weights import atomic_dir, save_file

TOKENIZE_CHUNK = 2048  # texts tokenized at once; bounds memory on huge inputs


class TextClassifier:
    """A tokenizer, a model and a label set, on one backend.

    >>> clf = load_classifier("default", backend="huggingface")  # doctest: +SKIP
    >>> clf.predict(["This is a great movie!"])                 # doctest: +SKIP
    [Prediction(label='POSITIVE', score=0.97)]

    Thread safety: predict, predict_proba and evaluate may be called from many
    threads at once on one classifier (adapters run inference without shared
    mutable state, and the worker proxy serialises its pipe). fit and save must
    not run concurrently with other calls on the same classifier.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        model: Model,
        labels: Sequence[str],
        backend: str,
        source: Path | None = None,
        spec: dict[str, Any] | None = None,
        runs: str = "in-process",
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.labels: tuple[str, ...] = tuple(labels)
        self.backend = backend
        self.source = source
        self.spec = dict(spec or {})
        self.runs = runs

    def __repr__(self) -> str:
        return f"TextClassifier(backend={self.backend!r}, labels={list(self.labels)}, runs={self.runs!r})"

    # --- inference -------------------------------------------------------

    def predict(self, texts: Sequence[str], *, batch_size: int = 32, top_k: int | None = None):
        """Label and probability of the most likely class per text.

        With ``top_k=k`` each item is a list of the k best Predictions instead.
        Text longer than the model's maximum is truncated; ``Prediction.truncated``
        says so.
        """
        probs, truncated = self._probabilities(texts, batch_size)
        if top_k is not None:
            return postprocess.top_k(probs, self.labels, top_k)
        return postprocess.predictions(probs, self.labels, truncated)

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Probabilities, numpy float32 [n_texts, num_labels], rows sum to 1, columns in `labels` order."""
        return self._probabilities(texts, batch_size)[0]

    def logits(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Raw logits [n_texts, num_labels], in input order."""
        return self._run(texts, batch_size)[0]

    def _probabilities(self, texts, batch_size):
        logits, truncated = self._run(texts, batch_size)
        return postprocess.softmax(logits), truncated

    def preprocess(self, texts: Sequence[str]) -> list[str]:
        return [clean_text(t) for t in check_texts(texts)]

    def _run(self, texts: Sequence[str], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        texts = self.preprocess(texts)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        truncated = np.zeros(len(texts), dtype=bool)
        for start in range(0, len(texts), TOKENIZE_CHUNK):
            enc = self.tokenizer(texts[start : start + TOKENIZE_CHUNK])
            truncated[start : start + enc.num_texts] = enc.truncated
            # longest first, so padding is cut to each batch's own longest text
            order = np.argsort(-enc.lengths, kind="stable")
            for b in range(0, len(order), batch_size):
                rows = order[b : b + batch_size]
                logits[start + rows] = self._forward(enc.select(rows)).logits
        return logits, truncated

    def _forward(self, enc: Encoding) -> ModelOutput:
        return self.model(enc)

    # --- training and evaluation ------------------------------------------

    def label_ids(self, labels: Sequence[str | int]) -> np.ndarray:
        """Label names or integer indices to indices into `labels`, validated."""
        from .metrics import label_ids

        return label_ids(labels, self.labels)

    def evaluate(self, texts: Sequence[str], labels: Sequence[str | int], *, batch_size: int = 32) -> dict[str, Any]:
        """Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix.

        >>> clf.evaluate(["great", "awful"], ["POSITIVE", "NEGATIVE"])["accuracy"]  # doctest: +SKIP
        1.0
        """
        from .metrics import classification_report

        y_true = self.label_ids(labels)
        if len(y_true) != len(texts):
            from .errors import InvalidInputError

            raise InvalidInputError(f"{len(texts)} texts but {len(y_true)} labels")
        y_pred = np.argmax(self.logits(texts, batch_size=batch_size), axis=-1)
        return classification_report(y_true, y_pred, self.labels)

    def fit(self, texts: Sequence[str], labels: Sequence[str | int], **options: Any) -> dict[str, Any]:
        """Fine-tune on this backend's framework; see unified_nlp.training.fit for options."""
        from .training import fit

        return fit(self, texts, labels, **options)

    # --- persistence ------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the canonical format (Hugging Face style folder + head + unified_nlp.json),
        atomically: a failure leaves any previous model at `path` intact.

        The folder loads on every backend: ``un.load_classifier(path, backend="tfhub")``.
        """
        if self.source is None or not (self.source / "config.json").is_file():
            from .errors import UnifiedNLPError

            raise UnifiedNLPError("this classifier was not loaded from a folder with config.json; it cannot be saved")
        state = self.model.state_dict()
        head = {"weight": state.pop("head.weight"), "bias": state.pop("head.bias")}
        target = Path(path)
        with atomic_dir(target) as tmp:
            shutil.copy2(self.source / "config.json", tmp / "config.json")
            for name in TOKENIZER_FILES:
                if (self.source / name).is_file():
                    shutil.copy2(self.source / name, tmp / name)
            save_file(state, tmp / ENCODER_FILE, metadata={"format": "pt"})
            save_file(head, tmp / HEAD_FILE)
            spec = {
                "format": "huggingface",
                "architecture": "bert",
                "labels": list(self.labels),
                "pooling": self.spec.get("pooling", "mean"),
                "max_length": int(self.tokenizer.max_length),
                "saved_from": self.backend,
            }
            (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        return target
