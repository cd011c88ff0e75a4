"""Cross-framework benchmark: each backend in its own fresh process, same model,
data and machine, with reference rows (the raw torch call, transformers'
pipeline, the machine's matmul ceiling). See runner.py.

>>> from unified_nlp import bench
>>> results = bench.run(backends="huggingface", quick=True, out="bench-out/")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any


def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """See unified_nlp.bench.runner.run."""
    from .runner import run as _run

    return _run(*args, **kwargs)


__all__ = ["run"]
