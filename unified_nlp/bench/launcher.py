"""Start one probe process per target, one at a time, and collect its JSON result.

The child gets the thread environment variables, its own session (so a timeout
kills it and anything it started), and, for another environment's interpreter,
no PYTHONPATH (that environment must not see this one's packages). Its stderr
goes to a log whose tail is kept when it fails.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .threads import environment_variables


def interpreter(kind: str, name: str) -> tuple[str, str]:
    """The python that runs a target, and how it was chosen. Raises UnifiedNLPError
    (unknown or missing backend, or a registered environment without an interpreter)."""
    if kind != "backend":
        return sys.executable, "this environment"
    from unified_nlp import registry
    from unified_nlp.errors import BackendNotInstalledError

    where = registry.placement(name)  # UnknownBackendError / BackendNotInstalledError
    if where.mode == "in-process":
        return sys.executable, "this environment"
    python = where.python or sys.executable
    if not Path(python).exists():
        raise BackendNotInstalledError(
            f"the environment registered for backend {name!r} has no interpreter at {python}; create it or "
            f"register another with `unified-nlp worker register {name} PATH/TO/bin/python`"
        )
    return python, f"registered environment ({where.reason})"


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()


def launch(
    python: str,
    cfg: dict[str, Any],
    threads: int,
    timeout: float,
    on_event: Callable[[dict[str, Any]], None] = lambda e: None,
) -> dict[str, Any]:
    """Run `python -m unified_nlp.bench.probe` on `cfg`; always returns a result dict."""
    with tempfile.TemporaryDirectory(prefix="unified-nlp-bench-") as tmp:
        config_path, result_path, log_path = Path(tmp, "config.json"), Path(tmp, "result.json"), Path(tmp, "stderr.log")
        config_path.write_text(json.dumps(cfg), encoding="utf-8")
        env = {**os.environ, **environment_variables(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
        if os.path.realpath(python) != os.path.realpath(sys.executable):
            env.pop("PYTHONPATH", None)
        started = time.perf_counter()
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(
                    [python, "-m", "unified_nlp.bench.probe", str(config_path), str(result_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                    start_new_session=True,
                    cwd=tmp,
                )
            except OSError as e:
                return {"status": "error", "error": f"could not start {python}: {e}"}
            timed_out, partial = _follow(proc, started, timeout, on_event)
        elapsed = time.perf_counter() - started
        if result_path.is_file():
            result = json.loads(result_path.read_text(encoding="utf-8"))
            if result.get("status") != "ok":
                result["stderr_tail"] = _tail(log_path)
            return result
        if timed_out:
            error = f"timed out after {timeout:.0f} s and was killed"
        else:
            code = proc.returncode
            what = f"signal {-code}" if code < 0 else f"exit code {code}"
            error = f"the probe process died ({what}) without a result"
        return {
            **partial,
            "status": "timeout" if timed_out else "error",
            "error": error,
            "wall_s": elapsed,
            "stderr_tail": _tail(log_path),
        }


def _follow(
    proc: subprocess.Popen, started: float, timeout: float, on_event: Callable[[dict[str, Any]], None]
) -> tuple[bool, dict[str, Any]]:
    """Pass the probe's progress events to `on_event` until it exits or `timeout` (from
    `started`) runs out; returns (timed out, its last partial result). The probe never
    outlives this call."""
    events: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            try:
                events.put(json.loads(line))
            except ValueError:
                pass
        events.put(None)

    threading.Thread(target=read, daemon=True).start()
    timed_out, partial = False, {}
    try:
        while True:
            left = timeout - (time.perf_counter() - started)
            if left <= 0:
                timed_out = True
                break
            try:
                event = events.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if event is None:  # the probe closed its progress stream: it is exiting
                break
            partial = event.pop("partial", None) or partial
            on_event(event)
        if not timed_out:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:  # also on Ctrl-C in this process: never leave the probe behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this launcher created for it
        proc.wait()
        proc.stdout.close()
    return timed_out, partial
