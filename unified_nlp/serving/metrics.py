"""Prometheus metrics of a server (prometheus-client), labelled by model and backend.

Each app has a registry of its own, so two apps in one process (tests, a user's app
mounting two models) do not collide on metric names.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKENS = (64, 256, 1024, 4096, 16384, 65536)


class Metrics:
    """The server's histograms and counters; `observe` is the batcher's hook."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str, backend: str) -> None:
        self.registry = CollectorRegistry()
        self._labels = {"model": model, "backend": backend}
        names = ("model", "backend")

        def seconds(name: str, what: str) -> Histogram:
            return Histogram(name, what, names, buckets=_SECONDS, registry=self.registry)

        self.duration = Histogram(
            "unified_nlp_request_duration_seconds",
            "Request duration",
            (*names, "route"),
            buckets=_SECONDS,
            registry=self.registry,
        )
        self._hist = {
            "queue": seconds("unified_nlp_queue_seconds", "Time a request waited for its batch"),
            "tokenize": seconds("unified_nlp_tokenize_seconds", "Tokenization time per request"),
            "inference": seconds("unified_nlp_inference_seconds", "Forward time per batch"),
            "batch_size": Histogram(
                "unified_nlp_batch_size", "Rows per forward", names, buckets=_ROWS, registry=self.registry
            ),
            "batch_tokens": Histogram(
                "unified_nlp_batch_tokens", "Padded tokens per forward", names, buckets=_TOKENS, registry=self.registry
            ),
        }
        self.requests = Counter(
            "unified_nlp_requests", "Requests by route and status", (*names, "route", "status"), registry=self.registry
        )
        self.dropped = Counter(
            "unified_nlp_requests_dropped",
            "Requests dropped before they were computed, by reason",
            (*names, "reason"),
            registry=self.registry,
        )

    def observe(self, what: str, value: float) -> None:
        self._hist[what].labels(**self._labels).observe(value)

    def request(self, route: str, status: int, seconds: float) -> None:
        self.duration.labels(**self._labels, route=route).observe(seconds)
        self.requests.labels(**self._labels, route=route, status=str(status)).inc()

    def drop(self, reason: str) -> None:
        self.dropped.labels(**self._labels, reason=reason).inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)
