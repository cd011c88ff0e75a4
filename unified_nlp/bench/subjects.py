"""A backend measured through our layer: `load_classifier` + `TextClassifier.predict_proba`,
in-process in the probe (which runs in the backend's own environment)."""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


class _Truncating:
    """The backend's tokenizer with a fixed max_length (--max-length); everything else passes through."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self._tokenizer = tokenizer
        self.max_length = min(int(max_length), int(tokenizer.max_length))

    def __call__(self, texts, text_pair=None, *, max_length=None, **kwargs):
        limit = min(max_length or self.max_length, self.max_length)
        return self._tokenizer(texts, text_pair, max_length=limit, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


class _Stopwatch:
    """Calls through to `target` and adds the time spent in it to `self.seconds`."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self._target(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class BackendSubject:
    """One unified_nlp backend. import_ times importing the adapter and its framework."""

    def __init__(self, name: str, model_dir: str, max_length: int | None = None) -> None:
        self.name = name
        self.model_dir = Path(model_dir)
        self.max_length = max_length
        self.clf = None
        self.labels: tuple[str, ...] = ()
        self._cache_was_warm: bool | None = None

    def import_(self) -> None:
        from unified_nlp import registry

        self.name = registry.canonical_name(self.name)
        where = registry.placement(self.name)
        if where.mode != "in-process":  # the launcher picks the environment that has it
            raise RuntimeError(f"backend {self.name!r} cannot run in-process in {where.python}: {where.reason}")
        registry.load_adapter(self.name)  # the adapter first: it may set up the environment for its framework
        known = registry.KNOWN_BACKENDS.get(self.name)
        for module in known.modules if known else ():  # adapters may import lazily; count the framework here
            importlib.import_module(module)

    def load(self) -> None:
        import unified_nlp as un
        from unified_nlp.store_keys import converted_dir

        cache = converted_dir(self.model_dir, self.name)
        self._cache_was_warm = cache.exists()
        self.clf = un.load_classifier(self.model_dir, backend=self.name)
        if self.max_length:
            self.clf.tokenizer = _Truncating(self.clf.tokenizer, self.max_length)
        self.labels = self.clf.labels

    def predict_proba(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.clf.predict_proba(texts, batch_size=batch_size)

    @contextlib.contextmanager
    def breakdown(self) -> Iterator[dict[str, float]]:
        """Time spent in the adapter's tokenizer and model (framework work plus the adapter's own
        numpy conversions) during the calls made inside; the rest of a call is the core's share."""
        tokenizer, model = self.clf.tokenizer, self.clf.model
        self.clf.tokenizer, self.clf.model = _Stopwatch(tokenizer), _Stopwatch(model)
        out: dict[str, float] = {}
        try:
            yield out
        finally:
            out["tokenizer_s"], out["model_s"] = self.clf.tokenizer.seconds, self.clf.model.seconds
            self.clf.tokenizer, self.clf.model = tokenizer, model

    def tokenize(self, texts: list) -> np.ndarray:
        return self.clf.encode(*self.clf.prepare(texts)).lengths  # single texts or sentence pairs

    def info(self) -> dict[str, Any]:
        from unified_nlp import registry

        known = registry.KNOWN_BACKENDS.get(self.name)
        # a third-party adapter: its own distribution and its requirements (package metadata)
        dists = [*registry.framework_distributions(self.name), *([known.distribution] if known else [])]
        from .tracker import versions

        return {
            "runs": self.clf.runs,
            "versions": versions(dists),
            "converted_cache_was_warm": self._cache_was_warm,
        }
