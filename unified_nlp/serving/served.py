"""A served model: its classifier (loaded and warmed in the background), its batcher, its
limits and its metrics; what every protocol's routes share."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import UnifiedNLPError, WorkerError
from .batcher import Batcher, Overloaded
from .metrics import Metrics

log = logging.getLogger("unified_nlp.serving")


@dataclass(frozen=True)
class Limits:
    """The batching knobs and the request limits (TEI's names where TEI has one)."""

    max_batch_size: int = 32  # rows per forward
    max_batch_tokens: int = 16384  # padded tokens per batch (rows x longest row)
    max_queue: int = 256  # requests accepted and not yet answered; beyond: 429
    max_client_batch_size: int = 256  # texts per request; beyond: 413 (TEI) / 400 (v2)
    payload_limit: int = 2_000_000  # request body bytes; beyond: 413


class ServingError(Exception):
    """A request answered with an error: the HTTP status, the message and TEI's error type."""

    def __init__(self, status: int, message: str, kind: str = "Validation", headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


class Served:
    """One model behind the server: `classify` is the only way to it."""

    def __init__(self, model, *, name: str | None, limits: Limits, load_options: dict) -> None:
        self.name = name or self.default_name(model)
        self.limits = limits
        self._model, self._load_options = model, load_options
        self.clf = None if isinstance(model, str | Path) else model
        self.backend = self.clf.backend if self.clf is not None else load_options.get("backend", "huggingface")
        self.metrics = Metrics(self.name, self.backend)
        self.batcher: Batcher | None = None
        self.ready = False
        self.draining = False
        self.error: str | None = None
        self._task: asyncio.Task | None = None

    @staticmethod
    def default_name(model) -> str:
        """A model's name in URLs: its folder's name, "default", or "model" for an unsaved classifier."""
        if isinstance(model, str | Path):
            return Path(model).name or "default"
        return Path(model.source).name if model.source is not None else "model"

    def start(self) -> None:
        """Load (if given a name) and warm the model in the background; idempotent."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        try:
            if self.clf is None:
                from ..api import load_classifier

                self.clf = await asyncio.to_thread(load_classifier, self._model, **self._load_options)
            batcher = Batcher(
                self.clf,
                max_batch_size=self.limits.max_batch_size,
                max_batch_tokens=self.limits.max_batch_tokens,
                max_queue=self.limits.max_queue,
                observe=self.metrics.observe,
            )
            await asyncio.to_thread(batcher.warm)
            batcher.start()
            self.batcher, self.ready = batcher, True
            log.info("model %r ready on %s (%s)", self.name, self.clf.backend, self.clf.precision)
        except Exception as e:  # noqa: BLE001 - the server stays up and says why it is not ready
            self.error = f"{type(e).__name__}: {e}"
            log.error("model %r failed to load: %s", self.name, self.error)

    async def stop(self) -> None:
        self.draining = True
        if self.batcher is not None:
            await self.batcher.stop()

    def check_ready(self) -> None:
        self.start()
        if not self.ready:
            raise ServingError(503, self.error or f"model {self.name!r} is loading", "Unhealthy")

    async def body(self, request: Request) -> bytes:
        """The request body, refused with 413 past the payload limit."""
        limit = self.limits.payload_limit
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ServingError(413, f"payload of {declared} bytes exceeds the limit of {limit}", "Validation")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ServingError(413, f"payload exceeds the limit of {limit} bytes", "Validation")
            chunks.append(chunk)
        return b"".join(chunks)

    async def classify(self, texts: list, pairs: list | None, *, truncate: bool = True):
        """Logits [n, num_labels] of texts (and pairs), through the batcher; errors as ServingError."""
        self.check_ready()
        if not texts:
            raise ServingError(422, "no texts: the input is an empty list")
        if len(texts) > self.limits.max_client_batch_size:
            raise ServingError(413, f"{len(texts)} texts exceed the limit of {self.limits.max_client_batch_size}")
        try:
            first, second = self.clf.prepare(texts, pairs)
            logits, truncated = await self.batcher.submit(first, second, None)
        except Overloaded as e:
            raise ServingError(429, str(e), "Overloaded", {"Retry-After": str(e.retry_after)}) from None
        except WorkerError as e:
            raise ServingError(503, f"the backend's worker failed: {e}", "Backend") from None
        except (UnifiedNLPError, ValueError, TypeError) as e:
            raise ServingError(422, str(e)) from None
        if not truncate and truncated.any():
            at = int(np.flatnonzero(truncated)[0])
            limit = self.clf.tokenizer.max_length
            raise ServingError(422, f"input {at} is longer than the model's {limit} tokens and truncate is false")
        return logits

    def scores(self, logits: np.ndarray) -> np.ndarray:
        return self.clf.scores(logits)

    def labels_of(self, probs: np.ndarray, threshold: float = 0.5) -> list[str]:
        """One label per row: the best, or for a multi-label model every label at or above
        `threshold`, best first, joined with ','."""
        labels = self.clf.labels
        if not self.clf.multi_label:
            return [labels[i] for i in probs.argmax(axis=1)]
        return [",".join(labels[i] for i in np.argsort(-row, kind="stable") if row[i] >= threshold) for row in probs]

    def timed(self, route: str, started: float, status: int) -> None:
        self.metrics.request(route, status, time.perf_counter() - started)


def timed_route(served: Served, path: str, handler, render_error, methods=("GET",)) -> Route:
    """A route whose ServingError becomes its protocol's error response, timed and counted."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except ServingError as e:
            response = render_error(e)
        served.timed(path, started, response.status_code)
        return response

    return Route(path, endpoint, methods=list(methods))
