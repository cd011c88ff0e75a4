"""One batch of dataset rows in, one batch of prediction columns out: the step that
every engine (local, Ray) runs, so both give the same columns and the same numbers.

Output columns, in order (`output_schema`): the id column (the input's own
`id_column`, else ``row``, the 0-based row number in the input, which the caller
puts in the batch), the input columns kept (`keep_columns`, as they are in the
input), ``label``, ``score`` and one ``prob_<label>`` per label.
Single-label heads: ``label`` is the most probable label, ``score`` its
probability, ``prob_*`` the softmax. Multi-label heads: ``prob_*`` are the
per-label sigmoids, ``label`` is every label whose sigmoid reaches the threshold
(0.5), best first, joined by ``,`` (an empty string when none does), and ``score``
the highest sigmoid.

Bad rows, one rule for every format: a text (or text_pair) with no value (a JSONL
or Parquet null, an empty CSV/TSV cell: CSV and TSV cannot tell an empty cell from
a missing one, so they read it as missing, as pandas and `datasets` do), not a
string, not valid UTF-8 or over `unified_nlp.inputs.MAX_CHARS` characters; and an
id or kept value that is not valid UTF-8 (it could not be written). Empty strings
(``""`` in JSONL or Parquet) are valid texts, as everywhere in the library.
``on_error="raise"`` raises InvalidInputError naming the row's file and line (where
the caller can say them), its id and the reason; ``"skip"`` leaves the row out of
the output and returns it as ``{"id", "line", "reason"}`` (``line`` only where known).

>>> out, bad = classify_rows(clf, {"row": [0, 1], "text": ["great", None]},
...                          text_column="text", on_error="skip")          # doctest: +SKIP
>>> out["label"], bad                                                       # doctest: +SKIP
(['POSITIVE'], [{'id': 1, 'reason': "column 'text' has no value (null, or an empty CSV/TSV cell)"}])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..inputs import MAX_CHARS

ROW_COLUMN = "row"  # the id column when the input has none: the row's 0-based number in the input
THRESHOLD = 0.5  # multi-label: a label is on at or above this sigmoid (as clf.predict's default)
ON_ERROR = ("raise", "skip")
ALL = "all"  # keep_columns="all": every input column
SKIP_HINT = "; on_error='skip' (--on-error skip) writes bad rows to an errors file and goes on"


def prediction_columns(labels: Sequence[str]) -> list[str]:
    """The columns a prediction adds: label, score, prob_<label> per label."""
    return ["label", "score", *(f"prob_{label}" for label in labels)]


def output_schema(labels: Sequence[str], id_column: str | None = None, keep_columns: Sequence[str] = ()) -> list[str]:
    """The output's column names in order: id column, kept input columns, label, score,
    prob_<label> per label. A name given twice is a clear error.

    >>> output_schema(["NEGATIVE", "POSITIVE"])
    ['row', 'label', 'score', 'prob_NEGATIVE', 'prob_POSITIVE']
    >>> output_schema(["NEGATIVE", "POSITIVE"], "id", ["text"])
    ['id', 'text', 'label', 'score', 'prob_NEGATIVE', 'prob_POSITIVE']
    """
    outputs = prediction_columns(labels)
    id_name = id_column or ROW_COLUMN
    if id_name in outputs:
        raise InvalidInputError(
            f"the id column {id_name!r} has the name of an output column; output columns are {outputs}"
        )
    clash = [c for c in keep_columns if c in outputs]
    if clash:
        raise InvalidInputError(
            f"cannot keep the input column {clash[0]!r}: the output has a column of that name "
            f"(output columns: {', '.join(outputs)}); leave it out of keep_columns (--keep-columns) "
            "or rename it in the input"
        )
    return [id_name, *(c for c in dict.fromkeys(keep_columns) if c != id_name), *outputs]


def resolve_keep(
    keep: Any, columns: Sequence[str], *, text_column: str, pair_column: str | None, id_column: str | None
) -> list[str]:
    """The input columns to write beside the predictions: `keep` is None (none: the id
    only), ``"all"`` (every input column) or a list of names, checked against `columns`.

    >>> resolve_keep("all", ["id", "text", "stars"], text_column="text", pair_column=None, id_column="id")
    ['text', 'stars']
    """
    if keep is None:
        return []
    if isinstance(keep, str):
        if keep != ALL:
            raise InvalidInputError(f"keep_columns is a list of column names or 'all', got the string {keep!r}")
        names = list(columns)
    elif isinstance(keep, Sequence) and all(isinstance(c, str) for c in keep):
        names = list(dict.fromkeys(keep))
        missing = [c for c in names if c not in columns]
        if missing:
            raise InvalidInputError(
                f"no column {', '.join(map(repr, missing))} to keep; the input's columns are {list(columns)}"
            )
    else:
        raise InvalidInputError(f"keep_columns is a list of column names or 'all', got {keep!r}")
    names = [c for c in names if c != id_column]  # the id is written first anyway
    if id_column is None and ROW_COLUMN in names:
        raise InvalidInputError(
            f"cannot keep the input column {ROW_COLUMN!r}: without an id column the output's {ROW_COLUMN!r} "
            f"is the row number; make it the id (id_column='{ROW_COLUMN}', --id-column {ROW_COLUMN}) "
            "or leave it out of keep_columns"
        )
    output_schema([], id_column, names)  # label, score: a clear error before any model loads
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


def unicode_reason(value: str, column: str) -> str | None:
    """Why the string `value` cannot be written as UTF-8, or None. The readers hand on
    bytes that are not UTF-8 as lone surrogates U+DC80..U+DCFF (Python's
    surrogateescape), so those name the byte, as ``classify --file`` does."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        code = ord(value[e.start])
        if 0xDC80 <= code <= 0xDCFF:
            return f"column {column!r} is not valid UTF-8 (byte {code - 0xDC00:#x})"
        return f"column {column!r} is not valid Unicode (lone surrogate U+{code:04X} at character {e.start})"
    return None


def bad_reason(value: Any, column: str) -> str | None:
    """Why `value` cannot be classified as text, or None when it can."""
    if value is None:
        return f"column {column!r} has no value (null, or an empty CSV/TSV cell)"
    if not isinstance(value, str):
        kind = type(value).__name__
        if isinstance(value, float) and value != value:
            return f"column {column!r} is NaN (a missing value), expected str"
        return f"column {column!r} is {kind}, expected str"
    if len(value) > MAX_CHARS:
        return f"column {column!r} has {len(value):,} characters, over the limit of {MAX_CHARS:,}"
    return unicode_reason(value, column)


def bad_row(row_id: Any, reason: str, line: int | None = None) -> dict[str, Any]:
    """A bad row as the errors file has it: its id, its line in the input where known, why."""
    return {"id": row_id, "reason": reason} if line is None else {"id": row_id, "line": line, "reason": reason}


def bad_row_error(
    row_id: Any, reason: str, id_column: str | None, source: str | None = None, line: int | None = None
) -> InvalidInputError:
    """The error of ``on_error="raise"``, worded the same by every engine:
    ``reviews.csv:5: row with id='b': column 'text' is not valid UTF-8 (byte 0xe9); ...``."""
    where = f"row with {id_column}={row_id!r}" if id_column else f"row {row_id}"
    if source is not None:
        where = f"{source}:{line}: {where}" if line is not None else f"{source}: {where}"
    return InvalidInputError(f"{where}: {reason}{SKIP_HINT}")


def _labels_and_scores(clf, probs: np.ndarray) -> tuple[list[str], np.ndarray]:
    if len(probs) == 0:
        return [], np.zeros(0, dtype=np.float32)
    if clf.multi_label:
        order = np.argsort(-probs, axis=-1, kind="stable")
        labels = [",".join(clf.labels[j] for j in row if p[j] >= THRESHOLD) for row, p in zip(order, probs)]
        return labels, probs.max(axis=-1)
    best = np.argmax(probs, axis=-1)
    return [clf.labels[j] for j in best], probs[np.arange(len(probs)), best]


def _row_reason(i: int, texts: list, pairs: list | None, names: tuple[str, str | None], written: dict) -> str | None:
    """Why row `i` is bad (its text, its pair, then an id or kept value not valid UTF-8), or None."""
    reason = bad_reason(texts[i], names[0])
    if reason is None and pairs is not None:
        reason = bad_reason(pairs[i], names[1])
    for column, values in written.items():
        if reason is not None:
            break
        if isinstance(values[i], str):
            reason = unicode_reason(values[i], column)
    return reason


def classify_rows(
    clf,
    batch: dict[str, Any],
    *,
    text_column: str,
    pair_column: str | None = None,
    id_column: str | None = None,
    keep_columns: Sequence[str] = (),
    on_error: str = "raise",
    batch_size: int = 32,
    locate: Callable[[int], int | None] | None = None,
    source: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Classify one batch of input columns; return (output columns, bad rows).

    `batch` maps column names to lists, numpy arrays or pyarrow arrays of one
    length; it holds `text_column` (and `pair_column`), the `keep_columns`, and
    `id_column` or, without one, ``row`` (the caller's running row numbers). The
    output maps the names of `output_schema(clf.labels, id_column, keep_columns)` to
    columns: the id, kept values and ``label`` as lists, ``score`` and ``prob_*`` as
    float32 numpy arrays. The forward pass is the classifier's own
    (`clf.predict_proba`, batched by length). `locate(i)`, where given, is the line
    of the batch's row `i` in the file `source`, for the errors.

    >>> out, bad = classify_rows(clf, {"row": [0], "text": ["great"]}, text_column="text")  # doctest: +SKIP
    >>> list(out)                                                                           # doctest: +SKIP
    ['row', 'label', 'score', 'prob_NEGATIVE', 'prob_POSITIVE']
    """
    if on_error not in ON_ERROR:
        raise InvalidInputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    names = output_schema(clf.labels, id_column, keep_columns)
    kept_names = names[1 : len(names) - len(prediction_columns(clf.labels))]
    ids = _column(batch, names[0], "the id column" if id_column else "row numbers")
    texts = _column(batch, text_column, "the text column")
    pairs = _column(batch, pair_column, "the pair column") if pair_column else None
    kept = {c: _column(batch, c, "a kept column") for c in kept_names}
    if any(len(v) != len(ids) for v in [texts, *([pairs] if pairs is not None else []), *kept.values()]):
        raise InvalidInputError("the batch's columns have different lengths")

    keep: list[int] = []
    bad: list[dict[str, Any]] = []
    written = {names[0]: ids, **kept} if id_column else kept
    for i in range(len(texts)):
        reason = _row_reason(i, texts, pairs, (text_column, pair_column), written)
        if reason is None:
            keep.append(i)
            continue
        line = locate(i) if locate is not None else None
        if on_error == "raise":
            raise bad_row_error(ids[i], reason, id_column, source, line)
        bad.append(bad_row(ids[i], reason, line))

    first = [texts[i] for i in keep]
    second = [pairs[i] for i in keep] if pairs is not None else None
    if first:
        probs = clf.predict_proba(first, text_pair=second, batch_size=batch_size)
    else:
        probs = np.zeros((0, len(clf.labels)), dtype=np.float32)
    probs = np.asarray(probs, dtype=np.float32)
    labels, scores = _labels_and_scores(clf, probs)
    out: dict[str, Any] = {names[0]: [ids[i] for i in keep]}
    out.update({c: [values[i] for i in keep] for c, values in kept.items()})
    out.update(label=labels, score=scores.astype(np.float32))
    for j, name in enumerate(prediction_columns(clf.labels)[2:]):
        out[name] = np.ascontiguousarray(probs[:, j])
    return out, bad
