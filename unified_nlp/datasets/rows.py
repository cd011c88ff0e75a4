"""One batch of dataset rows in, one batch of prediction columns out: the step that
every engine (local, Ray) runs, so both give the same columns and the same numbers.

Output columns, in order (`output_schema`): the id column (the input's own
`id_column`, else ``row``, the 0-based row number in the input, which the caller
puts in the batch), ``label``, ``score`` and one ``prob_<label>`` per label.
Single-label heads: ``label`` is the most probable label, ``score`` its
probability, ``prob_*`` the softmax. Multi-label heads: ``prob_*`` are the
per-label sigmoids, ``label`` is every label whose sigmoid reaches the threshold
(0.5), best first, joined by ``,`` (an empty string when none does), and ``score``
the highest sigmoid.

Bad rows: a text (or text_pair) that is None, not a string, not valid Unicode
(a lone surrogate: how the readers hand on bytes that are not UTF-8) or over
`unified_nlp.inputs.MAX_CHARS`. Empty strings are valid texts, as everywhere in
the library. ``on_error="raise"`` raises InvalidInputError naming the row's id;
``"skip"`` leaves the row out of the output and returns it as ``{"id", "reason"}``.

>>> out, bad = classify_rows(clf, {"row": [0, 1], "text": ["great", None]},
...                          text_column="text", on_error="skip")          # doctest: +SKIP
>>> out["label"], bad                                                       # doctest: +SKIP
(['POSITIVE'], [{'id': 1, 'reason': "column 'text' is None"}])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..inputs import MAX_CHARS

ROW_COLUMN = "row"  # the id column when the input has none: the row's 0-based number in the input
THRESHOLD = 0.5  # multi-label: a label is on at or above this sigmoid (as clf.predict's default)
ON_ERROR = ("raise", "skip")


def output_schema(labels: Sequence[str], id_column: str | None = None) -> list[str]:
    """The output's column names in order: id column, label, score, prob_<label> per label.

    >>> output_schema(["NEGATIVE", "POSITIVE"])
    ['row', 'label', 'score', 'prob_NEGATIVE', 'prob_POSITIVE']
    """
    names = [id_column or ROW_COLUMN, "label", "score", *(f"prob_{label}" for label in labels)]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            f"the id column {names[0]!r} has the name of an output column; output columns are {names[1:]}"
        )
    return names


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (ids go to JSON error files)."""
    return value.item() if isinstance(value, np.generic) else value


def _column(batch: dict, name: str, role: str) -> list:
    if name not in batch:
        raise InvalidInputError(f"no column {name!r} ({role}) in the input; its columns are {sorted(batch)}")
    values = batch[name]
    if hasattr(values, "to_pylist"):  # a pyarrow Array or ChunkedArray
        return values.to_pylist()
    return [_plain(v) for v in values]


def bad_reason(value: Any, column: str) -> str | None:
    """Why `value` cannot be classified as text, or None when it can."""
    if value is None:
        return f"column {column!r} is None"
    if not isinstance(value, str):
        kind = type(value).__name__
        if isinstance(value, float) and value != value:
            return f"column {column!r} is NaN (a missing value), expected str"
        return f"column {column!r} is {kind}, expected str"
    if len(value) > MAX_CHARS:
        return f"column {column!r} has {len(value):,} characters, over the limit of {MAX_CHARS:,}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"column {column!r} is not valid UTF-8/Unicode (lone surrogate at character {e.start})"
    return None


def _labels_and_scores(clf, probs: np.ndarray) -> tuple[list[str], np.ndarray]:
    if len(probs) == 0:
        return [], np.zeros(0, dtype=np.float32)
    if clf.multi_label:
        order = np.argsort(-probs, axis=-1, kind="stable")
        labels = [",".join(clf.labels[j] for j in row if p[j] >= THRESHOLD) for row, p in zip(order, probs)]
        return labels, probs.max(axis=-1)
    best = np.argmax(probs, axis=-1)
    return [clf.labels[j] for j in best], probs[np.arange(len(probs)), best]


def classify_rows(
    clf,
    batch: dict[str, Any],
    *,
    text_column: str,
    pair_column: str | None = None,
    id_column: str | None = None,
    on_error: str = "raise",
    batch_size: int = 32,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Classify one batch of input columns; return (output columns, bad rows).

    `batch` maps column names to lists, numpy arrays or pyarrow arrays of one
    length; it holds `text_column` (and `pair_column`), and `id_column` or, without
    one, ``row`` (the caller's running row numbers). The output maps the names of
    `output_schema(clf.labels, id_column)` to columns: the id and ``label`` as
    lists, ``score`` and ``prob_*`` as float32 numpy arrays. The forward pass is
    the classifier's own (`clf.predict_proba`, batched by length).

    >>> out, bad = classify_rows(clf, {"row": [0], "text": ["great"]}, text_column="text")  # doctest: +SKIP
    >>> list(out)                                                                           # doctest: +SKIP
    ['row', 'label', 'score', 'prob_NEGATIVE', 'prob_POSITIVE']
    """
    if on_error not in ON_ERROR:
        raise InvalidInputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    names = output_schema(clf.labels, id_column)
    ids = _column(batch, id_column or ROW_COLUMN, "the id column" if id_column else "row numbers")
    texts = _column(batch, text_column, "the text column")
    pairs = _column(batch, pair_column, "the pair column") if pair_column else None
    if len(texts) != len(ids) or (pairs is not None and len(pairs) != len(ids)):
        raise InvalidInputError("the batch's columns have different lengths")

    keep: list[int] = []
    bad: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        reason = bad_reason(text, text_column)
        if reason is None and pairs is not None:
            reason = bad_reason(pairs[i], pair_column)
        if reason is None:
            keep.append(i)
        elif on_error == "raise":
            hint = "; on_error='skip' (--on-error skip) writes bad rows to an errors file and goes on"
            where = f"row with {id_column}={ids[i]!r}" if id_column else f"row {ids[i]}"
            raise InvalidInputError(f"{where}: {reason}{hint}")
        else:
            bad.append({"id": ids[i], "reason": reason})

    first = [texts[i] for i in keep]
    second = [pairs[i] for i in keep] if pairs is not None else None
    if first:
        probs = clf.predict_proba(first, text_pair=second, batch_size=batch_size)
    else:
        probs = np.zeros((0, len(clf.labels)), dtype=np.float32)
    probs = np.asarray(probs, dtype=np.float32)
    labels, scores = _labels_and_scores(clf, probs)
    out: dict[str, Any] = {names[0]: [ids[i] for i in keep], "label": labels, "score": scores.astype(np.float32)}
    for j, name in enumerate(names[3:]):
        out[name] = np.ascontiguousarray(probs[:, j])
    return out, bad
