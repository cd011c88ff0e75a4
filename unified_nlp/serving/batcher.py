"""One batcher per served model: requests are tokenized in a thread pool, queued, and
formed into batches across requests by a row count and a token budget (padded length x
rows, as text-embeddings-inference's ``max_batch_tokens``); the forwards run in threads
of their own, so the event loop never computes.

Under load, batches run side by side on the model's `instances` (each on a share of its
threads, one forward thread each); a batch alone on an idle batcher runs on the whole model,
all threads on it, never beside an instance.

Batches form from what queued while the model was busy: there is no timer, so a lone
request on an idle server starts at once, and no request waits longer than the window
before it (up to `WINDOW` batches, each request answered when its own rows are done). Each
text's logits do not depend on its batch (rows are padded and masked) nor on the instance that
computes it, so the probabilities match ``predict_proba`` within float rounding whatever batch
a text lands in.

A request whose caller stops waiting (its task is cancelled: the server cancels it when the
HTTP client disconnects) leaves the queue before its rows are computed. An error of a
forward fails the requests of its window not yet answered (its other batches are not run);
one that says the backend is gone (`backend_gone`: its worker died) fails every queued
request too, rather than have them wait for a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..protocols import ENCODING_KEYS, Encoding

WINDOW = 4  # batches' worth of queued requests taken at once, then sorted by length
# a forward's fixed cost, in padded tokens: what one more batch must save in padding to pay
# (a session call, the merge and select of its rows: about 0.3 ms, 16 tokens of the default
# model's 17,000 tokens/s on ONNX Runtime here)
FORWARD_COST = 16


def length_batches(lengths: np.ndarray, max_rows: int, max_tokens: int, forward_cost: int = FORWARD_COST):
    """Row indices in batches, longest first, each within `max_rows` rows and `max_tokens`
    padded tokens (rows x the batch's longest; at least one row), cut where the padded
    tokens plus `forward_cost` per batch are least.

    The cuts are a shortest path over the length-sorted rows (dynamic programming: row
    counts up to `max_rows` from each start). Cutting every `max_rows` rows instead padded
    a window of 64 SST-2 requests to 1.47x its tokens; the best cuts pad it to 1.06x, near
    the 1.04x of sorting the whole dataset."""
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    width = np.maximum(lengths[order], 1)  # descending: a batch's first row is its longest
    n = len(order)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    cut = np.zeros(n + 1, dtype=np.int64)  # cut[end]: where the best last batch ending at `end` starts
    for start in range(n):
        rows = max(1, min(max_rows, max_tokens // int(width[start])))
        ends = np.arange(start + 1, min(n, start + rows) + 1)
        cost = best[start] + (ends - start) * float(width[start]) + forward_cost
        better = cost < best[ends]
        best[ends[better]], cut[ends[better]] = cost[better], start
    bounds, end = [], n
    while end > 0:
        bounds.append((int(cut[end]), end))
        end = int(cut[end])
    for start, end in reversed(bounds):
        yield order[start:end]


class Overloaded(Exception):
    """The queue is full: the request is refused (429) and may be retried after `retry_after` seconds."""

    def __init__(self, pending: int, retry_after: int = 1) -> None:
        super().__init__(f"model overloaded: {pending} requests are already queued")
        self.retry_after = retry_after


@dataclass(eq=False)  # found in the queue by identity (its arrays have no truth value)
class _Job:
    enc: Encoding
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)
    timings: dict | None = None  # the caller's, filled with "queue" and "inference" seconds


def pad_id_of(clf) -> int:
    """The id a tokenizer pads with, read from a padded row: merged batches must pad with it
    (RoBERTa-style models derive position ids from it)."""
    enc = clf.encode(["a", "a " * 16])
    return int(enc.input_ids[0, int(enc.lengths[0])])


def merge(encodings: list[Encoding], pad_id: int) -> Encoding:
    """Rows of several encodings in one, padded to the widest."""
    width = max(e.input_ids.shape[1] for e in encodings)
    rows = sum(e.num_texts for e in encodings)
    fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0}
    arrays = {key: np.full((rows, width), fill[key], dtype=np.int64) for key in ENCODING_KEYS}
    at = 0
    for e in encodings:
        for key in ENCODING_KEYS:
            arrays[key][at : at + e.num_texts, : e.input_ids.shape[1]] = e[key]
        at += e.num_texts
    return Encoding(*(arrays[key] for key in ENCODING_KEYS), truncated=np.concatenate([e.truncated for e in encodings]))


class _Window:
    """Requests taken from the queue at once: their rows merged, sorted by length and cut into
    batches (`batches`); each request is answered as soon as its last row is computed, so its
    client sends the next one while the window's other batches run (answering at the window's
    end left the model idle while 64 clients came back)."""

    def __init__(self, jobs: list[_Job], pad_id: int, num_labels: int, observe: Callable[[str, float], None]) -> None:
        self.jobs, self.began, self.failed, self._observe = jobs, time.perf_counter(), False, observe
        for job in jobs:
            observe("queue", self.began - job.queued)
        counts = np.array([job.enc.num_texts for job in jobs])
        self.owner, self.left = np.repeat(np.arange(len(jobs)), counts), counts.copy()
        self.first = np.concatenate([[0], np.cumsum(counts)])  # job k's rows: first[k]:first[k + 1]
        self.enc = merge([job.enc for job in jobs], pad_id) if len(jobs) > 1 else jobs[0].enc
        self.logits = np.zeros((self.enc.num_texts, num_labels), dtype=np.float32)

    def batches(self, max_rows: int, max_tokens: int):
        return length_batches(self.enc.lengths, max_rows, max_tokens)

    def answer(self, rows: np.ndarray, logits: np.ndarray) -> None:
        """Store a batch's logits and answer the requests it completes."""
        self.logits[rows] = logits
        finished = np.unique(self.owner[rows])
        self.left -= np.bincount(self.owner[rows], minlength=len(self.jobs))
        computed = time.perf_counter()
        for k in finished[self.left[finished] == 0]:
            job = self.jobs[k]
            if job.timings is not None:
                job.timings.update(queue=self.began - job.queued, inference=computed - self.began)
            if not job.future.done():
                job.future.set_result((self.logits[self.first[k] : self.first[k + 1]], job.enc.truncated))
        if not self.left.any():
            self._observe("inference", computed - self.began)

    def fail(self, error: Exception) -> None:
        """Answer every request of the window not yet answered with `error`; its other batches are not run."""
        self.failed = True
        _fail(self.jobs, error)


def _fail(jobs: list[_Job], error: Exception) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)


class Batcher:
    """Runs `clf`'s forward over batches formed across concurrent requests.

    >>> batcher = Batcher(clf, max_batch_size=32, max_batch_tokens=16384, max_queue=256)  # doctest: +SKIP
    >>> logits, truncated = await batcher.submit(["great!"], None, None)                  # doctest: +SKIP
    """

    def __init__(
        self,
        clf,
        *,
        max_batch_size: int,
        max_batch_tokens: int,
        max_queue: int,
        observe: Callable[[str, float], None] | None = None,
        on_drop: Callable[[], None] | None = None,
        backend_gone: Callable[[Exception], bool] | None = None,
        nice: int = 0,
        instances: int | None = 1,
    ) -> None:
        self.clf = clf
        self.instances = instances  # asked for (None: the backend's choice); `warm` asks the model
        self.max_batch_size, self.max_batch_tokens, self.max_queue = max_batch_size, max_batch_tokens, max_queue
        self.pending = 0  # accepted and not yet answered
        self._observe = observe or (lambda *_: None)  # (what, value): metrics
        self._on_drop = on_drop or (lambda: None)  # a request given up before its rows were computed
        self._backend_gone = backend_gone or (lambda error: False)
        self._queue: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        # `nice` > 0: the threads yield the CPU to the process's others (a shadow's, beside the model it shadows)
        self._threads = {"initializer": _lower_priority, "initargs": (nice,)} if nice > 0 else {}
        self._tokenize = ThreadPoolExecutor(2, thread_name_prefix="unified-nlp-tokenize", **self._threads)
        self._forward: ThreadPoolExecutor | None = None  # one thread per instance, made by `warm`
        self._task: asyncio.Task | None = None
        self._pad_id = 0
        self._batches: deque[tuple[_Window, np.ndarray]] = deque()  # cut from windows, not yet started
        self._whole_free = True  # no batch runs on the whole model (with all its threads)
        self._narrow: list = []  # the model's instances that run side by side (none: the whole model only)
        self._free: list = []  # those of them not running a batch

    def warm(self) -> None:
        """Read the pad id and run one forward of the largest batch the batcher forms
        (blocking: call it from a thread): as text-embeddings-inference warms up with its
        max_batch_tokens, the framework's memory pools reach their high-water mark before the
        first request, not minutes into serving (a 10-minute soak on ONNX Runtime grew 14 MB
        in one step when its first long batch came), and no client pays for that growth."""
        self._pad_id = pad_id_of(self.clf)
        width = max(2, min(self.clf.tokenizer.max_length, self.max_batch_tokens))
        rows = max(1, min(self.max_batch_size, self.max_batch_tokens // width))
        largest = self.clf.encode(["warm " * width] * rows, None, width)  # `width` tokens each
        self.clf.model(largest)
        if self._forward is None:
            narrow = self.clf.model.instances(self.instances) if self.instances != 1 else []  # 1: not asked
            self._narrow = list(narrow) if len(narrow) > 1 else []  # one: the model alone
            with ThreadPoolExecutor(max(1, len(self._narrow))) as side_by_side:  # as they will run
                list(side_by_side.map(lambda model: model(largest), self._narrow))
            self._free = list(self._narrow)
            self._forward = ThreadPoolExecutor(
                max(1, len(self._narrow)), thread_name_prefix="unified-nlp-forward", **self._threads
            )

    @property
    def side_by_side(self) -> int:
        """How many batches run at once under load: the instances the model gave `warm` (1: the whole model only)."""
        return max(1, len(self._narrow))

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout: float = 30.0) -> None:
        """Answer every accepted request (within `timeout` seconds), then stop the threads."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
        self._tokenize.shutdown(wait=False)
        if self._forward is not None:
            self._forward.shutdown(wait=True)

    async def submit(
        self, first: list[str], second: list[str] | None, max_length: int | None, timings: dict | None = None
    ):
        """Logits [n, num_labels] and truncated flags [n] of cleaned texts (and pairs); `timings`,
        if given, gets the request's "tokenization", "queue" and "inference" seconds and its "tokens".

        Cancelled while tokenized or queued, the request is dropped: its rows are not computed."""
        if self.pending >= self.max_queue:
            raise Overloaded(self.pending)
        self.pending += 1
        job = None
        try:
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            enc = await loop.run_in_executor(self._tokenize, self._encode, first, second, max_length)
            if timings is not None:
                timings.update(tokenization=time.perf_counter() - started, tokens=int(enc.lengths.sum()))
            job = _Job(enc, loop.create_future(), timings=timings)
            self._queue.append(job)
            self._wake.set()
            return await job.future
        except asyncio.CancelledError:
            if job is None or job in self._queue:  # not taken into a batch yet: nothing of it is computed
                if job is not None:
                    self._queue.remove(job)
                self._on_drop()
            raise
        finally:
            self.pending -= 1

    def fail_queued(self, error: Exception) -> None:
        """Answer every queued request with `error` (they are not computed)."""
        queued = list(self._queue)
        self._queue.clear()
        _fail(queued, error)

    def _take(self) -> list[_Job]:
        """Jobs from the queue's head while they fit in a window of WINDOW batches (rows and
        token budget; at least one job). The window's rows are then sorted by length and cut
        into batches (`_Window`), so rows of similar length share a batch even when they
        arrived apart: at 64 clients, a window of one batch padded each batch to its longest
        arrival and ran at about 65% of length-sorted throughput (benchmarks/serving.py)."""
        max_rows, max_tokens = WINDOW * self.max_batch_size, WINDOW * self.max_batch_tokens
        jobs = [self._queue.popleft()]
        rows, tokens = jobs[0].enc.num_texts, int(jobs[0].enc.lengths.sum())
        while self._queue:
            enc = self._queue[0].enc
            grown_rows, grown_tokens = rows + enc.num_texts, tokens + int(enc.lengths.sum())
            if grown_rows > max_rows or grown_tokens > max_tokens:
                break
            jobs.append(self._queue.popleft())
            rows, tokens = grown_rows, grown_tokens
        return jobs

    async def _run(self) -> None:
        """Start batches while a model instance is free, until the batcher is stopped."""
        running: set[asyncio.Future] = set()
        woken = None
        try:
            while True:
                self._dispatch(running)
                if woken is None:
                    woken = asyncio.ensure_future(self._wake.wait())
                done, _ = await asyncio.wait(running | {woken}, return_when=asyncio.FIRST_COMPLETED)
                if woken in done:
                    self._wake.clear()
                    woken = None
                running -= done
        finally:
            if woken is not None:
                woken.cancel()

    def _dispatch(self, running: set[asyncio.Future]) -> None:
        """Start the next batches on free instances. A batch alone (nothing else queued, no
        instance busy) runs on the whole model, all its threads on one batch, so a lone request
        is as fast as in-process `predict`; under load, batches run side by side on the narrow
        instances, each on its share of the threads."""
        while self._whole_free and (self._free or not self._narrow):
            batch = self._next_batch()
            if batch is None:  # a window forms only when a batch of it can start: the queue fills meanwhile
                if not self._queue:
                    return
                jobs = self._take()
                try:
                    window = _Window(jobs, self._pad_id, len(self.clf.labels), self._observe)
                except Exception as e:  # noqa: BLE001 - its requests get the error, the batcher goes on
                    _fail(jobs, e)
                    continue
                self._batches.extend(
                    (window, rows) for rows in window.batches(self.max_batch_size, self.max_batch_tokens)
                )
                continue
            alone = not self._batches and not self._queue and len(self._free) == len(self._narrow)
            if alone or not self._narrow:
                model, self._whole_free = self.clf.model, False
            else:
                model = self._free.pop()
            running.add(asyncio.ensure_future(self._run_batches(model, *batch)))

    def _next_batch(self) -> tuple[_Window, np.ndarray] | None:
        """The next batch cut (a failed window's are skipped), or None; from the loop and the
        forward threads alike (a deque's popleft is atomic)."""
        while True:
            try:
                window, rows = self._batches.popleft()
            except IndexError:
                return None
            if not window.failed:
                return window, rows

    async def _run_batches(self, model, window: _Window, rows: np.ndarray) -> None:
        loop = asyncio.get_running_loop()
        try:
            failed = await loop.run_in_executor(self._forward, self._compute_on, model, window, rows, loop)
            if failed is not None:
                window, error = failed
                window.fail(error)
                if self._backend_gone(error):  # the queued would wait for the backend's restart
                    self.fail_queued(error)
        finally:
            if model is self.clf.model:
                self._whole_free = True
            else:
                self._free.append(model)

    def _compute_on(self, model, window: _Window, rows: np.ndarray, loop) -> tuple[_Window, Exception] | None:
        """In a forward thread: compute the batch, then (on a narrow instance) the next ones cut
        while it ran, without a round trip through the event loop between them (the loop, busy
        with HTTP under load, left each instance idle 8% of the time); each batch's requests are
        answered on the loop as it completes. Returns the window and error of a failed forward."""
        while True:
            try:
                logits = self._compute(model, window, rows)
            except Exception as e:  # noqa: BLE001 - every request of the window not yet answered gets the error
                return window, e
            loop.call_soon_threadsafe(window.answer, rows, logits)
            batch = None if model is self.clf.model else self._next_batch()
            if batch is None:
                return None
            window, rows = batch

    def _encode(self, first: list[str], second: list[str] | None, max_length: int | None) -> Encoding:
        """Tokenize in the pool; the metric is the tokenizer's time, not the wait for a pool thread."""
        start = time.perf_counter()
        enc = self.clf.encode(first, second, max_length)
        self._observe("tokenize", time.perf_counter() - start)
        return enc

    def _compute(self, model, window: _Window, rows: np.ndarray) -> np.ndarray:
        part = window.enc.select(rows)
        self._observe("batch_size", len(rows))
        self._observe("batch_tokens", len(rows) * part.input_ids.shape[1])
        return model(part).logits


def _lower_priority(nice: int) -> None:
    """Lower this thread's CPU priority by `nice` (Linux: setpriority of a thread id applies to that
    thread only); elsewhere, or when refused, it keeps the process's."""
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()  # setpriority sets a niceness, not a step: add to the inherited one
        os.setpriority(os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + nice, 19))
