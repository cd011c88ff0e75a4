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


def _per_class(names, precision, recall, f1, support) -> dict[str, dict[str, float]]:
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }


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
        "per_class": _per_class(names, precision, recall, f1, cm.sum(axis=1)),
        "confusion_matrix": cm.tolist(),  # plain lists: the report goes to json.dumps as it is
        "labels": list(names),
        "n": n,
    }


def multi_hot(labels, names: Sequence[str]) -> np.ndarray:
    """Multi-label targets to a float32 0/1 matrix [n, len(names)]: each item is a list
    of label names or indices, or a 0/1 row of len(names).

    >>> multi_hot([["b"], [], ["a", 1]], ["a", "b"]).tolist()
    [[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]]
    """
    if isinstance(labels, (str, bytes)):
        raise InvalidInputError("labels must be a list with one list of labels per text, got a single string")
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        if labels.shape[1] != len(names) or not np.isin(labels, (0, 1)).all():
            raise InvalidInputError(f"a label matrix must be 0/1 of shape [n, {len(names)}], got {labels.shape}")
        return labels.astype(np.float32)
    out = np.zeros((len(labels), len(names)), dtype=np.float32)
    for i, item in enumerate(labels):
        if isinstance(item, (str, bytes)) or not isinstance(item, (list, tuple, set, frozenset, np.ndarray)):
            raise InvalidInputError(
                f"labels at index {i} is {item!r}; a multi-label target is a list of label names, e.g. ['sports']"
            )
        out[i, label_ids(list(item), names)] = 1.0
    return out


def multi_label_report(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Subset accuracy (every label right), micro and macro F1, per-label figures;
    y_true and y_pred are bool [n, num_labels]."""
    tp = (y_true & y_pred).sum(axis=0).astype(np.float64)
    fp = (~y_true & y_pred).sum(axis=0).astype(np.float64)
    fn = (y_true & ~y_pred).sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / (tp + fp))
        recall = np.nan_to_num(tp / (tp + fn))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
        micro = float(np.nan_to_num(2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())))
    n = len(y_true)
    return {
        "accuracy": float((y_true == y_pred).all(axis=1).mean()) if n else float("nan"),
        "micro_f1": micro,
        "macro_f1": float(f1.mean()),
        "per_class": _per_class(names, precision, recall, f1, y_true.sum(axis=0)),
        "labels": list(names),
        "n": n,
    }
