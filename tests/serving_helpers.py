"""Shared by the serving tests: a free loopback port, one HTTP call, a /metrics sample, waiting for readiness, and a
uvicorn server of an app in a thread (tests/test_serving.py, tests/test_serving_faults.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, path: str, body=None, headers: dict | None = None, timeout: float = 60):
    """(status, headers, body) of one request; `body` a dict (JSON) or bytes."""
    data = json.dumps(body).encode() if isinstance(body, dict | list | str) else body
    request = urllib.request.Request(
        url + path, data=data, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def metric(url: str, name: str, **labels) -> float:
    """The sum of a /metrics sample over the series with these labels (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = call(url, "/metrics", timeout=10)[2].decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def wait_ready(url: str, timeout: float = 120, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process is None or process.poll() is None, "the server exited before it was ready"
        try:
            if call(url, "/v2/health/ready", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {timeout} s")


class Running:
    """A uvicorn server of `app` in a thread on 127.0.0.1 and a free port, while in the `with`."""

    def __init__(self, app) -> None:
        self.app, self.port = app, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        import uvicorn  # the serve extra: imported by the tests that checked for it

        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        wait_ready(self.url)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
