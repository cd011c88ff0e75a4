"""The ASGI app of a served model (Starlette) and the blocking `serve` (uvicorn)."""

from __future__ import annotations

import contextlib
import os
import sys

from starlette.applications import Starlette

from .served import Limits, Served
from .tei import routes as tei_routes
from .v2 import routes as v2_routes


def create_app(
    classifier_or_model="default",
    *,
    name: str | None = None,
    backend: str = "huggingface",
    precision: str | None = None,
    max_batch_size: int = Limits.max_batch_size,
    max_batch_tokens: int = Limits.max_batch_tokens,
    max_queue: int = Limits.max_queue,
    max_client_batch_size: int = Limits.max_client_batch_size,
    payload_limit: int = Limits.payload_limit,
    **load_options,
) -> Starlette:
    """An ASGI app serving one classifier over the Open Inference Protocol v2 (/v2/...) and
    text-embeddings-inference's API (/predict, /health, /info, /metrics).

    `classifier_or_model` is a loaded TextClassifier, or a model for `load_classifier`
    (loaded with `backend`, `precision` and `load_options` in the background: readiness
    answers 503 until it is loaded and warmed). `name` is the model's name in v2 URLs
    (default: the model folder's name, or "default").

    >>> app = create_app("default", backend="onnxruntime", max_batch_size=16)  # doctest: +SKIP
    >>> parent.mount("/classify", app)  # doctest: +SKIP

    Mounted in another Starlette/FastAPI app, the model loads on the first request (a
    parent does not run a mounted app's lifespan) and is not drained on shutdown.
    """
    limits = Limits(max_batch_size, max_batch_tokens, max_queue, max_client_batch_size, payload_limit)
    options = {"backend": backend, "precision": precision, **load_options}
    served = Served(classifier_or_model, name=name, limits=limits, load_options=options)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        served.start()
        yield
        await served.stop()

    app = Starlette(routes=[*v2_routes(served), *tei_routes(served)], lifespan=lifespan)
    app.state.served = served
    return app


def serve(
    model="default",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | None = None,
    backend: str = "huggingface",
    precision: str | None = None,
    drain_timeout: float = 30.0,
    access_log: bool = True,
    log_level: str = "info",
    **app_options,
) -> None:
    """Load `model` and serve it until SIGTERM or Ctrl-C (blocking), then answer every request
    already accepted (within `drain_timeout` seconds) and return.

    >>> serve("default", backend="onnxruntime", port=8080)  # doctest: +SKIP
    """
    import uvicorn

    from ..api import load_classifier
    from ..classifier import TextClassifier

    load = {k: app_options.pop(k) for k in ("num_threads", "preprocessor", "pooling") if k in app_options}
    clf = model if isinstance(model, TextClassifier) else load_classifier(model, backend, precision=precision, **load)
    app = create_app(clf, name=name or Served.default_name(model), **app_options)
    served = app.state.served
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=drain_timeout,
        lifespan="on",
    )
    shown = f"[{host}]" if ":" in host else host
    print(
        f"unified-nlp: serving {served.name!r} ({clf.backend}, {clf.precision}) at http://{shown}:{port} "
        f"(pid {os.getpid()})",
        file=sys.stderr,
        flush=True,
    )
    _DrainingServer(config, served).run()


class _DrainingServer:
    """uvicorn's Server, made lazily (uvicorn is imported only when serving), whose signal
    handler first turns readiness to 503."""

    def __new__(cls, config, served: Served):
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame) -> None:
                served.draining = True
                super().handle_exit(sig, frame)
                # uvicorn re-raises the signal after its graceful shutdown; a drained server exits 0
                self._captured_signals.clear()

        return Server(config)
