"""The measurements, the same for every subject (a backend through our layer, or a
reference row): load, first prediction, tokenizer alone, latency at batch 1,
throughput per batch size, accuracy, memory.

A subject is anything with `import_()`, `load()`, `predict_proba(texts, batch_size)`,
`tokenize(texts) -> real token count per text`, `labels` and `info()`; see
subjects.py and references.py. Only numpy and the standard library here: the
parent process imports this module to count progress steps.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .threads import fix_threads
from .tracker import cpu_seconds, load_average, peak_rss_mb, rss_mb

ACCURACY_BATCH = 32  # accuracy is read from the predictions of this batch size (or the largest measured)


class Subject(Protocol):
    labels: Sequence[str]

    def import_(self) -> None: ...
    def load(self) -> None: ...
    def predict_proba(self, texts: list[str], batch_size: int) -> np.ndarray: ...
    def tokenize(self, texts: list[str]) -> np.ndarray: ...
    def info(self) -> dict[str, Any]: ...


def count_steps(cfg: dict[str, Any]) -> int:
    """Progress steps `measure` reports for this configuration (the parent's bar total)."""
    if cfg["kind"] == "ceiling":
        return 3
    repeat = int(cfg["repeat"])
    steps = 2  # load, first prediction
    if cfg.get("tokenizer", True):
        steps += repeat
    if cfg.get("latency", True):
        steps += 1
    for bs in cfg["batch_sizes"]:
        steps += repeat + (0 if bs == 1 and cfg.get("latency", True) else 1)
    return steps


def summarize_ms(samples_s: Sequence[float]) -> dict[str, Any]:
    """Latency statistics in milliseconds: mean, stdev, p50/p90/p95/p99, min, max."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {
        "n": int(ms.size),
        "mean_ms": float(ms.mean()),
        "stdev_ms": float(statistics.stdev(ms)) if ms.size > 1 else 0.0,
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
    }


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    gc.collect()
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, cpu_seconds() - c0


def _label_indices(labels: Sequence[Any], names: Sequence[str]) -> np.ndarray | None:
    if not labels:
        return None
    if all(isinstance(x, (int, np.integer)) for x in labels):
        return np.asarray(labels, dtype=np.int64)
    index = {n: i for i, n in enumerate(names)}
    try:
        return np.asarray([index[str(x)] for x in labels], dtype=np.int64)
    except KeyError:
        return None


def _breakdown(subject: Subject, texts: list[str], batch_size: int) -> dict[str, Any]:
    """One untimed-for-throughput pass, split into tokenizer, model and the rest (our layer)."""
    watch = getattr(subject, "breakdown", None)
    if watch is None:
        _, total, _ = _timed(lambda: subject.predict_proba(texts, batch_size))
        return {"batch_size": batch_size, "total_s": total}
    with watch() as parts:
        _, total, _ = _timed(lambda: subject.predict_proba(texts, batch_size))
    other = total - parts["tokenizer_s"] - parts["model_s"]
    return {"batch_size": batch_size, "total_s": total, **parts, "other_s": other, "other_share": other / total}


def measure(subject: Subject, cfg: dict[str, Any], step: Callable[[str], None]) -> dict[str, Any]:
    """Run every phase of `cfg` on `subject`; fills and returns the result dict.

    `step(phase)` is called after each unit of work (for the progress bar).
    Partial results are kept in cfg["_partial"] so a failure still reports them.
    """
    texts: list[str] = list(cfg["texts"])
    threads = int(cfg["threads"])
    repeat = int(cfg["repeat"])
    res: dict[str, Any] = cfg.setdefault("_partial", {})  # probe.py reports it after each step
    res["load_average_start"] = load_average()
    _load(subject, threads, res)
    step("load")

    _, res["first_prediction_s"], _ = _timed(lambda: subject.predict_proba(texts[:1], 1))
    step("first prediction")

    _tokens(subject, texts, repeat, cfg.get("tokenizer", True), res, step)
    if cfg.get("latency", True):
        _latency(subject, texts, res)
        step("latency")
    kept = _throughput(subject, texts, cfg, res, step)
    if kept:
        _accuracy(kept, cfg.get("labels") or [], list(subject.labels), res)
    res["peak_rss_mb"] = peak_rss_mb()
    res["load_average_end"] = load_average()
    return res


def _load(subject: Subject, threads: int, res: dict[str, Any]) -> None:
    """Import the framework and load the model, each timed, with the memory after each."""
    t0 = time.perf_counter()
    subject.import_()
    res["import_s"] = time.perf_counter() - t0
    res["threads"] = {"requested": threads, "applied": fix_threads(threads)}
    res["rss_after_import_mb"] = rss_mb()
    t1 = time.perf_counter()
    subject.load()
    res["load_s"] = time.perf_counter() - t1
    res["rss_after_load_mb"] = rss_mb()
    res.update(subject.info())


def _tokens(
    subject: Subject, texts: list[str], repeat: int, timed: bool, res: dict[str, Any], step: Callable[[str], None]
) -> None:
    """Token counts of the texts and (`timed`) the tokenizer alone, best of `repeat` passes."""
    if timed:
        lengths, passes = None, []
        for _ in range(repeat):
            lengths, seconds, _ = _timed(lambda: subject.tokenize(texts))
            passes.append(seconds)
            step("tokenizer")
        best = min(passes)
        res["tokenizer"] = {
            "passes_s": passes,
            "texts_per_s": len(texts) / best,
            "tokens_per_s": float(np.sum(lengths)) / best,
        }
    else:
        lengths = subject.tokenize(texts)
    lengths = np.asarray(lengths)
    res["tokens"] = {"total": int(lengths.sum()), "mean": float(lengths.mean()), "max": int(lengths.max())}


def _latency(subject: Subject, texts: list[str], res: dict[str, Any]) -> None:
    """One text at a time, each timed."""
    samples = []
    for text in texts:
        c = time.perf_counter()
        subject.predict_proba([text], 1)
        samples.append(time.perf_counter() - c)
    res["latency_b1"] = {**summarize_ms(samples), "samples_ms": [round(s * 1000, 4) for s in samples]}


def _throughput(
    subject: Subject, texts: list[str], cfg: dict[str, Any], res: dict[str, Any], step: Callable[[str], None]
) -> dict[int, np.ndarray]:
    """Every batch size: a warm-up pass, then `repeat` timed passes; returns the
    probabilities of each batch size's last pass."""
    threads, repeat = int(cfg["threads"]), int(cfg["repeat"])
    res["throughput"] = []
    kept: dict[int, np.ndarray] = {}
    for bs in cfg["batch_sizes"]:
        # the warm-up pass also tells where the time goes (batch 1 was warmed by the latency pass)
        if not (bs == 1 and cfg.get("latency", True)):
            res.setdefault("breakdown", []).append(_breakdown(subject, texts, bs))
            step(f"warm-up b{bs}")
        walls, cpus = [], []
        for _ in range(repeat):
            probs, wall, cpu = _timed(lambda bs=bs: subject.predict_proba(texts, bs))
            walls.append(wall)
            cpus.append(cpu)
            step(f"throughput b{bs}")
        kept[bs] = probs
        best = min(walls)
        res["throughput"].append(
            {
                "batch_size": bs,
                "passes_s": walls,
                "texts_per_s": len(texts) / best,  # best of the passes: the least disturbed by other processes
                "texts_per_s_median": len(texts) / statistics.median(walls),
                "tokens_per_s": res["tokens"]["total"] / best,
                "cpu_s": cpus,
                # CPU time / (wall time x threads): below ~0.9, other processes took cores from this one
                "cpu_share": statistics.median(c / (w * threads) for c, w in zip(cpus, walls)),
            }
        )
    return kept


def _accuracy(kept: dict[int, np.ndarray], labels: Sequence[Any], names: list[str], res: dict[str, Any]) -> None:
    """Checks on the probabilities, and the accuracy where the texts have labels."""
    ref_bs = ACCURACY_BATCH if ACCURACY_BATCH in kept else max(kept)
    probs = kept[ref_bs]
    res["rows_sum_to_1"] = bool(np.allclose(probs.sum(axis=1), 1.0, atol=1e-4))
    res["max_prob_diff_across_batch_sizes"] = float(max(np.abs(p - probs).max() for p in kept.values()))
    y = _label_indices(labels, names)
    if y is not None and len(y) == len(probs):
        res["accuracy"] = float(np.mean(np.argmax(probs, axis=1) == y))
        res["accuracy_batch_size"] = ref_bs
