"""Serving benchmark: `unified-nlp serve` on every backend against the servers users would deploy
instead, on the same model (the default), the same machine and in the same run.

    make bench-serving                                   # .venv-bench-serving, then the full run (~15 min)
    .venv/bin/python benchmarks/serving.py --quick       # a check of the script (~2 min), not figures
    .venv/bin/python benchmarks/serving.py --soak 10     # RSS of our server over 10 minutes of mixed requests

Servers, each a subprocess bound to 127.0.0.1 on a free port, started, measured and stopped one
after the other (every process of its tree is ended at the end, on error and on Ctrl-C too):
- ours: `unified-nlp serve default --backend B --no-access-log` for B in --backends, over TEI's
  `POST /predict`;
- the peers, from benchmarks/serving_peers/ with .venv-bench-serving's python (their
  dependencies would move .venv's pins): the naive FastAPI + transformers `pipeline` server,
  Ray Serve with `@serve.batch`, NVIDIA PyTriton (Triton's dynamic batcher; its HTTP v2
  protocol) and LitServe with batching. They run the default model in plain transformers +
  torch (serving_peers/default_model.py); each server's answer to a probe text is checked
  against in-process `predict_proba` before it is measured.
Every server gets the same framework threads (--threads) and a batch cap of 32.
OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE, libgomp's documented setting, unless set
already) in every server and in-process run: with the default (spin up to 300,000 times at each
parallel region before sleeping) a peer calling torch with as many threads as cores, while one
other CPU-bound process runs, spins at each of a forward's parallel regions waiting for its
partner thread, which waits behind that process: a 15 ms forward takes ~500 ms, the peers' c=1
p99 on a shared machine. Our server did not show it under the same load; PASSIVE removes it.

Load: closed-loop clients (serving_peers/load_client.py, aiohttp, in its own process on the same
machine: its CPU is part of what every server pays), one SST-2 dev sentence per request, in a
seeded shuffled order, at each --concurrency; a cell is --warmup seconds not recorded, then at
most --seconds and --max-requests. texts/s = answered texts / wall time of the recorded phase;
latency percentiles over the answered requests; errors are counted apart.

In-process reference, per backend, in a fresh process: `predict` of the dev set at batch 32
(texts/s, best of --passes) and single-text `predict` latency.

Machine load: the CPU time of every process that is not this one or its descendants (psutil),
over one idle second before each cell and during it; a cell where others took more than
--load-limit of the machine is marked unreliable.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from recorded import write_results
from serving_procs import (
    PEERS_DIR,
    PROBE,
    LoadMeter,
    Server,
    free_port,
    measure_load,
    run_client,
    run_stopping_servers,
    wait_ready,
)
from serving_report import (
    observations,
    percentiles,
    plot_soak,
    plot_throughput,
    soak_lines,
    table_lines,
)

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("huggingface", "tfhub", "paddlenlp", "onnxruntime")
# name: (script, protocol, what it is)
PEERS = {
    "naive": ("naive_fastapi.py", "tei", "FastAPI + uvicorn, transformers pipeline per request"),
    "ray": ("ray_serve.py", "tei", "Ray Serve 2.60, @serve.batch around the pipeline"),
    "pytriton": ("pytriton_server.py", "v2", "NVIDIA PyTriton, Triton dynamic batcher, torch"),
    "litserve": ("litserve_server.py", "tei", "LitServe, batching around the pipeline"),
}


def run_cell(server: Server, requests: list[list[str]], concurrency: int, args) -> dict:
    """One server at one concurrency: load before (idle server) and during, texts/s, latencies."""
    before = measure_load(args.idle_seconds)
    spec = {
        "url": server.url,
        "protocol": server.protocol,
        "requests": requests,
        "concurrency": concurrency,
        "max_requests": args.max_requests,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
    }
    with LoadMeter() as meter:
        result = run_client(args.peer_python, spec, args.workdir)
        server.tree()
    during = meter.result()
    latencies = result["latencies_ms"]
    row = {
        "server": server.name,
        "concurrency": concurrency,
        "requests": len(latencies),
        "texts": result["texts"],
        "errors": result["errors"],
        "wall_s": result["wall_s"],
        "texts_per_s": round(result["texts"] / result["wall_s"], 2) if result["wall_s"] else 0.0,
        **percentiles(latencies),
        "load_before": before,
        "load_during": during,
    }
    if result["error_samples"]:
        row["error_samples"] = result["error_samples"]
    others = max(before["others_cores"], during["others_cores"]) / (os.cpu_count() or 1)
    row["reliable"] = others <= args.load_limit and not result["errors"]
    if not row["reliable"]:
        row["unreliable_why"] = (
            f"{result['errors']} errors" if result["errors"] else f"other processes took {others:.0%} of the CPU"
        )
    print(
        f"  c={concurrency:<3} {row['texts_per_s']:8.1f} texts/s  p50 {row['p50_ms']:7.2f} ms  p99 "
        f"{row['p99_ms']:7.2f} ms  ({row['requests']} requests, {row['errors']} errors, others "
        f"{others:.0%} of the CPU{'' if row['reliable'] else ', UNRELIABLE'})",
        flush=True,
    )
    return row


def _best_pass(passes: int, run) -> float:
    seconds = []
    for _ in range(passes):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def inprocess_main(backend: str, threads: int, quick: bool) -> dict:
    """Internal (a fresh process per backend): the in-process ceiling and single-text latency.

    The ceiling is `predict(dev, batch_size=32)`, which sorts the whole set by length (little
    padding). A server cannot sort texts that have not arrived yet: "arrival order" is the same
    texts in the clients' order, 32 at a time, one `predict` call each (padded to the longest of
    each 32), the best a batching server can do with that traffic."""
    import unified_nlp as un

    texts = dev_texts()
    clf = un.load_classifier("default", backend, num_threads=threads)
    clf.predict(texts[:64], batch_size=32)  # warm-up
    sample, arrival, passes = (texts[:256], shuffled(texts)[:256], 1) if quick else (texts, shuffled(texts), 3)
    sorted_s = _best_pass(passes, lambda: clf.predict(sample, batch_size=32))
    arrival_s = _best_pass(passes, lambda: [clf.predict(arrival[i : i + 32]) for i in range(0, len(arrival), 32)])
    single = []
    for text in shuffled(texts)[: 60 if quick else 400]:
        started = time.perf_counter()
        clf.predict([text])
        single.append((time.perf_counter() - started) * 1000)
    return {
        "backend": backend,
        "threads": threads,
        "batch32_texts_per_s": round(len(sample) / sorted_s, 2),
        "batch32_arrival_order_texts_per_s": round(len(arrival) / arrival_s, 2),
        "single": percentiles(single),
        "probe": [float(p) for p in clf.predict_proba([PROBE])[0]],
        "labels": list(clf.labels),
    }


def inprocess(backend: str, args) -> dict:
    argv = [sys.executable, __file__, "--inprocess", backend, "--threads", str(args.threads)]
    with LoadMeter() as meter:
        done = subprocess.run(argv + (["--quick"] if args.quick else []), capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not done.stdout.strip():
        return {"backend": backend, "error": done.stderr.strip()[-800:] or f"exit code {done.returncode}"}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["load_during"] = meter.result()
    single = row["single"]
    print(
        f"in-process {backend}: batch 32 {row['batch32_texts_per_s']:.1f} texts/s (arrival order "
        f"{row['batch32_arrival_order_texts_per_s']:.1f}), single text p50 "
        f"{single['p50_ms']:.2f} ms (p95 {single['p95_ms']:.2f})",
        flush=True,
    )
    return row


def dev_texts() -> list[str]:
    from unified_nlp.benchdata import read_tsv, sst2_path

    return read_tsv(sst2_path("dev"))[0]


def shuffled(items: list, seed: int = 0) -> list:
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


def our_server(backend: str, args) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "unified_nlp.cli", "serve", "default", "--backend", backend]
    argv += ["--port", str(port), "--threads", str(args.threads), "--no-access-log"]
    url = f"http://127.0.0.1:{port}/predict"
    return Server(f"ours ({backend})", argv, url, "tei", args.workdir / f"ours-{backend}.log", dict(os.environ))


def peer_server(peer: str, folder: str, args) -> Server:
    script, protocol, _ = PEERS[peer]
    port = free_port()
    argv = [args.peer_python, str(PEERS_DIR / script), "--folder", folder, "--port", str(port)]
    argv += ["--threads", str(args.threads)]
    if peer == "pytriton":
        argv += ["--grpc-port", str(free_port()), "--metrics-port", str(free_port())]
    url = f"http://127.0.0.1:{port}/v2/models/default/infer" if protocol == "v2" else f"http://127.0.0.1:{port}/predict"
    # the peers' venv must not see .venv's packages; no usage reports from Ray
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return Server(f"{peer} (peer)", argv, url, protocol, args.workdir / f"peer-{peer}.log", env)


def bench_server(make, reference: dict, requests: list[list[str]], args, cells_of=None) -> tuple[dict, list[dict]]:
    """Start a server, check its answer, measure every concurrency (or `cells_of(server)`), stop it:
    (server row, cell rows)."""
    started = time.perf_counter()
    server = make()
    info = {"server": server.name, "status": "ok"}
    print(f"{server.name}: starting", flush=True)
    try:
        probe = wait_ready(server, reference["labels"], args.ready_timeout)
        info["ready_s"] = round(time.perf_counter() - started, 1)
        info["probe_max_abs_diff"] = float(np.max(np.abs(np.subtract(probe, reference["probe"]))))
        print(f"{server.name}: ready in {info['ready_s']} s, probe diff {info['probe_max_abs_diff']:.1e}", flush=True)
        if cells_of is None:
            cells = [run_cell(server, requests, c, args) for c in args.concurrency]
        else:
            cells = cells_of(server)
        info["rss_mb_end"] = round(server.rss_mb(), 1)
        info["processes"] = len(server.tree())
    except RuntimeError as e:
        info.update(status="failed", why=str(e))
        print(f"{server.name}: FAILED: {e}", flush=True)
        cells = []
    finally:
        server.stop()
    return info, cells


def peer_versions(peer_python: str) -> dict:
    code = (
        "import json, importlib.metadata as m\n"
        "names = ['torch', 'transformers', 'fastapi', 'uvicorn', 'ray', 'nvidia-pytriton', 'litserve', 'aiohttp']\n"
        "print(json.dumps({n: m.version(n) for n in names}))"
    )
    done = subprocess.run([peer_python, "-c", code], capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-300:]}


def machine() -> dict:
    from unified_nlp.bench.tracker import cpu_model
    from unified_nlp.cpu import gemm_features

    return {
        "cpu": cpu_model(),
        "cpu_features": gemm_features(),
        "logical_cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def model_folder() -> str:
    """The default model's folder in the store (made by the in-process runs): the peers load it."""
    from unified_nlp.resolve import default_model_dir

    folder = Path(default_model_dir())
    if not (folder / "head.safetensors").is_file():
        raise SystemExit(f"the default model's folder is not in the store ({folder}): run `make setup` first")
    return str(folder)


def run_benchmark(args) -> int:
    requests = [[text] for text in shuffled(dev_texts())]
    print(f"machine load before the run: {measure_load(2.0)}", flush=True)
    folder = model_folder()
    ours, servers, cells = {}, [], []
    for backend in args.backends:
        # in-process just before its server: this VM's speed drifts by 5-10% over minutes, and the
        # ratio to the ceiling should compare the two in the same state of the machine
        row = ours[backend] = inprocess(backend, args)
        if "error" in row:
            servers.append({"server": f"ours ({backend})", "status": "failed", "why": row["error"]})
            continue
        info, rows = bench_server(lambda b=backend: our_server(b, args), row, requests, args)
        servers.append(info)
        cells += rows
    reference = next((r for r in ours.values() if "error" not in r), None)
    if reference is None:
        raise SystemExit(f"no backend ran in-process: {ours}")
    for peer in args.peers:
        info, rows = bench_server(lambda p=peer: peer_server(p, folder, args), reference, requests, args)
        servers.append({**info, "what": PEERS[peer][2]})
        cells += rows
    inproc = list(ours.values())
    notes = observations(cells, inproc, servers)
    record = {
        "command": command_line(args),
        "machine": machine(),
        "threads": args.threads,
        "settings": settings(args),
        "peer_versions": peer_versions(args.peer_python),
        "in_process": inproc,
        "servers": servers,
        "observations": notes,
    }
    lines = table_lines(record, cells)
    write_results(args.out, cells, lines, **record)
    plot_throughput(cells, inproc, args.out / "serving.png")
    without_machine_paths(args.out)
    return 0


def mixed_requests(texts: list[str], count: int = 3000, seed: int = 0) -> list[list[str]]:
    """Requests of 1 to 8 texts, each text 1 to 40 dev sentences joined (about 20 to 1,000 tokens:
    the longest are truncated at the model's 512)."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        size = rng.choice((1, 1, 1, 2, 4, 8))
        joined = rng.choices((1, 2, 4, 8, 40), weights=(50, 25, 15, 8, 2), k=size)
        requests.append([" ".join(rng.choice(texts) for _ in range(n)) for n in joined])
    return requests


def sample_rss(server: Server, every: float, stop: threading.Event, samples: list) -> None:
    started = time.monotonic()
    while not stop.wait(every):
        samples.append((round(time.monotonic() - started, 1), round(server.rss_mb(), 1)))


def soak_one(backend: str, labels: list[str], requests: list[list[str]], args) -> dict:
    server = our_server(backend, args)
    try:
        wait_ready(server, labels, args.ready_timeout)
        samples, stop = [], threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(server, args.rss_interval, stop, samples), daemon=True)
        spec = {
            "url": server.url,
            "protocol": "tei",
            "requests": requests,
            "concurrency": args.soak_concurrency,
            "max_requests": int(args.soak * 60 * 5000),
            "seconds": args.soak * 60,
            "warmup_seconds": args.soak_warmup,
        }
        with LoadMeter(interval=5.0) as meter:
            sampler.start()
            result = run_client(args.peer_python, spec, args.workdir)
            stop.set()
            sampler.join()
    except RuntimeError as e:
        return {"backend": backend, "status": "failed", "why": str(e)}
    finally:
        server.stop()
    measured = [(t - args.soak_warmup, mb) for t, mb in samples if t >= args.soak_warmup]
    return soak_row(backend, result, measured, meter.result(), args)


def soak_row(backend: str, result: dict, measured: list, load: dict, args) -> dict:
    rss = [mb for _, mb in measured]
    window = max(1, len(rss) // 10)
    first, last = float(np.median(rss[:window])), float(np.median(rss[-window:]))
    minutes = [t / 60 for t, _ in measured]
    slope = float(np.polyfit(minutes, rss, 1)[0]) if len(rss) > 1 else 0.0
    return {
        "backend": backend,
        "status": "ok",
        "minutes": args.soak,
        "concurrency": args.soak_concurrency,
        "requests": len(result["latencies_ms"]),
        "texts": result["texts"],
        "errors": result["errors"],
        "texts_per_s": round(result["texts"] / result["wall_s"], 2),
        **percentiles(result["latencies_ms"]),
        "rss_start_mb": rss[0],
        "rss_end_mb": rss[-1],
        "rss_max_mb": max(rss),
        "rss_first_window_mb": round(first, 1),
        "rss_last_window_mb": round(last, 1),
        "drift": round((last - first) / first, 4),
        "trend_mb_per_min": round(slope, 2),
        "rss_samples": measured,
        "load_during": load,
        "reliable": load["others_cores"] / (os.cpu_count() or 1) <= args.load_limit and not result["errors"],
    }


def run_soak(args) -> int:
    folder = Path(model_folder())
    labels = json.loads((folder / "unified_nlp.json").read_text())["labels"]
    requests = mixed_requests(dev_texts())
    rows = []
    for backend in args.backends:
        print(f"soak of ours ({backend}): {args.soak} min at concurrency {args.soak_concurrency}", flush=True)
        rows.append(soak_one(backend, labels, requests, args))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "rss_samples"}), flush=True)
    record = {"command": command_line(args), "machine": machine(), "threads": args.threads}
    lines = soak_lines(record, rows, args)
    write_results(args.out, rows, lines, **record)
    plot_soak(rows, args.out / "soak-rss.png")
    without_machine_paths(args.out)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def command_line(args) -> str:
    return " ".join(["python", "benchmarks/serving.py", *args.argv])


def settings(args) -> dict:
    keys = ("concurrency", "seconds", "warmup", "max_requests", "load_limit", "quick")
    return {**{k: getattr(args, k) for k in keys}, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}


def without_machine_paths(folder: Path) -> None:
    """The recorded files name the checkout and the home folder as such, not this machine's paths."""
    for name in ("results.json", "results.md"):
        path = folder / name
        text = path.read_text(encoding="utf-8").replace(str(REPO) + "/", "").replace(str(Path.home()), "~")
        path.write_text(text, encoding="utf-8")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", help=f"our backends (default: {','.join(BACKENDS)}; --quick: onnxruntime)")
    p.add_argument("--peers", help=f"peer servers (default: {','.join(PEERS)}; --quick: naive; '' for none)")
    p.add_argument("--concurrency", default="1,8,64", help="closed-loop clients per cell")
    p.add_argument("--seconds", type=float, help="recorded seconds per cell at most (default 20; --quick 3)")
    p.add_argument("--warmup", type=float, help="unrecorded seconds of the same load first (default 3; --quick 1)")
    p.add_argument("--max-requests", type=int, default=20000, help="recorded requests per cell at most")
    p.add_argument("--threads", type=int, default=None, help="framework threads of every server (default: the cores)")
    p.add_argument("--peer-python", default=str(REPO / ".venv-bench-serving/bin/python"))
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results/serving[-soak])")
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks/results/tmp/serving-logs", help="server logs")
    p.add_argument("--ready-timeout", type=float, default=300.0, help="seconds a server may take to answer")
    p.add_argument("--load-limit", type=float, default=0.10, help="others' CPU share beyond which a cell is unreliable")
    p.add_argument("--idle-seconds", type=float, default=1.0, help="load measured before each cell")
    p.add_argument("--quick", action="store_true", help="a check of the script: seconds per cell, 1 backend, 1 peer")
    p.add_argument("--soak", type=float, metavar="MINUTES", help="soak our server (--backends, default huggingface)")
    p.add_argument("--soak-concurrency", type=int, default=8)
    p.add_argument("--soak-warmup", type=float, help="seconds of load before RSS counts (default 60; --quick 5)")
    p.add_argument("--rss-interval", type=float, help="seconds between RSS samples (default 5; --quick 1)")
    p.add_argument("--inprocess", help=argparse.SUPPRESS)  # internal: one backend's in-process figures
    args = p.parse_args(argv)
    args.argv = argv
    return defaults(args)


def defaults(args: argparse.Namespace) -> argparse.Namespace:
    from unified_nlp.threads import available_cores

    quick, soak = args.quick, args.soak is not None
    default_backends = ("huggingface",) if soak else ("onnxruntime",) if quick else BACKENDS
    args.backends = [b for b in (args.backends or ",".join(default_backends)).split(",") if b]
    args.peers = (
        []
        if soak
        else [
            p
            for p in (args.peers if args.peers is not None else ("naive" if quick else ",".join(PEERS))).split(",")
            if p
        ]
    )
    unknown = [b for b in args.backends if b not in BACKENDS] + [p for p in args.peers if p not in PEERS]
    if unknown:
        raise SystemExit(f"unknown backend or peer {unknown}: backends {BACKENDS}, peers {tuple(PEERS)}")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.seconds = args.seconds or (3.0 if quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    args.threads = args.threads or available_cores()
    args.soak_warmup = args.soak_warmup if args.soak_warmup is not None else (5.0 if quick else 60.0)
    args.rss_interval = args.rss_interval or (1.0 if quick else 5.0)
    results = REPO / "benchmarks/results"
    name = "serving-soak" if soak else "serving"
    args.out = args.out or (results / "tmp" / f"{name}-quick" if quick else results / name)
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.inprocess:
        print(json.dumps(inprocess_main(args.inprocess, args.threads, args.quick)), flush=True)
        return 0
    if not Path(args.peer_python).is_file():
        raise SystemExit(f"{args.peer_python} is missing: `make bench-serving` creates .venv-bench-serving")
    return run_stopping_servers(lambda: run_soak(args) if args.soak is not None else run_benchmark(args))


if __name__ == "__main__":
    sys.exit(main())
