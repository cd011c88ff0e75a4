"""The record of benchmarks/serving.py: latency percentiles, the Markdown tables, the targets as
plain observations (measured against target) and the plots."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

TARGET_PEER_RATIO = 1.2  # our fastest backend at the highest concurrency against the best peer
TARGET_CEILING_SHARE = 0.85  # ... against its own in-process ceiling
TARGET_C1_OVERHEAD_MS = 2.0  # p50 at concurrency 1 over in-process single-text p50
TARGET_SOAK_DRIFT = 0.05


def percentiles(latencies_ms: list[float]) -> dict:
    if not latencies_ms:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None}
    p50, p95, p99 = np.percentile(latencies_ms, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "mean_ms": round(float(np.mean(latencies_ms)), 3),
    }


def fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _caveat(*rows: dict) -> str:
    return "" if all(r.get("reliable", True) for r in rows) else " (measured under load: unreliable)"


def _by(cells: list[dict], concurrency: int, kind: str) -> list[dict]:
    return [r for r in cells if r["concurrency"] == concurrency and r["server"].startswith(kind)]


def _backend(server: str) -> str:
    return server.split("(", 1)[1].rstrip(")")


def observations(cells: list[dict], inproc: list[dict], servers: list[dict]) -> list[str]:
    """The targets, measured against target, as plain statements."""
    notes = [f"{s['server']} did not run: {s['why'].splitlines()[0]}" for s in servers if s["status"] != "ok"]
    if not cells:
        return notes
    top, single = max(r["concurrency"] for r in cells), {r["backend"]: r for r in inproc if "error" not in r}
    ours = _by(cells, top, "ours")
    peers = [r for r in cells if r["concurrency"] == top and "(peer)" in r["server"]]
    if ours:
        fast = max(ours, key=lambda r: r["texts_per_s"])
        backend = _backend(fast["server"])
        if peers:
            best = max(peers, key=lambda r: r["texts_per_s"])
            ratio = fast["texts_per_s"] / best["texts_per_s"] if best["texts_per_s"] else float("inf")
            notes.append(
                f"At concurrency {top}, our fastest backend ({backend}) serves {fast['texts_per_s']:.1f} texts/s, the "
                f"best peer ({best['server']}) {best['texts_per_s']:.1f}: {ratio:.2f}x (target >= "
                f"{TARGET_PEER_RATIO}x): {_met(ratio >= TARGET_PEER_RATIO)}{_caveat(fast, best)}."
            )
            if fast["p99_ms"] is not None and best["p99_ms"] is not None:
                notes.append(
                    f"At concurrency {top}, p99 latency of ours ({backend}) is {fast['p99_ms']:.1f} ms, of the best "
                    f"peer ({best['server']}) {best['p99_ms']:.1f} ms (target: no worse): "
                    f"{_met(fast['p99_ms'] <= best['p99_ms'])}{_caveat(fast, best)}."
                )
        else:
            notes.append(f"No peer was measured at concurrency {top}: the peer targets are not checked.")
        if backend in single:
            ceiling = single[backend]["batch32_texts_per_s"]
            arrival = single[backend]["batch32_arrival_order_texts_per_s"]
            share = fast["texts_per_s"] / ceiling
            notes.append(
                f"At concurrency {top}, ours ({backend}) serves {share:.0%} of its in-process ceiling "
                f"({fast['texts_per_s']:.1f} of {ceiling:.1f} texts/s, `predict` at batch 32; target >= "
                f"{TARGET_CEILING_SHARE:.0%}): {_met(share >= TARGET_CEILING_SHARE)}{_caveat(fast)}; "
                f"{fast['texts_per_s'] / arrival:.0%} of the same texts batched in arrival order ({arrival:.1f} texts/s)."
            )
    for row in _by(cells, 1, "ours"):
        backend = _backend(row["server"])
        if backend in single and row["p50_ms"] is not None:
            inproc_p50 = single[backend]["single"]["p50_ms"]
            extra = row["p50_ms"] - inproc_p50
            notes.append(
                f"At concurrency 1, ours ({backend}) p50 is {row['p50_ms']:.2f} ms against {inproc_p50:.2f} ms for "
                f"in-process single-text `predict`: {extra:+.2f} ms (target within {TARGET_C1_OVERHEAD_MS:.0f} ms): "
                f"{_met(extra <= TARGET_C1_OVERHEAD_MS)}{_caveat(row)}."
            )
    return notes


def _summary_lines(cells: list[dict], servers: list[dict], levels: list[int]) -> list[str]:
    head = " | ".join(f"c={c} texts/s" for c in levels)
    lines = [
        f"| server | {head} | c=1 p50 ms | c={levels[-1]} p50 ms | c={levels[-1]} p99 ms | ready s |",
        "|---|" + "---:|" * (len(levels) + 4),
    ]
    for s in servers:
        if s["status"] != "ok":
            lines.append(f"| {s['server']} | failed (see below) |" + " |" * (len(levels) + 3))
            continue
        at = {r["concurrency"]: r for r in cells if r["server"] == s["server"]}
        mark = {c: "" if at[c]["reliable"] else "*" for c in at}
        rates = " | ".join(f"{fmt(at[c]['texts_per_s'])}{mark[c]}" if c in at else "-" for c in levels)
        first, last = at.get(1, {}), at.get(levels[-1], {})
        lines.append(
            f"| {s['server']} | {rates} | {fmt(first.get('p50_ms'), 2)} | {fmt(last.get('p50_ms'), 1)} | "
            f"{fmt(last.get('p99_ms'), 1)} | {fmt(s.get('ready_s'))} |"
        )
    return lines


def _cell_lines(cells: list[dict]) -> list[str]:
    lines = [
        "| server | concurrency | texts/s | p50 ms | p95 ms | p99 ms | requests | errors | others' CPU before / during "
        "(cores) | reliable |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in cells:
        load = f"{r['load_before']['others_cores']:.2f} / {r['load_during']['others_cores']:.2f}"
        lines.append(
            f"| {r['server']} | {r['concurrency']} | {fmt(r['texts_per_s'])} | {fmt(r['p50_ms'], 2)} | "
            f"{fmt(r['p95_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {r['requests']:,} | {r['errors']} | {load} | "
            f"{'yes' if r['reliable'] else 'no: ' + r['unreliable_why']} |"
        )
    return lines


def table_lines(record: dict, cells: list[dict]) -> list[str]:
    m, s = record["machine"], record["settings"]
    levels = sorted({r["concurrency"] for r in cells}) or s["concurrency"]
    lines = [
        f"Serving benchmark of the default model (all-MiniLM-L6-v2 encoder, mean pooling, SST-2 head), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `{record['command']}`",
        "",
        f"Machine: {m['cpu']} ({', '.join(m.get('cpu_features') or ['features unknown'])}), {m['logical_cores']} logical cores, {m['memory_gb']} GB; {record['threads']} framework "
        f"threads per server, batches of at most 32 on every server. Closed-loop clients on 127.0.0.1 (aiohttp, "
        f"in one process on the same machine), one SST-2 dev sentence per request; per cell {s['warmup']:g} s of "
        f"warm-up, then at most {s['seconds']:g} s and {s['max_requests']:,} requests. "
        f"{'A --quick check, not figures. ' if s['quick'] else ''}* marks a cell measured under load (other "
        f"processes above {s['load_limit']:.0%} of the CPU) or with errors: unreliable.",
        "",
        *_summary_lines(cells, record["servers"], levels),
        "",
        "In-process, the same backends in a fresh process, each just before its server: `predict` of SST-2 dev at batch 32 (the ceiling: "
        "`predict` sorts the whole set by length), the same texts in the clients' order 32 at a time (one "
        "`predict` each: the padding a server that batches arriving texts cannot avoid), best pass; "
        "single-text `predict`:",
        "",
        "| backend | batch 32 texts/s | batch 32, arrival order, texts/s | single text p50 ms | p95 ms | "
        "others' CPU during (cores) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in record["in_process"]:
        if "error" in r:
            lines.append(f"| {r['backend']} | failed: {r['error'].splitlines()[-1][:100]} | | | | |")
            continue
        lines.append(
            f"| {r['backend']} | {fmt(r['batch32_texts_per_s'])} | {fmt(r['batch32_arrival_order_texts_per_s'])} | "
            f"{fmt(r['single']['p50_ms'], 2)} | "
            f"{fmt(r['single']['p95_ms'], 2)} | {r['load_during']['others_cores']:.2f} |"
        )
    lines += ["", "Observations (measured against target):", ""]
    lines += [f"- {note}" for note in record["observations"]]
    lines += ["", "Every cell:", "", *_cell_lines(cells), ""]
    lines += ["Servers:", ""] + [_server_line(s) for s in record["servers"]]
    versions = ", ".join(f"{k} {v}" for k, v in record["peer_versions"].items())
    lines += ["", f"Peers' environment (.venv-bench-serving): {versions}."]
    return lines


def _server_line(s: dict) -> str:
    what = f" {s['what']}." if s.get("what") else ""
    if s["status"] != "ok":
        why = " / ".join(line.strip() for line in s["why"].splitlines()[-4:] if line.strip())
        return f"- {s['server']}:{what} FAILED: {why[:600]}"
    return (
        f"- {s['server']}:{what} ready (first answer) {s['ready_s']} s after start; probe probabilities within "
        f"{s['probe_max_abs_diff']:.1e} of in-process `predict_proba`; {s['processes']} processes, "
        f"{s['rss_mb_end']:,.0f} MB RSS at the end."
    )


def plot_throughput(cells: list[dict], inproc: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name in dict.fromkeys(r["server"] for r in cells):
        rows = sorted((r for r in cells if r["server"] == name), key=lambda r: r["concurrency"])
        style = "-o" if name.startswith("ours") else "--s"
        ax.plot([r["concurrency"] for r in rows], [r["texts_per_s"] for r in rows], style, label=name)
    for r in inproc:
        if "error" not in r:
            ax.axhline(r["batch32_texts_per_s"], color="grey", lw=0.8, ls=":")
            ax.annotate(
                f"in-process {r['backend']} (batch 32)",
                (1, r["batch32_texts_per_s"]),
                fontsize=7,
                color="grey",
                va="bottom",
            )
    ax.set_xscale("log", base=2)
    ax.set_xticks(
        sorted({r["concurrency"] for r in cells}), labels=sorted({str(r["concurrency"]) for r in cells}, key=int)
    )
    ax.set_xlabel("concurrent clients (closed loop, one text per request)")
    ax.set_ylabel("texts/s")
    ax.set_title("Serving the default model on one machine")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def soak_lines(record: dict, rows: list[dict], args) -> list[str]:
    m = record["machine"]
    lines = [
        f"Serving soak, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `{record['command']}`",
        "",
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores. Our server, {args.soak_concurrency} closed-loop "
        f"clients of mixed requests (1 to 8 texts of 1 to 40 SST-2 dev sentences, the longest truncated at 512 "
        f"tokens), {args.soak:g} minutes after {args.soak_warmup:g} s of the same load; RSS of the server's "
        f"processes (its workers included) every {args.rss_interval:g} s. Drift: median of the last 10% of the "
        f"samples against the first 10%.",
        "",
        "| backend | minutes | texts/s | p50 ms | p99 ms | errors | RSS start MB | end MB | max MB | drift | "
        "trend MB/min | others' CPU (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['backend']} | failed: {r['why'].splitlines()[0][:200]} |" + " |" * 10)
            continue
        lines.append(
            f"| {r['backend']} | {r['minutes']:g} | {fmt(r['texts_per_s'])} | {fmt(r['p50_ms'], 2)} | "
            f"{fmt(r['p99_ms'], 1)} | {r['errors']} | {r['rss_start_mb']:,.0f} | {r['rss_end_mb']:,.0f} | "
            f"{r['rss_max_mb']:,.0f} | {r['drift']:+.1%} | {r['trend_mb_per_min']:+.2f} | "
            f"{r['load_during']['others_cores']:.2f} |"
        )
        notes.append(
            f"- ours ({r['backend']}): RSS {r['rss_first_window_mb']:,.0f} MB -> {r['rss_last_window_mb']:,.0f} MB "
            f"over {r['minutes']:g} minutes, {r['drift']:+.1%} (target: flat within {TARGET_SOAK_DRIFT:.0%}): "
            f"{_met(abs(r['drift']) <= TARGET_SOAK_DRIFT)}{_caveat(r)}."
        )
    return lines + ["", "Observations (measured against target):", "", *notes]


def plot_soak(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for r in rows:
        if r["status"] == "ok":
            ax.plot([t / 60 for t, _ in r["rss_samples"]], [mb for _, mb in r["rss_samples"]], label=r["backend"])
    ax.set_xlabel("minutes of load (after the warm-up)")
    ax.set_ylabel("server RSS, MB (all its processes)")
    ax.set_title("Our server's memory under mixed requests")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
