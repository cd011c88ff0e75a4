"""Notices and progress bars for long work, on stderr, quiet on request.

Long work says so: a one-line notice (``unified-nlp: ...``) before a model's first
conversion into the store and before classifying, comparing or evaluating many
texts, and a tqdm bar over the batches. ``progress=None`` (the default where a
function takes it) shows the bar when stderr is a terminal and the input has at
least LONG texts; True always shows it, False never.

Quiet: ``UNIFIED_NLP_PROGRESS=0`` silences notices and bars of this library, and
tqdm's own ``TQDM_DISABLE=1`` silences the bars.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .format_names import HUGGINGFACE
from .registry import converts_quietly
from .spec import ModelSpec
from .store_keys import converted_dir

LONG = 256  # texts from which work is long enough for a bar (about 2 s on 2 cores)
_OFF = ("0", "false", "no", "off")


def quiet() -> bool:
    """True when the user asked for no notices ($UNIFIED_NLP_PROGRESS=0)."""
    return os.environ.get("UNIFIED_NLP_PROGRESS", "").strip().lower() in _OFF


def _tty() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def notice(message: str) -> None:
    """One line on stderr, unless quiet()."""
    if quiet() or sys.stderr is None:
        return
    print(f"unified-nlp: {message}", file=sys.stderr, flush=True)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count and its noun, singular for one: counted(1, "text") == "1 text"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def wanted(progress: bool | None, n: int = LONG) -> bool:
    """Whether to show a bar over `n` texts (or steps) for the `progress` option: False never,
    True always (unless quiet()), None on a terminal for long work."""
    if progress is False or quiet() or n == 0:
        return False
    return progress is True or (_tty() and n >= LONG)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def bar(total: int, desc: str, progress: bool | None = None, unit: str = "text") -> Any:
    """A tqdm bar on stderr (a context manager with ``update(n)``), or one that shows
    nothing when not wanted or tqdm is not installed."""
    if not wanted(progress, total):
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False, file=sys.stderr)


def conversion_notice(path: Any, spec: ModelSpec, backend: str) -> bool:
    """Say so before a canonical folder's first conversion for `backend`; True if it did."""
    if not converts_quietly(backend) or spec.format != HUGGINGFACE:
        return False
    if converted_dir(path, backend).is_dir():
        return False
    notice(f"first use of {path} on {backend}: converting it into the model store once ...")
    # no time estimate: it ranges from under 1 s (a tiny model) to minutes; the load says how long it took
    return True
