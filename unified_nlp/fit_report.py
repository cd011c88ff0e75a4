"""fit's history as a CSV table and as a plot (`unified-nlp fit --history-csv/--plot`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic import atomic_file


def history_rows(history: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per optimizer step: step (1-based), learning_rate, loss, and the validation
    figures (val_loss, val_accuracy, ...) on the steps where fit evaluated (empty elsewhere)."""
    evals = {e["step"]: e for e in history.get("eval", [])}
    names = sorted({k for e in evals.values() for k in e if k not in ("step", "epoch")}, key=_metric_order)
    rows = []
    for i, (loss, lr) in enumerate(zip(history["loss"], history["learning_rate"]), start=1):
        row: dict[str, Any] = {"step": i, "learning_rate": lr, "loss": loss}
        e = evals.get(i, {})
        row["epoch"] = e.get("epoch", "")
        row.update({f"val_{k}": e.get(k, "") for k in names})
        rows.append(row)
    return rows


def _metric_order(name: str) -> tuple[int, str]:
    return (0 if name == "loss" else 1, name)


def write_csv(history: Mapping[str, Any], path: str | Path) -> None:
    """The rows of `history_rows` as CSV, written atomically."""
    rows = history_rows(history)
    fields = list(rows[0]) if rows else ["step", "learning_rate", "loss"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    Path(path).absolute().parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        f.write(text.getvalue().encode("utf-8"))


def plot(history: Mapping[str, Any], path: str | Path, title: str = "fit") -> None:
    """Training loss per step and validation loss (left axis), validation accuracy (right
    axis), as a PNG written atomically. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from .errors import UnifiedNLPError

        raise UnifiedNLPError("--plot needs matplotlib: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = range(1, len(history["loss"]) + 1)
    ax.plot(steps, history["loss"], label="training loss", linewidth=1)
    evals = history.get("eval", [])
    if evals:
        ax.plot([e["step"] for e in evals], [e["loss"] for e in evals], "o-", label="validation loss")
        right = ax.twinx()
        right.plot([e["step"] for e in evals], [e["accuracy"] for e in evals], "s--", color="tab:green")
        right.set_ylabel("validation accuracy", color="tab:green")
    best = history.get("best")
    if best and best.get("step"):
        ax.axvline(best["step"], color="grey", linestyle=":", label=f"best {best['metric']} (step {best['step']})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    Path(path).absolute().parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        f.write(buffer.getvalue())
