"""Closed-loop load client of benchmarks/serving.py (run with .venv-bench-serving's python, which
has aiohttp): CONCURRENCY workers, each sending its next request as soon as the previous one is
answered, on 127.0.0.1 only, bounded by a request count and a time.

    python load_client.py SPEC.json

SPEC: {"url", "protocol": "tei" | "v2", "requests": [[text, ...], ...], "concurrency",
"max_requests", "seconds", "warmup_seconds"}. Requests are taken in turn from "requests"
(cycling). A warm-up of the same load, not recorded, comes first. Prints one JSON line:
{"latencies_ms": [...] (answered requests, in order of completion), "texts", "errors",
"error_samples", "wall_s"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

import aiohttp


def payload(protocol: str, texts: list[str]) -> dict:
    if protocol == "tei":
        return {"inputs": texts}
    # Open Inference Protocol v2, a BYTES tensor [N, 1] (PyTriton's batch dimension + shape (1,))
    return {"inputs": [{"name": "text", "shape": [len(texts), 1], "datatype": "BYTES", "data": texts}]}


class Load:
    def __init__(self, spec: dict) -> None:
        host = urlsplit(spec["url"]).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"load_client sends to loopback only, not {host}")
        self.spec = spec
        self.bodies = [
            (json.dumps(payload(spec["protocol"], texts)).encode(), len(texts)) for texts in spec["requests"]
        ]
        self.next = 0
        self.latencies: list[float] = []
        self.texts = 0
        self.errors = 0
        self.error_samples: list[str] = []

    async def worker(self, session: aiohttp.ClientSession, until: float, limit: int, record: bool) -> None:
        headers = {"content-type": "application/json"}
        while time.perf_counter() < until and self.next < limit:
            body, n = self.bodies[self.next % len(self.bodies)]
            self.next += 1
            started = time.perf_counter()
            try:
                async with session.post(self.spec["url"], data=body, headers=headers) as response:
                    answer = await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                ok, answer = False, repr(e).encode()
            if not record:
                continue
            if ok:
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.texts += n
            else:
                self.errors += 1
                if len(self.error_samples) < 5:
                    self.error_samples.append(answer[:300].decode("utf-8", "replace"))

    async def phase(self, session: aiohttp.ClientSession, seconds: float, limit: int, record: bool) -> float:
        self.next = 0
        started = time.perf_counter()
        workers = [self.worker(session, started + seconds, limit, record) for _ in range(self.spec["concurrency"])]
        await asyncio.gather(*workers)
        return time.perf_counter() - started

    async def run(self) -> dict:
        spec = self.spec
        connector = aiohttp.TCPConnector(limit=spec["concurrency"], force_close=False)
        timeout = aiohttp.ClientTimeout(total=spec.get("request_timeout", 120))
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            if spec.get("warmup_seconds", 0) > 0:
                await self.phase(session, spec["warmup_seconds"], spec["max_requests"], record=False)
            wall = await self.phase(session, spec["seconds"], spec["max_requests"], record=True)
        return {
            "latencies_ms": [round(x, 3) for x in self.latencies],
            "texts": self.texts,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "wall_s": round(wall, 3),
        }


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    print(json.dumps(asyncio.run(Load(spec).run())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
