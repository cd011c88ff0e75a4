"""Processes and load of benchmarks/serving.py: a server subprocess and every process it starts,
the CPU other processes take meanwhile, the readiness probe and the load client's process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent / "serving_peers"
PROBE = "a gripping , beautifully acted film ."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess and every process it starts (Ray's and Triton's included): all of them
    are ended by `stop`, even those that left its process group."""

    running: list[Server] = []

    def __init__(self, name: str, argv: list[str], url: str, protocol: str, log: Path, env: dict) -> None:
        self.name, self.url, self.protocol = name, url, protocol
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.known: dict[int, object] = {}
        Server.running.append(self)

    def tree(self) -> list:
        """The server's processes now (remembered, so that `stop` finds them even if re-parented)."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        for p in procs:
            self.known.setdefault(p.pid, p)
        return procs

    def rss_mb(self) -> float:
        total = 0
        for p in self.tree():
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: BLE001 - a process that just ended
                pass
        return total / 2**20

    def tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 15.0) -> None:
        import psutil

        self.tree()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        left = [p for p in self.known.values() if p.is_running()]
        for p in left:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(left, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self in Server.running:
            Server.running.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for server in list(cls.running):
            server.stop(grace=5.0)


class LoadMeter:
    """CPU of other processes (not this one, not its descendants) while it runs, in cores."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._samples: list[tuple[float, float, float]] = []  # (time, busy s, ours s)
        self._ours: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ours_seconds(self) -> float:
        """CPU seconds of this process and its descendants, summed over every one seen (a process
        that ended keeps its last reading)."""
        import psutil

        me = psutil.Process()
        for p in [me, *me.children(recursive=True)]:
            try:
                t = p.cpu_times()
                self._ours[p.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return sum(self._ours.values())

    def _sample(self) -> None:
        import psutil

        t = psutil.cpu_times()
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
        self._samples.append((time.monotonic(), busy, self._ours_seconds()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> LoadMeter:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def result(self) -> dict:
        (t0, busy0, ours0), (t1, busy1, ours1) = self._samples[0], self._samples[-1]
        wall = max(t1 - t0, 1e-9)
        others = max(0.0, (busy1 - busy0) - (ours1 - ours0)) / wall
        return {
            "seconds": round(wall, 2),
            "busy_cores": round((busy1 - busy0) / wall, 3),
            "ours_cores": round((ours1 - ours0) / wall, 3),
            "others_cores": round(others, 3),
            "loadavg_1min": round(os.getloadavg()[0], 2),
        }


def measure_load(seconds: float) -> dict:
    with LoadMeter() as meter:
        time.sleep(seconds)
    return meter.result()


def post_json(url: str, body: dict, timeout: float = 30.0) -> object:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URLs only
        return json.loads(response.read())


def probe_probabilities(url: str, protocol: str, labels: list[str]) -> list[float]:
    """The server's probabilities of PROBE, in `labels` order."""
    if protocol == "v2":
        body = {"inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": [PROBE]}]}
        answer = post_json(url, body)
        return [float(x) for x in next(o for o in answer["outputs"] if o["name"] == "probs")["data"]]
    (scores,) = post_json(url, {"inputs": [PROBE]})
    by_label = {s["label"]: float(s["score"]) for s in scores}
    return [by_label[label] for label in labels]


def wait_ready(server: Server, labels: list[str], deadline_s: float) -> list[float]:
    """Probe until the server answers (readiness: a real inference); a server that exits or does
    not answer within `deadline_s` raises RuntimeError with the end of its log."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"exited with code {server.proc.returncode}:\n{server.tail()}")
        try:
            return probe_probabilities(server.url, server.protocol, labels)
        except (urllib.error.URLError, ConnectionError, OSError, ValueError, KeyError, StopIteration):
            time.sleep(0.5)
    raise RuntimeError(f"not ready within {deadline_s:.0f} s:\n{server.tail()}")


def run_client(peer_python: str, spec: dict, workdir: Path) -> dict:
    """One closed-loop load run (serving_peers/load_client.py in its own process)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=workdir, delete=False) as f:
        json.dump(spec, f)
    timeout = spec["seconds"] + spec.get("warmup_seconds", 0) + 180
    try:
        done = subprocess.run(
            [peer_python, str(PEERS_DIR / "load_client.py"), f.name], capture_output=True, text=True, timeout=timeout
        )
    finally:
        os.unlink(f.name)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"load client failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def run_stopping_servers(run) -> int:
    """`run()`'s exit code, every server stopped at the end (on error, Ctrl-C and SIGTERM too).
    OpenMP threads wait passively in every child (servers, their workers, in-process runs):
    see benchmarks/serving.py's docstring."""
    signal.signal(signal.SIGTERM, _interrupted)  # stop the servers as on Ctrl-C
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return run()
    except KeyboardInterrupt:
        print("interrupted: stopping every server; no results written", file=sys.stderr)
        return 130
    finally:
        Server.stop_all()
