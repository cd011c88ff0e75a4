"""The ASGI app of a served model (Starlette) and the blocking `serve` (uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
import logging
import os
import signal
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Match

from ..errors import InvalidInputError
from .metrics import Metrics
from .middleware import AccessLog, ApiKey
from .page import routes as page_routes
from .repository import ModelEntry, Repository, add_shadows, model_entries
from .served import Limits
from .tei import routes as tei_routes
from .v2 import routes as v2_routes

API_KEY_VARIABLE = "UNIFIED_NLP_API_KEY"
log = logging.getLogger("unified_nlp.serving")


def create_app(
    classifier_or_model=None,
    *,
    name: str | None = None,
    backend: str = "huggingface",
    precision: str | None = None,
    models: list | None = None,
    repository: str | Path | None = None,
    shadows: list[str] | None = None,
    shadow_fraction: float = 0.1,
    model_control: bool = False,
    grpc_port: int | None = None,
    grpc_host: str = "127.0.0.1",
    max_batch_size: int = Limits.max_batch_size,
    max_batch_tokens: int = Limits.max_batch_tokens,
    max_queue: int = Limits.max_queue,
    max_client_batch_size: int = Limits.max_client_batch_size,
    payload_limit: int = Limits.payload_limit,
    instances: int | None = Limits.instances,
    drain_timeout: float = 30.0,
    api_key: str | None = None,
    access_log: bool = False,
    **load_options,
) -> Starlette:
    """An ASGI app serving classifiers over the Open Inference Protocol v2 (/v2/...) and
    text-embeddings-inference's API (/predict, /rerank, /health, /info, /metrics).

    The models: `classifier_or_model` (a loaded TextClassifier, or a model for
    `load_classifier`, named `name`: default the folder's name), `models` (more:
    "NAME=PATH[@BACKEND[:PRECISION]]" strings or `ModelEntry`s) and the entries of a
    `repository` file (TOML, see `unified_nlp.serving.repository`); "default" when none is
    given. `backend`, `precision` and `load_options` apply to every model that names none.
    Models are loaded in the background: readiness answers 503 until every one is loaded and
    warmed. TEI's routes answer with the first model. With `model_control`, POST
    /v2/repository/models/NAME/load and /unload replace or remove a model under traffic;
    with `grpc_port`, the v2 gRPC service runs beside, on the same models.
    With `api_key`, every request but the health probes and /metrics needs
    ``Authorization: Bearer API_KEY`` (else 401). `access_log`: one line per request on the
    logger ``unified_nlp.serving.access``.

    Examples:
        >>> app = create_app("default", backend="onnxruntime", max_batch_size=16)  # doctest: +SKIP
        >>> app = create_app(models=["sst2=models/sst2@onnxruntime", "nli=models/nli@paddlenlp"])  # doctest: +SKIP
        >>> parent.mount("/classify", app)  # doctest: +SKIP

    Mounted in another Starlette/FastAPI app, the models load on the first request (a
    parent does not run a mounted app's lifespan) and are not drained on shutdown.
    """
    if api_key is not None and not api_key.strip():
        raise InvalidInputError("the API key is empty: give a key, or None for no key")
    limits = Limits(max_batch_size, max_batch_tokens, max_queue, max_client_batch_size, payload_limit, instances)
    entries = model_entries(classifier_or_model, name, backend, precision, models, repository, load_options)
    entries = add_shadows(entries, shadows, shadow_fraction)
    served_models = Repository(
        entries,
        limits=limits,
        metrics=Metrics(),
        source=None if repository is None else Path(repository),
        defaults=(backend, precision),
        drain_timeout=drain_timeout,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        served_models.start()
        grpc = None
        if grpc_port is not None:
            from .grpc_v2 import start_grpc

            grpc = await start_grpc(served_models, host=grpc_host, port=grpc_port, api_key=api_key)
        hangup = _on_sighup(served_models)
        yield
        if hangup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if grpc is not None:
            await grpc.stop(drain_timeout)
        await served_models.stop()

    middleware = [Middleware(AccessLog)] if access_log else []  # outermost: it logs the 401s too
    routes = [*v2_routes(served_models, model_control), *tei_routes(served_models), *page_routes()]
    if api_key is not None:
        refused = functools.partial(_count_refusal, served_models.metrics, routes)
        middleware.append(Middleware(ApiKey, key=api_key, refused=refused))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: _no_route, 405: _no_route},
        lifespan=lifespan,
    )
    app.state.repository = served_models
    app.state.served = served_models.default  # the first model (TEI's)
    return app


def _on_sighup(served_models: Repository) -> bool:
    """SIGHUP re-reads the repository file (where there is one, and this thread may take
    signals): new and changed models load beside the old, removed ones unload."""
    if served_models.source is None or threading.current_thread() is not threading.main_thread():
        return False
    loop = asyncio.get_running_loop()

    def hangup() -> None:
        log.info("SIGHUP: re-reading %s", served_models.source)
        loop.create_task(served_models.reload_all())

    loop.add_signal_handler(signal.SIGHUP, hangup)
    return True


def _count_refusal(metrics: Metrics, routes: list, scope: dict, seconds: float) -> None:
    """A 401 in /metrics, under the route the request was for (its template, as every
    request is counted: a path a client makes up adds no label value)."""
    route = next((r.path for r in routes if r.matches(scope)[0] != Match.NONE), "(no route)")
    metrics.request(route, 401, seconds)


async def _no_route(request, exc) -> JSONResponse:
    """A path or method no route takes, answered in the protocols' error shape ({"error"})."""
    return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code)


def serve(
    model=None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | None = None,
    backend: str = "huggingface",
    precision: str | None = None,
    models: list | None = None,
    repository: str | Path | None = None,
    shadows: list[str] | None = None,
    shadow_fraction: float = 0.1,
    drain_timeout: float = 30.0,
    api_key: str | None = None,
    access_log: bool = True,
    log_level: str = "info",
    **app_options,
) -> None:
    """Load the models and serve them until SIGTERM or Ctrl-C (blocking), then answer every
    request already accepted (within `drain_timeout` seconds) and return. The models are
    given as to `create_app`; each is loaded before the server binds, so that a model that
    cannot load stops it with its error. `api_key` defaults to $UNIFIED_NLP_API_KEY (unset
    or empty: no key). SIGHUP re-reads the `repository` file.

    To scale out on Ray Serve instead: `ray_engine.serve_on_ray` (`unified-nlp serve --engine ray`).

    Examples:
        >>> serve("default", backend="onnxruntime", port=8080)  # doctest: +SKIP
        >>> serve(repository="models.toml", grpc_port=8001, model_control=True)  # doctest: +SKIP
    """
    import uvicorn

    api_key = api_key if api_key is not None else (os.environ.get(API_KEY_VARIABLE) or None)
    load = {k: app_options.pop(k) for k in ("num_threads", "preprocessor", "pooling", "device") if k in app_options}
    entries = add_shadows(
        model_entries(model, name, backend, precision, models, repository, load), shadows, shadow_fraction
    )
    loaded = [dataclasses.replace(e, model=_loaded(e)) for e in entries]
    app = create_app(
        models=loaded,
        backend=backend,  # of the entries a SIGHUP reads that name none
        precision=precision,
        api_key=api_key,
        access_log=access_log,
        drain_timeout=drain_timeout,
        **app_options,
    )
    app.state.repository.adopt(entries, None if repository is None else Path(repository))
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
    described = ", ".join(
        f"model {e.name!r} (backend {e.model.backend}, precision {e.model.precision})" for e in loaded
    )
    grpc = app_options.get("grpc_port")
    log.info(
        "serving %s at http://%s:%d%s%s (pid %d)",
        described,
        shown,
        port,
        f", gRPC on port {grpc}" if grpc is not None else "",
        ", API key required" if api_key else "",
        os.getpid(),
    )
    _DrainingServer(config, app.state.repository).run()


def _loaded(entry: ModelEntry):
    from ..api import load_classifier
    from ..classifier import TextClassifier

    if isinstance(entry.model, TextClassifier):
        return entry.model
    return load_classifier(entry.model, entry.backend, precision=entry.precision, **entry.options)


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

    def __new__(cls, config, served_models: Repository):
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame) -> None:
                for served in served_models.served():
                    served.draining = True
                super().handle_exit(sig, frame)
                # uvicorn re-raises the signal after its graceful shutdown; a drained server exits 0
                self._captured_signals.clear()

        return Server(config)
