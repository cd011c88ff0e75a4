"""Soak test: many predict calls of mixed batch sizes; resident memory must not grow.

    .venv/bin/python benchmarks/soak.py --calls 20000 --out benchmarks/results/soak.json

For each backend, in a fresh process: load the default model, warm up, record the
resident set size (RSS), make --calls predict calls with batch sizes drawn from
{1, 2, 4, 8, 16, 32} over SST-2 dev sentences, and record RSS again. For a
backend that runs in a worker, the worker's RSS is what is measured (the parent
holds no framework). Growth = (final - after warm-up) / after warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BATCH_SIZES = (1, 2, 4, 8, 16, 32)


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def soak_one(backend: str, calls: int, warmup: int, seed: int = 0) -> dict:
    import numpy as np
    from tqdm.auto import tqdm

    import unified_nlp as un
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts = read_tsv(sst2_path("dev"))[0]
    clf = un.load_classifier("default", backend=backend)
    pid = getattr(clf.model, "worker_pid", None) or os.getpid()
    rng = np.random.default_rng(seed)
    sizes = rng.choice(BATCH_SIZES, size=calls + warmup)
    starts = rng.integers(0, len(texts) - max(BATCH_SIZES), size=calls + warmup)
    samples = []
    started = time.perf_counter()
    for i in tqdm(range(calls + warmup), desc=f"soak [{backend}]", unit="call", mininterval=2):
        clf.predict(texts[starts[i] : starts[i] + sizes[i]])
        if i == warmup - 1:
            baseline = _rss(pid)
        if i >= warmup and (i - warmup) % max(1, calls // 20) == 0:
            samples.append(_rss(pid))
    final = _rss(pid)
    return {
        "backend": backend,
        "runs": clf.runs,
        "calls": calls,
        "warmup_calls": warmup,
        "texts": int(sizes[warmup:].sum()),
        "seconds": round(time.perf_counter() - started, 1),
        "rss_after_warmup_mb": round(baseline / 2**20, 1),
        "rss_final_mb": round(final / 2**20, 1),
        "rss_peak_sampled_mb": round(max(samples + [final]) / 2**20, 1),
        "growth": (final - baseline) / baseline,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="huggingface,tfhub,paddlenlp")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one backend in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(soak_one(args.one, args.calls, args.warmup)))
        return 0
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        done = subprocess.run(
            [sys.executable, __file__, "--one", backend, "--calls", str(args.calls), "--warmup", str(args.warmup)],
            stdout=subprocess.PIPE, text=True,
        )
        if done.returncode != 0 or not done.stdout.strip():
            results.append({"backend": backend, "error": f"exit code {done.returncode}"})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = results[-1]
        if "error" in row:
            print(f"{backend:<12} failed: {row['error']}")
        else:
            print(f"{backend:<12} {row['calls']} calls ({row['texts']} texts) in {row['seconds']}s: RSS "
                  f"{row['rss_after_warmup_mb']} MB -> {row['rss_final_mb']} MB ({row['growth']:+.2%})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "results": results}, indent=2) + "\n")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
