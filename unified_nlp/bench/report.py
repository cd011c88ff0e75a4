"""Write a benchmark's results: results.json (everything), results.csv (one row per
target), results.md (the tables) and the PNG plots (plots.py)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from .contention import unreliable_because
from .references import REFERENCE_NAMES

LATENCY_KEYS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "stdev_ms", "mean_ms")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _label(run: dict[str, Any]) -> str:
    name = REFERENCE_NAMES.get(run["name"])
    return f"{name} (reference)" if name else run["name"]


def _through(run: dict[str, Any], bs: int) -> dict[str, Any] | None:
    return next((t for t in run.get("throughput", []) if t["batch_size"] == bs), None)


def _best(run: dict[str, Any]) -> dict[str, Any] | None:
    rows = run.get("throughput") or []
    return max(rows, key=lambda t: t["tokens_per_s"]) if rows else None


def contention_warning(results: dict[str, Any]) -> str | None:
    """A sentence when other processes took the cores before or during the run, else None
    (contention.OtherCPU: the machine's busy CPU time less ours, sampled over the run)."""
    reason = results.get("summary", {}).get("unreliable")
    if reason is None:
        machine = results["machine"]
        reason = unreliable_because(
            machine.get("other_processes_cpu_cores"),
            machine.get("load_average_start"),
            machine.get("logical_cores") or 1,
        )
    if reason is None:
        return None
    return f"UNRELIABLE FIGURES: {reason}; rows are not compared with each other or with the ceiling"


def markdown(results: dict[str, Any]) -> str:
    """The Markdown report: throughput table, latency/start-up/memory table, errors."""
    sizes = results["config"]["batch_sizes"]
    runs = [r for r in results["runs"] if r.get("kind") != "ceiling"]
    lines = _preamble(results, runs)
    lines += _throughput_table(runs, sizes, compared=contention_warning(results) is None)
    lines += _latency_table(runs)
    lines += _breakdown_table(runs)
    lines += _not_measured(results)
    return "\n".join(lines) + "\n"


def _library_rates(ceiling: dict[str, Any], precision: str) -> str:
    rates = [
        f"{name} {r[precision]:,.0f}"
        for name, r in ceiling.get("libraries", {}).items()
        if r.get(precision) is not None
    ]
    return ", ".join(rates) or "-"


def _ceiling_sentence(results: dict[str, Any], runs: list[dict[str, Any]], ceilings: list[dict[str, Any]]) -> str:
    """The GEMM ceiling: each library's rate, the best, and what it means for this model."""
    c = max(ceilings, key=lambda x: x.get("gflops") or 0.0)
    starts_ends = ", ".join(_fmt(x.get("gflops"), 0) for x in ceilings)
    ok_run = next((r for r in runs if r.get("ceiling_tokens_per_s")), None)
    sentence = (
        f"Ceiling: the best float32 {c['size']}x{c['size']} GEMM of the installed libraries, "
        f"{_fmt(c.get('gflops'), 0)} GFLOP/s ({c.get('gflops_library', '-')}; each: {_library_rates(c, 'fp32')}; "
        f"best of the runs at the start and the end: {starts_ends})"
    )
    if results.get("ceiling_raised_by"):
        sentence += (
            f"; {results['ceiling_raised_by']} ran the whole model at {results['ceiling_gflops']:,.0f} GFLOP/s of "
            "useful work, faster than every GEMM measured, so the ceiling is that rate (no row above 100%)"
        )
    if ok_run:
        sentence += (
            f"; at {ok_run['flops_per_token'] / 1e6:.2f} MFLOP per token that is "
            f"{ok_run['ceiling_tokens_per_s']:,.0f} tokens/s ({ok_run['ceiling_texts_per_s']:,.0f} texts/s)"
        )
    return sentence + (
        f". Reduced precision, same shape: bf16 {_fmt(c.get('bf16_gflops'), 0)} GFLOP/s ({_library_rates(c, 'bf16')}), "
        f"int8 {_fmt(c.get('int8_gops'), 0)} GOP/s ({_library_rates(c, 'int8')})."
    )


def _preamble(results: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """What ran where, the contention warning and the matmul ceiling."""
    cfg, machine = results["config"], results["machine"]
    lines = [
        f"Benchmark of {cfg['model']} on {cfg['n_texts']} texts of {cfg['data']}, {cfg['threads']} threads, "
        f"{cfg['repeat']} timed passes per figure, {results['created']}.",
        f"Machine: {machine.get('cpu_model')} ({', '.join(machine.get('cpu_features') or ['features unknown'])}), "
        f"{machine.get('logical_cores')} logical cores; "
        f"load average at the end {machine.get('load_average_end')}; cores used by other processes "
        f"{_others(machine.get('other_processes_cpu_cores'))}.",
        "",
    ]
    warning = contention_warning(results)
    if warning:
        lines += [f"**Warning: {warning}**", ""]
    ceilings = [r["ceiling"] for r in results["runs"] if r.get("kind") == "ceiling" and r.get("status") == "ok"]
    if ceilings:
        lines += [_ceiling_sentence(results, runs, ceilings), ""]
    return lines


def _others(figures: dict[str, Any] | None) -> str:
    if not figures or figures.get("mean") is None:
        return "not measured (no psutil)"
    return f"before the run {figures['before']}, during it {figures['mean']} on average, {figures['max']} at most"


def _throughput_table(runs: list[dict[str, Any]], sizes: list[int], compared: bool = True) -> list[str]:
    head = [
        "target",
        "status",
        *[f"b{b} texts/s" for b in sizes],
        "best tokens/s",
        "% of ceiling",
        "accuracy",
        "CPU share",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        ok = r.get("status") == "ok"
        best = _best(r) if ok else None
        cells = [_label(r), r.get("status", "?")]
        cells += [_fmt((_through(r, b) or {}).get("texts_per_s")) for b in sizes]
        cells += [
            _fmt(best["tokens_per_s"], 0) if best else "-",
            _pct(best.get("ceiling_fraction")) if best and compared else "-",
            _fmt(r.get("accuracy"), 4),
            _fmt(min((t["cpu_share"] for t in r.get("throughput", [])), default=None), 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [
        "",
        "Throughput: texts / fastest timed pass. CPU share: process CPU time / (wall time x threads), the "
        "lowest over batch sizes; below 1, threads sat idle (serial parts of the graph) or other processes "
        "took the cores (OpenMP's spin-waiting counts as CPU time, so torch stays near 1 either way).",
    ]


def _latency_table(runs: list[dict[str, Any]]) -> list[str]:
    head = [
        "target",
        "runs",
        "import s",
        "load s",
        "first prediction s",
        "p50 ms",
        "p90 ms",
        "p95 ms",
        "p99 ms",
        "stdev ms",
        "tokenizer texts/s",
        "peak RSS MiB",
    ]
    lines = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        if r.get("status") != "ok":
            continue
        lat = r.get("latency_b1") or {}
        cells = [
            _label(r),
            r.get("runs", "-"),
            _fmt(r.get("import_s"), 2),
            _fmt(r.get("load_s"), 2),
            _fmt(r.get("first_prediction_s"), 3),
            *[_fmt(lat.get(k), 2) for k in LATENCY_KEYS[:5]],
            _fmt((r.get("tokenizer") or {}).get("texts_per_s"), 0),
            _fmt(r.get("peak_rss_mb"), 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _breakdown_table(runs: list[dict[str, Any]]) -> list[str]:
    split = [(r, b) for r in runs if r.get("status") == "ok" for b in r.get("breakdown", []) if "model_s" in b]
    if not split:
        return []
    lines = [
        "",
        "Where the time of one predict_proba pass goes (the warm-up pass, timed by call):",
        "",
        "| backend | batch | pass s | tokenizer | model (framework + adapter) | unified_nlp core |",
        "|---|---|---|---|---|---|",
    ]
    for r, b in split:
        total = b["total_s"]
        lines.append(
            f"| {r['name']} | {b['batch_size']} | {total:.2f} | {_pct(b['tokenizer_s'] / total)} | "
            f"{_pct(b['model_s'] / total)} | {_pct(b['other_s'] / total)} |"
        )
    return lines


def _not_measured(results: dict[str, Any]) -> list[str]:
    failed = [r for r in results["runs"] if r.get("status") != "ok"]
    if not failed:
        return []
    lines = ["", "Not measured:"]
    for r in failed:
        first = (r.get("error") or "").strip().splitlines()
        lines.append(f"- {r['name']}: {r.get('status')}: {first[0] if first else ''}")
    return lines


def csv_text(results: dict[str, Any]) -> str:
    """One row per target; throughput columns per batch size."""
    sizes = sorted({t["batch_size"] for r in results["runs"] for t in r.get("throughput", [])})
    fields = [
        "name",
        "kind",
        "status",
        "runs",
        "python",
        "import_s",
        "load_s",
        "first_prediction_s",
        *[f"latency_{k}" for k in LATENCY_KEYS],
        "tokenizer_texts_per_s",
        "tokens_mean",
        *[f"b{b}_{m}" for b in sizes for m in ("texts_per_s", "tokens_per_s", "ceiling_fraction")],
        "peak_rss_mb",
        "accuracy",
        "ceiling_gflops",
        "error",
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in results["runs"]:
        row: dict[str, Any] = {
            k: r.get(k)
            for k in (
                "name",
                "kind",
                "status",
                "runs",
                "python",
                "import_s",
                "load_s",
                "first_prediction_s",
                "peak_rss_mb",
                "accuracy",
            )
        }
        for k in LATENCY_KEYS:
            row[f"latency_{k}"] = (r.get("latency_b1") or {}).get(k)
        row["tokenizer_texts_per_s"] = (r.get("tokenizer") or {}).get("texts_per_s")
        row["tokens_mean"] = (r.get("tokens") or {}).get("mean")
        for t in r.get("throughput", []):
            for m in ("texts_per_s", "tokens_per_s", "ceiling_fraction"):
                row[f"b{t['batch_size']}_{m}"] = t.get(m)
        row["ceiling_gflops"] = (r.get("ceiling") or {}).get("gflops")
        row["error"] = (r.get("error") or "").strip().splitlines()[0] if r.get("error") else None
        writer.writerow(row)
    return buf.getvalue()


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_all(results: dict[str, Any], out: Path) -> list[str]:
    """Write every output file into `out` (created if needed); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("results.md", markdown(results)), ("results.csv", csv_text(results))):
        _write(out / name, text)
        written.append(str(out / name))
    try:
        from .plots import plot_all

        written += [str(p) for p in plot_all(results, out)]
    except ImportError as e:  # matplotlib is the optional `bench` extra
        results.setdefault("notes", []).append(f"plots skipped: {e} (pip install 'unified-nlp[bench]')")
    results["files"] = [*written, str(out / "results.json")]
    _write(out / "results.json", json.dumps(results, indent=1) + "\n")
    return results["files"]
