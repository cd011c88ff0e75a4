"""Recorded fit run per backend: validation, early stopping, keep_best and a crash resumed.

    .venv/bin/python benchmarks/fit_run.py --out benchmarks/results/fit

For each backend: MiniLM with a fresh BertForSequenceClassification head (CLS pooler +
classifier, drawn from seed 0 in numpy, so every backend starts from the same weights),
trained on the first --rows of a seed-0 permutation of SST-2 train and validated on the
next --val-rows of it (SST-2 dev stays unseen until the end): batch 32, AdamW lr 1e-4,
10% linear warm-up then linear decay, dropout 0, up to --epochs epochs, validation every
--eval-every steps, early stopping on the validation loss (patience --patience),
keep_best, a checkpoint every --eval-every steps.

The run is crashed for real: this script starts it in a child process, watches its
checkpoint folder and sends SIGKILL as soon as the checkpoint of step --kill-after is
complete; a second child resumes it (resume=True) to the end, then scores the restored
best weights on all 872 SST-2 dev sentences. With --reference BACKEND[,...] the same run
also goes uninterrupted on those backends, and its final weights are compared with the
resumed run's. Writes results.json, results.md and validation.png under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recorded import provenance

BACKENDS = ("huggingface", "tfhub", "paddlenlp")


def options(args: argparse.Namespace, checkpoint_dir: Path | None) -> dict:
    out = dict(
        epochs=args.epochs,
        batch_size=32,
        learning_rate=1e-4,
        seed=0,
        eval_every=args.eval_every,
        early_stopping={"metric": "loss", "patience": args.patience},
        keep_best=True,
    )
    if checkpoint_dir is not None:
        out.update(checkpoint_dir=str(checkpoint_dir), checkpoint_every=args.eval_every)
    return out


def data(args: argparse.Namespace):
    import numpy as np

    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, labels = read_tsv(sst2_path("train"))
    pick = np.random.default_rng(0).permutation(len(texts))
    train = [texts[i] for i in pick[: args.rows]], [labels[i] for i in pick[: args.rows]]
    held = pick[args.rows : args.rows + args.val_rows]
    return train, ([texts[i] for i in held], [labels[i] for i in held])


def child(args: argparse.Namespace) -> int:
    """One process of a run: mode "crash" (killed from outside), "resume" or "reference"."""
    import numpy as np

    import unified_nlp as un
    from unified_nlp.benchdata import read_tsv, sst2_path

    work = args.work / args.backend
    started = time.perf_counter()
    clf = un.load_classifier("minilm", backend=args.backend, labels=["NEGATIVE", "POSITIVE"])
    loaded = time.perf_counter() - started
    train, validation = data(args)
    ckpt = None if args.mode == "reference" else work / "checkpoints"
    history = clf.fit(*train, validation=validation, resume=args.mode == "resume", **options(args, ckpt))
    if args.mode == "crash":
        return 3  # the parent's SIGKILL should have come first
    dev_x, dev_y = read_tsv(sst2_path("dev"))
    report = clf.evaluate(dev_x, dev_y)
    np.savez(work / f"{args.mode}-weights.npz", **clf.model.state_dict())
    keep = ("loss", "eval", "best", "stopped_early", "restored_best", "resumed_from", "steps", "seconds")
    record = {k: history[k] for k in keep}
    record.update(
        load_seconds=round(loaded, 1),
        train_texts_per_second=round(history["texts_per_second"], 1),
        dev_accuracy=report["accuracy"],
        dev_macro_f1=report["macro_f1"],
        runs=clf.runs,
    )
    (work / f"{args.mode}.json").write_text(json.dumps(record) + "\n")
    return 0


def spawn(args: argparse.Namespace, backend: str, mode: str) -> subprocess.Popen:
    argv = [sys.executable, __file__, "--child", mode, "--backend", backend, "--out", str(args.out)]
    argv += ["--work", str(args.work)]
    for name in ("rows", "val_rows", "epochs", "eval_every", "patience"):
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return subprocess.Popen(argv)


def crash_and_resume(args: argparse.Namespace, backend: str) -> dict:
    work = args.work / backend
    ckpt = work / "checkpoints"
    shutil.rmtree(ckpt, ignore_errors=True)  # a new run, not a resume of an older one
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = spawn(args, backend, "crash")
    killed_at = None
    while proc.poll() is None:
        steps = [int(p.name.split("-")[1]) for p in ckpt.glob("checkpoint-*")] if ckpt.is_dir() else []
        if steps and max(steps) >= args.kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = max(steps)
            break
        time.sleep(0.2)
    if killed_at is None:
        return {"backend": backend, "error": f"the run ended (exit {proc.returncode}) before a checkpoint to kill at"}
    crashed = time.perf_counter() - started
    resumed = spawn(args, backend, "resume")
    if resumed.wait() != 0:
        return {"backend": backend, "error": f"the resumed run failed (exit {resumed.returncode})"}
    record = json.loads((work / "resume.json").read_text())
    record.update(backend=backend, killed_after_checkpoint=killed_at, crashed_process_seconds=round(crashed, 1))
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    return record


def reference(args: argparse.Namespace, backend: str, resumed: dict) -> dict:
    import numpy as np

    work = args.work / backend
    work.mkdir(parents=True, exist_ok=True)
    if spawn(args, backend, "reference").wait() != 0:
        return {"backend": backend, "error": "the uninterrupted run failed"}
    record = json.loads((work / "reference.json").read_text())
    row = {"backend": backend, "dev_accuracy": record["dev_accuracy"], "steps": record["steps"]}
    if "error" not in resumed:
        with np.load(work / "reference-weights.npz") as a, np.load(work / "resume-weights.npz") as b:
            row["max_abs_weight_diff_vs_resumed"] = float(max(np.max(np.abs(a[k] - b[k])) for k in a.files))
        row["same_history"] = record["loss"] == resumed["loss"] and record["eval"] == resumed["eval"]
    return row


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for r in results:
        if "eval" not in r:
            continue
        steps = [e["step"] for e in r["eval"]]
        (line,) = left.plot(steps, [e["loss"] for e in r["eval"]], marker="o", label=r["backend"])
        right.plot(steps, [e["accuracy"] for e in r["eval"]], marker="o", color=line.get_color(), label=r["backend"])
    for r in results[:1]:
        if "killed_after_checkpoint" in r:
            for ax in (left, right):
                ax.axvline(r["killed_after_checkpoint"], color="grey", ls="--", lw=1)
                ax.text(r["killed_after_checkpoint"], ax.get_ylim()[1], " SIGKILL, resumed", va="top", fontsize=8)
        if r.get("best"):
            for ax in (left, right):
                ax.axvline(r["best"]["step"], color="green", ls=":", lw=1)
    left.set(xlabel="optimizer step", ylabel="validation loss", title="validation loss (early stopping on it)")
    right.set(xlabel="optimizer step", ylabel="validation accuracy", title="validation accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def markdown(results: list[dict], references: list[dict]) -> str:
    lines = [
        "| backend | runs | killed after checkpoint | steps (of max) | stopped early | best step (val loss) "
        "| restored | train texts/s | dev accuracy | dev macro F1 |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | failed: {r['error']} |" + " |" * 8)
            continue
        lines.append(
            f"| {r['backend']} | {r['runs']} | {r['killed_after_checkpoint']} | {r['steps']} ({r['max_steps']}) | "
            f"{'yes' if r['stopped_early'] else 'no'} | {r['best']['step']} ({r['best']['value']:.4f}) | "
            f"{r['restored_best']} | {r['train_texts_per_second']:.0f} | {r['dev_accuracy']:.4f} | "
            f"{r['dev_macro_f1']:.4f} |"
        )
    if references:
        lines += ["", "| uninterrupted run on | dev accuracy | steps | same history | max abs weight diff vs resumed |"]
        lines.append("| --- | ---: | ---: | --- | ---: |")
        for r in references:
            if "error" in r:
                lines.append(f"| {r['backend']} | failed: {r['error']} | | | |")
                continue
            lines.append(
                f"| {r['backend']} | {r['dev_accuracy']:.4f} | {r['steps']} | {r.get('same_history')} | "
                f"{r.get('max_abs_weight_diff_vs_resumed', float('nan')):.1e} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--reference", default="huggingface", help="backends that also run uninterrupted")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--val-rows", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=16)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--kill-after", type=int, default=32, help="SIGKILL once this step's checkpoint exists")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fit"))
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "unified_nlp_fit_run",
        help="checkpoints and final weights (about 0.3 GB per backend), kept out of --out",
    )
    parser.add_argument("--child", choices=("crash", "resume", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out, args.work = args.out.absolute(), args.work.absolute()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child:
        args.mode = args.child
        return child(args)
    max_steps = -(-args.rows // 32) * args.epochs
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        record = crash_and_resume(args, backend)
        record["max_steps"] = max_steps
        results.append(record)
        print(markdown(results, []), flush=True)
    by_backend = {r["backend"]: r for r in results}
    wanted = [b.strip() for b in args.reference.split(",") if b.strip()]
    refs = [reference(args, b, by_backend.get(b, {"error": "not run"})) for b in wanted]
    (args.out / "results.json").write_text(
        json.dumps(
            {
                **provenance(),
                "results": results,
                "uninterrupted": refs,
            },
            indent=1,
        )
        + "\n"
    )
    (args.out / "results.md").write_text(markdown(results, refs))
    plot(results, args.out / "validation.png")
    print(markdown(results, refs))
    return 0 if all("error" not in r for r in results + refs) else 1


if __name__ == "__main__":
    sys.exit(main())
