"""Writing a benchmark's record: results.json (the rows) and results.md (the table), the
table also printed. Shared by the benchmark scripts run as `python benchmarks/NAME.py`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def write_results(out: Path, rows: list[dict[str, Any]], lines: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1) + "\n")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
