"""Ray Serve with `@serve.batch` (up to 32 requests, 5 ms wait) around transformers' pipeline of
the default model; one replica, Ray's HTTP proxy on 127.0.0.1, a local Ray cluster on 127.0.0.1
without the dashboard. max_ongoing_requests is raised from Ray's default (5) so that a batch can
fill at concurrency 64.

    python ray_serve.py --folder MODEL_FOLDER --port 8001
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report: loopback traffic only

import ray  # noqa: E402 - after the environment that Ray reads at import
from default_model import MAX_BATCH_SIZE, load_pipeline, peer_arguments  # noqa: E402
from ray import serve  # noqa: E402
from starlette.requests import Request  # noqa: E402


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 1})
class Classifier:
    def __init__(self, folder: str, threads: int) -> None:
        self.pipe = load_pipeline(folder, threads)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=0.005)
    async def classify(self, texts: list[str]) -> list:
        return self.pipe(texts, batch_size=len(texts))

    async def __call__(self, request: Request) -> list:
        body = await request.json()
        return list(await asyncio.gather(*(self.classify(text) for text in body["inputs"])))


if __name__ == "__main__":
    args = peer_arguments(__doc__)
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port}, logging_config={"log_level": "WARNING"})
    serve.run(Classifier.bind(args.folder, args.threads), route_prefix="/predict", name="default")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    serve.shutdown()
    ray.shutdown()
