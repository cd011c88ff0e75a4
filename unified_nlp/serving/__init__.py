"""Serving a classifier over HTTP: the Open Inference Protocol v2 (KServe / Triton, with the
binary tensor extension) and text-embeddings-inference's API (/predict, /rerank), behind a
batcher that forms batches across concurrent requests; an optional API key, Prometheus
metrics and an access log.

Needs the ``serve`` extra (``pip install 'unified-nlp[serve]'``: starlette, uvicorn,
prometheus-client); ``import unified_nlp`` does not import it.

>>> from unified_nlp.serving import create_app, serve  # doctest: +SKIP
>>> serve("default", backend="onnxruntime", port=8000)  # doctest: +SKIP

Scaled out on Ray Serve (the ``serve-ray`` extra): ``serve_on_ray`` with ``ModelEntry`` items.
"""

from __future__ import annotations

from importlib.util import find_spec

from ..errors import BackendNotInstalledError

_MISSING = [name for name in ("starlette", "uvicorn", "prometheus_client") if find_spec(name) is None]
if _MISSING:
    raise BackendNotInstalledError(f"serving needs {', '.join(_MISSING)}: pip install 'unified-nlp[serve]'")

from .app import create_app, serve  # noqa: E402 - after the check that says what to install
from .ray_engine import serve_on_ray  # noqa: E402 - imports Ray only when called
from .repository import ModelEntry  # noqa: E402

__all__ = ["ModelEntry", "create_app", "serve", "serve_on_ray"]
