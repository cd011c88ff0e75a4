"""huggingface backend on the CPU: fp32 eager (torch's nn.Linear, MKL) against the backend's fp32
path (linears on oneDNN) and bf16 (its bf16 copy of the model, and torch's bf16 autocast as the
alternative), with label agreement, and the cold start against bare transformers.

    .venv/bin/python benchmarks/hf_precision.py --out benchmarks/results/hf_precision.json

Speed: texts/s of `clf.logits` over all 872 SST-2 dev sentences (the library's batching, batch
32, --threads threads), best of --repeats passes after a warm-up, the configurations taken in
turn within each pass so that a busy spell of the shared machine hits them alike. The CPU time
other processes took meanwhile is recorded (unified_nlp.bench.contention). Agreement: labels and
max |logit difference| against fp32 eager, and SST-2 dev accuracy.

--graphs also measures whole-graph paths on the same pre-tokenized batches (eager, jit.trace +
freeze + optimize_for_inference, torch.compile with inductor freezing, and its compile time).

--append keeps the runs already in --out beside this one (`{"runs": [...]}`).

Cold start: fresh processes, best of --cold-runs, from spawn to exit: ours
(`load_classifier(...).predict`, fp32 and bf16) against transformers' own load and forward of the
same folder (benchmarks/cold_start.py's commands).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cold_start import NATIVE, OURS, TEXT
from recorded import REPO, provenance


def measure(configs: dict, texts: list[str], repeats: int) -> dict[str, float]:
    """Best texts/s of each configuration (name -> (classifier, context to run it in))."""
    best = dict.fromkeys(configs, 0.0)
    for _ in range(repeats):
        for name, (clf, context) in configs.items():
            started = time.perf_counter()
            with context():
                clf.logits(texts, batch_size=32)
            best[name] = max(best[name], len(texts) / (time.perf_counter() - started))
    return {name: round(rate, 1) for name, rate in best.items()}


def agreement(logits, reference, gold) -> dict[str, float]:
    return {
        "labels_kept": round(float((logits.argmax(1) == reference.argmax(1)).mean()), 6),
        "max_abs_logit_diff": float(abs(logits - reference).max()),
        "accuracy": round(float((logits.argmax(1) == gold).mean()), 4),
    }


def throughput(threads: int, repeats: int) -> dict:
    import numpy as np
    import torch
    from unified_nlp_huggingface.cpu_paths import use_onednn

    import unified_nlp as un
    from unified_nlp.bench.contention import OtherCPU
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, labels = read_tsv(sst2_path("dev"))
    eager = un.load_classifier("default", backend="huggingface", num_threads=threads)
    gold = np.array([eager.labels.index(x) if isinstance(x, str) else int(x) for x in labels])
    bf16 = un.load_classifier("default", backend="huggingface", precision="bf16", num_threads=threads)
    onednn = un.load_classifier("default", backend="huggingface", num_threads=threads)
    # each path set here, whatever the backend's default (oneDNN linears are opt-in, UNIFIED_NLP_TORCH_ONEDNN)
    use_onednn(eager.model.net, False)
    use_onednn(onednn.model.net, True)
    configs = {
        "fp32_eager": (eager, contextlib.nullcontext),
        "fp32_onednn": (onednn, contextlib.nullcontext),
        "bf16": (bf16, contextlib.nullcontext),  # the backend's: its bf16 copy of the model
        # the alternative: torch's autocast over the fp32 model (its linears then run eager, in bf16)
        "bf16_autocast": (eager, lambda: torch.autocast("cpu", dtype=torch.bfloat16)),
    }
    reference = eager.logits(texts, batch_size=32)
    rows = {}
    for name, (clf, context) in configs.items():
        with context():
            rows[name] = agreement(clf.logits(texts, batch_size=32), reference, gold)
    with OtherCPU() as other:
        rates = measure(configs, texts, repeats)
    for name, rate in rates.items():
        rows[name]["texts_per_s"] = rate
        rows[name]["vs_fp32_eager"] = round(rate / rates["fp32_eager"], 2)
    return {"texts": len(texts), "threads": threads, "rows": rows, "other_processes_cpu_cores": other.figures()}


def cold_start(runs: int) -> dict:
    from unified_nlp.resolve import default_model_dir

    python = str(Path(sys.executable))
    ours = OURS.format(b="huggingface", t=TEXT)
    commands = {
        "ours_fp32": ours,
        "ours_bf16": ours.replace("backend='huggingface')", "backend='huggingface', precision='bf16')"),
        "transformers": NATIVE["huggingface"].format(f=str(default_model_dir()), t=TEXT),
    }
    samples = {name: [] for name in commands}
    for _ in range(runs):
        for name, code in commands.items():
            started = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, capture_output=True, env=os.environ.copy())
            samples[name].append(round(time.perf_counter() - started, 2))
    best = {name: min(s) for name, s in samples.items()}
    ratios = {f"{name}_vs_transformers": round(best[name] / best["transformers"], 2) for name in commands}
    return {"best_s": best, "samples_s": samples, **ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--graphs", action="store_true", help="also jit.trace + freeze and torch.compile")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/hf_precision.json")
    parser.add_argument("--append", action="store_true", help="add this run to those already in --out")
    args = parser.parse_args(argv)

    from unified_nlp import cpu

    record = {**provenance(), "cpu_flags": sorted(f for f in cpu.flags() if "avx512" in f or "amx" in f)}
    record["fast_precisions"] = list(cpu.fast_precisions())
    record["throughput"] = throughput(args.threads, args.repeats)
    print(json.dumps(record["throughput"], indent=1), flush=True)
    if args.graphs:
        from hf_graphs import graphs

        record["graphs"] = graphs(args.threads, args.repeats)
        print(json.dumps(record["graphs"], indent=1), flush=True)
    record["cold_start"] = cold_start(args.cold_runs)
    print(json.dumps(record["cold_start"], indent=1))
    record["load_average_end"] = provenance()["load_average"]["end"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.out.is_file():  # runs on a shared machine are noisy: keep several side by side
        earlier = json.loads(args.out.read_text(encoding="utf-8"))
        record = {"runs": earlier.get("runs", [earlier]) + [record]}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
