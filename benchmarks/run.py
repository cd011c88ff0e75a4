"""Reproduce the cross-framework benchmark table of benchmarks/README.md.

    .venv/bin/python benchmarks/run.py

is `unified-nlp bench --out benchmarks/results/latest` (all three backends, batch
sizes 1,8,32,128, 3 timed passes, 2 threads, SST-2 dev) followed by copying the
Markdown table into benchmarks/README.md between its `results` markers. Extra
arguments go to `unified-nlp bench` (e.g. --backends huggingface); --out
other than the default leaves the README alone, and --quick never touches the
committed results (it writes a new bench-results/YYYYmmdd-HHMMSS/).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from unified_nlp.cli import main as cli_main

HERE = Path(__file__).resolve().parent
LATEST = HERE / "results" / "latest"
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def update_readme(table: str) -> bool:
    """Put `table` between the markers of benchmarks/README.md; False if the markers are missing."""
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        return False
    README.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table.strip()}\n{END}", text), encoding="utf-8")
    return True


def without_machine_paths(folder: Path) -> None:
    """The committed results name files relative to the checkout (the model folder, each
    environment's python), not this machine's absolute paths."""
    prefix = str(HERE.parent) + "/"
    for name in ("results.json", "results.csv", "results.md"):
        path = folder / name
        if path.is_file():
            path.write_text(path.read_text(encoding="utf-8").replace(prefix, ""), encoding="utf-8")


def targets_table(summary: dict) -> str:
    """The project's own targets, judged from the run's summary (not part of the library's report,
    which users run on their own machines); nothing when the run was unreliable."""
    rows = []
    if ratios := summary.get("huggingface_vs_torch_raw"):
        worst = min(ratios.values())
        rows.append(("huggingface backend within 3% of the raw torch call (worst batch size)", worst, worst >= 0.97))
    if (v := summary.get("best_backend_vs_pipeline_at_32")) is not None:
        rows.append(("best backend >= 1.5x transformers pipeline at batch 32", v, v >= 1.5))
    if (v := summary.get("best_ceiling_fraction")) is not None:
        rows.append(("best backend >= 70% of the matmul ceiling", v, v >= 0.70))
    if ratios := summary.get("ratio_to_fastest"):
        v = min(ratios.values())
        rows.append((f"every backend >= 0.6x the fastest (batch {summary['headline_batch_size']})", v, v >= 0.6))
        if "huggingface" in ratios:  # issue 28
            v = ratios["huggingface"]
            rows.append(
                (
                    f"huggingface fp32 >= 0.7x the fastest fp32 backend (batch {summary['headline_batch_size']})",
                    v,
                    v >= 0.7,
                )
            )
    if ratios := summary.get("onnxruntime_vs_onnx_plain"):
        worst = min(ratios.values())
        rows.append(
            (
                "onnxruntime >= 1.0x a plain ONNX export with ONNX Runtime defaults (worst batch size)",
                worst,
                worst >= 1.0,
            )
        )
    if (v := summary.get("best_ceiling_fraction")) is not None:
        rows.append(("no row above 100% of the ceiling", v, v <= 1.0))
    if not rows:
        return ""
    lines = ["", "| our target | measured | met |", "|---|---|---|"]
    lines += [f"| {goal} | {value:.3f} | {'yes' if met else 'no'} |" for goal, value, met in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    custom_out = any(a == "--out" or a.startswith("--out=") for a in argv)
    quick = "--quick" in argv  # a check, not figures: the committed results stay as they are
    args = ["bench", *argv] if custom_out or quick else ["bench", "--out", str(LATEST), *argv]
    code = cli_main(args)
    if code == 0 and not custom_out and not quick:
        without_machine_paths(LATEST)
        summary = json.loads((LATEST / "results.json").read_text(encoding="utf-8")).get("summary", {})
        table = (LATEST / "results.md").read_text(encoding="utf-8") + targets_table(summary)
        if update_readme(table):
            print(f"updated the table in {README}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
