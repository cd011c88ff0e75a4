"""Batching by length, in one place: every caller that runs a model over many texts
(predict, evaluate, compare, the benchmark) sorts by token count first, so each
batch is padded only to its own longest text.

>>> [rows.tolist() for rows in batches_by_length(np.array([3, 9, 5, 9]), 2)]
[[1, 3], [2, 0]]
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def batches_by_length(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Row indices in batches of `batch_size`, longest texts first (stable for ties)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
