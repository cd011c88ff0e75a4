"""Recorded fine-tuning run per backend: the same fit() call on all three stacks.

    .venv/bin/python benchmarks/finetune.py --rows 12000 --out benchmarks/results/finetune

Each backend runs in its own fresh process: the default model (MiniLM encoder +
the SST-2 head), or with --model minilm the MiniLM encoder as a transformers
BertForSequenceClassification with a fresh head (its own pooler + classifier), full fine-tuning (encoder not frozen), on the first --rows of a
seed-0 permutation of SST-2 train, one epoch, batch 32, AdamW lr 5e-5 with 10%
linear warm-up then linear decay, weight decay 0.01, dropout 0, seed 0; then
accuracy on all 872 SST-2 dev sentences. Then every trained model is reloaded
on every other backend and its dev predictions compared (label agreement).
Writes results.json, results.md and loss_curves.png under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from recorded import provenance

BACKENDS = ("huggingface", "tfhub", "paddlenlp")


def train_one(backend: str, rows: int, out: Path, epochs: int, learning_rate: float, model: str = "default") -> dict:
    import numpy as np

    import unified_nlp as un
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, labels = read_tsv(sst2_path("train"))
    pick = np.random.default_rng(0).permutation(len(texts))[:rows]
    train_x, train_y = [texts[i] for i in pick], [labels[i] for i in pick]
    dev_x, dev_y = read_tsv(sst2_path("dev"))
    started = time.perf_counter()
    # "minilm": the bare MiniLM encoder with a fresh BertForSequenceClassification head (CLS pooler +
    # classifier), drawn from seed 0 in numpy, so every backend starts from the same weights
    labels = ["NEGATIVE", "POSITIVE"] if model == "minilm" else None
    clf = un.load_classifier(model, backend=backend, labels=labels)
    before = clf.evaluate(dev_x, dev_y)["accuracy"]
    history = clf.fit(train_x, train_y, epochs=epochs, batch_size=32, learning_rate=learning_rate, seed=0)
    report = clf.evaluate(dev_x, dev_y)
    saved = clf.save(out / f"model-{backend}")
    return {
        "backend": backend,
        "runs": clf.runs,
        "rows": rows,
        "model": model,
        "head": clf.spec.head,
        "epochs": epochs,
        "steps": history["steps"],
        "train_seconds": round(history["seconds"], 1),
        "train_texts_per_second": round(history["texts_per_second"], 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "dev_accuracy_before": before,
        "dev_accuracy": report["accuracy"],
        "dev_macro_f1": report["macro_f1"],
        "loss": history["loss"],
        "first_step_loss": history["loss"][0],
        "second_step_loss": history["loss"][1],
        "saved": os.path.relpath(saved),  # relative: results are committed
    }


def cross_check(results: list[dict]) -> list[dict]:
    """Reload each trained model on every backend: SST-2 dev label agreement."""
    import unified_nlp as un
    from unified_nlp.benchdata import read_tsv, sst2_path

    dev_x = read_tsv(sst2_path("dev"))[0]
    rows = []
    for r in results:
        if "error" in r:
            continue
        reference = un.load_classifier(r["saved"], backend=r["backend"])
        for target in BACKENDS:
            other = un.load_classifier(r["saved"], backend=target)
            report = un.compare(reference, other, dev_x)
            rows.append(
                {
                    "trained_on": r["backend"],
                    "served_on": target,
                    "label_agreement": report.argmax_agreement,
                    "logits_max_abs_diff": report.logits_max_abs_diff,
                }
            )
    return rows


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for r in results:
        if "loss" not in r:
            continue
        loss = np.asarray(r["loss"])
        window = 10
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(len(loss)), loss, alpha=0.15)
        ax.plot(
            np.arange(window - 1, len(loss)),
            smooth,
            label=f"{r['backend']} (dev acc {r['dev_accuracy']:.3f})",
            color=ax.lines[-1].get_color(),
        )
    ax.set_xlabel("optimisation step (batch 32)")
    ax.set_ylabel("training loss (cross-entropy)")
    head = "CLS pooler head" if results[0].get("head") == "native" else "mean-pooling head"
    ax.set_title(f"Fine-tuning MiniLM-L6 ({head}) on SST-2 ({results[0].get('rows', '?')} rows), same seed everywhere")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def markdown(results: list[dict], cross: list[dict]) -> str:
    lines = [
        "| backend | runs | rows | steps | train time | texts/s | dev acc before | dev acc after | macro F1 | first-step loss | second-step loss |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | failed: {r['error']} |" + " |" * 9)
            continue
        lines.append(
            f"| {r['backend']} | {r['runs']} | {r['rows']:,} | {r['steps']} | {r['train_seconds']:.0f} s | "
            f"{r['train_texts_per_second']:.0f} | {r['dev_accuracy_before']:.4f} | {r['dev_accuracy']:.4f} | "
            f"{r['dev_macro_f1']:.4f} | {r['first_step_loss']:.6f} | {r['second_step_loss']:.6f} |"
        )
    if cross:
        lines += [
            "",
            "| trained on \\ served on | " + " | ".join(BACKENDS) + " |",
            "| --- |" + " ---: |" * len(BACKENDS),
        ]
        for source in BACKENDS:
            cells = {c["served_on"]: c for c in cross if c["trained_on"] == source}
            if cells:
                lines.append(
                    f"| {source} | "
                    + " | ".join(
                        f"{cells[t]['label_agreement']:.2%} (max Δlogit {cells[t]['logits_max_abs_diff']:.1e})"
                        if t in cells
                        else "-"
                        for t in BACKENDS
                    )
                    + " |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--rows", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/finetune"))
    parser.add_argument(
        "--model",
        default="default",
        choices=("default", "minilm"),
        help="default: the SST-2 model (mean pooling); minilm: MiniLM as BertForSequenceClassification, fresh head",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one:
        result = train_one(args.one, args.rows, args.out.absolute(), args.epochs, args.learning_rate, args.model)
        (args.out / f"{args.one}.json").write_text(json.dumps(result) + "\n")
        return 0
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                backend,
                "--rows",
                str(args.rows),
                "--epochs",
                str(args.epochs),
                "--learning-rate",
                str(args.learning_rate),
                "--out",
                str(args.out),
                "--model",
                args.model,
            ]
        )
        path = args.out / f"{backend}.json"
        if done.returncode == 0 and path.is_file():
            results.append(json.loads(path.read_text()))
            path.unlink()
        else:
            results.append({"backend": backend, "error": f"exit code {done.returncode}"})
    cross = cross_check(results)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                **provenance(),
                "results": results,
                "cross_backend": cross,
            },
            indent=1,
        )
        + "\n"
    )
    (args.out / "results.md").write_text(markdown(results, cross))
    plot(results, args.out / "loss_curves.png")
    print(markdown(results, cross))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
