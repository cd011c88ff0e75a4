"""Open Inference Protocol v2 (KServe v2 / Triton) over REST, with Triton's binary tensor
data extension.

The model takes a BYTES tensor "text" [N] (UTF-8 texts; shape [N] or [N, 1]) and, for
sentence pairs, "text_pair" of the same length. It gives "probabilities" FP32 [N, C]
(columns in the model's label order, see /info or the metadata's "parameters") and
"label" BYTES [N]: the best label, or for a multi-label model every label scoring at or
above 0.5, best first, joined with "," (an empty string when none does).

Texts longer than the model's maximum are truncated, as the model does; with the request
parameter ``{"parameters": {"truncate": false}}`` they are refused (400) instead. Errors are
{"error": message}: 400 for a request the model cannot take (more texts than the limit per
request too), 404 an unknown model or version, 413 a payload over the limit, 429 a full
queue, 503 not ready. The request names the model only by its URL: nothing in it names a
file or a backend.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .middleware import note_texts
from .repository import Repository
from .served import Served, ServingError, read_body, timed_route
from .tensor_codec import HEADER_LENGTH, TensorError, output_tensor, read_bytes_inputs, response_body, split_body

OUTPUTS = ("probabilities", "label")


def _error(e: ServingError) -> JSONResponse:
    # the protocol answers every error with {"error": message}; input errors are 400, not TEI's 422
    status = 400 if e.status == 422 else e.status
    return JSONResponse({"error": e.message}, status_code=status, headers=e.headers)


def _model(repository: Repository, request: Request) -> Served:
    return repository.get(request.path_params["name"], request.path_params.get("version"))


def metadata(served: Served) -> dict:
    """A model's v2 metadata (REST and gRPC)."""
    served.check_ready()  # the labels are known once the model is loaded
    clf = served.clf
    texts = {"datatype": "BYTES", "shape": [-1]}
    return {
        "name": served.name,
        "versions": [served.version],
        "platform": f"unified-nlp_{clf.backend}",
        "inputs": [{"name": "text", **texts}, {"name": "text_pair", **texts, "optional": True}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(clf.labels)]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
        "parameters": {"labels": list(clf.labels), "multi_label": clf.multi_label, "precision": clf.precision},
    }


def texts_of(inputs: dict[str, list[bytes]]) -> tuple[list[str], list[str] | None]:
    unknown = sorted(set(inputs) - {"text", "text_pair"})
    if unknown:
        raise ServingError(400, f"unknown input {unknown[0]!r}; the model takes 'text' and optionally 'text_pair'")
    if "text" not in inputs:
        raise ServingError(400, "missing input 'text' (BYTES [N])")
    decoded = {}
    for name, items in inputs.items():
        try:
            decoded[name] = [item.decode("utf-8") for item in items]
        except UnicodeDecodeError:
            at = next(i for i, item in enumerate(items) if not _utf8(item))
            raise ServingError(400, f"input {name!r} element {at} is not valid UTF-8") from None
    pairs = decoded.get("text_pair")
    if pairs is not None and len(pairs) != len(decoded["text"]):
        raise ServingError(400, f"'text_pair' holds {len(pairs)} texts, 'text' {len(decoded['text'])}")
    return decoded["text"], pairs


def _utf8(item: bytes) -> bool:
    try:
        item.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _requested(header: dict) -> list[tuple[str, bool]]:
    """(output name, as binary) for each output the client asks for; every output if none."""
    default = bool((header.get("parameters") or {}).get("binary_data_output", False))
    asked = header.get("outputs")
    if not asked:
        return [(name, default) for name in OUTPUTS]
    out = []
    for entry in asked if isinstance(asked, list) else [None]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in OUTPUTS:
            raise ServingError(400, f"unknown output {name!r}; the model gives {list(OUTPUTS)}")
        parameters = entry.get("parameters") or {}
        if parameters.get("classification"):
            raise ServingError(400, "the classification extension is not supported: ask for 'label'")
        out.append((name, bool(parameters.get("binary_data", default))))
    return out


def truncate_of(header: dict) -> bool:
    """The request's `parameters.truncate`: true (the default) truncates as the model does;
    false refuses (400) a text longer than the model's maximum."""
    parameters = header.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ServingError(400, f"'parameters' must be an object, got {type(parameters).__name__}")
    truncate = parameters.get("truncate", True)
    if not isinstance(truncate, bool):
        raise ServingError(400, f"parameter 'truncate' must be true or false, got {truncate!r}")
    return truncate


async def _infer(repository: Repository, request: Request) -> Response:
    served = _model(repository, request)  # 404 before the body is read
    served.check_ready()
    try:
        header, binary = split_body(await served.body(request), request.headers.get(HEADER_LENGTH))
        texts, pairs = texts_of(read_bytes_inputs(header, binary))
    except TensorError as e:
        raise ServingError(400, str(e)) from None
    note_texts(len(texts))
    truncate = truncate_of(header)
    requested = _requested(header)
    try:
        served = _model(repository, request)  # the current version, entered with no await between
        logits = await served.classify(texts, pairs, truncate=truncate, request=request)
    except ServingError as e:
        if e.status in (413, 422):  # too many texts, a text too long: input errors, 400 here (TEI: 413)
            raise ServingError(400, e.message) from None
        raise
    probs = served.scores(logits)
    values = {"probabilities": probs, "label": [s.encode("utf-8") for s in served.labels_of(probs)]}
    entries, blobs = [], []
    for name, binary_out in requested:
        entry, blob = output_tensor(name, values[name], binary_out)
        entries.append(entry)
        blobs.append(blob)
    reply = {"model_name": served.name, "model_version": served.version, "outputs": entries}
    if "id" in header:
        reply["id"] = header["id"]
    body, headers = response_body(reply, blobs)
    return Response(body, headers=headers)


def routes(repository: Repository, model_control: bool = False) -> list[Route]:
    """The v2 routes of a server's models, and Triton's model repository extension
    (index always; load and unload with `model_control`)."""

    def route(path: str, handler, methods=("GET",)) -> Route:
        def model_of(request):
            return repository.find(request.path_params.get("name"))

        return timed_route(path, handler, _error, model_of, repository.metrics, methods)

    async def server_meta(request):
        from .. import __version__

        extensions = ["binary_tensor_data", "model_repository"]
        return JSONResponse({"name": "unified-nlp", "version": __version__, "extensions": extensions})

    # the status says it (tritonclient reads only that); the JSON body is for KServe's client,
    # which reads {"live"} and {"ready"} as KServe's own server answers them
    async def live(request):  # 503 once a model cannot recover in this process (`Served.broken`)
        live = repository.live()
        return JSONResponse({"live": live}, status_code=200 if live else 503)

    async def ready(request):
        ready = repository.ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def model_meta(request):
        return JSONResponse(metadata(_model(repository, request)))

    async def model_ready(request):
        served = _model(repository, request)
        served.start()
        ready = served.ready and not served.draining
        return JSONResponse({"name": served.name, "ready": ready}, status_code=200 if ready else 503)

    async def infer(request):
        return await _infer(repository, request)

    async def shadow(request):
        served = _model(repository, request)
        if served.shadow is None:
            raise ServingError(
                404, f"model {served.name!r} has no shadow: serve it with --shadow {served.name}@BACKEND"
            )
        return JSONResponse(served.shadow.report())

    return [
        route("/v2", server_meta),
        route("/v2/health/live", live),
        route("/v2/health/ready", ready),
        route("/v2/models/{name}", model_meta),
        route("/v2/models/{name}/versions/{version}", model_meta),
        route("/v2/models/{name}/ready", model_ready),
        route("/v2/models/{name}/versions/{version}/ready", model_ready),
        route("/v2/models/{name}/infer", infer, ("POST",)),
        route("/v2/models/{name}/versions/{version}/infer", infer, ("POST",)),
        route("/v2/models/{name}/shadow", shadow),
        *_repository_routes(repository, route, model_control),
    ]


async def _json_object(repository: Repository, request: Request) -> dict:
    """A repository request's optional JSON body ({} when empty)."""
    body = await read_body(request, repository.limits.payload_limit)
    try:
        payload = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError) as e:
        raise ServingError(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(payload, dict):
        raise ServingError(400, "the body must be a JSON object")
    return payload


async def _parameters(repository: Repository, request: Request, allowed: set[str]) -> dict:
    """The `parameters` of a repository request's optional JSON body; only `allowed` ones:
    a request never names a file, a configuration or a backend."""
    parameters = (await _json_object(repository, request)).get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ServingError(400, "'parameters' must be a JSON object")
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise ServingError(
            400,
            f"parameter {unknown[0]!r} is not accepted: a model is loaded from the server's repository "
            "(edit its entry there, then load it)",
        )
    return parameters


def _repository_routes(repository: Repository, route, model_control: bool) -> list[Route]:
    """POST /v2/repository/index, and .../models/{name}/load and /unload (Triton's names)."""

    async def index(request):
        ready_only = (await _json_object(repository, request)).get("ready") is True
        return JSONResponse(repository.index(ready_only))

    def controlled(handler):
        async def endpoint(request):
            if not model_control:
                raise ServingError(
                    403, "model control is off: start the server with --model-control to load and unload models"
                )
            return await handler(request)

        return endpoint

    async def load(request):
        await _parameters(repository, request, set())
        await repository.load(request.path_params["name"])
        return JSONResponse({})

    async def unload(request):
        await _parameters(repository, request, {"unload_dependents"})
        await repository.unload(request.path_params["name"])
        return JSONResponse({})

    return [
        route("/v2/repository/index", index, ("POST",)),
        route("/v2/repository/models/{name}/load", controlled(load), ("POST",)),
        route("/v2/repository/models/{name}/unload", controlled(unload), ("POST",)),
    ]
