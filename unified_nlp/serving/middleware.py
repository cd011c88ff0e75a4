"""The ASGI middleware of a server: the optional API key and the access log.

Pure ASGI (not Starlette's BaseHTTPMiddleware, which runs the app in a task of its own per
request): they see every request, also those no route takes.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar

from starlette.responses import JSONResponse

from .page import is_page

access_log = logging.getLogger("unified_nlp.serving.access")

# paths open without the API key: the health probes (an orchestrator's probes send no
# credentials) and /metrics (a scraper's), as TEI leaves /health and /metrics open; and the
# pages (GET /, /docs and their assets: no data in them), whose page asks for the key
PUBLIC = frozenset({"/health", "/v2/health/live", "/v2/health/ready", "/metrics"})

_texts: ContextVar[list] = ContextVar("unified_nlp_serving_texts")


def note_texts(count: int) -> None:
    """Tell the access log how many texts the current request holds."""
    holder = _texts.get(None)
    if holder is not None:
        holder[0] = count


def route_path(scope) -> str:
    """The path inside this app (without the prefix it is mounted at)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


class ApiKey:
    """Refuses (401) a request without ``Authorization: Bearer KEY`` on every path but
    `PUBLIC`; the key is compared in constant time. `refused(scope, seconds)` is told of
    each refusal (the server counts them in /metrics)."""

    def __init__(self, app, key: str, refused: Callable[[dict, float], None] | None = None) -> None:
        self.app, self._key, self._refused = app, key.encode("utf-8"), refused

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self._open(scope) or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = {"error": "missing or wrong API key: send the header 'Authorization: Bearer KEY'"}
        if not route_path(scope).startswith("/v2"):
            body["error_type"] = "Unauthorized"  # TEI's error shape; v2's is {"error"} alone
        await JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
        if self._refused is not None:
            self._refused(scope, time.perf_counter() - started)

    @staticmethod
    def _open(scope) -> bool:
        path = route_path(scope)
        return path in PUBLIC or is_page(scope["method"], path)

    def _authorized(self, scope) -> bool:
        header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        scheme, _, token = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key)


class AccessLog:
    """One INFO line per request on the logger ``unified_nlp.serving.access``: client,
    method and path, status, milliseconds, and the request's texts where it has some.

    ``127.0.0.1:50412 "POST /predict" 200 4.1 ms 3 texts``
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, holder, logged = time.perf_counter(), [500], [None], [False]
        token = _texts.set(holder)

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # logged before the last bytes leave: a client that has its answer finds the line written
                self._log(scope, status[0], started, holder[0])
                logged[0] = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _texts.reset(token)
            if not logged[0]:  # no answer, or an error answered by the server outside this app
                self._log(scope, status[0], started, holder[0])

    @staticmethod
    def _log(scope, status: int, started: float, texts: int | None) -> None:
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        access_log.info(
            '%s "%s %s%s" %d %.1f ms%s',
            f"{client[0]}:{client[1]}" if client else "-",
            scope["method"],
            scope["path"],
            f"?{query}" if query else "",
            status,
            (time.perf_counter() - started) * 1000,
            "" if texts is None else f" {texts} texts",
        )
