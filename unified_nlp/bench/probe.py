"""One benchmark target in a fresh process: `python -m unified_nlp.bench.probe CONFIG RESULT`.

Started by launcher.py with the interpreter of the environment that has the
target (for paddlenlp, the registered worker environment, so the adapter runs
in-process there). Reads the JSON configuration, measures, writes the JSON
result to RESULT (atomically) and prints progress as JSON lines on a private
copy of stdout; whatever a framework prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

from .scenario import measure
from .tracker import load_average, machine, now, peak_rss_mb, process_environment


def _subject(cfg: dict[str, Any]):
    kind, model_dir, max_length = cfg["kind"], cfg["model_dir"], cfg.get("max_length")
    if kind == "backend":
        from .subjects import BackendSubject

        return BackendSubject(cfg["name"], model_dir, max_length)
    from .references import PipelineSubject, PlainOnnxSubject, RawTorchSubject

    if kind == "torch-raw":
        return RawTorchSubject(model_dir, max_length)
    if kind == "onnx-plain":
        return PlainOnnxSubject(model_dir, max_length)
    if kind == "hf-pipeline":
        return PipelineSubject(model_dir, max_length)
    raise ValueError(f"unknown benchmark target kind {kind!r}")


def run(cfg: dict[str, Any], emit) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": cfg["name"],
        "kind": cfg["kind"],
        "status": "ok",
        "error": None,
        "started": now(),
        "pid": os.getpid(),
        "machine": machine(),
        "process": process_environment(),
    }
    start = time.perf_counter()

    def step(phase: str) -> None:
        # the measurements so far ride along, so a target killed at its timeout still reports them
        partial = dict(cfg.get("_partial", {}))
        if "latency_b1" in partial:
            partial["latency_b1"] = {k: v for k, v in partial["latency_b1"].items() if k != "samples_ms"}
        emit({"step": phase, "partial": partial})

    try:
        if cfg["kind"] == "ceiling":
            from .references import matmul_ceiling

            step("start")
            result["ceiling"] = matmul_ceiling(
                int(cfg["threads"]), step, seconds=float(cfg.get("ceiling_seconds", 1.5))
            )
            result["load_average_end"] = load_average()
            result["peak_rss_mb"] = peak_rss_mb()
        else:
            result.update(measure(_subject(cfg), cfg, step))
    except BaseException as e:  # reported to the parent, which keeps going with the next target
        result.update(cfg.get("_partial", {}))
        result["status"] = "error"
        known = type(e).__module__.startswith("unified_nlp")
        result["error"] = f"{type(e).__name__}: {e}" + ("" if known else "\n" + traceback.format_exc(limit=8))
    result["wall_s"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config_path, result_path = argv[0], argv[1]
    os.environ["UNIFIED_NLP_IN_WORKER"] = "1"  # run the adapter in this process, never in a nested worker
    progress = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # frameworks print to stdout; keep the progress stream clean
    sys.stdout = sys.stderr
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)

    def emit(event: dict[str, Any]) -> None:
        try:
            progress.write(json.dumps(event) + "\n")
        except OSError:
            pass

    result = run(cfg, emit)
    tmp = result_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, result_path)
    emit({"done": result["status"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
