"""Worker overhead: the paddlenlp adapter in-process (inside .venv-paddle) vs the
same adapter through the worker from .venv, SST-2 dev predictions at batch 32.

    .venv/bin/python benchmarks/worker_overhead.py [--repeat 5]

Each side: load, one warm-up pass, then --repeat timed passes of predict_proba
over the 872 sentences; the best pass is reported (texts/s).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

MEASURE = """
import json, sys, time
import unified_nlp as un
from unified_nlp.benchdata import read_tsv, sst2_path
texts = read_tsv(sst2_path("dev"))[0]
clf = un.load_classifier(sys.argv[2], backend="paddlenlp")  # a path: the Paddle env has no MiniLM package
clf.predict_proba(texts, batch_size=32)
best = min(_timed(clf, texts) for _ in range(int(sys.argv[1])))
print(json.dumps({"runs": clf.runs, "seconds": best, "texts_per_second": len(texts) / best}))
"""
TIMER = "import time\ndef _timed(clf, texts):\n    t = time.perf_counter(); clf.predict_proba(texts, batch_size=32); return time.perf_counter() - t\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from unified_nlp.registry import worker_python

    python = worker_python("paddlenlp")
    if python is None:
        print("no paddlenlp environment registered (make setup does it)", file=sys.stderr)
        return 2
    from unified_nlp.resolve import default_model_dir

    model = str(default_model_dir())
    rows = {}
    for side, interpreter in (("in-process", python), ("worker", sys.executable)):
        done = subprocess.run(
            [interpreter, "-c", TIMER + MEASURE, str(args.repeat), model], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        rows[side] = json.loads(done.stdout.strip().splitlines()[-1])
    overhead = rows["in-process"]["texts_per_second"] / rows["worker"]["texts_per_second"] - 1
    print(json.dumps({**rows, "worker_slower_by": round(overhead, 4)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
