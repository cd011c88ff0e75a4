"""The server's own pages: a page to try the served models (GET /), the API's OpenAPI document
(GET /openapi.json) and its docs (GET /docs, Swagger UI), all offline.

The page is plain HTML, JavaScript and CSS shipped in this package (folder ``page/``): no
framework, nothing fetched from another host (its Content-Security-Policy forbids it). It uses
only the public API: POST /v2/repository/index for the models, GET /v2/models/NAME for their
labels, POST /v2/models/NAME/infer, and GET /v2/models/NAME/shadow where the server has a
shadow report. Given a 401, it asks for the API key and keeps it in the tab's sessionStorage.

/docs is Swagger UI from the pip package ``swagger-ui-bundle`` (its static files, served here),
reading ``page/openapi.json``: the document is data kept beside the code, and a test checks
that it names every route the app has and no other.

>>> from starlette.applications import Starlette  # doctest: +SKIP
>>> app = Starlette(routes=[*api_routes, *routes()])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

FILES = Path(__file__).with_name("page")
STATIC = "/static"  # every asset of the pages: /static/page.js, /static/swagger-ui/swagger-ui-bundle.js, ...

# Nothing from another host; no inline script. Swagger UI sets style attributes from its
# script and shows its icons as data: URIs, hence the two exceptions on /docs.
_CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
PAGE_POLICY = f"{_CSP}; img-src 'self' data:"
DOCS_POLICY = f"{_CSP}; img-src 'self' data:; style-src 'self' 'unsafe-inline'"


PATHS = ("/", "/docs", "/openapi.json")


def is_page(method: str, path: str) -> bool:
    """Whether a request is for the pages or their assets, which need no API key. Only GET and
    HEAD: POST / is TEI's classify route, and keeps the key.

    >>> is_page("GET", "/"), is_page("POST", "/"), is_page("GET", "/static/page.js")
    (True, False, True)
    """
    return method in ("GET", "HEAD") and (path in PATHS or path.startswith(STATIC + "/"))


@cache
def openapi() -> dict:
    """The OpenAPI 3 document of the server's routes (``page/openapi.json``)."""
    return json.loads((FILES / "openapi.json").read_text(encoding="utf-8"))


def swagger_ui_dir() -> Path | None:
    """The folder of Swagger UI's static files in the installed ``swagger-ui-bundle``, or None
    without it (found without importing it: its module imports nothing heavy, but the check
    stays a check)."""
    if find_spec("swagger_ui_bundle") is None:
        return None
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def _page(name: str, policy: str) -> Response:
    headers = {"Content-Security-Policy": policy, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(FILES / name, media_type="text/html; charset=utf-8", headers=headers)


async def index(request: Request) -> Response:
    return _page("index.html", PAGE_POLICY)


async def docs(request: Request) -> Response:
    if swagger_ui_dir() is None:
        message = "the API docs need Swagger UI: pip install swagger-ui-bundle (the document is at openapi.json)"
        return JSONResponse({"error": message}, status_code=503)
    return _page("docs.html", DOCS_POLICY)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi())


def routes() -> list[Route | Mount]:
    """GET /, /docs and /openapi.json, and the pages' assets under /static (not in the OpenAPI
    document: they are not the API). The app adds them to its routes; they need no API key
    (the page asks for it where the API wants one)."""
    assets = [Mount("/", app=StaticFiles(directory=FILES), name="page")]
    swagger = swagger_ui_dir()
    if swagger is not None:
        assets.insert(0, Mount("/swagger-ui", app=StaticFiles(directory=swagger), name="swagger-ui"))
    return [  # PATHS
        Route("/", index, methods=["GET"], include_in_schema=False),
        Route("/docs", docs, methods=["GET"], include_in_schema=False),
        Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False),
        Mount(STATIC, routes=assets, name="static"),
    ]
