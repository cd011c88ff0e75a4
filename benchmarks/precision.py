"""Precision run: each (backend, precision) on all 872 SST-2 dev sentences: accuracy, label
agreement with the same backend at fp32, max |logit difference| and speed.

    .venv/bin/python benchmarks/precision.py --out benchmarks/results/precision

Speed: texts/s of `clf.logits` over the whole dev set (the library's batching, batch 32,
--threads framework threads), best of --repeats passes after one warm-up pass, every
configuration in this one process, one after the other. Then the same at longer inputs
(--lengths: dev sentences joined into texts of about that many tokens, --long-texts of
them, batch 8), where attention's share of the work grows with the length.

Ceilings: 1024x1024 GEMM rates on this CPU at fp32 (the faster of numpy and torch), bf16 and
int8 (torch), on --threads threads, before the runs; each row's useful FLOP/s
(unified_nlp.bench.flops) as a share of its own precision's rate.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from recorded import write_results

RUNS = (
    ("huggingface", "fp32"),
    ("onnxruntime", "fp32"),
    ("onnxruntime", "int8"),
    ("paddlenlp", "fp32"),
    ("paddlenlp", "bf16"),  # where the CPU has bf16 dot products; skipped (and said) elsewhere
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", default="128,256,512", help="token lengths of the long-text rows ('' for none)")
    parser.add_argument("--long-texts", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/precision"))
    args = parser.parse_args(argv)

    import numpy as np

    import unified_nlp as un
    from unified_nlp.benchdata import read_tsv, sst2_path
    from unified_nlp.metrics import label_ids

    texts, labels = read_tsv(sst2_path("dev"))
    lengths = [int(n) for n in args.lengths.split(",") if n.strip()]
    long_texts: dict[int, list[str]] = {}
    from unified_nlp.bench.flops import ceiling_fraction, encoder_flops_per_token
    from unified_nlp.bench.references import CEILING_KEYS, matmul_ceiling
    from unified_nlp.errors import InvalidInputError
    from unified_nlp.resolve import default_model_dir

    ceiling = matmul_ceiling(args.threads, lambda _: None)
    print(json.dumps({key: ceiling.get(key) for key in CEILING_KEYS.values()}), flush=True)
    config = json.loads((default_model_dir() / "config.json").read_text(encoding="utf-8"))
    rows, fp32, skipped = [], {}, []
    for backend, precision in RUNS:
        try:
            clf = un.load_classifier("default", backend=backend, precision=precision, num_threads=args.threads)
        except InvalidInputError as e:  # a precision this backend does not run on this CPU
            skipped.append(f"{backend} {precision}: {e}")
            continue
        dev_tokens = float(clf.tokenizer(texts).attention_mask.sum(axis=1).mean())
        logits = clf.logits(texts, batch_size=32)  # warm-up, and the figures
        best = _best_seconds(clf, texts, 32, args.repeats)
        if not long_texts:
            long_texts = {n: _texts_of_about(clf.tokenizer, texts, n, args.long_texts) for n in lengths}
        by_length = {}
        for n, batch in long_texts.items():
            clf.logits(batch, batch_size=8)
            tokens = float(clf.tokenizer(batch).attention_mask.sum(axis=1).mean())
            by_length[n] = {
                "tokens": round(tokens, 1),
                "texts_per_second": round(len(batch) / _best_seconds(clf, batch, 8, args.repeats), 2),
            }
        y = label_ids(labels, clf.labels)
        if precision == "fp32":
            fp32[backend] = logits
        ref = fp32.get(backend, logits)
        rows.append(
            {
                "backend": backend,
                "precision": precision,
                "accuracy": float((logits.argmax(1) == y).mean()),
                "agreement_with_fp32": float((logits.argmax(1) == ref.argmax(1)).mean()),
                "max_abs_logit_diff_vs_fp32": float(np.abs(logits - ref).max()),
                "texts_per_second": round(len(texts) / best, 1),
                "share_of_ceiling": ceiling_fraction(
                    len(texts) / best * dev_tokens,
                    encoder_flops_per_token(config, dev_tokens),
                    ceiling.get(CEILING_KEYS[precision]),
                ),
                "long_texts": by_length,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["texts_per_second"]
    lines = [
        f"SST-2 dev, 872 sentences, batch 32, {args.threads} threads, best of {args.repeats}, {time.strftime('%Y-%m-%d')}",
        "",
        f"GEMM ceilings (1024x1024, {args.threads} threads, the best of the installed libraries): "
        + ", ".join(
            f"{p} {ceiling.get(key, float('nan')):.0f} {'GOP/s' if p == 'int8' else 'GFLOP/s'} "
            f"({ceiling.get(key + '_library', '-')})"
            for p, key in CEILING_KEYS.items()
        ),
        "",
        "| backend | precision | accuracy | label agreement with fp32 | max abs logit diff vs fp32 | texts/s | vs huggingface fp32 "
        "| share of its precision's ceiling |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        share = "-" if r["share_of_ceiling"] is None else f"{r['share_of_ceiling']:.0%}"
        lines.append(
            f"| {r['backend']} | {r['precision']} | {r['accuracy']:.4f} | {r['agreement_with_fp32']:.2%} | "
            f"{r['max_abs_logit_diff_vs_fp32']:.1e} | {r['texts_per_second']:.1f} | {r['texts_per_second'] / base:.2f}x "
            f"| {share} |"
        )
    lines += [f"Not run: {line}" for line in skipped]
    if lengths:
        lines += [
            "",
            f"Longer texts: SST-2 dev sentences joined, {args.long_texts} texts per length, batch 8, texts/s (mean tokens per text)",
            "",
            "| backend | precision | " + " | ".join(f"~{n} tokens" for n in lengths) + " |",
            "| --- | --- | " + " | ".join("---:" for _ in lengths) + " |",
        ]
        for r in rows:
            cells = [
                f"{r['long_texts'][n]['texts_per_second']:.2f} ({r['long_texts'][n]['tokens']:.0f})" for n in lengths
            ]
            lines.append(f"| {r['backend']} | {r['precision']} | " + " | ".join(cells) + " |")
    write_results(args.out, rows, lines, ceiling=ceiling, skipped=skipped)
    return 0


def _best_seconds(clf, texts: list[str], batch_size: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        clf.logits(texts, batch_size=batch_size)
        best = min(best, time.perf_counter() - started)
    return best


def _texts_of_about(tokenizer, sentences: list[str], tokens: int, count: int) -> list[str]:
    """`count` texts of about `tokens` tokens each (the model truncates at its maximum): dev
    sentences joined in order, each text starting where the previous one ended."""
    words = " ".join(sentences).split()
    per_word = tokenizer([" ".join(words[:200])]).attention_mask.sum() / 200  # tokens per word (under the 512 cap)
    size = max(1, int((tokens - 2) / per_word))
    return [" ".join(words[(i * size) % (len(words) - size) :][:size]) for i in range(count)]


if __name__ == "__main__":
    raise SystemExit(main())
