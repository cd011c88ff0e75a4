"""One batcher per served model: requests are tokenized in a thread pool, queued, and
formed into batches across requests by a row count and a token budget (padded length x
rows, as text-embeddings-inference's ``max_batch_tokens``); the forward runs in one
thread of its own, so the event loop never computes.

Batches form from what queued while the model was busy: there is no timer, so a lone
request on an idle server starts at once, and no request waits longer than the window
before it (up to `WINDOW` batches, each request answered when its own rows are done). Each text's logits do not depend on its batch (rows are padded and masked), so
the probabilities match ``predict_proba`` within float rounding whatever batch a text
lands in.

A request whose caller stops waiting (its task is cancelled: the server cancels it when the
HTTP client disconnects) leaves the queue before its rows are computed. An error of a
forward fails the requests of its window not yet answered; one that says the backend is gone (`backend_gone`: its worker
died) fails every queued request too, rather than have them wait for a restart.
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
    ) -> None:
        self.clf = clf
        self.max_batch_size, self.max_batch_tokens, self.max_queue = max_batch_size, max_batch_tokens, max_queue
        self.pending = 0  # accepted and not yet answered
        self._observe = observe or (lambda *_: None)  # (what, value): metrics
        self._on_drop = on_drop or (lambda: None)  # a request given up before its rows were computed
        self._backend_gone = backend_gone or (lambda error: False)
        self._queue: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        # `nice` > 0: the threads yield the CPU to the process's others (a shadow's, beside the model it shadows)
        threads = {"initializer": _lower_priority, "initargs": (nice,)} if nice > 0 else {}
        self._tokenize = ThreadPoolExecutor(2, thread_name_prefix="unified-nlp-tokenize", **threads)
        self._forward = ThreadPoolExecutor(1, thread_name_prefix="unified-nlp-forward", **threads)
        self._task: asyncio.Task | None = None
        self._pad_id = 0

    def warm(self) -> None:
        """Read the pad id and run one forward of the largest batch the batcher forms
        (blocking: call it from a thread): as text-embeddings-inference warms up with its
        max_batch_tokens, the framework's memory pools reach their high-water mark before the
        first request, not minutes into serving (a 10-minute soak on ONNX Runtime grew 14 MB
        in one step when its first long batch came), and no client pays for that growth."""
        self._pad_id = pad_id_of(self.clf)
        width = max(2, min(self.clf.tokenizer.max_length, self.max_batch_tokens))
        rows = max(1, min(self.max_batch_size, self.max_batch_tokens // width))
        self.clf.model(self.clf.encode(["warm " * width] * rows, None, width))  # `width` tokens each

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
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(error)

    def _take(self) -> list[_Job]:
        """Jobs from the queue's head while they fit in a window of WINDOW batches (rows and
        token budget; at least one job). The window's rows are then sorted by length and cut
        into batches (`_compute`), so rows of similar length share a batch even when they
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
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._window(self._take())

    async def _window(self, jobs: list[_Job]) -> None:
        """Compute a window's batches one by one, answering each request as soon as its last
        row is computed: its client sends the next one while the window's other batches run
        (answering at the window's end left the model idle while 64 clients came back)."""
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        for job in jobs:
            self._observe("queue", began - job.queued)
        counts = np.array([job.enc.num_texts for job in jobs])
        owner, left = np.repeat(np.arange(len(jobs)), counts), counts.copy()
        first = np.concatenate([[0], np.cumsum(counts)])  # job k's rows: first[k]:first[k + 1]
        try:
            enc = await loop.run_in_executor(self._forward, self._merged, jobs)
            logits = np.zeros((enc.num_texts, len(self.clf.labels)), dtype=np.float32)
            for rows in length_batches(enc.lengths, self.max_batch_size, self.max_batch_tokens):
                logits[rows] = await loop.run_in_executor(self._forward, self._compute, enc, rows)
                finished = np.unique(owner[rows])
                left -= np.bincount(owner[rows], minlength=len(jobs))
                for k in finished[left[finished] == 0]:
                    job, computed = jobs[k], time.perf_counter()
                    if job.timings is not None:
                        job.timings.update(queue=began - job.queued, inference=computed - began)
                    if not job.future.done():
                        job.future.set_result((logits[first[k] : first[k + 1]], job.enc.truncated))
        except Exception as e:  # noqa: BLE001 - every request of the window not yet answered gets the error
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e)
            if self._backend_gone(e):  # the queued would wait for the backend's restart
                self.fail_queued(e)
            return
        self._observe("inference", time.perf_counter() - began)

    def _encode(self, first: list[str], second: list[str] | None, max_length: int | None) -> Encoding:
        """Tokenize in the pool; the metric is the tokenizer's time, not the wait for a pool thread."""
        start = time.perf_counter()
        enc = self.clf.encode(first, second, max_length)
        self._observe("tokenize", time.perf_counter() - start)
        return enc

    def _merged(self, jobs: list[_Job]) -> Encoding:
        return merge([job.enc for job in jobs], self._pad_id) if len(jobs) > 1 else jobs[0].enc

    def _compute(self, enc: Encoding, rows: np.ndarray) -> np.ndarray:
        part = enc.select(rows)
        self._observe("batch_size", len(rows))
        self._observe("batch_tokens", len(rows) * part.input_ids.shape[1])
        return self.clf.model(part).logits


def _lower_priority(nice: int) -> None:
    """Lower this thread's CPU priority by `nice` (Linux: setpriority of a thread id applies to that
    thread only); elsewhere, or when refused, it keeps the process's."""
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()  # setpriority sets a niceness, not a step: add to the inherited one
        os.setpriority(os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + nice, 19))
