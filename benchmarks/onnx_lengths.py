"""Time ONNX exports of one model against each other at several input lengths: texts/s of
plain onnxruntime sessions (every graph optimisation, --threads intra-op threads) on random
token ids, the same inputs for every model, best of --repeats rounds taken in turn.

    .venv/bin/python benchmarks/onnx_lengths.py unfused=OLD/model.onnx fused=NEW/model.onnx \\
        --out benchmarks/results/precision/attention-fusion.md

Used to measure attention fusion: OLD is an export of unified-nlp-onnxruntime's
EXPORT_VERSION 1 (commit df46f73, attention unfused), NEW one of the current version.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

SHAPES = ((32, 32), (128, 16), (256, 8), (512, 4))  # (tokens, batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="NAME=path/to/model.onnx")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    sessions = {}
    for item in args.models:
        name, _, path = item.partition("=")
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        sessions[name] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    lines = [
        f"texts/s, random token ids, half of each batch padded to half length, {args.threads} threads, "
        f"best of {args.repeats} rounds, {time.strftime('%Y-%m-%d')}",
        "",
        "| tokens | batch | " + " | ".join(sessions) + " |",
        "| ---: | ---: | " + " | ".join("---:" for _ in sessions) + " |",
    ]
    for tokens, batch in SHAPES:
        ids = rng.integers(1000, 20000, (batch, tokens)).astype(np.int64)
        mask = np.ones_like(ids)
        mask[batch // 2 :, tokens // 2 :] = 0
        best = dict.fromkeys(sessions, 0.0)
        for _ in range(args.repeats):
            for name, session in sessions.items():
                feeds = {
                    i.name: {"attention_mask": mask}.get(i.name, ids * 0 if i.name == "token_type_ids" else ids)
                    for i in session.get_inputs()
                }
                session.run(["logits"], feeds)
                started = time.perf_counter()
                for _ in range(3):
                    session.run(["logits"], feeds)
                best[name] = max(best[name], 3 * batch / (time.perf_counter() - started))
        lines.append(f"| {tokens} | {batch} | " + " | ".join(f"{v:.1f}" for v in best.values()) + " |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
