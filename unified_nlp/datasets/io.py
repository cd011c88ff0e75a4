"""Dataset files in and out, streamed in chunks with bounded memory (pyarrow).

Formats, by the file's suffix (or `fmt=`): ``jsonl`` (.jsonl, .ndjson: one JSON
object per line, read line by line), ``csv`` (.csv; quoted cells may hold newlines),
``tsv`` (.tsv: tab-separated, no quoting, as SST-2's files) and ``parquet`` (.parquet,
.pq). CSV/TSV cells are strings (ids keep leading zeros), and an empty cell is a
missing value (None), as a JSONL or Parquet null: CSV cannot tell the two apart (nor
can pandas or `datasets`, which read it the same way). Bytes that are not UTF-8
reach `rows.classify_rows` as lone surrogates, so they become bad rows, named by
their line (`Reader.line`) and byte, not a crash.

Output is written in parts, ``<output>.parts/part-000123.<fmt>``, each one
atomically, then assembled (streamed part by part) into `output`, atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_file
from ..errors import InvalidInputError
from .lines import LineFinder

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
KNOWN = ("jsonl", "csv", "tsv", "parquet")
READ_BLOCK = 1 << 20  # bytes pyarrow's CSV reader parses at once


def file_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format of `path`: `fmt` if given, else from the suffix."""
    if fmt is not None:
        if fmt not in KNOWN:
            raise InvalidInputError(f"unknown format {fmt!r}; known formats: {', '.join(KNOWN)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInputError(
            f"{path}: unknown format {suffix or '(no suffix)'!r}; known suffixes: {', '.join(FORMATS)} "
            "(or name the format: input_format= / --input-format)"
        )
    return FORMATS[suffix]


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        from ..errors import BackendNotInstalledError

        raise BackendNotInstalledError(
            "reading and writing CSV, TSV and Parquet files needs pyarrow: pip install 'unified-nlp[datasets]'"
        ) from None
    import pyarrow as pa

    return pa


def _surrogates(value: Any) -> Any:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


class Reader:
    """One input file: its columns, its row count where cheap to know, its rows in
    chunks of exactly `chunk_rows` (the last one shorter), as dicts of lists, and the
    line each row starts on (`line`)."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], fmt: str | None = None) -> None:
        self.path = Path(path)
        self.fmt = file_format(self.path, fmt)
        self.wanted = list(dict.fromkeys(columns))
        try:
            size = self.path.stat().st_size
            if not self.path.is_file():
                raise IsADirectoryError(f"{self.path} is a folder")
            with open(self.path, "rb") as f:
                f.read(1)
        except OSError as e:
            raise InvalidInputError(f"cannot read {self.path}: {e.strerror or e}") from None
        if size == 0:
            raise InvalidInputError(f"{self.path} is empty (0 bytes): no rows")
        self.columns = self._columns()
        self.read_also([])
        self.line = LineFinder(self.path, self.fmt) if self.fmt != "parquet" else (lambda position: None)

    def read_also(self, columns: Sequence[str]) -> None:
        """Read `columns` too (after the ones given at first); every one must exist."""
        self.wanted = list(dict.fromkeys([*self.wanted, *columns]))
        missing = [c for c in self.wanted if c not in self.columns]
        if missing:
            raise InvalidInputError(
                f"{self.path}: no column {', '.join(map(repr, missing))}; its columns are {self.columns}"
            )

    def identity(self) -> dict[str, Any]:
        """What a resumed run checks the input against."""
        st = self.path.stat()
        return {"path": str(self.path.absolute()), "format": self.fmt, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def _unreadable(self, e: Exception) -> InvalidInputError:
        return InvalidInputError(f"cannot read {self.path} as {self.fmt}: {e}")

    def _columns(self) -> list[str]:
        if self.fmt == "jsonl":
            for _number, record in self._jsonl():
                return list(record)
            raise InvalidInputError(f"{self.path} has no rows (only blank lines)")
        pa = _pyarrow()
        try:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(self.path)
                if meta.metadata.num_rows == 0:
                    raise InvalidInputError(f"{self.path} has no rows")
                return list(meta.schema_arrow.names)
            stream = self._csv(None)
            names = list(stream.schema.names)
            try:
                stream.read_next_batch()
            except StopIteration:
                raise InvalidInputError(f"{self.path} has a header but no rows") from None
            return names
        except pa.ArrowException as e:
            raise self._unreadable(e) from None

    def count(self) -> int | None:
        """Rows in the file: exact for Parquet and JSONL, lines - 1 for CSV/TSV (quoted
        newlines make that an estimate)."""
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).metadata.num_rows
        lines, last = 0, b"\n"
        with open(self.path, "rb") as f:
            while block := f.read(1 << 22):
                lines += block.count(b"\n")
                last = block[-1:]
        lines += last != b"\n"
        return lines if self.fmt == "jsonl" else max(lines - 1, 0)

    def _jsonl(self) -> Iterator[tuple[int, dict]]:
        with open(self.path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8", "surrogateescape"))
                except ValueError as e:
                    raise InvalidInputError(f"{self.path} line {number}: not a JSON object ({e})") from None
                if not isinstance(record, dict):
                    raise InvalidInputError(
                        f"{self.path} line {number}: a JSON {type(record).__name__}, expected an object"
                    )
                yield number, record

    def _csv(self, columns: list[str] | None):
        pa = _pyarrow()
        import pyarrow.csv as pcsv

        tsv = self.fmt == "tsv"
        parse = pcsv.ParseOptions(
            delimiter="\t" if tsv else ",", quote_char=False if tsv else '"', newlines_in_values=not tsv
        )
        convert = pcsv.ConvertOptions(
            include_columns=columns,
            column_types={c: pa.binary() for c in columns} if columns else None,  # decoded here: bad UTF-8 is a bad row
            # an empty cell (quoted or not) is a missing value, as a JSONL null; "NA", "null" stay texts
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        )
        return pcsv.open_csv(
            self.path,
            read_options=pcsv.ReadOptions(block_size=READ_BLOCK),
            parse_options=parse,
            convert_options=convert,
        )

    def _batches(self) -> Iterator[dict[str, list]]:
        pa = _pyarrow()
        try:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                for batch in pq.ParquetFile(self.path).iter_batches(batch_size=8192, columns=self.wanted):
                    yield {c: batch.column(c).to_pylist() for c in self.wanted}
            else:
                for batch in self._csv(self.wanted):
                    yield {c: [_surrogates(v) for v in batch.column(c).to_pylist()] for c in self.wanted}
        except pa.ArrowException as e:
            raise self._unreadable(e) from None

    def _records(self) -> Iterator[dict[str, list]]:
        block: dict[str, list] = {c: [] for c in self.wanted}
        for _, record in self._jsonl():
            for c in self.wanted:
                block[c].append(record.get(c))
            if len(block[self.wanted[0]]) >= 1024:
                yield block
                block = {c: [] for c in self.wanted}
        if block[self.wanted[0]]:
            yield block

    def chunks(self, chunk_rows: int) -> Iterator[tuple[int, dict[str, list]]]:
        """(first row number, columns) for rows [k * chunk_rows, (k + 1) * chunk_rows)."""
        source = self._records() if self.fmt == "jsonl" else self._batches()
        pending: dict[str, list] = {c: [] for c in self.wanted}
        start = 0
        for block in source:
            for c in self.wanted:
                pending[c].extend(block[c])
            while len(pending[self.wanted[0]]) >= chunk_rows:
                yield start, {c: pending[c][:chunk_rows] for c in self.wanted}
                pending = {c: pending[c][chunk_rows:] for c in self.wanted}
                start += chunk_rows
        if pending[self.wanted[0]]:
            yield start, pending


def _table(columns: dict[str, Any], names: Sequence[str], fmt: str, path: Path):
    """The columns as one Arrow table; a column whose values have no one Arrow type (a
    kept JSONL field holding numbers and strings) is a clear error naming it."""
    pa = _pyarrow()
    arrays = {}
    for name in names:
        try:
            arrays[name] = pa.array(columns[name])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InvalidInputError(
                f"cannot write {path.name} as {fmt}: column {name!r} holds values of different types ({e}); "
                "write .jsonl, which keeps them as they are"
            ) from None
    return pa.table(arrays)


def _json_value(value: Any) -> Any:
    """What json.dumps cannot write (dates, decimals, bytes of a Parquet input) as text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _jsonl_lines(columns: dict[str, Any], names: Sequence[str]) -> Iterator[bytes]:
    values = [columns[name].tolist() if isinstance(columns[name], np.ndarray) else columns[name] for name in names]
    for row in zip(*values):
        line = json.dumps(dict(zip(names, row)), ensure_ascii=False, default=_json_value)
        yield (line + "\n").encode("utf-8", "backslashreplace")


def write_part(path: Path, fmt: str, columns: dict[str, Any], names: Sequence[str]) -> None:
    """One part of the output, atomically."""
    if fmt == "jsonl":  # row by row, without Arrow: a kept field may hold values of any JSON type
        with atomic_file(path) as f:
            f.writelines(_jsonl_lines(columns, names))
        return
    table = _table(columns, names, fmt, path)
    with atomic_file(path) as f:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, f)
        else:
            import pyarrow.csv as pcsv

            if fmt == "tsv":  # as read: no quoting (a tab or newline in a value cannot be written)
                options = pcsv.WriteOptions(delimiter="\t", quoting_style="none", quoting_header="none")
            else:
                options = pcsv.WriteOptions()
            try:
                pcsv.write_csv(table, f, options)
            except _pyarrow().ArrowException as e:
                raise InvalidInputError(f"cannot write {path.name} as {fmt}: {e}") from None


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    with atomic_file(path) as f:
        for row in rows:
            f.write(
                (json.dumps(row, ensure_ascii=False, default=_json_value) + "\n").encode("utf-8", "backslashreplace")
            )


def _assemble_parquet(parts: Sequence[Path], f, output: Path) -> None:
    import pyarrow.parquet as pq

    pa = _pyarrow()
    # a part of bad rows only has no rows and untyped (null) columns: it adds nothing and
    # must not set the schema; a kept column all null in one part and typed in another is
    # promoted to the type (null -> string, int -> float), two types is an error
    rows = [pq.ParquetFile(part).metadata.num_rows for part in parts]
    parts = [p for p, n in zip(parts, rows) if n] or list(parts[:1])
    try:
        schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InvalidInputError(
            f"cannot write {output.name} as parquet: a column has one type in some rows and another in others ({e}); "
            "write .jsonl, which keeps them as they are"
        ) from None
    with pq.ParquetWriter(f, schema) as writer:
        for part in parts:
            table = pq.read_table(part)
            writer.write_table(table if table.schema == schema else table.cast(schema))


def assemble(parts: Sequence[Path], fmt: str, output: Path) -> None:
    """Stream the parts, in order, into `output` (atomically), one part in memory at a time."""
    with atomic_file(output) as f:
        if fmt == "parquet":
            _assemble_parquet(parts, f, output)
            return
        for i, part in enumerate(parts):
            with open(part, "rb") as src:
                if fmt != "jsonl" and i > 0:
                    src.readline()  # every CSV part has the header; the output has it once
                while block := src.read(1 << 22):
                    f.write(block)
