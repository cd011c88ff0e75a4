"""PNG plots of a benchmark (matplotlib, Agg): throughput against batch size, and the
latency distribution at batch 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .references import REFERENCE_NAMES  # noqa: E402

STYLE = {
    "torch-raw": dict(linestyle="--", marker="x", color="0.35"),
    "onnx-plain": dict(linestyle=":", marker="+", color="0.35"),
    "hf-pipeline": dict(linestyle="none", marker="*", markersize=14, color="black"),
}


def _ok(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in results["runs"] if r.get("status") == "ok" and r.get("throughput")]


def throughput_plot(results: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in _ok(results):
        sizes = [t["batch_size"] for t in r["throughput"]]
        rates = [t["texts_per_s"] for t in r["throughput"]]
        reference = REFERENCE_NAMES.get(r["name"])
        label = f"{reference} (ref.)" if reference else r["name"]
        ax.plot(sizes, rates, label=label, **STYLE.get(r["name"], dict(marker="o")))
    ceiling = next((r.get("ceiling_texts_per_s") for r in _ok(results) if r.get("ceiling_texts_per_s")), None)
    if ceiling:
        ax.axhline(ceiling, color="tab:red", linestyle=":", label=f"matmul ceiling ({ceiling:,.0f} texts/s)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(results["config"]["batch_sizes"], [str(b) for b in results["config"]["batch_sizes"]])
    ax.set_xlabel("batch size")
    ax.set_ylabel("texts / s (higher is better)")
    ax.set_ylim(bottom=0)
    cfg = results["config"]
    ax.set_title(f"predict_proba throughput, {cfg['n_texts']} texts, {cfg['threads']} threads")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_plot(results: dict[str, Any], path: Path) -> Path:
    runs = [r for r in results["runs"] if r.get("status") == "ok" and (r.get("latency_b1") or {}).get("samples_ms")]
    fig, ax = plt.subplots(figsize=(8, 5))
    if runs:
        data = [r["latency_b1"]["samples_ms"] for r in runs]
        ax.boxplot(data, whis=(1, 99), showfliers=False, tick_labels=[r["name"] for r in runs])
        for i, r in enumerate(runs, start=1):
            lat = r["latency_b1"]
            for key, marker in (("p50_ms", "o"), ("p95_ms", "^"), ("p99_ms", "v")):
                ax.plot(
                    i + 0.25,
                    lat[key],
                    marker=marker,
                    color="tab:blue",
                    linestyle="none",
                    label=key.replace("_ms", "") if i == 1 else None,
                )
            ax.annotate(f"p50 {lat['p50_ms']:.1f} ms\np99 {lat['p99_ms']:.1f} ms", (i + 0.3, lat["p50_ms"]), fontsize=8)
        ax.legend(fontsize=8)
        ax.set_xlim(0.5, len(runs) + 0.95)
        spread = max(r["latency_b1"]["p99_ms"] for r in runs) / min(r["latency_b1"]["p50_ms"] for r in runs)
        if spread > 20:  # a heavy tail would flatten every box
            ax.set_yscale("log")
    ax.set_ylabel("ms per predict_proba([text]) (lower is better)")
    if ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)
    ax.set_title("latency at batch 1 (box: quartiles, whiskers: p1-p99)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(results: dict[str, Any], out: Path) -> list[Path]:
    return [throughput_plot(results, out / "throughput.png"), latency_plot(results, out / "latency_b1.png")]
