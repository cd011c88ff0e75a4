"""Post-processing done once, in numpy, for every backend: identical logits give
identical predictions whatever framework produced them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .protocols import Prediction


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, returned as float32 rows that sum to 1.

    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def top_k(probs: np.ndarray, labels: Sequence[str], k: int = 1) -> list[list[Prediction]]:
    """The k most probable labels per row, best first (ties keep label order)."""
    k = max(1, min(int(k), len(labels)))
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return [[Prediction(labels[j], float(row[j])) for j in idx] for row, idx in zip(probs, order)]


def predictions(probs: np.ndarray, labels: Sequence[str], truncated: np.ndarray | None = None) -> list[Prediction]:
    best = np.argmax(probs, axis=-1)
    flags = truncated if truncated is not None else np.zeros(len(best), dtype=bool)
    return [Prediction(labels[j], float(probs[i, j]), bool(flags[i])) for i, j in enumerate(best)]
