"""Every table of figures in the README comes from a results file that a committed script wrote.

The link: an HTML comment on the line right above the table (blank lines between them allowed),

    <!-- figures: benchmarks/results/precision/results.json -->

naming one or more results files (comma-separated) relative to the repository root.

Which tables need one (README.md and the pages under docs/): every markdown table with a *figure cell*: a body cell
(not the header row, not the first column, which names the row) whose text, with
`code spans` removed, starts with a number. Version numbers in prose cells ("torch 2.13")
and option defaults in code spans do not start a cell, so the tables of set-up, backends
and options need none. A table of figures with no results file behind it is listed in
NOT_MEASURED with the reason; the list is meant to shrink.

Which numbers are checked, in every marked table (those pages and benchmarks/README.md): every
number in a body cell outside the first column and outside code spans, counts and sizes of
the input included (872, 12,000, 375 steps are in their results files too). Header cells
(units, column names, "of 160") are not checked. A number printed with k decimals must be
within half a unit of its last digit of some number in the results files (JSON numbers at
any depth, lists included): `0.8119` matches 0.81192660, `311` matches 310.6, `9.9e-08`
matches 9.93e-08 at its own exponent; a percentage matches 100 times a number
(`51.5%` matches 0.5149); a ratio (`1.27x`) matches a number of the file or the ratio of
two other figures of its table (260.2 / 204.1). Anything else fails: a figure typed by
hand, copied from another run, or edited after the run. Not seen: a figure that matches
another number of its file (two cells swapped, a digit changed into a neighbour recorded
elsewhere): the check is per file, not per row. Changing the last digit of each figure
by 3, one at a time, was caught for 328 of 449 figures of the README on 2026-12-07.

Provenance: every results file a marker names records the command that wrote it, the date,
the CPU and the load average (benchmarks/recorded.py's `provenance()` writes them). Files
written before the scripts recorded all four are listed in RECORDED_WITHOUT with what they
lack; the test checks that they still lack it, so a re-run must take them off the list.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from .conftest import REPO

# the pages whose tables of figures must be marked, and those whose marked tables are checked
PAGES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("**/*.md"))]
DOCS = [*PAGES, "benchmarks/README.md"]
MARKER = re.compile(r"^\s*<!--\s*figures:\s*(?P<files>[^>]*?)\s*-->\s*$")
# a number as printed in a cell: sign, thousands commas, decimals, exponent, then % or x
NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-+]?)(?P<digits>\d[\d,]*(?:\.\d+)?)(?:e(?P<exp>[-+]?\d+))?(?P<unit>%|x)?(?![\w])"
)
CODE = re.compile(r"`[^`]*`")

# tables of figures with no results file, by the section heading they sit under
NOT_MEASURED = {
    "The model store": "folder sizes and a conversion time written from `unified-nlp cache list` by hand; "
    "no script records them yet",
}

# results files written before their scripts recorded all of command, date, cpu and load:
# file -> the fields it lacks (and what else is known of it)
RECORDED_WITHOUT = {
    "benchmarks/results/precision/results.json": ("command", "cpu", "load"),
    "benchmarks/results/cold-start/results.json": ("command", "cpu", "load"),
    "benchmarks/results/finetune/results.json": ("cpu", "load"),
    "benchmarks/results/finetune-minilm-cls/results.json": ("cpu", "load"),
    "benchmarks/results/fit/results.json": ("cpu", "load"),
    # its "command" was added by hand after the run
    "benchmarks/results/soak/soak.json": ("cpu", "load"),
    "benchmarks/results/datasets/memory-tiny.json": ("command", "cpu", "load"),
    # 4 sittings merged in one file; each sitting's load is recorded, not its date, command or CPU
    "benchmarks/results/datasets/scale.json": ("command", "date", "cpu"),
}

PROVENANCE = {
    "command": lambda key: key == "command",
    "date": lambda key: key in ("date", "created", "when"),
    "cpu": lambda key: key in ("cpu", "cpu_model"),
    "load": lambda key: (
        key.startswith("load_average") or key in ("load_before", "load_after", "load_start", "load_end")
    ),
}


def tables(text: str) -> list[dict]:
    """The markdown tables of `text`: consecutive lines starting with `|` (indented ones in
    list items too), with the marker above, the section heading and the rows of cells.
    Written here rather than with a markdown parser: GitHub's table syntax is this simple
    in our docs, and the line numbers and the comment above are what the test needs."""
    lines = text.splitlines()
    found, heading, fenced, i = [], "", False, 0
    while i < len(lines):
        fenced ^= lines[i].lstrip().startswith("```")  # no headings or tables inside code blocks
        if lines[i].startswith("#") and not fenced:
            heading = lines[i].lstrip("#").strip()
        if fenced or not lines[i].lstrip().startswith("|"):
            i += 1
            continue
        start = i
        while i < len(lines) and lines[i].lstrip().startswith("|"):
            i += 1
        above = [line for line in lines[:start] if line.strip()][-1:]
        marker = MARKER.match(above[0]) if above else None
        rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[start:i]]
        found.append(
            {
                "line": start + 1,
                "heading": heading,
                "files": [f.strip() for f in marker["files"].split(",")] if marker else None,
                "header": rows[0],
                "body": rows[2:],
            }
        )
    return found


def figure_cells(table: dict) -> list[str]:
    """The body cells that figures are read from: not the first column, code spans removed."""
    return [CODE.sub("", cell) for row in table["body"] for cell in row[1:]]


def has_figures(table: dict) -> bool:
    return any(NUMBER.match(cell.strip()) for cell in figure_cells(table))


def numbers_in(record) -> list[float]:
    """Every JSON number of a results file, at any depth."""
    if isinstance(record, bool):
        return []
    if isinstance(record, (int, float)):
        return [float(record)] if math.isfinite(record) else []
    if isinstance(record, dict):
        record = list(record.values())
    if isinstance(record, list):
        return [x for item in record for x in numbers_in(item)]
    return []


def keys_in(record) -> set[str]:
    if isinstance(record, dict):
        return set(record) | {k for v in record.values() for k in keys_in(v)}
    if isinstance(record, list):
        return {k for v in record for k in keys_in(v)}
    return set()


def printed(match: re.Match) -> tuple[float, float]:
    """The value a printed number stands for and half a unit of its last digit."""
    digits = match["digits"].replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    exponent = int(match["exp"] or 0)
    value = float(digits) * 10.0**exponent * (-1 if match["sign"] == "-" else 1)
    return value, 0.5 * 10.0 ** (exponent - decimals) * (1 + 1e-9)


def unmatched(table: dict, recorded: list[float]) -> list[str]:
    """The figures of `table` that no number of `recorded` explains."""
    figures = [(m, *printed(m)) for cell in figure_cells(table) for m in NUMBER.finditer(cell)]
    plain = [value for m, value, _ in figures if not m["unit"]]
    missing = []
    for m, value, half in figures:
        candidates = [100 * x for x in recorded] if m["unit"] == "%" else list(recorded)
        if m["unit"] == "x":
            candidates += [a / b for i, a in enumerate(plain) for j, b in enumerate(plain) if b and i != j]
        if not any(abs(x - value) <= half for x in candidates):
            missing.append(m.group(0))
    return missing


def marked_tables():
    for doc in DOCS:
        for table in tables((REPO / doc).read_text(encoding="utf-8")):
            if table["files"]:
                yield pytest.param(table, id=f"{doc}:{table['line']}")


@pytest.mark.parametrize("table", list(marked_tables()))
def test_every_figure_is_in_its_results_file(table):
    recorded = []
    for name in table["files"]:
        path = REPO / name
        assert path.is_file(), f"line {table['line']}: the marker names {name}, which does not exist"
        recorded += numbers_in(json.loads(path.read_text(encoding="utf-8")))
    missing = unmatched(table, recorded)
    assert not missing, f"line {table['line']} ({table['heading']}): figures not in {table['files']}: {missing}"


def test_every_table_of_figures_is_marked():
    unmarked = [
        f"{page} line {t['line']} under {t['heading']!r}: {' | '.join(t['header'])}"
        for page in PAGES
        for t in tables((REPO / page).read_text(encoding="utf-8"))
        if has_figures(t) and not t["files"] and t["heading"] not in NOT_MEASURED
    ]
    assert not unmarked, "tables of figures without a <!-- figures: FILE --> marker:\n" + "\n".join(unmarked)


def referenced_files() -> list[str]:
    return sorted(
        {name for doc in DOCS for t in tables((REPO / doc).read_text(encoding="utf-8")) for name in t["files"] or []}
    )


@pytest.mark.parametrize("name", referenced_files())
def test_results_files_record_their_provenance(name):
    keys = keys_in(json.loads((REPO / name).read_text(encoding="utf-8")))
    have = {field for field, is_it in PROVENANCE.items() if any(is_it(k) for k in keys)}
    lacks = set(RECORDED_WITHOUT.get(name, ()))
    assert have == set(PROVENANCE) - lacks, (
        f"{name} records {sorted(have)}; expected {sorted(set(PROVENANCE) - lacks)}"
        + (" (re-run: take it off RECORDED_WITHOUT)" if have & lacks else "")
    )


def test_recorded_without_lists_only_files_in_use():
    assert set(RECORDED_WITHOUT) <= set(referenced_files())


# the checker itself, on tables made up here: it must see a figure that is not recorded
SAMPLE = """## Speed

<!-- figures: {file} -->
| backend | texts/s | share | vs first | diff |
| --- | ---: | ---: | ---: | ---: |
| a | 204.1 | 61% | - | 9.9e-08 |
| b | {b} (run 2) | 78% | {ratio}x | 0.0 |

| backend | version |
| --- | --- |
| a | torch 2.13 |
"""


def _check(tmp_path: Path, b: str, ratio: str, numbers: list[float]) -> list[str]:
    (tmp_path / "r.json").write_text(json.dumps({"rows": numbers}))
    [table, prose] = tables(SAMPLE.format(file=tmp_path / "r.json", b=b, ratio=ratio))
    assert table["files"] == [str(tmp_path / "r.json")] and table["heading"] == "Speed"
    assert has_figures(table) and not has_figures(prose) and prose["files"] is None
    return unmatched(table, numbers_in(json.loads((tmp_path / "r.json").read_text())))


def test_checker_accepts_rounded_figures(tmp_path):
    assert _check(tmp_path, "260.2", "1.27", [204.14, 0.6126, 260.17, 0.7833, 9.93e-08, 0.0, 2.0]) == []


@pytest.mark.parametrize(
    ("b", "ratio", "numbers", "caught"),
    [
        ("260.1", "1.27", [204.14, 0.6126, 260.17, 0.7833, 9.93e-08, 0.0, 2.0], "260.1"),  # one digit off
        ("260.2", "1.30", [204.14, 0.6126, 260.17, 0.7833, 9.93e-08, 0.0, 2.0], "1.30x"),  # a ratio of nothing
        ("260.2", "1.27", [204.14, 0.6126, 260.17, 0.7833, 9.83e-08, 0.0, 2.0], "9.9e-08"),  # exponent form
        ("260.2", "1.27", [204.14, 0.6126, 260.17, 0.7733, 9.93e-08, 0.0, 2.0], "78%"),  # a share
        ("260.2", "1.27", [204.14, 0.6126, 260.17, 0.7833, 9.93e-08, 0.0], "2"),  # "run 2" is checked too
    ],
)
def test_checker_catches_a_figure_not_recorded(tmp_path, b, ratio, numbers, caught):
    assert _check(tmp_path, b, ratio, numbers) == [caught]
