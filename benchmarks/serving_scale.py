"""Serving benchmark, part 2: Ray Serve replicas against the single-process server at equal cores,
and what shadow mode costs the model it shadows.

    .venv/bin/python benchmarks/serving_scale.py             # both (~8 min on 2 cores)
    .venv/bin/python benchmarks/serving_scale.py --quick     # a check of the script (~3 min), not figures

Engines (`--engines-concurrency`, default 64): the default model on onnxruntime, served
- by the local engine with every core's thread (`serve default --threads CORES`);
- on Ray Serve, one replica computing with one thread (`--engine ray --replicas 1 --threads 1`):
  the unit the target counts in;
- on Ray Serve, one replica with its share of the cores (all of them);
- on Ray Serve, one replica per core, each computing with one thread (`--replicas CORES`).
Requests of 1 and of 8 SST-2 sentences (`--engines-texts`): Ray's HTTP proxy is one more process
on the same cores, as it would be in a deployment, and its cost is per request, so single texts
measure it as much as the replicas. Each Ray server starts its own local Ray instance on 127.0.0.1.

Shadow (`--shadow-concurrency`, default 1,64): the primary on onnxruntime with one thread, so a
core is left to the candidate (huggingface, slower, one thread: the shadow's own), with no shadow,
then a shadow at fraction 0.1 and 1.0, measured once the candidate has loaded. The primary's p50/p99 against the run without a shadow,
and the shadow's report (texts compared, work dropped because the candidate was behind).

Load, cells and machine load as in benchmarks/serving.py (its closed-loop client; a cell where other processes took more than --load-limit of the machine is
marked unreliable). Servers bind 127.0.0.1 on free ports and are stopped with every process they
started, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from recorded import write_results
from serving import bench_server, dev_texts, machine, run_cell, shuffled, without_machine_paths
from serving_procs import PROBE, Server, free_port, measure_load, run_stopping_servers
from serving_report import fmt

from unified_nlp.progress import counted

REPO = Path(__file__).resolve().parents[1]
TARGET_REPLICA_SCALING = 1.6  # CORES replicas of one thread against one replica of one thread (2 cores)
TARGET_SHADOW_P50_COST = 0.10  # the primary's p50 with a shadow at fraction 1.0, a core to spare
CANDIDATE = "huggingface"


def serve_command(port: int, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "unified_nlp.cli", "serve", "default", "--backend", "onnxruntime"]
    return [*argv, "--port", str(port), "--no-access-log", *extra]


def make_server(name: str, log_name: str, extra: list[str], args):
    def make() -> Server:
        port = free_port()
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        url = f"http://127.0.0.1:{port}/predict"
        return Server(name, serve_command(port, *extra), url, "tei", args.workdir / f"{log_name}.log", env)

    return make


def engine_servers(cores: int, args) -> list[tuple[str, object]]:
    ray = ["--engine", "ray"]
    return [
        ("local", make_server(f"local, {cores} threads", "local", ["--threads", str(cores)], args)),
        ("ray-1x1", make_server("ray, 1 replica x 1 thread", "ray-1x1", [*ray, "--replicas", "1", "--threads", "1"], args)),
        ("ray-1", make_server(f"ray, 1 replica x {cores} threads", "ray-1", [*ray, "--replicas", "1"], args)),
        ("ray-n", make_server(f"ray, {cores} replicas x 1 thread", "ray-n", [*ray, "--replicas", str(cores)], args)),
    ]  # fmt: skip


def shadow_servers(args) -> list[tuple[str, object]]:
    one = ["--threads", "1"]
    servers = [("none", make_server("no shadow", "shadow-none", one, args))]
    for fraction in (0.1, 1.0):
        shadow = [*one, "--shadow", f"default@{CANDIDATE}", "--shadow-fraction", str(fraction)]
        servers.append(
            (f"{fraction}", make_server(f"shadow {CANDIDATE} at {fraction}", f"shadow-{fraction}", shadow, args))
        )
    return servers  # fmt: skip


def shadow_report(server: Server) -> dict:
    url = server.url.replace("/predict", "/v2/models/default/shadow")
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback only
        return json.loads(answer.read())


def loads(concurrency: list[int], sizes: list[int], texts: list[str]) -> list[tuple[int, int, list]]:
    """(clients, texts per request, requests) of every cell."""
    batched = {n: [texts[i : i + n] for i in range(0, len(texts) - n + 1, n)] for n in sizes}
    return [(c, n, batched[n]) for n in sizes for c in concurrency]


def wait_for_candidate(server: Server, timeout: float = 300) -> None:
    """Until the shadow's candidate has loaded (it loads after the primary is ready and takes CPU meanwhile)."""
    deadline = time.monotonic() + timeout
    while not shadow_report(server)["candidate_ready"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the shadow candidate did not load within {timeout:.0f} s:\n{server.tail()}")
        time.sleep(0.5)


def measure(kind: str, servers: list, cells_spec: list, reference: dict, args) -> tuple:
    """Every server at every (clients, texts per request): (server rows, cell rows tagged with
    `kind`, the server's key and the request size)."""
    infos, cells = [], []
    for key, make in servers:
        shadows: list[dict] = []

        def cells_then_report(server: Server, key=key, shadows=shadows) -> list[dict]:
            if kind == "shadow" and key != "none":
                wait_for_candidate(server)
            rows = []
            for concurrency, size, requests in cells_spec:
                rows.append({**run_cell(server, requests, concurrency, args), "texts_per_request": size})
            if kind == "shadow" and key != "none":
                shadows.append(shadow_report(server))
            return rows

        info, rows = bench_server(make, reference, [], args, cells_of=cells_then_report)
        if shadows:
            report = shadows[0]
            info["shadow"] = {k: report[k] for k in ("requests_offered", "requests_compared", "dropped", "n_texts")}
            info["shadow"].update(
                agreement=report["argmax_agreement"], logits_max_abs_diff=report["logits_max_abs_diff"]
            )
        infos.append({**info, "kind": kind, "key": key})
        cells += [{**row, "kind": kind, "key": key} for row in rows]
    return infos, cells


def _cell(cells: list[dict], kind: str, key: str, concurrency: int, size: int = 1) -> dict | None:
    wanted = (kind, key, concurrency, size)
    return next((c for c in cells if (c["kind"], c["key"], c["concurrency"], c["texts_per_request"]) == wanted), None)


def observations(cells: list[dict], cores: int, args) -> list[str]:
    notes = []
    for c in args.engines_concurrency:
        for n in args.engines_texts:
            one, many = _cell(cells, "engines", "ray-1x1", c, n), _cell(cells, "engines", "ray-n", c, n)
            if one and many and one["texts_per_s"]:
                ratio = many["texts_per_s"] / one["texts_per_s"]
                met = "met" if ratio >= TARGET_REPLICA_SCALING else "NOT met"
                reliable = "" if one["reliable"] and many["reliable"] else " (measured under load: unreliable)"
                notes.append(
                    f"c={c}, {counted(n, 'text')} per request: {cores} replicas of 1 thread answer {ratio:.2f}x the "
                    f"texts/s of 1 replica of 1 thread (target >= {TARGET_REPLICA_SCALING}x: {met}){reliable}"
                )
            local, ray = _cell(cells, "engines", "local", c, n), _cell(cells, "engines", "ray-n", c, n)
            if local and ray and local["texts_per_s"]:
                notes.append(
                    f"c={c}, {counted(n, 'text')} per request: at equal cores, Ray Serve ({cores} replicas) answers "
                    f"{ray['texts_per_s'] / local['texts_per_s']:.2f}x the local engine's texts/s; p50 "
                    f"{fmt(ray['p50_ms'])} ms against {fmt(local['p50_ms'])} ms"
                )
    for c in args.shadow_concurrency:
        base = _cell(cells, "shadow", "none", c)
        for fraction in ("0.1", "1.0"):
            row = _cell(cells, "shadow", fraction, c)
            if not (base and row and base["p50_ms"]):
                continue
            cost = row["p50_ms"] / base["p50_ms"] - 1
            judged = ""
            if fraction == "1.0":
                judged = f" (target <= {TARGET_SHADOW_P50_COST:.0%}: {'met' if cost <= TARGET_SHADOW_P50_COST else 'NOT met'})"
            notes.append(
                f"c={c}: a shadow at fraction {fraction} moves the primary's p50 by {cost:+.1%}{judged}, "
                f"p99 {fmt(base['p99_ms'])} -> {fmt(row['p99_ms'])} ms"
            )  # fmt: skip
    return notes


def table_lines(record: dict, cells: list[dict]) -> list[str]:
    lines = [
        "# Serving: Ray Serve replicas and shadow mode",
        "",
        f"`{record['command']}`, {record['date']}; {record['machine']['cpu']}, {record['machine']['logical_cores']} cores.",
        "",
        "| part | server | clients | texts/request | texts/s | p50 ms | p99 ms | errors | reliable |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for c in cells:
        lines.append(
            f"| {c['kind']} | {c['server']} | {c['concurrency']} | {c['texts_per_request']} | {fmt(c['texts_per_s'])} "
            f"| {fmt(c['p50_ms'], 2)} "
            f"| {fmt(c['p99_ms'], 2)} | {c['errors']} | {'yes' if c['reliable'] else 'no: ' + c['unreliable_why']} |"
        )
    shadows = [s for s in record["servers"] if "shadow" in s]
    if shadows:
        lines += ["", "| shadow | requests offered | compared | dropped | texts compared | agreement |", "|---|---:|---:|---|---:|---:|"]  # fmt: skip
        for s in shadows:
            r = s["shadow"]
            agreement = "-" if r["agreement"] is None else f"{r['agreement']:.2%}"
            lines.append(
                f"| {s['server']} | {r['requests_offered']} | {r['requests_compared']} | {r['dropped'] or '-'} "
                f"| {r['n_texts']} | {agreement} |"
            )
    lines += ["", "Observations:", "", *[f"- {n}" for n in record["observations"]]]
    return lines


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="engines,shadow", help="engines, shadow or both")
    p.add_argument("--engines-concurrency", default="64", help="closed-loop clients per engine cell")
    p.add_argument("--engines-texts", default="1,8", help="texts per request of the engine cells")
    p.add_argument("--shadow-concurrency", default="1,64", help="closed-loop clients per shadow cell")
    p.add_argument("--seconds", type=float, help="recorded seconds per cell at most (default 20; --quick 3)")
    p.add_argument("--warmup", type=float, help="unrecorded seconds of the same load first (default 3; --quick 1)")
    p.add_argument("--max-requests", type=int, default=20000, help="recorded requests per cell at most")
    p.add_argument("--peer-python", default=sys.executable, help="python of the load client (needs aiohttp)")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results/serving-scale)")
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks/results/tmp/serving-scale-logs")
    p.add_argument("--ready-timeout", type=float, default=300.0, help="seconds a server may take to answer")
    p.add_argument("--load-limit", type=float, default=0.10, help="others' CPU share beyond which a cell is unreliable")
    p.add_argument("--idle-seconds", type=float, default=1.0, help="load measured before each cell")
    p.add_argument("--quick", action="store_true", help="a check of the script: seconds per cell")
    args = p.parse_args(argv)
    args.argv = argv
    args.parts = [part for part in args.parts.split(",") if part]
    if set(args.parts) - {"engines", "shadow"}:
        raise SystemExit(f"--parts: engines, shadow; got {args.parts}")
    args.engines_concurrency = [int(c) for c in args.engines_concurrency.split(",")]
    args.shadow_concurrency = [int(c) for c in args.shadow_concurrency.split(",")]
    args.engines_texts = [int(n) for n in args.engines_texts.split(",")]
    args.seconds = args.seconds or (3.0 if args.quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    results = REPO / "benchmarks/results"
    args.out = args.out or (results / "tmp/serving-scale-quick" if args.quick else results / "serving-scale")
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def run(args) -> int:
    from unified_nlp import load_classifier
    from unified_nlp.threads import available_cores

    cores = available_cores()
    clf = load_classifier("default", backend="onnxruntime")
    reference = {"labels": clf.labels, "probe": clf.predict_proba([PROBE])[0].tolist()}
    del clf
    texts = shuffled(dev_texts())
    print(f"machine load before the run: {measure_load(2.0)}", flush=True)
    servers, cells = [], []
    if "engines" in args.parts:
        infos, rows = measure("engines", engine_servers(cores, args), loads(args.engines_concurrency, args.engines_texts, texts), reference, args)  # fmt: skip
        servers, cells = servers + infos, cells + rows
    if "shadow" in args.parts:
        infos, rows = measure(
            "shadow", shadow_servers(args), loads(args.shadow_concurrency, [1], texts), reference, args
        )
        servers, cells = servers + infos, cells + rows
    record = {
        "command": " ".join(["python", "benchmarks/serving_scale.py", *args.argv]),
        "machine": machine(),
        "servers": servers,
        "observations": observations(cells, cores, args),
    }
    from recorded import provenance

    lines = table_lines({**provenance(), **record}, cells)
    write_results(args.out, cells, lines, **record)
    without_machine_paths(args.out)
    return 0 if all(s["status"] == "ok" for s in servers) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_stopping_servers(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
