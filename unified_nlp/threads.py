"""How many threads the frameworks compute with: one process-wide number for every backend.

Each framework keeps one thread pool per process (torch.set_num_threads,
TensorFlow's intra-op pool, Paddle's math-library threads), so the count is a
process setting, not a per-model one: ``load_classifier(..., num_threads=n)``
sets it for that backend's framework, and a later load with ``num_threads=None``
keeps it. The default is $OMP_NUM_THREADS when set, else the cores this process
may run on (``os.sched_getaffinity``: a container's or taskset's limit, not the
machine's core count).

TensorFlow sizes its pools once, when its runtime starts (the tfhub adapter
starts it at import, with `requested()`); asking for another count afterwards
keeps the first one and warns. Adapters apply the count through
``BackendAdapter.set_threads(n)`` (the count the framework reports back; 0 when it runs
with its own default, None where it has no setting); the worker protocol carries it to
a worker's framework.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from .errors import InvalidInputError

if TYPE_CHECKING:
    from .protocols import BackendAdapter

INTER_OP = 1  # one graph-level thread: all parallelism goes to the kernels (the benchmark's choice too)

_requested: int | None = None
_applied: dict[str, int] = {}  # backend -> the count its framework reported back


def available_cores() -> int:
    """The CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """$OMP_NUM_THREADS when it is a positive integer, else `available_cores()`."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return available_cores()


def check(num_threads: object) -> int:
    """`num_threads` as a positive int, or a clear error."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise InvalidInputError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    return int(num_threads)


def requested() -> int:
    """The count asked for last in this process, else the default."""
    return _requested if _requested is not None else default_threads()


def request(num_threads: int | None) -> tuple[int, bool]:
    """Record an explicit count (None keeps the current one); returns (count, explicit)."""
    global _requested
    if num_threads is None:
        return requested(), False
    _requested = check(num_threads)
    return _requested, True


def apply(adapter: BackendAdapter, backend: str) -> int | None:
    """Give `requested()` to the adapter's framework (its ``set_threads``; None where it has
    no such setting); warns when an explicit request cannot take effect. Returns the framework's count."""
    wanted = requested()
    got = adapter.set_threads(wanted)
    got = None if got is None else int(got)
    if got is not None:
        _applied[backend] = got
    if _requested is not None and got != wanted:
        shown = "its framework's default number of" if not got else str(got)
        warnings.warn(
            f"the {backend} backend keeps {shown} threads, not the {wanted} asked for: its framework fixes "
            "its thread pools when it starts (TensorFlow: at the first tfhub use in this process). Ask for "
            "the count on the first load of the process (num_threads=, --threads), or set "
            "TF_NUM_INTRAOP_THREADS before TensorFlow is imported",
            RuntimeWarning,
            stacklevel=4,  # the caller of load_classifier / convert
        )
    return got


def applied(backend: str) -> int | None:
    """The thread count `backend`'s framework reported at its last load (None before any)."""
    return _applied.get(backend)
