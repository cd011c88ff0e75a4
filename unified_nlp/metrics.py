"""Evaluation metrics in numpy, shared by every backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidInputError


def label_ids(labels: Sequence[str | int], names: Sequence[str]) -> np.ndarray:
    """Label names (from `names`) or integer indices to an int64 index array.

    >>> label_ids(["POSITIVE", 0], ["NEGATIVE", "POSITIVE"]).tolist()
    [1, 0]
    """
    if isinstance(labels, (str, bytes)):
        raise InvalidInputError("labels must be a list, got a single string")
    index = {name: i for i, name in enumerate(names)}
    out = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        if isinstance(label, (bool, np.bool_)):
            raise InvalidInputError(f"label at index {i} is a bool; use a label name or an integer index")
        if isinstance(label, (int, np.integer)):
            if not 0 <= int(label) < len(names):
                raise InvalidInputError(f"label at index {i} is {int(label)}, outside 0..{len(names) - 1}")
            out[i] = int(label)
        elif isinstance(label, str) and label in index:
            out[i] = index[label]
        else:
            raise InvalidInputError(f"label at index {i} is {label!r}; known labels: {list(names)}")
    return out


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion
    matrix (rows: true label, columns: predicted)."""
    k = len(names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / cm.sum(axis=0))
        recall = np.nan_to_num(tp / cm.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    n = len(y_true)
    return {
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(cm[i].sum())}
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm,
        "labels": list(names),
        "n": n,
    }
