"""Where a row of a JSONL, CSV or TSV file is: the 1-based line it starts on, for
error messages and the errors file.

The fast readers (pyarrow's CSV reader, the JSONL loop) do not count lines for every
row, and a quoted CSV cell may hold newlines, so the line of a row is found by
reading the file again, forwards only, when a bad row needs naming: at most one more
pass over the file however many bad rows there are (engines ask in row order).
Rows are counted as the readers count them: blank JSONL lines and empty CSV/TSV
lines are not rows, and a CSV/TSV file's first row is its header.

>>> find = LineFinder(Path("reviews.csv"), "csv")  # doctest: +SKIP
>>> find(0)                                         # doctest: +SKIP
2
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path


def _line_starts(path: Path, fmt: str) -> Iterator[int]:
    """JSONL and TSV: one row per line; JSONL skips blank lines, TSV empty ones (as
    pyarrow does) and its header."""
    header = fmt == "tsv"
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if (not raw.strip()) if fmt == "jsonl" else raw in (b"\n", b"\r\n"):
                continue
            if header:
                header = False
                continue
            yield number


def _csv_starts(path: Path) -> Iterator[int]:
    """CSV: a row may span lines (a quoted newline); Python's csv module tracks them."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        previous, header = 0, True
        try:
            for row in reader:
                start, previous = previous + 1, reader.line_num
                if not row:  # an empty line: pyarrow skips it too
                    continue
                if header:
                    header = False
                    continue
                yield start
        except csv.Error:  # a cell over csv's field size limit (131,072 characters): the line stays unknown
            return


class LineFinder:
    """`finder(position)`: the line where row `position` (0-based, header excluded)
    starts, or None past the end."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._starts: Iterator[int] | None = None
        self._position = -1  # of the last row read from _starts
        self._line: int | None = None  # its line

    def __call__(self, position: int) -> int | None:
        if position == self._position:
            return self._line
        if self._starts is None or position < self._position:  # asked for an earlier row: read again
            self._starts = _csv_starts(self.path) if self.fmt == "csv" else _line_starts(self.path, self.fmt)
            self._position, self._line = -1, None
        for line in self._starts:
            self._position, self._line = self._position + 1, line
            if self._position == position:
                return line
        self._starts, self._position, self._line = None, -1, None
        return None
