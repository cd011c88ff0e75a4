"""Labelled files for `fit` and `evaluate`: texts (or sentence pairs) and their labels,
read by the dataset readers (`io.Reader`), so they take the formats and columns that
``classify --input`` takes.

- ``.csv``, ``.jsonl`` (``.ndjson``), ``.parquet`` (``.pq``): by column names:
  `text_column` (default ``text``), `label_column` (default ``label``) and, for
  sentence pairs, `pair_column` (default ``text_pair`` with ``pairs=True``).
- ``.tsv`` and any other suffix: SST-2's ``sentence<TAB>label`` rows
  (``sentence1<TAB>sentence2<TAB>label`` with ``pairs=True``), header optional, by
  position (`unified_nlp.benchdata.read_tsv`), as before; by column names, as
  ``classify --input`` reads a .tsv, when a column is named or the header has the
  ``text`` column.
- A row is refused, naming the file and line (Parquet: the row), before any model
  loads, by the rule of `classify --input` (`rows.bad_reason`): a text with no value
  (a JSONL or Parquet null, an empty CSV/TSV cell), not a string, not UTF-8, over
  1,000,000 characters; a label with no value. fit has no "skip": every row trains.
- Labels: integers when every label is one (as read_tsv), else names; a JSON or
  Parquet list is a multi-label row's labels (else a comma-separated string).

>>> data = read_labelled("dev.csv", text_column="sentence")  # doctest: +SKIP
>>> data.texts[:1], data.labels[:1], data.where(0)            # doctest: +SKIP
(['a fine film'], [1], 'dev.csv:2')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from . import io
from .rows import bad_reason, unicode_reason

TEXT, LABEL, PAIR = "text", "label", "text_pair"  # the default column names
CHUNK_ROWS = 8192  # rows read at a time


@dataclass(frozen=True)
class Labelled:
    """Texts (or (text, text_pair) tuples) and labels of one file; `line(i)` is row
    `i`'s line in it (None for Parquet)."""

    path: Path
    texts: list
    labels: list
    line: Callable[[int], int | None]

    def where(self, i: int) -> str:
        """Row `i` for a message: ``file:line``, or ``file (row i)`` (Parquet)."""
        line = self.line(i)
        return f"{self.path}:{line}" if line is not None else f"{self.path} (row {i})"

    def head(self, n: int | None) -> Labelled:
        """The first `n` rows (all with None)."""
        return self if not n else Labelled(self.path, self.texts[:n], self.labels[:n], self.line)


def read_labelled(
    path: str | os.PathLike,
    *,
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
    pairs: bool = False,
) -> Labelled:
    """The texts and labels of a labelled file (see the module's notes for the rules)."""
    path = Path(path)
    fmt = io.FORMATS.get(path.suffix.lower(), "tsv")
    named = any(c is not None for c in (text_column, pair_column, label_column))
    if not named and fmt == "tsv" and TEXT not in _header(path):
        from ..benchdata import read_tsv_lines

        texts, labels, lines = read_tsv_lines(path, pairs=pairs)
        for i, text in enumerate(texts):
            for part in text if pairs else [text]:
                if part == "":
                    raise InvalidInputError(f"{path}:{lines[i]}: the text has no value (an empty cell)")
        for i, label in enumerate(labels):
            if label == "":
                raise InvalidInputError(f"{path}:{lines[i]}: the label has no value (an empty cell)")
        return Labelled(path, texts, labels, lines.__getitem__)
    if pair_column is None and pairs:
        pair_column = PAIR
    return _by_names(path, fmt, text_column or TEXT, pair_column, label_column or LABEL)


def read_texts(
    path: str | os.PathLike, *, text_column: str | None = None, pair_column: str | None = None, pairs: bool = False
) -> list:
    """The texts (or (text, text_pair) tuples) of a file whose labels are not needed
    (`compare --texts`): ``.csv``, ``.jsonl``, ``.parquet`` and a ``.tsv`` whose header
    names ``text`` by column names, as `read_labelled`; another ``.tsv`` as SST-2's
    ``sentence<TAB>label`` rows (the label ignored); any other suffix one text per line
    (``text<TAB>text_pair`` with ``pairs=True``). Bad rows are refused as `read_labelled`
    refuses them.

    >>> read_texts("reviews.jsonl", text_column="review")[:1]  # doctest: +SKIP
    ['a fine film']
    """
    from ..benchdata import read_lines, read_pairs, read_tsv

    path = Path(path)
    fmt = io.FORMATS.get(path.suffix.lower())
    named = text_column is not None or pair_column is not None
    if fmt is None and not named:
        return read_pairs(path) if pairs else read_lines(path)
    if fmt in (None, "tsv") and not named and TEXT not in _header(path):
        return read_tsv(path, pairs=pairs)[0]
    if pair_column is None and pairs:
        pair_column = PAIR
    return _by_names(path, fmt or "tsv", text_column or TEXT, pair_column, None).texts


def _header(path: Path) -> list[str]:
    """The first line's tab-separated fields (to tell a header naming `text` from SST-2 rows)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 16)
    except OSError:
        return []  # read_tsv says why
    return [field.strip() for field in first.decode("utf-8-sig", "replace").rstrip("\r\n").split("\t")]


def _by_names(path: Path, fmt: str, text_column: str, pair_column: str | None, label_column: str | None) -> Labelled:
    """By column names; without `label_column`, texts only (labels all None)."""
    columns = [text_column, *([pair_column] if pair_column else []), *([label_column] if label_column else [])]
    try:
        reader = io.Reader(path, columns, fmt)
    except InvalidInputError as e:
        if "no column" not in str(e):
            raise
        raise InvalidInputError(f"{e} (name them with --text-column, --label-column, --pair-column)") from None
    texts, labels = [], []
    for start, chunk in reader.chunks(CHUNK_ROWS):
        for i, text in enumerate(chunk[text_column]):
            reason = bad_reason(text, text_column)
            if reason is None and pair_column:
                reason = bad_reason(chunk[pair_column][i], pair_column)
            label, label_reason = _label(chunk[label_column][i], label_column) if label_column else (None, None)
            reason = reason or label_reason
            if reason is not None:
                line = reader.line(start + i)
                where = f"{path}:{line}" if line is not None else f"{path} (row {start + i})"
                raise InvalidInputError(f"{where}: {reason}")
            texts.append((text, chunk[pair_column][i]) if pair_column else text)
            labels.append(label)
    if label_column and all(
        isinstance(x, str) and x.lstrip("-").isdigit() for x in labels
    ):  # as read_tsv: "0"/"1" are indices
        labels = [int(x) for x in labels]
    return Labelled(path, texts, labels, reader.line)


def _label(value: Any, column: str) -> tuple[Any, str | None]:
    """(the label, None) or (None, why it is not one)."""
    if isinstance(value, float) and value == value and value.is_integer():
        value = int(value)  # a Parquet float column of 0.0 / 1.0
    if isinstance(value, (list, tuple)):  # multi-label: its labels' names
        names = [x.strip() if isinstance(x, str) else x for x in value]
        if all(isinstance(x, str) and x and unicode_reason(x, column) is None for x in names):
            return names, None
        return None, f"column {column!r} is a list of {[type(x).__name__ for x in value]}, expected label names"
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None, f"column {column!r} has no value (an empty label)"
        return value, unicode_reason(value, column)
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    if value is None or (isinstance(value, float) and value != value):
        return None, f"column {column!r} has no value (null, or an empty CSV/TSV cell)"
    return None, f"column {column!r} is {type(value).__name__}, expected a label name or index"
