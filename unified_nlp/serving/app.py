"""The ASGI app of a served model (Starlette) and the blocking `serve` (uvicorn)."""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Match

from ..errors import InvalidInputError
from .middleware import AccessLog, ApiKey
from .served import Limits, Served
from .tei import routes as tei_routes
from .v2 import routes as v2_routes

API_KEY_VARIABLE = "UNIFIED_NLP_API_KEY"
log = logging.getLogger("unified_nlp.serving")


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
    api_key: str | None = None,
    access_log: bool = False,
    **load_options,
) -> Starlette:
    """An ASGI app serving one classifier over the Open Inference Protocol v2 (/v2/...) and
    text-embeddings-inference's API (/predict, /rerank, /health, /info, /metrics).

    `classifier_or_model` is a loaded TextClassifier, or a model for `load_classifier`
    (loaded with `backend`, `precision` and `load_options` in the background: readiness
    answers 503 until it is loaded and warmed). `name` is the model's name in v2 URLs
    (default: the model folder's name, or "default"). With `api_key`, every request but the
    health probes and /metrics needs ``Authorization: Bearer API_KEY`` (else 401).
    `access_log`: one line per request on the logger ``unified_nlp.serving.access``.

    Examples:
        >>> app = create_app("default", backend="onnxruntime", max_batch_size=16)  # doctest: +SKIP
        >>> parent.mount("/classify", app)  # doctest: +SKIP

    Mounted in another Starlette/FastAPI app, the model loads on the first request (a
    parent does not run a mounted app's lifespan) and is not drained on shutdown.
    """
    if api_key is not None and not api_key.strip():
        raise InvalidInputError("the API key is empty: give a key, or None for no key")
    limits = Limits(max_batch_size, max_batch_tokens, max_queue, max_client_batch_size, payload_limit)
    options = {"backend": backend, "precision": precision, **load_options}
    served = Served(classifier_or_model, name=name, limits=limits, load_options=options)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        served.start()
        yield
        await served.stop()

    middleware = [Middleware(AccessLog)] if access_log else []  # outermost: it logs the 401s too
    routes = [*v2_routes(served), *tei_routes(served)]
    if api_key is not None:
        refused = functools.partial(_count_refusal, served, routes)
        middleware.append(Middleware(ApiKey, key=api_key, refused=refused))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: _no_route, 405: _no_route},
        lifespan=lifespan,
    )
    app.state.served = served
    return app


def _count_refusal(served: Served, routes: list, scope: dict, seconds: float) -> None:
    """A 401 in /metrics, under the route the request was for (its template, as every
    request is counted: a path a client makes up adds no label value)."""
    route = next((r.path for r in routes if r.matches(scope)[0] != Match.NONE), "(no route)")
    served.metrics.request(route, 401, seconds)


async def _no_route(request, exc) -> JSONResponse:
    """A path or method no route takes, answered in the protocols' error shape ({"error"})."""
    return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code)


def serve(
    model="default",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | None = None,
    backend: str = "huggingface",
    precision: str | None = None,
    drain_timeout: float = 30.0,
    api_key: str | None = None,
    access_log: bool = True,
    log_level: str = "info",
    **app_options,
) -> None:
    """Load `model` and serve it until SIGTERM or Ctrl-C (blocking), then answer every request
    already accepted (within `drain_timeout` seconds) and return. `api_key` defaults to
    $UNIFIED_NLP_API_KEY (unset or empty: no key).

    Examples:
        >>> serve("default", backend="onnxruntime", port=8080)  # doctest: +SKIP
    """
    import uvicorn

    from ..api import load_classifier
    from ..classifier import TextClassifier

    api_key = api_key if api_key is not None else (os.environ.get(API_KEY_VARIABLE) or None)
    load = {k: app_options.pop(k) for k in ("num_threads", "preprocessor", "pooling", "device") if k in app_options}
    clf = model if isinstance(model, TextClassifier) else load_classifier(model, backend, precision=precision, **load)
    app = create_app(
        clf, name=name or Served.default_name(model), api_key=api_key, access_log=access_log, **app_options
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=_log_config(log_level),
        access_log=False,  # the app's own access log has the time and the texts
        timeout_graceful_shutdown=drain_timeout,
        lifespan="on",
    )
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "serving model %r (backend %s, precision %s) at http://%s:%d%s (pid %d)",
        app.state.served.name,
        clf.backend,
        clf.precision,
        shown,
        port,
        ", API key required" if api_key else "",
        os.getpid(),
    )
    _DrainingServer(config, app.state.served).run()


def _log_config(level: str) -> dict:
    """uvicorn's logging configuration, with the server's loggers: messages on stderr as
    uvicorn's, the access log on stdout as uvicorn's access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["unified_nlp_access"] = {
        "formatter": "default",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    level = level.upper()
    config["loggers"]["unified_nlp.serving"] = {"handlers": ["default"], "level": level, "propagate": False}
    config["loggers"]["unified_nlp.serving.access"] = {
        "handlers": ["unified_nlp_access"],
        "level": level,
        "propagate": False,
    }
    return config


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
