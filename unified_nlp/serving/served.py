"""A served model: its classifier (loaded and warmed in the background), its batcher, its
limits and its metrics; what every protocol's routes share.

A model run by a backend worker (paddlenlp) is reloaded when its worker dies: the requests
it was computing or had queued get 503, readiness answers 503 while a new worker loads the
model in the background, then the model serves again. A reload that fails is retried after
a delay that doubles, $UNIFIED_NLP_SERVE_RELOADS times in all (default 5, the first delay
$UNIFIED_NLP_SERVE_RELOAD_BACKOFF seconds, default 1); then readiness stays 503 and
/health says why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import UnifiedNLPError, WorkerError
from ..worker import RemoteModel
from .batcher import Batcher, Overloaded
from .metrics import Metrics, ModelMetrics

log = logging.getLogger("unified_nlp.serving")


@dataclass(frozen=True)
class Limits:
    """The batching knobs and the request limits (TEI's names where TEI has one)."""

    max_batch_size: int = 32  # rows per forward
    max_batch_tokens: int = 16384  # padded tokens per batch (rows x longest row)
    max_queue: int = 256  # requests accepted and not yet answered; beyond: 429
    max_client_batch_size: int = 256  # texts per request; beyond: 413 (TEI) / 400 (v2)
    payload_limit: int = 2_000_000  # request body bytes; beyond: 413
    # model instances running batches side by side under load, each on a share of the threads
    # (batcher.py); None: the backend's choice (two on onnxruntime's CPU, else one)
    instances: int | None = None


class ServingError(Exception):
    """A request answered with an error: the HTTP status, the message and TEI's error type."""

    def __init__(self, status: int, message: str, kind: str = "Validation", headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


class Served:
    """One model behind the server: `classify` is the only way to it."""

    def __init__(
        self,
        model,
        *,
        name: str | None,
        limits: Limits,
        load_options: dict,
        metrics: Metrics,
        version: str = "1",
        nice: int = 0,
    ) -> None:
        self.name, self.version = name or self.default_name(model), version
        self.nice = nice  # of its batcher's threads: a shadow candidate yields the CPU to the models clients wait for
        self.limits = limits
        self._model, self._load_options = model, load_options
        self.clf = None if isinstance(model, str | Path) else model
        self.backend = self.clf.backend if self.clf is not None else load_options.get("backend", "huggingface")
        self.metrics: ModelMetrics = metrics.of(self.name, self.backend)
        self.inflight = 0  # requests inside `classify`: a replaced version stops once none is left
        self.shadow = None  # a candidate beside this model (shadow.Shadow), set by the repository
        self.batcher: Batcher | None = None
        self.ready = False
        self.draining = False
        self.error: str | None = None
        # no recovery under way (the load failed, or every reload did): liveness turns 503 so
        # that an orchestrator restarts the process, which a reload could not do
        self.broken = False
        self._task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()  # the worker's watch and a reload in progress
        self._worker_pid: int | None = None  # of the worker the model was loaded in, if it runs in one

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

    async def loaded(self) -> bool:
        """Start, wait until the model is loaded and warmed (or failed), and say whether it serves."""
        self.start()
        await asyncio.shield(self._task)
        return self.ready

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
                on_drop=lambda: self.metrics.drop("client_gone"),
                backend_gone=self._worker_gone,
                nice=self.nice,
                instances=self.limits.instances,
            )
            await asyncio.to_thread(batcher.warm)
            batcher.start()
            self.batcher, self.ready = batcher, True
            self._worker_pid = self._pid()
            side_by_side = f", {batcher.side_by_side} instances side by side" if batcher.side_by_side > 1 else ""
            log.info("model %r ready on %s (%s%s)", self.name, self.clf.backend, self.clf.precision, side_by_side)
            if self.shadow is not None:  # loaded once the primary serves
                self.shadow.start()
        except Exception as e:  # noqa: BLE001 - the server stays up and says why it is not ready
            self.error, self.broken = f"{type(e).__name__}: {e}", True
            log.error("model %r failed to load: %s", self.name, self.error)
            return
        if isinstance(self.clf.model, RemoteModel):
            self._in_background(self._watch_worker())

    def _in_background(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch_worker(self) -> None:
        """A worker that dies while the server is idle is found within a second, not by the next request."""
        while True:
            await asyncio.sleep(1.0)
            if self.ready and self._worker_gone():
                self.worker_failed(WorkerError(f"the {self.backend} worker died while idle"))

    def _pid(self) -> int | None:
        return self.clf.model.worker_pid if isinstance(self.clf.model, RemoteModel) else None

    def _worker_gone(self, error: Exception | None = None) -> bool:
        """Whether the worker the model was loaded in has died (or was replaced), as opposed to
        an error raised inside a living worker."""
        if not isinstance(self.clf.model, RemoteModel) or not isinstance(error, WorkerError | None):
            return False
        pid = self._pid()
        return pid is None or pid != self._worker_pid

    def worker_failed(self, error: WorkerError) -> None:
        """The backend's worker died: readiness turns 503 and the model reloads in the
        background (the batcher has already failed the requests it held)."""
        if not self.ready or self.draining:  # reloading already, given up, or shutting down
            return
        self.ready = False
        self.error = f"model {self.name!r} is reloading: its backend worker failed ({_first_line(error)})"
        log.error("model %r: %s", self.name, error)
        self.batcher.fail_queued(error)
        self._in_background(self._reload())

    async def _reload(self) -> None:
        attempts = max(1, int(_setting("UNIFIED_NLP_SERVE_RELOADS", 5)))
        delay = _setting("UNIFIED_NLP_SERVE_RELOAD_BACKOFF", 1.0)
        for attempt in range(1, attempts + 1):
            try:
                await asyncio.to_thread(self.batcher.warm)  # a call starts a new worker, which loads the model
            except Exception as e:  # noqa: BLE001 - retried, then reported by readiness and /health
                failure = f"{type(e).__name__}: {_first_line(e)}"
                log.error("model %r: reload %d of %d failed: %s", self.name, attempt, attempts, failure)
                if attempt < attempts:
                    self.error = f"model {self.name!r} is reloading: attempt {attempt} of {attempts} failed ({failure})"
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, 60.0)
                continue
            self.ready, self.error, self._worker_pid = True, None, self._pid()
            log.info("model %r: reloaded in a new %s worker (attempt %d)", self.name, self.backend, attempt)
            return
        self.error = (
            f"model {self.name!r} could not be reloaded after its worker failed ({attempts} attempts): {failure}"
        )
        self.broken = True
        log.error("%s; readiness and liveness answer 503", self.error)

    def clf_precision(self) -> str:
        """The precision the model runs at (asked for, until it is loaded)."""
        return self.clf.precision if self.clf is not None else (self._load_options.get("precision") or "fp32")

    async def stop(self) -> None:
        self.draining = True
        if self.shadow is not None:
            await self.shadow.stop()
        for task in list(self._background):
            task.cancel()
        if self.batcher is not None:
            await self.batcher.stop()

    def check_ready(self) -> None:
        self.start()
        if not self.ready:
            raise ServingError(503, self.error or f"model {self.name!r} is loading", "Unhealthy")

    async def body(self, request: Request) -> bytes:
        """The request body, refused with 413 past the payload limit."""
        return await read_body(request, self.limits.payload_limit)

    async def classify(
        self,
        texts: list,
        pairs: list | None,
        *,
        truncate: bool = True,
        request: Request | None = None,
        timings: dict | None = None,
    ):
        """Logits [n, num_labels] of texts (and pairs), through the batcher; errors as ServingError.
        With the HTTP `request`, a client that disconnects first has its texts dropped uncomputed.

        Call it right after looking the model up, with no await between: from its first line
        the request counts in `inflight`, and a version being replaced answers it before it stops."""
        self.inflight += 1
        started = time.perf_counter()
        try:
            logits = await self._classify(texts, pairs, truncate, request, timings)
        finally:
            self.inflight -= 1
        if self.shadow is not None:  # after the answer is ready: the candidate never delays it
            self.shadow.offer(texts, pairs, logits, time.perf_counter() - started)
        return logits

    async def _classify(self, texts, pairs, truncate, request, timings):
        self.check_ready()
        if not texts:
            raise ServingError(422, "no texts: the input is an empty list")
        if len(texts) > self.limits.max_client_batch_size:
            raise ServingError(413, f"{len(texts)} texts exceed the limit of {self.limits.max_client_batch_size}")
        try:
            first, second = self.clf.prepare(texts, pairs)
            logits, truncated = await _unless_gone(self.batcher.submit(first, second, None, timings), request)
        except Overloaded as e:
            raise ServingError(429, str(e), "Overloaded", {"Retry-After": str(e.retry_after)}) from None
        except WorkerError as e:
            if not self._worker_gone(e):  # an error inside a living worker
                raise ServingError(503, f"the backend's worker failed: {_first_line(e)}", "Backend") from None
            self.worker_failed(e)
            message = f"the backend's worker failed and the model is reloading: {_first_line(e)}"
            raise ServingError(503, message, "Backend", {"Retry-After": "5"}) from None
        except (UnifiedNLPError, ValueError, TypeError) as e:
            raise ServingError(422, str(e)) from None
        if not truncate and truncated.any():  # 413 as TEI answers it (v2 answers 400)
            at = int(np.flatnonzero(truncated)[0])
            needed = await asyncio.to_thread(self._tokens, first[at], None if second is None else second[at])
            limit = self.clf.tokenizer.max_length
            message = f"input {at} has {needed} tokens, more than the model's {limit}, and truncate is false"
            raise ServingError(413, message, "Validation")
        return logits

    def _tokens(self, text: str, pair: str | None) -> int:
        """The tokens of one (cleaned) text, not truncated."""
        enc = self.clf.tokenizer([text], text_pair=None if pair is None else [pair], truncation=False)
        return int(enc.lengths[0])

    def scores(self, logits: np.ndarray) -> np.ndarray:
        return self.clf.scores(logits)

    def labels_of(self, probs: np.ndarray, threshold: float = 0.5) -> list[str]:
        """One label per row: the best, or for a multi-label model every label at or above
        `threshold`, best first, joined with ','."""
        labels = self.clf.labels
        if not self.clf.multi_label:
            return [labels[i] for i in probs.argmax(axis=1)]
        return [",".join(labels[i] for i in np.argsort(-row, kind="stable") if row[i] >= threshold) for row in probs]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes."""
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


def _first_line(error: Exception) -> str:
    """A WorkerError's own message, without the worker's stderr it may quote (logged in full)."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _setting(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


async def _unless_gone(work, request: Request | None):
    """The result of `work`, or 499 when the HTTP client disconnects first; `work` is then
    cancelled (the batcher drops a request cancelled before its batch is computed)."""
    if request is None:
        return await work
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()
        await asyncio.wait((task,))  # the batcher has dropped it when this returns
        raise ServingError(499, "the client closed the connection before its answer", "ClientGone")
    return task.result()


async def _disconnect(request: Request) -> None:
    """Returns when the client disconnects. The body is read, so the next ASGI message is
    http.disconnect (uvicorn sends it when the connection closes)."""
    if (await request.receive())["type"] != "http.disconnect":  # a server that says more: stop watching
        await asyncio.get_running_loop().create_future()


def timed_route(path: str, handler, render_error, model_of, metrics: Metrics, methods=("GET",)) -> Route:
    """A route whose ServingError becomes its protocol's error response, timed and counted
    under the model `model_of(request)` names (None: a request that addressed no model)."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except ServingError as e:
            response = render_error(e)
        served = model_of(request)
        (metrics if served is None else served.metrics).request(
            path, response.status_code, time.perf_counter() - started
        )
        return response

    return Route(path, endpoint, methods=list(methods))
