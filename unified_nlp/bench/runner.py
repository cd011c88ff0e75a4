"""`unified-nlp bench` and `unified_nlp.bench.run`: plan the targets, launch each in
its own fresh process (launcher.py), one at a time, then derive the comparisons
and write the report (report.py).

Order of the targets: the matmul ceiling, then each backend, with the raw torch
call right after the huggingface backend (the pair whose difference is our
overhead, measured as close in time as possible), then the transformers pipeline.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .contention import OtherCPU, unreliable_because
from .flops import ceiling_fraction, encoder_flops_per_token, model_summary
from .launcher import interpreter, launch
from .scenario import count_steps
from .tracker import load_average, machine, now

DEFAULT_BATCH_SIZES = (1, 8, 32, 128)
QUICK_BATCH_SIZES = (1, 32)
DEFAULT_REPEAT = 3
QUICK_REPEAT = 1
QUICK_TEXTS = 64  # --quick keeps 64 texts spread over the data (every 13th of SST-2 dev): the same lengths
PIPELINE_BATCH = 32
DEFAULT_TIMEOUT = 900.0


def _split(value: str | Sequence | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _registry_backends() -> list[str]:
    from unified_nlp import registry

    return registry.backend_names()


def _canonical(name: str) -> str:
    from unified_nlp import registry
    from unified_nlp.errors import UnknownBackendError

    try:
        return registry.canonical_name(name)
    except UnknownBackendError:
        return name  # reported as a row when its turn comes


def _data(path: str | None, pairs: bool = False) -> tuple[list, list, str]:
    from unified_nlp.benchdata import read_lines, read_pairs, read_tsv, sst2_path

    if pairs:  # sentence pairs cross the process boundary as JSON lists [text, text_pair]
        if path is None:
            raise ValueError(
                "--pairs needs --data: a TSV sentence1<TAB>sentence2<TAB>label, or text<TAB>text_pair lines"
            )
        if str(path).endswith(".tsv"):
            texts, labels = read_tsv(path, pairs=True)
            return [list(t) for t in texts], labels, str(path)
        return [list(t) for t in read_pairs(path)], [], str(path)
    if path is None:
        source = sst2_path("dev")
        texts, labels = read_tsv(source)
        return texts, labels, f"SST-2 dev ({source.name})"
    if str(path).endswith(".tsv"):
        texts, labels = read_tsv(path)
        return texts, labels, str(path)
    return [t for t in read_lines(path) if t.strip()], [], str(path)


def plan(
    backends: Sequence[str],
    model_dir: Path,
    texts: list[str],
    labels: list,
    batch_sizes: list[int],
    repeat: int,
    threads: int,
    max_length: int | None,
    reference: bool,
    quick: bool = False,
) -> list[dict[str, Any]]:
    """One configuration per target, in launch order (`quick`: no transformers pipeline
    row and no second ceiling, the two slowest reference processes)."""
    common = {
        "model_dir": str(model_dir),
        "texts": texts,
        "labels": labels,
        "threads": threads,
        "repeat": repeat,
        "max_length": max_length,
        "ceiling_seconds": 1.5 if repeat > 1 else 0.5,
    }
    targets: list[dict[str, Any]] = []
    if reference:
        targets.append({**common, "kind": "ceiling", "name": "matmul-ceiling", "texts": [], "labels": []})
    for name in backends:
        targets.append({**common, "kind": "backend", "name": name, "batch_sizes": batch_sizes})
        # the reference rows beside the backend they measure: the same model with no layer of ours
        kind = {"huggingface": "torch-raw", "onnxruntime": "onnx-plain"}.get(name)
        if reference and kind and not (quick and kind == "onnx-plain"):
            targets.append({**common, "kind": kind, "name": kind, "batch_sizes": batch_sizes, "latency": False})
    if reference and not quick:
        targets.append(
            {
                **common,
                "kind": "hf-pipeline",
                "name": "hf-pipeline",
                "batch_sizes": [PIPELINE_BATCH],
                "latency": False,
                "tokenizer": False,
            }
        )
        # the ceiling again at the end: the machine's best, in case other processes took cores at the start
        targets.append({**targets[0], "name": "matmul-ceiling-end"})
    return targets


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True, leave=True)


def run(
    backends: str | Sequence[str] | None = None,  # None: every backend the registry knows
    model: str = "default",
    batch_sizes: str | Sequence[int] | None = None,
    max_length: int | None = None,
    data: str | None = None,
    repeat: int | None = None,
    threads: int | None = None,
    out: str | Path | None = None,
    quick: bool = False,
    reference: bool = True,
    progress: bool = True,
    timeout: float | None = None,
    texts_limit: int | None = None,
    pairs: bool = False,
) -> dict[str, Any]:
    """Benchmark backends side by side, each in its own fresh process; returns the results
    dict and, with `out`, writes results.json/.csv/.md and PNG plots there.

    A backend that is unknown, missing or fails is a row with its status and error,
    never an exception.

    Examples:
        >>> from unified_nlp import bench
        >>> results = bench.run(backends="huggingface", quick=True, out="bench-out/")  # doctest: +SKIP
        >>> results["runs"][1]["throughput"][0]["texts_per_s"]                          # doctest: +SKIP
    """
    from unified_nlp.resolve import resolve
    from unified_nlp.threads import default_threads

    threads = int(threads or default_threads())
    started_wall, started, load_start = now(), time.perf_counter(), load_average()
    names = [_canonical(n) for n in _split(backends)] or _registry_backends()
    sizes = [int(b) for b in _split(batch_sizes)] or list(QUICK_BATCH_SIZES if quick else DEFAULT_BATCH_SIZES)
    if any(b < 1 for b in sizes):
        raise ValueError(f"batch sizes must be positive, got {sizes}")
    repeat = int(repeat or (QUICK_REPEAT if quick else DEFAULT_REPEAT))
    texts, labels, source = _data(data, pairs)
    if pairs:
        reference = False  # the reference rows (raw torch call, pipeline) run the default model's single texts
    texts, labels = _subset(texts, labels, quick, texts_limit)
    if not texts:
        raise ValueError(f"no texts in {source}")
    model_dir = _bench_folder(resolve(model).absolute())
    targets = plan(names, model_dir, texts, labels, sizes, repeat, int(threads), max_length, reference, quick)
    timeout = float(timeout or DEFAULT_TIMEOUT)
    with OtherCPU() as other:  # what other processes take while we measure
        runs = _launch_all(targets, int(threads), timeout, progress)

    results = {
        "schema": 1,
        "created": started_wall,
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        "config": {
            "backends": names,
            "model": str(model),
            "model_dir": str(model_dir),
            "data": source,
            "n_texts": len(texts),
            "pairs": bool(pairs),
            "batch_sizes": sizes,
            "repeat": repeat,
            "threads": int(threads),
            "max_length": max_length,
            "quick": bool(quick),
            "reference": bool(reference),
            "throughput_statistic": "texts / fastest of `repeat` timed passes (after one warm-up pass)",
        },
        "machine": {
            **machine(),
            "load_average_start": load_start,
            "load_average_end": load_average(),
            "other_processes_cpu_cores": other.figures(),
        },
        "model": model_summary(model_dir),
        "runs": runs,
    }
    derive(results)
    results["wall_s"] = time.perf_counter() - started
    if out is not None:
        from .report import write_all

        results["files"] = write_all(results, Path(out))
    return results


def _subset(texts: list, labels: list, quick: bool, texts_limit: int | None) -> tuple[list, list]:
    """--quick: QUICK_TEXTS texts spread over the data; `texts_limit`: the first ones."""
    if quick and len(texts) > QUICK_TEXTS:
        every = len(texts) // QUICK_TEXTS
        texts, labels = texts[::every][:QUICK_TEXTS], labels[::every][:QUICK_TEXTS]
    if texts_limit:
        texts, labels = texts[:texts_limit], labels[:texts_limit]
    return texts, labels


def _launch_all(targets: list[dict[str, Any]], threads: int, timeout: float, progress: bool) -> list[dict[str, Any]]:
    """Each target in its own process, one at a time, under one progress bar; one row each."""
    bar = _progress(sum(count_steps(t) for t in targets), progress)
    runs: list[dict[str, Any]] = []
    try:
        for cfg in targets:
            runs.append(_launch_one(cfg, threads, timeout, bar))
    finally:
        if bar is not None:
            bar.close()
    return runs


def _launch_one(cfg: dict[str, Any], threads: int, timeout: float, bar) -> dict[str, Any]:
    base = {"name": cfg["name"], "kind": cfg["kind"]}
    if bar is not None:
        bar.set_description(cfg["name"])
    expected, seen = count_steps(cfg), 0
    try:
        python, chosen = interpreter(cfg["kind"], cfg["name"])
    except Exception as e:  # unknown or missing backend: a row, not a crash
        row = {**base, "status": "missing", "error": f"{type(e).__name__}: {e}"}
        if bar is not None:
            bar.update(expected)
        return row

    def on_event(event: dict[str, Any], name: str = cfg["name"]) -> None:
        nonlocal seen
        if bar is not None and "step" in event:
            seen += 1
            bar.set_description(f"{name}: {event['step']}")
            bar.update(1)

    result = launch(python, cfg, threads, timeout, on_event)
    if bar is not None and seen < expected:
        bar.update(expected - seen)
    shown = os.path.relpath(python) if os.path.abspath(python).startswith(os.getcwd() + os.sep) else python
    return {**base, **result, "python": shown, "environment_chosen": chosen}  # results get committed


def _row(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((r for r in results["runs"] if r.get("name") == name and r.get("status") == "ok"), None)


def _at(run: dict[str, Any] | None, batch_size: int) -> float | None:
    if not run:
        return None
    return next((t["texts_per_s"] for t in run.get("throughput", []) if t["batch_size"] == batch_size), None)


def _bench_folder(path: Path) -> Path:
    """What the backends run: a native PaddleNLP or TF Hub folder that converts runs as its
    canonical folder (imported once into the store), so every row runs the same weights;
    one that cannot leave its stack runs as it is (its own backend only)."""
    from ..api import canonical_folder
    from ..errors import UnifiedNLPError
    from ..formats import PADDLE_NATIVE, SAVEDMODEL, detect

    found = detect(path)
    if found.format not in (PADDLE_NATIVE, SAVEDMODEL):
        return path
    try:
        return canonical_folder(found, for_backend="bench")
    except UnifiedNLPError:
        return path


def _ceiling(results: dict[str, Any], counted: list[dict[str, Any]]) -> float | None:
    """The fp32 ceiling in GFLOP/s: the best GEMM rate of the ceiling runs, raised to the best useful
    FLOP/s of a whole model where one ran faster (then `ceiling_raised_by` names it), so that no
    row reads above 100%. A model can beat the probe's GEMM: its library may not be installed in
    the probe's environment (Paddle's), or fused kernels do better on the model's shapes."""
    measured = [
        r["ceiling"]["gflops"]
        for r in results["runs"]
        if r.get("kind") == "ceiling" and r.get("status") == "ok" and r["ceiling"].get("gflops")
    ]
    gemm = max(measured, default=None)
    if gemm is None:
        return None
    results["gemm_ceiling_gflops"] = gemm
    rates = {
        r["name"]: max(t["tokens_per_s"] for t in r["throughput"]) * r["flops_per_token"] / 1e9
        for r in counted
        if r.get("throughput")
    }
    fastest = max(rates, key=rates.get, default=None)
    if fastest is not None and rates[fastest] > gemm:
        results["ceiling_raised_by"] = fastest
        return rates[fastest]
    return gemm


def derive(results: dict[str, Any]) -> None:
    """Ceiling fractions per row and batch size, and the comparisons the issue asks for."""
    config = results["model"]
    # a black-box SavedModel has no architecture to count FLOPs from
    counted = [r for r in results["runs"] if r.get("status") == "ok" and "tokens" in r] if config else []
    for run in counted:
        run["flops_per_token"] = encoder_flops_per_token(config, run["tokens"]["mean"])
    ceiling = results["ceiling_gflops"] = _ceiling(results, counted)
    for run in counted:
        fpt = run["flops_per_token"]
        if ceiling:
            run["ceiling_tokens_per_s"] = ceiling * 1e9 / fpt
            run["ceiling_texts_per_s"] = run["ceiling_tokens_per_s"] / run["tokens"]["mean"]
        for t in run.get("throughput", []):
            t["ceiling_fraction"] = ceiling_fraction(t["tokens_per_s"], fpt, ceiling)

    backends = [r for r in results["runs"] if r.get("kind") == "backend" and r.get("status") == "ok"]
    summary: dict[str, Any] = {}
    hf, raw, pipe = _row(results, "huggingface"), _row(results, "torch-raw"), _row(results, "hf-pipeline")
    for ours, plain, key in (
        (hf, raw, "huggingface_vs_torch_raw"),
        (_row(results, "onnxruntime"), _row(results, "onnx-plain"), "onnxruntime_vs_onnx_plain"),
    ):
        if ours and plain:
            summary[key] = {
                str(t["batch_size"]): t["texts_per_s"] / r
                for t in ours["throughput"]
                if (r := _at(plain, t["batch_size"]))
            }
    common = set.intersection(*({t["batch_size"] for t in r["throughput"]} for r in backends)) if backends else set()
    headline = PIPELINE_BATCH if PIPELINE_BATCH in common else max(common, default=None)
    rates = {r["name"]: _at(r, headline) for r in backends} if headline else {}
    if rates:
        fastest = max(rates, key=rates.get)
        summary["headline_batch_size"] = headline
        summary["fastest_backend"] = fastest
        summary["ratio_to_fastest"] = {k: v / rates[fastest] for k, v in rates.items()}
        if headline == PIPELINE_BATCH and pipe and _at(pipe, PIPELINE_BATCH):
            summary["best_backend_vs_pipeline_at_32"] = rates[fastest] / _at(pipe, PIPELINE_BATCH)
    fractions = {
        r["name"]: max((t.get("ceiling_fraction") or 0.0) for t in r["throughput"])
        for r in backends
        if r.get("throughput")
    }
    if ceiling and fractions:
        summary["best_ceiling_fraction"] = max(fractions.values())
        summary["ceiling_fraction_by_backend"] = fractions
    machine = results["machine"]
    reason = unreliable_because(
        machine.get("other_processes_cpu_cores"), machine.get("load_average_start"), machine.get("logical_cores") or 1
    )
    if reason:  # rows measured while others took the cores: kept as data, not compared
        summary = {"unreliable": reason}
    results["summary"] = summary


def default_out(base: Path | None = None) -> Path:
    """A new folder for one run: bench-results/YYYYmmdd-HHMMSS under `base` (the current
    folder), with a -2, -3 ... suffix if a run of the same second has it."""
    root = (base or Path.cwd()) / "bench-results"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out, n = root / stamp, 1
    while out.exists():
        n += 1
        out = root / f"{stamp}-{n}"
    return out


def main(args: argparse.Namespace) -> int:
    """Entry point of `unified-nlp bench` (see options.py for the arguments)."""
    results = run(
        backends=args.backends,
        model=args.model,
        batch_sizes=args.batch_sizes,
        max_length=args.max_length,
        data=args.data,
        repeat=args.repeat,
        threads=args.threads,
        out=args.out or default_out(),
        quick=args.quick,
        reference=not args.no_reference,
        progress=not args.no_progress,
        timeout=getattr(args, "timeout", None),
        texts_limit=getattr(args, "texts", None),
        pairs=getattr(args, "pairs", False),
    )
    from .report import markdown

    print(markdown(results))
    if results.get("files"):
        print(f"wrote {', '.join(results['files'])}", file=sys.stderr)
    failed = [r["name"] for r in results["runs"] if r.get("status") != "ok"]
    if failed:
        print(f"unified-nlp bench: not measured: {', '.join(failed)} (see the error column)", file=sys.stderr)
    return 0
