"""Writing a benchmark's record: results.json (the rows) and results.md (the table), the
table also printed. Shared by the benchmark scripts run as `python benchmarks/NAME.py`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def write_results(out: Path, rows: list[dict[str, Any]], lines: list[str], **extra: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%d"), "rows": rows, **extra}
    (out / "results.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
