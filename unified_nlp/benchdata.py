"""SST-2 (GLUE) files and the `sentence<TAB>label` TSV format used by the CLI.

SST-2 dev (872 sentences) ships inside the package; SST-2 train (67,349 rows)
lives in the repository at benchmarks/data/sst2/train.tsv.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InvalidInputError, ModelNotFoundError

_ASSETS = Path(__file__).parent / "assets"


def sst2_path(split: str) -> Path:
    """Path of SST-2 'dev' or 'train'; $UNIFIED_NLP_DATA/sst2 wins when set."""
    if split not in ("dev", "train"):
        raise ValueError(f"split must be 'dev' or 'train', got {split!r}")
    candidates = []
    if os.environ.get("UNIFIED_NLP_DATA"):
        candidates.append(Path(os.environ["UNIFIED_NLP_DATA"]) / "sst2" / f"{split}.tsv")
    candidates.append(
        _ASSETS / "sst2-dev.tsv"
        if split == "dev"
        else Path(__file__).parents[1] / "benchmarks" / "data" / "sst2" / "train.tsv"
    )
    candidates.append(Path.cwd() / "benchmarks" / "data" / "sst2" / f"{split}.tsv")
    for path in candidates:
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"SST-2 {split} not found (looked in {', '.join(map(str, candidates))}); set UNIFIED_NLP_DATA"
    )


def _decoded_lines(path: Path) -> list[str]:
    """The file's lines, UTF-8 (a byte-order mark is dropped); errors name the file and line."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InvalidInputError(f"{path}:{line}: not valid UTF-8 (byte {raw[e.start]:#x})") from None


def read_tsv(
    path: str | os.PathLike, label_names: list[str] | None = None, *, pairs: bool = False
) -> tuple[list, list]:
    """Read `sentence<TAB>label` rows, or with ``pairs=True`` `sentence1<TAB>sentence2<TAB>label`
    rows, whose texts come back as (text, text_pair) tuples. A first line whose last
    column is `label` is a header; blank lines are skipped; every row must have exactly
    the expected columns. Labels are returned as ints when they are all integers, else
    as strings. Errors name the file and line; a file without rows is an error.

    >>> texts, labels = read_tsv(sst2_path("dev"))
    >>> len(texts), sorted(set(labels))
    (872, [0, 1])
    """
    texts, labels, _ = read_tsv_lines(path, pairs=pairs)
    return texts, labels


def read_tsv_lines(path: str | os.PathLike, *, pairs: bool = False) -> tuple[list, list, list[int]]:
    """`read_tsv`'s texts and labels, and the line (from 1) each row is on."""
    path = Path(path)
    lines = _decoded_lines(path)
    columns = 3 if pairs else 2
    expected = "sentence1<TAB>sentence2<TAB>label" if pairs else "sentence<TAB>label"
    start = 1 if lines and lines[0].rsplit("\t", 1)[-1].strip().lower() == "label" else 0
    texts, labels, numbers = [], [], []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != columns:
            hint = "" if pairs or len(parts) != 3 else " (sentence pairs: use --pairs)"
            raise InvalidInputError(f"{path}:{number}: expected '{expected}', got {len(parts)} column(s){hint}")
        texts.append((parts[0], parts[1]) if pairs else parts[0])
        labels.append(parts[-1].strip())
        numbers.append(number)
    if not texts:
        raise InvalidInputError(f"{path}: no rows (expected '{expected}' lines)")
    if all(x.lstrip("-").isdigit() for x in labels):
        labels = [int(x) for x in labels]
    return texts, labels, numbers


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """One sentence pair per line, `text<TAB>text_pair` (UTF-8; blank lines skipped); errors name the line."""
    out = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise InvalidInputError(f"{path}:{number}: expected 'text<TAB>text_pair', got {len(parts)} columns")
        out.append((parts[0], parts[1]))
    return out


def read_lines(path: str | os.PathLike) -> list[str]:
    """One text per line (UTF-8, a byte-order mark dropped; invalid bytes are an error naming the line)."""
    return _decoded_lines(Path(path))
