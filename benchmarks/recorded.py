"""Writing a benchmark's record: results.json (the rows) and results.md (the table), the
table also printed. Shared by the benchmark scripts run as `python benchmarks/NAME.py`.

Every record carries its provenance (`provenance()`): the command that wrote it, the date
and time, the CPU and the load average when the script started and when it wrote the
record; tests/test_figures.py checks that each figure the README quotes is in such a file.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from unified_nlp.bench.tracker import cpu_model, load_average
from unified_nlp.cpu import gemm_features

REPO = Path(__file__).resolve().parents[1]
# taken when a script imports this module, i.e. as it starts, before it loads anything
_LOAD_AT_START = load_average()


def command() -> str:
    """How this process was started, as a shell line from the repository root (no machine paths)."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else Path(script.name)
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def provenance() -> dict[str, Any]:
    """command, date (UTC), cpu, cores and load average (start of the script, now)."""
    return {
        "command": command(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(),
        "cpu_features": gemm_features(),
        "cores": os.cpu_count(),
        "load_average": {"start": _LOAD_AT_START, "end": load_average()},
    }


def write_results(out: Path, rows: list[dict[str, Any]], lines: list[str], **extra: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {**provenance(), "rows": rows, **extra}
    (out / "results.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
