"""Prometheus metrics of a server (prometheus-client), labelled by model and backend.

Each app has a registry of its own, so two apps in one process (tests, a user's app
mounting two) do not collide on metric names; the models of one app share it, each
through a view that adds its labels (`Metrics.of`).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKENS = (64, 256, 1024, 4096, 16384, 65536)
_DIFFS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
_NAMES = ("model", "backend")


class Metrics:
    """The server's histograms and counters. A request that addresses no model (a health
    probe, /v2, a 401) is counted with empty model and backend labels."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

        def histogram(name: str, what: str, buckets, extra: tuple[str, ...] = ()) -> Histogram:
            return Histogram(name, what, (*_NAMES, *extra), buckets=buckets, registry=self.registry)

        self.duration = histogram("unified_nlp_request_duration_seconds", "Request duration", _SECONDS, ("route",))
        self.hist = {
            "queue": histogram("unified_nlp_queue_seconds", "Time a request waited for its batch", _SECONDS),
            "tokenize": histogram("unified_nlp_tokenize_seconds", "Tokenization time per request", _SECONDS),
            "inference": histogram("unified_nlp_inference_seconds", "Forward time per batch", _SECONDS),
            "batch_size": histogram("unified_nlp_batch_size", "Rows per forward", _ROWS),
            "batch_tokens": histogram("unified_nlp_batch_tokens", "Padded tokens per forward", _TOKENS),
        }
        self.requests = Counter(
            "unified_nlp_requests", "Requests by route and status", (*_NAMES, "route", "status"), registry=self.registry
        )
        self.dropped = Counter(
            "unified_nlp_requests_dropped",
            "Requests dropped before they were computed, by reason",
            (*_NAMES, "reason"),
            registry=self.registry,
        )

        shadow = ("model", "candidate")
        self.shadow_texts = Counter(
            "unified_nlp_shadow_texts", "Texts a shadow candidate compared", shadow, registry=self.registry
        )
        self.shadow_agreeing = Counter(
            "unified_nlp_shadow_agreeing_texts",
            "Texts whose labels the candidate agreed on",
            shadow,
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "unified_nlp_shadow_dropped",
            "Requests sampled for the candidate and dropped, by reason (behind, not_ready, failed)",
            (*shadow, "reason"),
            registry=self.registry,
        )
        self.shadow_diff = Histogram(
            "unified_nlp_shadow_logit_abs_diff",
            "Per text, the largest |logit difference| between primary and candidate",
            shadow,
            buckets=_DIFFS,
            registry=self.registry,
        )
        self.shadow_seconds = Histogram(
            "unified_nlp_shadow_seconds",
            "The candidate's time per request",
            shadow,
            buckets=_SECONDS,
            registry=self.registry,
        )

    def of(self, model: str, backend: str) -> ModelMetrics:
        return ModelMetrics(self, {"model": model, "backend": backend})

    def request(self, route: str, status: int, seconds: float) -> None:
        """A request that addressed no model."""
        ModelMetrics(self, {"model": "", "backend": ""}).request(route, status, seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class ModelMetrics:
    """One model's series of the server's metrics; `observe` is its batcher's hook."""

    def __init__(self, metrics: Metrics, labels: dict[str, str]) -> None:
        self._metrics, self._labels = metrics, labels

    def observe(self, what: str, value: float) -> None:
        self._metrics.hist[what].labels(**self._labels).observe(value)

    def request(self, route: str, status: int, seconds: float) -> None:
        self._metrics.duration.labels(**self._labels, route=route).observe(seconds)
        self._metrics.requests.labels(**self._labels, route=route, status=str(status)).inc()

    def drop(self, reason: str) -> None:
        self._metrics.dropped.labels(**self._labels, reason=reason).inc()
