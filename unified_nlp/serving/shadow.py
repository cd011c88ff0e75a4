"""Migration under live traffic: a candidate (the same model on another backend or precision)
runs beside a served model on a sampled fraction of its requests, and a live report says
whether the two agree, in the form of `unified-nlp compare`'s.

Clients are answered by the primary only, and never wait for the candidate: once the
primary has answered, the request's texts are offered to the candidate, which has its own
batcher and a short queue of its own; when it is behind (its queue full) or not ready, the
texts are dropped, counted by reason. On a machine with a core to spare the candidate runs
there (one thread by default); on a busy one it takes CPU from the primary, as any work would.

The report (GET /v2/models/NAME/shadow, and /metrics): texts compared, label agreement, max,
mean and p99 |logit difference| (per text, the largest over its labels), the same for
probabilities, each side's per-request latency (p50, p99), what was dropped, and `passed`
(every label agreed and every logit within `tolerance`) with `failures` as `compare` says them.
Switch the primary when it stays green.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque

import numpy as np

from .metrics import Metrics
from .served import Served, ServingError

_KEPT = 10_000  # the last texts' differences and requests' latencies kept for the percentiles
QUEUE = 16  # requests the candidate may hold; beyond, offered texts are dropped ("behind")
TOLERANCE = 1e-4  # as `compare`'s default
NICE = 10  # the candidate's threads run at a lower CPU priority: the primary wins a busy core


def parse_shadow(text: str) -> tuple[str, str | None]:
    """``BACKEND[:PRECISION]`` of a candidate.

    >>> parse_shadow("onnxruntime:int8")
    ('onnxruntime', 'int8')
    """
    backend, _, precision = text.partition(":")
    return backend, precision or None


class Shadow:
    """A candidate beside a primary `Served`: `offer` each answered request's texts and logits."""

    def __init__(self, primary: Served, candidate: Served, fraction: float, tolerance: float, metrics: Metrics) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"the shadow fraction must be in (0, 1], got {fraction}")
        self.primary, self.candidate = primary, candidate
        self.fraction, self.tolerance = fraction, tolerance
        self._labels = {"model": primary.name, "candidate": f"{candidate.backend}:{candidate.clf_precision()}"}
        self._metrics = metrics
        self._credit = 0.0  # sampling: every request adds `fraction`; one is taken per whole unit
        self._tasks: set[asyncio.Task] = set()
        self.offered = self.compared_requests = 0
        self.dropped: Counter[str] = Counter()
        self.texts = self.agreeing = 0
        self._logit_max = self._logit_sum = self._prob_max = self._prob_sum = 0.0
        self._logit_rows: deque[float] = deque(maxlen=_KEPT)
        self._seconds = {"primary": deque(maxlen=_KEPT), "candidate": deque(maxlen=_KEPT)}

    def start(self) -> None:
        self.candidate.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.candidate.stop()

    def offer(self, texts: list, pairs: list | None, logits: np.ndarray, seconds: float) -> None:
        """A request the primary answered (in `seconds`): compared by the candidate if sampled, in
        the background; never awaited by the request."""
        self._credit += self.fraction
        if self._credit < 1.0 - 1e-9:
            return
        self._credit -= 1.0
        self.offered += 1
        if not self.candidate.ready:
            self._drop("not_ready")
            return
        task = asyncio.get_running_loop().create_task(self._compare(texts, pairs, logits, seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        self._metrics.shadow_dropped.labels(**self._labels, reason=reason).inc()

    async def _compare(self, texts, pairs, logits: np.ndarray, seconds: float) -> None:
        started = time.perf_counter()
        try:
            theirs = await self.candidate.classify(texts, pairs)
        except ServingError as e:
            self._drop("behind" if e.status == 429 else "failed")
            return
        self._record(logits, theirs, seconds, time.perf_counter() - started)

    def _record(self, ours: np.ndarray, theirs: np.ndarray, seconds: float, their_seconds: float) -> None:
        diff = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)).max(axis=1)
        p_ours, p_theirs = self.primary.scores(ours), self.candidate.scores(theirs)
        prob_diff = np.abs(p_ours.astype(np.float64) - p_theirs).max(axis=1)
        agree = sum(a == b for a, b in zip(self.primary.labels_of(p_ours), self.candidate.labels_of(p_theirs)))
        self.compared_requests += 1
        self.texts += len(diff)
        self.agreeing += agree
        self._logit_max, self._logit_sum = max(self._logit_max, float(diff.max())), self._logit_sum + float(diff.sum())
        self._prob_max, self._prob_sum = (
            max(self._prob_max, float(prob_diff.max())),
            self._prob_sum + float(prob_diff.sum()),
        )
        self._logit_rows.extend(diff.tolist())
        self._seconds["primary"].append(seconds)
        self._seconds["candidate"].append(their_seconds)
        m = self._metrics
        m.shadow_texts.labels(**self._labels).inc(len(diff))
        m.shadow_agreeing.labels(**self._labels).inc(agree)
        for d in diff:
            m.shadow_diff.labels(**self._labels).observe(float(d))
        m.shadow_seconds.labels(**self._labels).observe(their_seconds)

    def report(self) -> dict:
        """The live report, with `compare`'s names where it measures the same thing."""
        n = self.texts
        agreement = self.agreeing / n if n else None
        failures = []
        if n and self.agreeing < n:
            failures.append(f"argmax agreement {agreement:.2%} (needs 100%; {n - self.agreeing} labels differ)")
        if n and not self._logit_max <= self.tolerance:
            failures.append(f"logits max |diff| {self._logit_max:.3e} > tolerance {self.tolerance:g}")
        return {
            "model": self.primary.name,
            "version": self.primary.version,
            "backends": [f"{self.primary.backend}:{self.primary.clf_precision()}", self._labels["candidate"]],
            "candidate_ready": self.candidate.ready,
            "fraction": self.fraction,
            "requests_offered": self.offered,
            "requests_compared": self.compared_requests,
            "dropped": dict(self.dropped),
            "n_texts": n,
            "argmax_agreement": agreement,
            "logits_max_abs_diff": self._logit_max if n else None,
            "logits_mean_abs_diff": self._logit_sum / n if n else None,
            "logits_p99_abs_diff": _percentile(self._logit_rows, 99),
            "probs_max_abs_diff": self._prob_max if n else None,
            "probs_mean_abs_diff": self._prob_sum / n if n else None,
            "latency_ms": {
                side: {"p50": _percentile(kept, 50, 1000), "p99": _percentile(kept, 99, 1000)}
                for side, kept in self._seconds.items()
            },
            "tolerance": self.tolerance,
            "passed": bool(n) and not failures,
            "failures": failures if n else ["no text compared yet"],
        }


def _percentile(values, q: float, scale: float = 1.0) -> float | None:
    return float(np.percentile(np.fromiter(values, np.float64), q) * scale) if values else None
