"""`serve --engine ray` (unified_nlp.serving.ray_engine) on real local Ray clusters, loopback only:
the default model (onnxruntime) on Ray Serve replicas, reached through Ray's HTTP proxy with real
clients (tritonclient.http, urllib), a replica killed under traffic, SIGTERM.

The server is the CLI's, `unified-nlp serve --engine ray`, in a subprocess. First with no address (it starts
and stops its own Ray instance), then joining the module's cluster, which this module starts once
(2 CPUs, loopback, no dashboard) and stops at the end, failure or not, with every process it left.

Ray Serve missing is a skip, or a failure where $UNIFIED_NLP_REQUIRE_BACKENDS lists "ray"."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, REQUIRED, default_classifier, require, require_module
from tests.serving_helpers import call, free_port, wait_ready

try:
    import ray
    from ray import serve
except ImportError as e:
    if "ray" in REQUIRED:
        pytest.fail(
            f"ray[serve] is required here (UNIFIED_NLP_REQUIRE_BACKENDS) but not importable: {e}", pytrace=False
        )
    pytest.skip(f"ray[serve] is not importable ({e}): pip install 'ray[serve]==2.60.0'", allow_module_level=True)

psutil = require_module("psutil")
triton = require_module("tritonclient.http")

from unified_nlp.errors import InvalidInputError, UnifiedNLPError  # noqa: E402
from unified_nlp.serving import ray_engine  # noqa: E402
from unified_nlp.serving.repository import ModelEntry  # noqa: E402

TEXTS = ["A great movie!", "The worst film I have seen.", "Quite good, if a little long."]
TOL = 1e-5
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


@pytest.fixture(scope="module", autouse=True)
def onnxruntime_backend():
    require("onnxruntime")


class Server:
    """`unified-nlp serve default --engine ray` in a subprocess, its output in a file."""

    def __init__(self, address: str | None, replicas: int, folder: Path, group: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "unified_nlp.cli", "serve", "default", "--backend", "onnxruntime"]
        command += ["--engine", "ray", "--replicas", str(replicas), "--port", str(self.port), "--drain-timeout", "5"]
        command += [] if address is None else ["--address", address]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=group
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def wait_ready(self) -> None:
        try:
            wait_ready(self.url, timeout=150, process=self.process)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- server output ---\n{self.output()}") from None

    def terminate(self, timeout: float = 60, group: bool = False) -> int:
        """SIGTERM (to its process group: as systemd stops a service), then its exit code (it must
        exit by itself within `timeout`)."""
        if group:
            os.killpg(self.process.pid, signal.SIGTERM)
        else:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit {timeout} s after SIGTERM\n{self.output()}") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _descendants(pid: int) -> list:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).children(recursive=True)
    return []


def _reap(processes: list, timeout: float = 15) -> list:
    """Wait for `processes` to end; SIGKILL (by PID) those still alive. Returns those that had to be killed."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    return alive


def _listening(processes: list) -> set[tuple[str, int, str]]:
    """(address, port, process name) of every TCP socket these processes listen on."""
    found = set()
    for p in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for c in p.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN:
                    found.add((c.laddr.ip, c.laddr.port, p.name()))
    return found


def test_bad_arguments_are_refused_before_any_cluster_starts():
    with pytest.raises(InvalidInputError, match="not both"):
        ray_engine.replica_counts(2, (1, 2))
    for replicas, autoscale in [(0, None), (True, None), (None, (2, 1)), (None, (0, 2))]:
        with pytest.raises(InvalidInputError, match="--replicas|--autoscale"):
            ray_engine.replica_counts(replicas, autoscale)
    assert ray_engine.replica_counts(None, None) == (1, 1)
    assert ray_engine.replica_counts(None, (1, 4)) == (1, 4)
    for option in [{"model_control": True}, {"grpc_port": 8001}]:
        with pytest.raises(InvalidInputError, match="one replica only"):
            ray_engine.deploy([], scaling=(1, 1), host="127.0.0.1", port=1, app_options=option, drain_timeout=1)
    assert not ray.is_initialized()


# --- no address: a Ray instance of its own, loopback only (first: one cluster on these cores at a time)


def test_a_local_instance_listens_on_loopback_only_and_stops_on_sigterm_to_its_group(tmp_path):
    """The group's SIGTERM reaches Ray's own processes too: the server must not wait for them."""
    server = Server(None, 1, tmp_path, group=True)
    family: list = []
    try:
        server.wait_ready()
        family = _descendants(server.process.pid)
        assert any("raylet" in " ".join(p.cmdline()) for p in family), "no Ray instance under the server"
        listening = _listening([psutil.Process(server.process.pid), *family])
        assert any(port == server.port for _, port, _ in listening), sorted(listening)  # the proxy is among them
        assert {ip for ip, _, _ in listening} <= LOOPBACK, sorted(listening)
        status, _, body = call(server.url, "/predict", {"inputs": TEXTS[0]}, timeout=20)
        assert status == 200 and json.loads(body)[0]["label"] == "POSITIVE"
        server.process.send_signal(signal.SIGHUP)  # not a reload here: said, and nothing stops
        time.sleep(1)
        assert call(server.url, "/predict", {"inputs": TEXTS[0]}, timeout=20)[0] == 200
        began = time.monotonic()
        assert server.terminate(group=True) == 0, server.output()
        assert time.monotonic() - began < 40, server.output()  # not Ray's 60 s wait for a stopped GCS
        assert "SIGHUP: --engine ray does not re-read" in server.output()
        assert "the local Ray instance got the signal too" in server.output()
        assert not _reap(family), "Ray processes outlived the server"
    finally:
        server.kill()
        _reap(family, timeout=1)


# --- a cluster started here; the server joins it by address


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster (2 CPUs, loopback) for the module; stopped with every process it started."""
    folder = tempfile.mkdtemp(prefix="unlp-ray-")  # short: Ray's socket paths must fit in 107 bytes
    started: list = []
    try:
        assert ray_engine.connect(None, num_cpus=2, temp_dir=folder)
        started = _descendants(os.getpid())
        yield ray.get_runtime_context().gcs_address
    finally:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()
        _reap(started + _descendants(os.getpid()))
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory):
    running = Server(cluster, 2, tmp_path_factory.mktemp("ray-serve"))
    try:
        running.wait_ready()
        yield running
    finally:
        running.kill()


@pytest.fixture(scope="module")
def onnx():
    return default_classifier("onnxruntime")


def _replicas(timeout: float = 30, without: int | None = None, count: int = 2) -> dict[int, dict]:
    """The replicas (pid -> `describe()`) once `count` answer (and `without` is gone), asked through
    a deployment handle; fails after `timeout` seconds."""
    handle = serve.get_app_handle(ray_engine.APP_NAME)
    deadline, seen = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # a dead replica's call fails until the controller drops it
            described = handle.describe.remote().result(timeout_s=5)
            seen[described["pid"]] = described
        alive = {pid: d for pid, d in seen.items() if psutil.pid_exists(pid) and pid != without}
        if len(alive) == count:
            return alive
    raise AssertionError(f"{count} live replicas not seen within {timeout} s: {seen}")


def test_v2_infer_through_the_proxy_matches_predict_proba(server, onnx):
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=20)
    assert client.is_server_ready() and client.is_model_ready("default")
    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object))
    for _ in range(4):  # over both replicas
        result = client.infer("default", [text])
        np.testing.assert_allclose(result.as_numpy("probabilities"), onnx.predict_proba(TEXTS), atol=TOL)


def test_tei_predict_through_the_proxy(server, onnx):
    status, _, body = call(server.url, "/predict", {"inputs": TEXTS}, timeout=20)
    assert status == 200
    expected = onnx.predict_proba(TEXTS)
    for row, probs in zip(json.loads(body), expected, strict=True):
        scores = {item["label"]: item["score"] for item in row}
        np.testing.assert_allclose([scores[lab] for lab in onnx.labels], probs, atol=TOL)


def test_each_replica_computes_with_its_share_of_the_cores(server):
    replicas = _replicas()
    assert len(replicas) == 2
    assert [d["threads"] for d in replicas.values()] == [1, 1]  # 2 CPUs / 2 replicas


def _stream(url: str, stop: threading.Event, results: list, deadline: float) -> None:
    """One client: v2 infer requests back to back until `stop` (bounded by `deadline`), each with a timeout."""
    body = {"inputs": [{"name": "text", "shape": [8], "datatype": "BYTES", "data": (TEXTS * 3)[:8]}]}
    while not stop.is_set() and time.monotonic() < deadline:
        began = time.monotonic()
        try:
            status, _, answer = call(url, "/v2/models/default/infer", body, timeout=10)
        except OSError as e:  # a timeout or a dropped connection: what must not happen
            status, answer = None, repr(e).encode()
        results.append((began, time.monotonic(), status, answer))


def test_a_killed_replica_fails_only_its_requests_and_comes_back(server):
    killed = next(iter(_replicas()))
    stop, results = threading.Event(), []
    deadline = time.monotonic() + 60
    clients = [threading.Thread(target=_stream, args=(server.url, stop, results, deadline)) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        time.sleep(2)
        assert results, "no answer before the kill"
        killed_at = time.monotonic()
        os.kill(killed, signal.SIGKILL)
        replicas = _replicas(timeout=30, without=killed)  # fails past 30 s
        back = time.monotonic() - killed_at
        time.sleep(1)
    finally:
        stop.set()
        for client in clients:
            client.join(15)
    assert not any(c.is_alive() for c in clients), "a client call hung"
    hung = [r for r in results if r[2] is None]
    assert not hung, f"calls without an HTTP answer: {hung[:3]}"
    failed = [r for r in results if r[2] != 200]
    # Ray's proxy answers a request whose replica died under it with a bare 500 "Internal Server Error"
    # (Ray 2.60 has no hook left to reshape it); any failure must at least be a 5xx with a body
    assert all(500 <= r[2] < 600 and r[3] for r in failed), [r[2:] for r in failed]
    after = [r for r in results if r[0] > killed_at and r[2] == 200]
    assert after, "no request was answered after the kill"
    assert killed not in replicas and back < 30
    shown = [(r[2], r[3][:120]) for r in failed]
    print(f"replica back in {back:.1f} s; {len(results)} requests, {len(failed)} failed: {shown}")
    status = serve.status().applications[ray_engine.APP_NAME].deployments[ray_engine.DEPLOYMENT]
    assert status.replica_states == {"RUNNING": 2}, status


def test_sigterm_deletes_the_deployment_and_frees_the_port(server):
    pids = list(_replicas())
    assert server.terminate() == 0, server.output()
    assert not _reap([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=15), "replicas outlived"
    assert ray_engine.APP_NAME not in ray_engine.applications()
    with pytest.raises(OSError):
        call(server.url, "/v2/health/ready", timeout=5)


def test_a_model_that_cannot_load_fails_the_deployment_with_its_error(cluster, tmp_path):
    """After the server above has stopped (one Serve instance per cluster: its HTTP options are the first start's)."""
    missing = ModelEntry("broken", str(tmp_path / "no-such-model"), "onnxruntime")
    began = time.monotonic()
    with pytest.raises(UnifiedNLPError, match="could not be deployed on Ray Serve: .*no-such-model"):
        ray_engine.deploy(
            [missing], scaling=(1, 1), host="127.0.0.1", port=free_port(), app_options={}, drain_timeout=1
        )
    assert time.monotonic() - began < 60
    assert ray_engine.APP_NAME not in ray_engine.applications()
    serve.shutdown()


def test_a_paddlenlp_replica_runs_the_model_in_its_worker(cluster, onnx):
    """The replica starts the paddlenlp worker (.venv-paddle's python) and the worker ends with the deployment."""
    require("paddlenlp")
    port = free_port()
    entries = [ModelEntry("default", "default", "paddlenlp")]
    workers: list = []
    ray_engine.deploy(entries, scaling=(1, 1), host="127.0.0.1", port=port, app_options={}, drain_timeout=5)
    try:
        ((pid, described),) = _replicas(count=1).items()
        assert described["models"] == ["default"]
        workers = [p for p in _descendants(pid) if "unified_nlp.worker_main" in " ".join(p.cmdline())]
        assert len(workers) == 1, [p.cmdline() for p in _descendants(pid)]
        status, _, body = call(f"http://127.0.0.1:{port}", "/predict", {"inputs": TEXTS}, timeout=60)
        assert status == 200, body
        expected = onnx.predict_proba(TEXTS)
        for row, probs in zip(json.loads(body), expected, strict=True):
            scores = {item["label"]: item["score"] for item in row}
            np.testing.assert_allclose([scores[lab] for lab in onnx.labels], probs, atol=TOL)
    finally:
        ray_engine.undeploy()
    assert not _reap(workers, timeout=20), "the paddlenlp worker outlived its replica"
