"""A real fine-tune of the two newest families, then the trained weights on every backend.

    .venv/bin/python benchmarks/new_families_finetune.py --out benchmarks/results/new-families-finetune

For DeBERTa-v2 (as v3: relative attention in log buckets, shared keys, no absolute
positions) and ModernBERT (alternating global and local layers, a window of --window
tokens): a fresh small config (hidden 128, 4 layers, 4 heads, intermediate 256, 128
positions) with a tokenizer of 4,000 entries trained on SST-2 train, written by transformers
5's save_pretrained (tests/checkpoints.py); then `fit` on --train-backend over the first
--rows of a seed-0 permutation of SST-2 train (one epoch, batch 32, AdamW lr --lr, 10%
linear warm-up then linear decay, seed 0), and `save`. The saved folder is then loaded on
every backend, and on transformers' own AutoModelForSequenceClassification (the
reference): accuracy on all 872 SST-2 dev sentences, label agreement and max |logit
difference| against transformers. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from recorded import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/checkpoints.py builds the fresh checkpoints

BACKENDS = ("huggingface", "tfhub", "paddlenlp", "onnxruntime")
NAMES = ("negative", "positive")
SIZES = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256)
VOCAB = 4000  # tokenizer entries, trained on SST-2 train


def fresh(arch: str, out: Path, corpus: list[str], window: int) -> Path:
    from tests.checkpoints import make_checkpoint

    config = dict(SIZES, max_position_embeddings=128, id2label=dict(enumerate(NAMES)))
    config["label2id"] = {n: i for i, n in enumerate(NAMES)}
    if arch == "modernbert":
        config |= dict(global_attn_every_n_layers=2, local_attention=window)
    return make_checkpoint(arch, out, num_labels=2, corpus=corpus, config=config, vocab_size=VOCAB, max_length=128)


def run_family(arch: str, args: argparse.Namespace, work: Path) -> list[dict]:
    import unified_nlp as un
    from tests.checkpoints import transformers_logits
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, labels = read_tsv(sst2_path("train"))
    pick = np.random.default_rng(0).permutation(len(texts))[: args.rows]
    dev_x, dev_y = read_tsv(sst2_path("dev"))
    dev_y = np.asarray(dev_y)
    start = fresh(arch, work / f"{arch}-fresh", texts, args.window)
    clf = un.load_classifier(start, backend=args.train_backend)
    history = clf.fit(
        [texts[i] for i in pick], [NAMES[labels[i]] for i in pick], batch_size=32, learning_rate=args.lr, seed=0
    )
    trained = clf.save(work / f"{arch}-trained")
    want = transformers_logits(trained, dev_x, batch_size=32)
    rows = [
        {
            "family": arch,
            "backend": "transformers",
            "role": "reference",
            "dev_accuracy": round(float((want.argmax(1) == dev_y).mean()), 4),
        }
    ]
    for backend in BACKENDS:
        row = {"family": arch, "backend": backend, "role": "trained" if backend == args.train_backend else "loaded"}
        try:
            got = un.load_classifier(trained, backend=backend).logits(dev_x, batch_size=32)
        except un.UnifiedNLPError as exc:
            rows.append(row | {"refused": str(exc).splitlines()[0][:160]})
            continue
        row |= {
            "dev_accuracy": round(float((got.argmax(1) == dev_y).mean()), 4),
            "label_agreement": round(float((got.argmax(1) == want.argmax(1)).mean()), 4),
            "max_abs_logit_diff": float(np.abs(got - want).max()),
        }
        if backend == args.train_backend:
            row |= {"steps": history["steps"], "train_seconds": round(history["seconds"], 1)}
        rows.append(row)
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| family | backend | dev accuracy | labels as transformers | max abs logit diff |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['family']} | {r['backend']} | refused: {r['refused']} | | |")
            continue
        name = r["backend"] + (f" (trained, {r['steps']} steps)" if "steps" in r else "")
        agree = f"{100 * r['label_agreement']:.2f}%" if "label_agreement" in r else "-"
        diff = f"{r['max_abs_logit_diff']:.1e}" if "max_abs_logit_diff" in r else "-"
        lines.append(f"| {r['family']} | {name} | {r['dev_accuracy']:.4f} | {agree} | {diff} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/new-families-finetune")
    parser.add_argument("--train-backend", default="huggingface")
    parser.add_argument("--rows", type=int, default=12800, help="training rows (steps = rows / 32)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--window", type=int, default=16, help="ModernBERT's local attention window")
    parser.add_argument("--families", default="deberta-v2,modernbert")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="new-families-") as work:
        for arch in args.families.split(","):
            rows += run_family(arch, args, Path(work))
    seconds = round(time.perf_counter() - started, 1)
    write_results(
        args.out,
        rows,
        table(rows),
        train_backend=args.train_backend,
        rows_trained=args.rows,
        learning_rate=args.lr,
        modernbert_window=args.window,
        config=SIZES,
        vocab_size=VOCAB,
        seconds=seconds,
    )


if __name__ == "__main__":
    main()
