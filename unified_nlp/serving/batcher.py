"""One batcher per served model: requests are tokenized in a thread pool, queued, and
formed into batches across requests by a row count and a token budget (padded length x
rows, as text-embeddings-inference's ``max_batch_tokens``); the forward runs in one
thread of its own, so the event loop never computes.

Batches form from what queued while the model was busy: a lone request on an idle server
starts at once, and no request waits longer than the batch before it. Each text's logits
do not depend on its batch (rows are padded and masked), so the probabilities match
``predict_proba`` within float rounding whatever batch a text lands in.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..batching import batches_by_length
from ..protocols import ENCODING_KEYS, Encoding


class Overloaded(Exception):
    """The queue is full: the request is refused (429) and may be retried after `retry_after` seconds."""

    def __init__(self, pending: int, retry_after: int = 1) -> None:
        super().__init__(f"model overloaded: {pending} requests are already queued")
        self.retry_after = retry_after


@dataclass
class _Job:
    enc: Encoding
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


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

    def __init__(self, clf, *, max_batch_size: int, max_batch_tokens: int, max_queue: int, observe=None) -> None:
        self.clf = clf
        self.max_batch_size, self.max_batch_tokens, self.max_queue = max_batch_size, max_batch_tokens, max_queue
        self.pending = 0  # accepted and not yet answered
        self._observe = observe or (lambda *_: None)  # (what, value): metrics
        self._queue: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._tokenize = ThreadPoolExecutor(2, thread_name_prefix="unified-nlp-tokenize")
        self._forward = ThreadPoolExecutor(1, thread_name_prefix="unified-nlp-forward")
        self._task: asyncio.Task | None = None
        self._pad_id = 0

    def warm(self) -> None:
        """Read the pad id and run one forward (blocking: call it from a thread)."""
        self._pad_id = pad_id_of(self.clf)
        self.clf.model(self.clf.encode(["warm up"]))

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

    async def submit(self, first: list[str], second: list[str] | None, max_length: int | None):
        """Logits [n, num_labels] and truncated flags [n] of cleaned texts (and pairs)."""
        if self.pending >= self.max_queue:
            raise Overloaded(self.pending)
        self.pending += 1
        try:
            loop = asyncio.get_running_loop()
            start = time.perf_counter()
            enc = await loop.run_in_executor(self._tokenize, self.clf.encode, first, second, max_length)
            self._observe("tokenize", time.perf_counter() - start)
            job = _Job(enc, loop.create_future())
            self._queue.append(job)
            self._wake.set()
            return await job.future
        finally:
            self.pending -= 1

    def _take(self) -> list[_Job]:
        """Jobs from the queue's head while the batch stays within its rows and token budget (at least one)."""
        jobs, rows, width = [self._queue.popleft()], 0, 0
        rows, width = jobs[0].enc.num_texts, int(jobs[0].enc.lengths.max())
        while self._queue:
            enc = self._queue[0].enc
            grown_rows, grown_width = rows + enc.num_texts, max(width, int(enc.lengths.max()))
            if grown_rows > self.max_batch_size or grown_rows * grown_width > self.max_batch_tokens:
                break
            jobs.append(self._queue.popleft())
            rows, width = grown_rows, grown_width
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                jobs = self._take()
                now = time.perf_counter()
                for job in jobs:
                    self._observe("queue", now - job.queued)
                try:
                    logits = await loop.run_in_executor(self._forward, self._compute, [j.enc for j in jobs])
                except Exception as e:  # noqa: BLE001 - every request of the batch gets the error
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(e)
                    continue
                at = 0
                for job in jobs:
                    n = job.enc.num_texts
                    if not job.future.done():
                        job.future.set_result((logits[at : at + n], job.enc.truncated))
                    at += n

    def _compute(self, encodings: list[Encoding]) -> np.ndarray:
        start = time.perf_counter()
        enc = merge(encodings, self._pad_id) if len(encodings) > 1 else encodings[0]
        logits = np.zeros((enc.num_texts, len(self.clf.labels)), dtype=np.float32)
        for rows in batches_by_length(enc.lengths, self.max_batch_size):
            part = enc.select(rows)
            self._observe("batch_size", len(rows))
            self._observe("batch_tokens", len(rows) * part.input_ids.shape[1])
            logits[rows] = self.clf.model(part).logits
        self._observe("inference", time.perf_counter() - start)
        return logits
