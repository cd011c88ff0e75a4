"""Peak memory of the local dataset engine: classify_dataset over Parquet files of
SST-2 dev repeated to each size, on huggingface, each run in a fresh process.

    .venv/bin/python benchmarks/datasets_memory.py [--rows 10000 1000000] [--max-seconds 600]
        [--model default|tiny] [--chunk-rows N] [--out benchmarks/results/datasets/memory.json]

The record is written whole by this script, one invocation per file: its command, date,
CPU and load average (start and end, and after each run) with the runs.

Each size: a Parquet file (text, id; row groups of 65,536 rows) in a temporary
folder, then ``un.classify_dataset(..., "preds.parquet")`` in a child process that
reports its own peak RSS (getrusage ru_maxrss), rows and rows/s. A run still going
after --max-seconds gets SIGINT (as Ctrl-C): it stops after its finished parts,
and the record says how many rows it had classified by then (``complete: false``).

``--model tiny``: a tiny random BERT classifier (2 layers, hidden 32; built by
tests/checkpoints.py, as the test fixtures are) instead of the default MiniLM. It
classifies about fifteen times faster (5,104 rows/s at 10,000 rows), so a whole 1,000,000-row file finishes in
minutes: what is measured is the engine's memory (reader, chunks, parts,
assembly), which does not depend on the model; the model's own memory is a
constant added to every size (see the default-model records).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from recorded import provenance

from unified_nlp.bench.tracker import load_average

CHILD = r"""
import json, resource, sys, time
import unified_nlp as un
from unified_nlp.datasets import local
path, out, threads, model, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
options = {"chunk_rows": chunk} if chunk else {}  # 0: the engine's default
start = time.perf_counter()
record = {"complete": False}
try:
    summary = un.classify_dataset(path, out, model=model, num_threads=threads, progress=False, **options)
    record.update(summary, complete=True)
except KeyboardInterrupt:
    manifest = local.parts_dir(local.Path(out).absolute()) / local.MANIFEST  # absent before the first part
    parts = json.loads(manifest.read_text())["parts"] if manifest.is_file() else {}
    record["rows_classified"] = sum(p["rows"][1] - p["rows"][0] for p in parts.values())
record["wall_seconds"] = round(time.perf_counter() - start, 1)
record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(record))
"""


def make_input(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from unified_nlp.benchdata import read_tsv, sst2_path

    texts = read_tsv(sst2_path("dev"))[0]
    with pq.ParquetWriter(path, pa.schema([("text", pa.string()), ("id", pa.int64())])) as writer:
        for start in range(0, rows, 65536):
            n = min(65536, rows - start)
            column = [texts[i % len(texts)] for i in range(start, start + n)]
            writer.write_table(pa.table({"text": column, "id": list(range(start, start + n))}))


def tiny_model(folder: Path) -> Path:
    """The tiny BERT classifier of the tests (random weights, a WordPiece vocabulary of 600)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/checkpoints.py builds it
    from tests.checkpoints import make_checkpoint

    return make_checkpoint("bert", folder, num_labels=2)


def measure(rows: int, max_seconds: float, threads: int, model: str, chunk_rows: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"sst2x{rows}.parquet"
        make_input(source, rows)
        if model == "tiny":
            model = str(tiny_model(Path(tmp) / "tiny-bert"))
        env = {**os.environ, "UNIFIED_NLP_PROGRESS": "0"}
        cmd = [
            sys.executable,
            "-c",
            CHILD,
            str(source),
            str(Path(tmp) / "preds.parquet"),
            str(threads),
            model,
            str(chunk_rows),
        ]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        try:
            stdout, _ = child.communicate(timeout=max_seconds)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGINT)
            stdout, _ = child.communicate(timeout=120)
        record = json.loads(stdout.strip().splitlines()[-1])
        for temporary in ("output", "errors_file"):  # paths in the deleted temporary folder
            record.pop(temporary, None)
        record["input_rows"] = rows
        record["model"] = "tiny-bert (2 layers, hidden 32)" if "tiny-bert" in model else model
        record["input_mb"] = round(source.stat().st_size / 1e6, 1)
        record["chunk_rows"] = chunk_rows or "default"
        if not record["complete"] and record.get("wall_seconds"):
            record["rows_per_s"] = round(record["rows_classified"] / record["wall_seconds"], 1)
        return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--max-seconds", type=float, default=600.0, help="SIGINT a run still going after this")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="default", help="default (MiniLM), tiny (see above) or a model folder")
    parser.add_argument("--chunk-rows", type=int, default=0, help="rows per part (0: the engine's default)")
    parser.add_argument("--out", default=None, help="write the JSON record here")
    args = parser.parse_args()
    runs = []
    for rows in args.rows:
        record = measure(rows, args.max_seconds, args.threads, args.model, args.chunk_rows)
        record["load_average_after"] = load_average()
        print(json.dumps(record), flush=True)
        runs.append(record)
    result = {
        "benchmark": "datasets_memory",
        **provenance(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "threads": args.threads},
        "runs": runs,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
