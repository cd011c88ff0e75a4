"""Rows/s of classify_dataset: the local engine against Ray with 1 and 2 actors, per
backend, on SST-2 dev repeated to --rows rows, each run in a fresh process.

    .venv/bin/python benchmarks/datasets_scale.py [--rows 100000] [--backends huggingface tfhub]
        [--runs local-2t ray-2x1t] [--out benchmarks/results/datasets/scale.json]

Results are written after every run; a second invocation with the same --out and
--rows adds its runs to the file (a run measured again replaces the old record), so
the backends can be measured in separate sittings, each recorded with its command,
date, CPU and load average (``sittings``); ``--report-only`` remakes the report from
the file. The report (``.md``) and the
plot (``.png``) are remade from the whole file each time.

Runs per backend (cores = the machine's 2):
  local-1t     local engine, 1 framework thread
  local-2t     local engine, 2 threads (all the cores)
  ray-1x1t     Ray, 1 actor of 1 thread (1 CPU): the per-actor rate
  ray-1x2t     Ray, 1 actor of 2 threads: against local-2t at equal cores (Ray's overhead)
  ray-2x1t     Ray, 2 actors of 1 thread: against ray-1x1t (scaling over actors)
Each record has the summary of classify_dataset: total seconds (Ray's include
starting the local cluster and loading the model in every actor), rows/s over the
whole run, and the steady rate (local: after the model loaded; Ray: after the
first batch came back: over-stated, as the other actors' batches are in flight by
then; the whole-run rate is the fair comparison). The input is read by one task; its rate alone
(``read_rows_per_s``, the local engine's reader with no model) bounds how far
more actors can go, and so does the driver, which writes every output row
(``write_rows_per_s``: the output columns of those rows written as parts and
assembled, as the driver does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recorded import provenance

CHILD = r"""
import json, sys
import unified_nlp as un
path, out, backend, engine, actors, threads, chunk = sys.argv[1:8]
kw = {"num_actors": int(actors)} if engine == "ray" else {}
record = un.classify_dataset(path, out, backend=backend, text_column="sentence", engine=engine,
                             num_threads=int(threads), chunk_rows=int(chunk), progress=False, resume=False, **kw)
print(json.dumps(record))
"""

RUNS = [("local-1t", "local", 0, 1), ("local-2t", "local", 0, 2), ("ray-1x1t", "ray", 1, 1),
        ("ray-1x2t", "ray", 1, 2), ("ray-2x1t", "ray", 2, 1)]  # fmt: skip


def read_rate(path: Path) -> float:
    from unified_nlp.datasets import io

    start, n = time.perf_counter(), 0
    for _, chunk in io.Reader(path, ["sentence"]).chunks(8192):
        n += len(chunk["sentence"])
    return round(n / (time.perf_counter() - start), 1)


def _kind(proc) -> str:
    """Which part of a run a process is: the classifying actors, the paddlenlp workers, Ray's own."""
    try:
        line = " ".join(proc.cmdline())
    except Exception:
        return "other"
    if "MapWorker" in line or "_Classify" in line:
        return "actors"
    if "worker_main" in line:
        return "paddle_workers"
    if "ray" in line:
        return "ray_system"  # gcs, raylet, dashboard agents, log monitor, Ray Data's own actors, idle workers
    return "other"


def run_sampled(cmd: list[str], env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    """Run `cmd`, sampling the CPU seconds of it and every process under it each second:
    where the cores went (the driver, the actors, Ray's own processes)."""
    import psutil

    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: dict[int, tuple[str, float]] = {}
    out: list[str] = []
    reader = __import__("threading").Thread(target=lambda: out.extend(child.communicate()), daemon=True)
    reader.start()
    root = psutil.Process(child.pid)
    while reader.is_alive():
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for p in procs:
            try:
                t = p.cpu_times()
                # an idle Ray worker becomes an actor later (its title changes): once an actor, always one
                before = seen.get(p.pid, ("",))[0]
                kind = "driver" if p.pid == child.pid else before if before == "actors" else _kind(p)
                seen[p.pid] = (kind, t.user + t.system)
            except psutil.Error:
                pass
        reader.join(1.0)
    cpu: dict[str, float] = {}
    for kind, seconds in seen.values():
        cpu[kind] = round(cpu.get(kind, 0.0) + seconds, 1)
    return subprocess.CompletedProcess(cmd, child.returncode, out[0], out[1]), cpu


def write_rate(rows: int, tmp: Path) -> float:
    """Rows/s of the driver's side: output parts (id, label, score, 2 probabilities) then assembly."""
    import numpy as np

    from unified_nlp.datasets import io

    names = ["row", "label", "score", "prob_negative", "prob_positive"]
    rng = np.random.default_rng(0)
    start, parts = time.perf_counter(), []
    for first in range(0, rows, 8192):
        n = min(8192, rows - first)
        p = rng.random(n, dtype=np.float32)
        columns = {"row": list(range(first, first + n)), "label": ["positive" if x > 0.5 else "negative" for x in p],
                   "score": np.maximum(p, 1 - p), "prob_negative": 1 - p, "prob_positive": p}  # fmt: skip
        parts.append(tmp / f"write-{first}.parquet")
        io.write_part(parts[-1], "parquet", columns, names)
    io.assemble(parts, "parquet", tmp / "written.parquet")
    return round(rows / (time.perf_counter() - start), 1)


def _merge(out: Path, results: dict) -> dict:
    """`results` over the earlier file at `out` (same rows and chunks): its runs kept unless measured again."""
    try:
        old = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return results
    if (old.get("rows"), old.get("chunk_rows")) != (results["rows"], results["chunk_rows"]):
        return results
    new = {(r["backend"], r["run"]) for r in results["runs"]}
    results["runs"] = [r for r in old.get("runs", []) if (r["backend"], r["run"]) not in new] + results["runs"]
    # one entry per sitting: this sitting's earlier saves (same load_before) are replaced
    earlier = [m for m in old.get("sittings", [old.get("machine", {})]) if not _same_sitting(m, results["machine"])]
    results["sittings"] = earlier + [results["machine"]]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk-rows", type=int, default=8192, help="rows per part and per Ray batch")
    parser.add_argument("--backends", nargs="+", default=["huggingface"])
    parser.add_argument("--runs", nargs="+", default=[r[0] for r in RUNS], choices=[r[0] for r in RUNS])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/datasets/scale.json"))
    parser.add_argument("--report-only", action="store_true", help="remake the .md and .png from --out, run nothing")
    args = parser.parse_args()
    if args.report_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
        args.out.with_suffix(".md").write_text(report(results), encoding="utf-8")
        plot(results, args.out.with_suffix(".png"))
        print(report(results))
        return

    import pyarrow as pa
    import pyarrow.parquet as pq

    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, _ = read_tsv(sst2_path("dev"))
    repeated = (texts * (args.rows // len(texts) + 1))[: args.rows]
    results = {
        "rows": args.rows,
        "chunk_rows": args.chunk_rows,
        "input": f"SST-2 dev ({len(texts)} sentences) repeated to {args.rows:,} rows, Parquet",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": os.getloadavg(),
            **{k: v for k, v in provenance().items() if k in ("command", "date", "cpu")},
        },
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sst2.parquet"
        pq.write_table(pa.table({"sentence": repeated}), path, row_group_size=65536)
        results["read_rows_per_s"] = read_rate(path)
        results["write_rows_per_s"] = write_rate(args.rows, Path(tmp))
        for backend in args.backends:
            for name, engine, actors, threads in RUNS:
                if name not in args.runs:
                    continue
                out = Path(tmp) / f"{backend}-{name}.parquet"
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
                cmd = [sys.executable, "-c", CHILD, str(path), str(out), backend, engine]
                cmd += [str(actors), str(threads), str(args.chunk_rows)]
                proc, cpu = run_sampled(cmd, env)
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{backend} {name} failed")
                record = json.loads(proc.stdout.strip().splitlines()[-1])
                steady = record.get("rows_per_s_after_first_batch") if engine == "ray" else record["rows_per_s"]
                row = {
                    "backend": backend,
                    "run": name,
                    "engine": engine,
                    "actors": actors or None,
                    "threads_per_actor": threads,
                    "seconds": record["seconds"],
                    "rows_per_s": round(record["rows"] / record["seconds"], 1),
                    "steady_rows_per_s": steady,
                    "startup_seconds": record["load_seconds"],
                    "cpu_seconds": cpu,
                }
                row["load_after"] = round(os.getloadavg()[0], 2)
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
                save(args.out, results)
    results["machine"]["load_after"] = os.getloadavg()
    print(report(save(args.out, results)))


def save(out: Path, results: dict) -> dict:
    """Write the JSON, the report and the plot (merged with the file's earlier runs)."""
    merged = _merge(out, json.loads(json.dumps(results)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(report(merged), encoding="utf-8")
    plot(merged, out.with_suffix(".png"))
    return merged


def plot(results: dict, path: Path) -> None:
    """Grouped bars: whole-run rows/s per backend, one bar per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(dict.fromkeys(r["backend"] for r in results["runs"]))
    runs = [name for name, *_ in RUNS if any(r["run"] == name for r in results["runs"])]
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for j, name in enumerate(runs):
        xs, ys = [], []
        for i, backend in enumerate(backends):
            for r in results["runs"]:
                if r["backend"] == backend and r["run"] == name:
                    xs.append(i + (j - (len(runs) - 1) / 2) * width)
                    ys.append(r["rows_per_s"])
        bars = ax.bar(xs, ys, width, label=name)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(backends)), backends)
    ax.set_ylabel("rows/s (whole run, start-up included)")
    ax.set_title(f"classify_dataset, {results['rows']:,} rows of SST-2 dev, {results['machine']['cpus']} cores")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cpu(r: dict) -> str:
    cpu = r.get("cpu_seconds")
    if not cpu:
        return "-"
    if "actors_and_ray_system" in cpu:  # an early record (see its cpu_note)
        return f"{cpu.get('driver', 0):.0f} / {cpu['actors_and_ray_system']:.0f} with Ray's own"
    work = cpu.get("actors", 0) + cpu.get("paddle_workers", 0)
    return f"{cpu.get('driver', 0):.0f} / {work:.0f} / {cpu.get('ray_system', 0):.0f}"


def _same_sitting(a: dict, b: dict) -> bool:
    return list(a.get("load_before", [])) == list(b.get("load_before", []))


def sittings_line(results: dict) -> str:
    """What the file records of the load: every sitting's 1-minute load average before and after
    (a sitting is one invocation; the runs' own `load after` is in the table). Files written
    before _merge kept one entry per sitting hold one per save: the last of each counts."""
    sittings: list[dict] = []
    for machine in results.get("sittings", [results["machine"]]):
        sittings = [m for m in sittings if not _same_sitting(m, machine)] + [machine]

    def span(key: str) -> str:
        values = [s[key][0] for s in sittings if s.get(key)]
        if not values:
            return "not recorded"
        low, high = min(values), max(values)
        return f"{low:.1f}" if round(low, 1) == round(high, 1) else f"{low:.1f} to {high:.1f}"

    if len(sittings) == 1:
        return f"One sitting; 1-minute load average before {span('load_before')}, after {span('load_after')}."
    ended = sum(1 for s in sittings if s.get("load_after"))
    return (
        f"{len(sittings)} sittings, {ended} of them run to the end; 1-minute load average before a sitting "
        f"{span('load_before')}, at the end of one {span('load_after')}."
    )


def report(results: dict) -> str:
    lines = [
        f"# classify_dataset scale: {results['input']}",
        "",
        f"Chunks (parts, Ray batches) of {results['chunk_rows']:,} rows, {results['machine']['cpus']} cores (shared). "
        + sittings_line(results),
        "",
        f"Reading alone (the local engine's reader, one process): {results['read_rows_per_s']:,.0f} rows/s; "
        f"writing the output alone (the driver's parts and assembly): {results.get('write_rows_per_s', 0):,.0f} rows/s.",
        "",
        "| backend | run | actors x threads | seconds | rows/s (whole run) | steady rows/s | start-up s | load after "
        "| CPU s: driver / actors (+ paddle workers) / Ray's own |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["runs"]:
        shape = f"{r['actors']} x {r['threads_per_actor']}" if r["actors"] else f"local, {r['threads_per_actor']}"
        lines.append(
            f"| {r['backend']} | {r['run']} | {shape} | {r['seconds']} | {r['rows_per_s']} "
            f"| {r['steady_rows_per_s']} | {r['startup_seconds']} | {r.get('load_after', '')} | {_cpu(r)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
