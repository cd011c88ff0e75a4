"""Soak test: many predict calls of mixed batch sizes; resident memory must not grow.

    .venv/bin/python benchmarks/soak.py --calls 20000 --out benchmarks/results/soak.json

For each backend, in a fresh process: load the default model and warm up (first
the largest shapes the run will see: every batch size filled with the longest
dev sentences, then --warmup random calls); then make --calls predict calls with
batch sizes drawn from {1, 2, 4, 8, 16, 32} (weights 40/20/15/10/10/5%, a
service-like mix) over SST-2 dev sentences, sampling
the resident set size (RSS) every few calls. For a backend that runs in a
worker, the worker's RSS is what is measured (the parent holds no framework).

The allocator keeps freed blocks and returns them in steps, so single RSS
readings move by a few percent from one call to the next with no leak at all
(seen here: +-3% on torch). Growth therefore compares steady windows:
growth = (median of the last 10% of samples - median of the first 10%) / the
latter. The trend (MB per 1,000 calls, least squares over all samples) and the
peak are reported beside it; a leak shows in all three.

--trim-every N (in-process backends, glibc): every N calls, run the garbage
collector and malloc_trim(0), which hands the allocator's free memory back to
the system, and record RSS after it. What is left is live memory: if it stays
flat while plain RSS grows, the growth is the allocator's cache, not a leak.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from recorded import provenance

BATCH_SIZES = (1, 2, 4, 8, 16, 32)
# A service-like mix: mostly single requests, some large batches (mean 5.4 texts per call).
BATCH_WEIGHTS = (0.40, 0.20, 0.15, 0.10, 0.10, 0.05)


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def _trimmed_rss(pid: int) -> int:
    """RSS after gc and glibc's malloc_trim(0): the memory still in use."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return _rss(pid)


def soak_one(backend: str, calls: int, warmup: int, seed: int = 0, trim_every: int = 0) -> dict:
    import numpy as np
    from tqdm.auto import tqdm

    import unified_nlp as un
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts = read_tsv(sst2_path("dev"))[0]
    clf = un.load_classifier("default", backend=backend)
    pid = getattr(clf.model, "worker_pid", None) or os.getpid()
    longest = sorted(texts, key=len, reverse=True)
    for size in BATCH_SIZES:
        clf.predict(longest[:size])
    rng = np.random.default_rng(seed)
    sizes = rng.choice(BATCH_SIZES, size=calls + warmup, p=BATCH_WEIGHTS)
    starts = rng.integers(0, len(texts) - max(BATCH_SIZES), size=calls + warmup)
    every = max(1, calls // 200)
    at, samples, trimmed = [], [], []
    if trim_every and pid != os.getpid():
        raise SystemExit("--trim-every needs a backend that runs in this process")
    started = time.perf_counter()
    for i in tqdm(range(calls + warmup), desc=f"soak [{backend}]", unit="call", mininterval=2):
        clf.predict(texts[starts[i] : starts[i] + sizes[i]])
        if i >= warmup and (i - warmup) % every == 0:
            at.append(i - warmup)
            samples.append(_rss(pid))
        if trim_every and i >= warmup and (i - warmup) % trim_every == 0:
            trimmed.append(_trimmed_rss(pid))
    final = _rss(pid)
    if trim_every:
        trimmed.append(_trimmed_rss(pid))
    window = max(1, len(samples) // 10)
    baseline = float(np.median(samples[:window]))
    late = float(np.median(samples[-window:]))
    slope = float(np.polyfit(at, samples, 1)[0]) if len(samples) > 1 else 0.0
    return {
        "backend": backend,
        "runs": clf.runs,
        "calls": calls,
        "warmup_calls": warmup,
        "texts": int(sizes[warmup:].sum()),
        "seconds": round(time.perf_counter() - started, 1),
        "rss_after_warmup_mb": round(baseline / 2**20, 1),
        "rss_final_mb": round(final / 2**20, 1),
        "rss_late_window_mb": round(late / 2**20, 1),
        "rss_peak_sampled_mb": round(max(samples + [final]) / 2**20, 1),
        "rss_samples": len(samples),
        "trend_mb_per_1000_calls": round(slope * 1000 / 2**20, 2),
        "growth": (late - baseline) / baseline,
        **({"trim_every": trim_every, "rss_trimmed_mb": [round(x / 2**20, 1) for x in trimmed]} if trim_every else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="huggingface,tfhub,paddlenlp")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--trim-every", type=int, default=0, help="malloc_trim and record RSS every N calls")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one backend in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(soak_one(args.one, args.calls, args.warmup, trim_every=args.trim_every)))
        return 0
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                backend,
                "--calls",
                str(args.calls),
                "--warmup",
                str(args.warmup),
                "--trim-every",
                str(args.trim_every),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        if done.returncode != 0 or not done.stdout.strip():
            results.append({"backend": backend, "error": f"exit code {done.returncode}"})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = results[-1]
        if "error" in row:
            print(f"{backend:<12} failed: {row['error']}")
        else:
            print(
                f"{backend:<12} {row['calls']} calls ({row['texts']} texts) in {row['seconds']}s: RSS "
                f"{row['rss_after_warmup_mb']} MB -> {row['rss_late_window_mb']} MB ({row['growth']:+.2%}), "
                f"trend {row['trend_mb_per_1000_calls']:+.2f} MB per 1,000 calls, peak {row['rss_peak_sampled_mb']} MB"
            )
            if row.get("rss_trimmed_mb"):
                print(f"{'':<12} RSS after malloc_trim every {row['trim_every']} calls (MB): {row['rss_trimmed_mb']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**provenance(), "results": results}, indent=2) + "\n")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
