"""Faults of a served model, through real servers on 127.0.0.1 and real sockets:

- a client that disconnects while its request is queued has it dropped, never computed;
- a lone request on an idle server is computed at once, not after a batching timer;
- a killed paddlenlp worker fails its requests with 503, readiness answers 503 while the
  model reloads in a new worker, then the same probabilities come back;
- a model that cannot be reloaded stays unready with the reason, after a bounded number
  of attempts;
- SIGTERM drains a worker-backed server too.

Synchronisation polls the server's own metrics, logs and process table with bounded
deadlines; every client call has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, default_classifier, require, require_module
from tests.serving_helpers import Running, call, free_port, metric

uvicorn = require_module("uvicorn")
require_module("starlette")
require_module("prometheus_client")
psutil = require_module("psutil")

from unified_nlp.serving import create_app  # noqa: E402 - after the checks that skip without the extra
from unified_nlp.serving.batcher import Batcher  # noqa: E402

TEXTS = ["This is a great movie!", "A dull, lifeless film.", "It was fine, I guess. " * 3, "é ü — 映画"]
TOL = 1e-5


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def ready(url: str) -> bool:
    try:
        return call(url, "/v2/health/ready", timeout=5)[0] == 200
    except OSError:
        return False


def probabilities(url: str, texts: list[str]) -> np.ndarray:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
    status, _, reply = call(url, "/v2/models/default/infer", body)
    assert status == 200, reply
    out = {o["name"]: o for o in json.loads(reply)["outputs"]}["probabilities"]
    return np.reshape(out["data"], out["shape"])


@pytest.fixture(scope="module")
def hf():
    return default_classifier("huggingface")


# --- the batch former: no timer, and a client gone is dropped --------------------------------


def test_a_lone_request_is_not_held_back_by_a_timer(hf):
    """Under an event loop whose clock never advances no timer ever fires: a batcher that held
    a lone request until a batch filled or a wait expired would never answer it."""
    loop = asyncio.new_event_loop()
    loop.time = lambda: 0.0  # call_later, sleep and wait_for timeouts are frozen

    async def lone():
        batcher = Batcher(hf, max_batch_size=32, max_batch_tokens=16384, max_queue=8)
        await asyncio.to_thread(batcher.warm)
        batcher.start()
        try:
            return await batcher.submit(*hf.prepare(["a lone request"]), None)
        finally:
            await batcher.stop()

    answer = {}
    thread = threading.Thread(target=lambda: answer.update(logits=loop.run_until_complete(lone())[0]), daemon=True)
    thread.start()
    thread.join(timeout=60)  # a bound for the test, not a synchronisation: the answer needs no time to pass
    assert not thread.is_alive(), "the lone request was never computed: the batcher waits on a timer"
    loop.close()
    np.testing.assert_allclose(hf.scores(answer["logits"]), hf.predict_proba(["a lone request"]), atol=TOL)


def _send_and_close_later(port: int, body: dict) -> socket.socket:
    """A raw HTTP/1.1 request sent whole; the caller closes the socket without reading."""
    data = json.dumps(body).encode()
    head = f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode() + b"\r\n\r\n" + data)
    return sock


def test_a_request_whose_client_has_gone_is_dropped_before_it_is_computed(hf):
    plug, victim = TEXTS[:3], [f"never computed {i}" for i in range(5)]
    app = create_app(hf, name="default")
    with Running(app) as running:
        url, served = running.url, app.state.served
        rows = lambda: metric(url, "unified_nlp_batch_size_sum")  # noqa: E731 - rows computed so far
        gate = threading.Event()
        # the forward thread is held, so the batcher keeps what comes next queued: deterministic, no timing
        served.batcher._forward.submit(gate.wait, 60)
        try:
            with ThreadPoolExecutor(1) as pool:
                first = pool.submit(call, url, "/predict", {"inputs": plug})
                wait_until(lambda: metric(url, "unified_nlp_queue_seconds_count") == 1, "the plug is in a batch")
                sock = _send_and_close_later(running.port, {"inputs": victim})
                wait_until(lambda: metric(url, "unified_nlp_tokenize_seconds_count") == 2, "the victim is queued")
                sock.close()
                wait_until(
                    lambda: metric(url, "unified_nlp_requests_dropped_total", reason="client_gone") == 1,
                    "the victim is dropped",
                )
                gate.set()
                assert first.result(timeout=60)[0] == 200
        finally:
            gate.set()
        assert rows() == len(plug), "the rows of the dropped request were computed"
        assert metric(url, "unified_nlp_requests_total", route="/predict", status="499") == 1
        assert call(url, "/predict", {"inputs": "still serving"})[0] == 200
        assert rows() == len(plug) + 1 and served.batcher.pending == 0


# --- a paddlenlp server whose worker dies --------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    model: Path
    log: Path

    def worker(self) -> psutil.Process:
        """The server's worker process (its only child running unified_nlp.worker_main)."""
        children = [p for p in psutil.Process(self.process.pid).children() if _is_worker(p)]
        assert len(children) == 1, children
        return children[0]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _is_worker(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE and "unified_nlp.worker_main" in process.cmdline()
    except psutil.Error:  # gone meanwhile
        return False


def start_paddlenlp_server(folder: Path, **env) -> Server:
    """`unified-nlp serve` of a copy of the default model on paddlenlp, in a subprocess."""
    from unified_nlp.resolve import default_model_dir

    require("paddlenlp")
    model = folder / "default"
    shutil.copytree(default_model_dir(), model)
    port, log = free_port(), folder / "server.log"
    cmd = [sys.executable, "-m", "unified_nlp.cli", "serve", str(model), "--backend", "paddlenlp", "--name", "default"]
    cmd += ["--port", str(port), "--no-access-log", "--threads", "1", "--max-batch-size", "4"]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", model, log)
    try:
        wait_until(lambda: process.poll() is not None or ready(server.url), "the paddlenlp server is ready", 180)
        assert process.poll() is None, server.log_text()[-3000:]
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def paddle(tmp_path_factory):
    server = start_paddlenlp_server(tmp_path_factory.mktemp("paddle"))
    yield server
    server.stop()


def _burst(server: Server, count: int = 24) -> tuple[ThreadPoolExecutor, list]:
    """`count` concurrent requests of 4 texts each, answered or failed within the client timeout."""
    pool = ThreadPoolExecutor(8)
    texts = lambda i: [f"{t} ({i})" for t in TEXTS]  # noqa: E731
    return pool, [pool.submit(call, server.url, "/predict", {"inputs": texts(i)}, timeout=60) for i in range(count)]


def test_a_killed_worker_fails_its_requests_with_503_then_the_model_reloads(paddle):
    before = probabilities(paddle.url, TEXTS)
    worker = paddle.worker()
    batches = metric(paddle.url, "unified_nlp_queue_seconds_count")
    pool, futures = _burst(paddle)
    with pool:
        wait_until(lambda: metric(paddle.url, "unified_nlp_queue_seconds_count") > batches + 1, "the burst computes")
        worker.send_signal(signal.SIGKILL)
        wait_until(lambda: not ready(paddle.url), "readiness turns 503 while the model reloads", 30)
        replies = [f.result(timeout=90) for f in futures]  # a hang fails here
    statuses = [status for status, _, _ in replies]
    assert set(statuses) <= {200, 503} and 503 in statuses, statuses
    failed = [json.loads(body) for status, _, body in replies if status == 503]
    assert all("worker" in f["error"] for f in failed), failed  # in flight: Backend; after: Unhealthy (reloading)
    assert {f["error_type"] for f in failed} <= {"Backend", "Unhealthy"} and "Backend" in str(failed), failed
    wait_until(lambda: ready(paddle.url), "the model is reloaded", 120)
    assert paddle.worker().pid != worker.pid
    np.testing.assert_allclose(probabilities(paddle.url, TEXTS), before, atol=TOL)
    assert "reloaded in a new paddlenlp worker" in paddle.log_text()


def test_a_worker_killed_while_idle_turns_readiness_503_until_reloaded(paddle):
    before = probabilities(paddle.url, TEXTS)
    paddle.worker().send_signal(signal.SIGKILL)
    wait_until(lambda: not ready(paddle.url), "readiness turns 503", 30)
    status, _, body = call(paddle.url, "/health")
    assert status == 503 and "reloading" in json.loads(body)["error"]
    wait_until(lambda: ready(paddle.url), "the model is reloaded", 120)
    np.testing.assert_allclose(probabilities(paddle.url, TEXTS), before, atol=TOL)


def test_sigterm_drains_a_worker_backed_server(paddle):
    """Last on the shared server: SIGTERM during a burst answers every accepted request, exits
    0 and leaves no worker behind."""
    worker = paddle.worker()
    batches = metric(paddle.url, "unified_nlp_queue_seconds_count")

    def one(i):
        try:
            return call(paddle.url, "/predict", {"inputs": [f"{t} [{i}]" for t in TEXTS]})[0]
        except urllib.error.URLError as e:  # refused once the listener closed: never accepted
            assert isinstance(e.reason, ConnectionRefusedError), e
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(16)]
        wait_until(lambda: metric(paddle.url, "unified_nlp_queue_seconds_count") > batches, "the burst computes")
        paddle.process.send_signal(signal.SIGTERM)
        statuses = [f.result(timeout=90) for f in futures]
    assert paddle.process.wait(timeout=60) == 0, paddle.log_text()[-3000:]
    assert set(statuses) <= {200, "refused"} and 200 in statuses, statuses
    gone, alive = psutil.wait_procs([worker], timeout=30)
    assert not alive, "the worker outlived its server"


def test_a_model_that_cannot_be_reloaded_stays_unready_after_bounded_attempts(tmp_path):
    server = start_paddlenlp_server(tmp_path, UNIFIED_NLP_SERVE_RELOADS="2", UNIFIED_NLP_SERVE_RELOAD_BACKOFF="0.1")
    try:
        weights, aside = server.model / "model.safetensors", tmp_path / "weights-aside"
        weights.rename(aside)  # the next load of the model fails
        server.worker().send_signal(signal.SIGKILL)
        wait_until(lambda: "could not be reloaded" in server.log_text(), "the reload gives up", 120)
        status, _, body = call(server.url, "/health")
        error = json.loads(body)["error"]
        assert status == 503 and "2 attempts" in error and "no weights" in error, body
        assert not ready(server.url)
        status, _, body = call(server.url, "/v2/health/live")  # a restart of the process is what is left
        assert status == 503 and json.loads(body) == {"live": False}, body
        aside.rename(weights)  # loadable again: only a further attempt would make it ready
        assert server.stop() == 0
    finally:
        server.stop()
    log = server.log_text()
    assert log.count("reload 1 of 2 failed") == 1 and log.count("reload 2 of 2 failed") == 1, log[-3000:]
    assert "reloaded in a new" not in log and "reload 3" not in log
