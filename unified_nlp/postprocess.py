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


def top_k(
    probs: np.ndarray, labels: Sequence[str], k: int = 1, truncated: np.ndarray | None = None
) -> list[list[Prediction]]:
    """The k most probable labels per row, best first (ties keep label order)."""
    k = max(1, min(int(k), len(labels)))
    flags = truncated if truncated is not None else np.zeros(len(probs), dtype=bool)
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return [
        [Prediction(labels[j], float(row[j]), bool(flag)) for j in idx] for row, idx, flag in zip(probs, order, flags)
    ]


def predictions(probs: np.ndarray, labels: Sequence[str], truncated: np.ndarray | None = None) -> list[Prediction]:
    best = np.argmax(probs, axis=-1)
    flags = truncated if truncated is not None else np.zeros(len(best), dtype=bool)
    return [Prediction(labels[j], float(probs[i, j]), bool(flags[i])) for i, j in enumerate(best)]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function in float64, returned as float32 (multi-label scores).

    >>> sigmoid(np.array([[0.0, 100.0]])).tolist()
    [[0.5, 1.0]]
    """
    z = np.asarray(logits, dtype=np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)  # tanh form: no overflow for large |z|


def multi_label(
    probs: np.ndarray, labels: Sequence[str], threshold: float, truncated: np.ndarray | None = None
) -> list[list[Prediction]]:
    """Every label whose score reaches `threshold`, best first, per row."""
    flags = truncated if truncated is not None else np.zeros(len(probs), dtype=bool)
    out = []
    for i, row in enumerate(probs):
        order = [j for j in np.argsort(-row, kind="stable") if row[j] >= threshold]
        out.append([Prediction(labels[j], float(row[j]), bool(flags[i])) for j in order])
    return out
