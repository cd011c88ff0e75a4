"""How much CPU other processes took while we measured: the signal that figures are noise.

The load average counts our own threads too and lags by a minute, so on its own it cannot
tell a busy machine from a busy benchmark. Here the machine's busy CPU time (psutil's
system-wide counters) minus the CPU time of this process and of every process it started
(live descendants, plus the reaped ones through `children_user`/`children_system`) gives
the cores that *other* processes used, sampled in a background thread over the run.
psutil is optional: without it every figure is None and callers fall back to the load
average.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

INTERVAL_S = 0.5


def busy_threshold(cores: int) -> float:
    """Cores used by others from which figures are marked unreliable: half a core, or a
    quarter of the machine on a large one."""
    return max(0.5, 0.25 * cores)


def _ours(psutil: Any, me: Any) -> float:
    """CPU seconds of this process, its reaped children and its live descendants."""
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # gone between listing and reading: its time reappears in its parent's children_*
        total += c.user + c.system
    return total


def _busy(psutil: Any) -> float:
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    return sum(t) - idle - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)  # guest is inside user


class OtherCPU:
    """A context manager: ``with OtherCPU() as other: ...``, then ``other.figures()`` gives
    the cores other processes used before the run (`before`, over `settle_s`) and during it
    (`mean`, `max` of the sampling intervals)."""

    def __init__(self, settle_s: float = 1.0, interval_s: float = INTERVAL_S) -> None:
        self.settle_s, self.interval_s = settle_s, interval_s
        self.before: float | None = None
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import psutil

            self._psutil, self._me = psutil, psutil.Process(os.getpid())
        except ImportError:
            self._psutil = self._me = None

    def _point(self) -> tuple[float, float, float]:
        return time.monotonic(), _busy(self._psutil), _ours(self._psutil, self._me)

    @staticmethod
    def _others(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        wall = b[0] - a[0]
        return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / wall) if wall > 0 else 0.0

    def _run(self) -> None:
        last = self._point()
        while not self._stop.wait(self.interval_s):
            point = self._point()
            self.samples.append(self._others(last, point))
            last = point

    def __enter__(self) -> OtherCPU:
        if self._psutil is None:
            return self
        start = self._point()
        self._stop.wait(self.settle_s)
        self.before = round(self._others(start, self._point()), 2)
        self._thread = threading.Thread(target=self._run, name="unified-nlp-other-cpu", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def figures(self) -> dict[str, float | None]:
        s = self.samples
        return {
            "before": self.before,
            "mean": round(sum(s) / len(s), 2) if s else None,
            "max": round(max(s), 2) if s else None,
        }


def unreliable_because(other: dict[str, Any] | None, load_start: list[float] | None, cores: int) -> str | None:
    """Why figures measured under `other` (OtherCPU.figures) are not to be compared, or None.
    Without psutil's figures, the load average at the start stands in."""
    limit = busy_threshold(cores)
    if other and other.get("mean") is not None:
        worst = max(other.get("before") or 0.0, other["mean"])
        if worst >= limit:
            return (
                f"other processes used {worst:.1f} of the {cores} cores while this ran "
                f"(before: {other.get('before')}, mean: {other['mean']}, max: {other.get('max')})"
            )
        return None
    load = (load_start or [0.0])[0]
    if load >= limit:
        return f"the load average was {load:.1f} on {cores} cores when this started"
    return None
