"""`python -m unified_nlp.demo` (what `make demo` runs): classify sample sentences with
the embedded default model on every backend that can run here, with timings."""

from __future__ import annotations

import os
import sys
import time

from . import list_backends, load_classifier
from .bench.contention import OtherCPU, unreliable_because
from .errors import UnifiedNLPError

SAMPLES = [
    "This is a great movie!",
    "A dull, lifeless script and wooden acting.",
    "it 's a charming and often affecting journey .",
    "I wanted to like it, but it was far too long and painfully slow.",
    "One of the best performances of the year.",
    "Not bad at all, actually quite fun.",
]


def main() -> int:
    backends = [b for b in list_backends() if b.runs != "unavailable"]
    print("backends: " + ", ".join(f"{b.name} ({b.runs})" for b in backends))
    with OtherCPU(settle_s=0.5) as other:  # timings beside each other mean something only on a quiet machine
        failures = sum(_one(status) for status in backends)
    busy = unreliable_because(other.figures(), None, os.cpu_count() or 1)
    if busy:
        print(f"\ntimings: {busy}; they are not comparable between backends (run again on a quiet machine)")
    return 1 if failures else 0


def _one(status) -> int:
    """Classify SAMPLES on one backend and print what it said and how long it took; 1 if it failed."""
    print(f"\n== {status.name} ({status.runs}; " + ", ".join(f"{k} {v}" for k, v in status.versions.items()) + ")")
    try:
        start = time.perf_counter()
        clf = load_classifier("default", backend=status.name)
        loaded = time.perf_counter()
        clf.predict(SAMPLES[:1])  # warm-up: first call builds graphs / starts threads
        warm = time.perf_counter()
        preds = clf.predict(SAMPLES)
        done = time.perf_counter()
    except UnifiedNLPError as e:
        print(f"   failed: {e}")
        return 1
    for text, p in zip(SAMPLES, preds):
        print(f"   {p.label:<9} {p.score:.4f}  {text}")
    print(
        f"   load {loaded - start:.2f}s, first prediction {warm - loaded:.3f}s, "
        f"{len(SAMPLES)} texts in {(done - warm) * 1000:.1f} ms ({len(SAMPLES) / (done - warm):.0f} texts/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
