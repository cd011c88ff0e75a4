"""Hugging Face text-embeddings-inference (TEI) compatible routes: POST /predict (and POST /),
GET /health, /info and /metrics, with TEI's input shapes, response shapes and status codes.

Input, as TEI reads it: ``"text"`` one text; ``["text", "pair"]`` (exactly two strings) one
sentence pair; ``["a", "b", "c"]`` or ``[["a"], ...]`` a batch of texts; ``[["a", "b"], ...]``
a batch of pairs. A single input answers a flat list of {"label", "score"} (every label,
best first), a batch a list of such lists. ``raw_scores`` gives logits; ``truncate: false``
refuses (422) a text longer than the model's maximum instead of truncating it.

POST / answers a single input with a batch of one (a list holding the flat list), as the
Hugging Face Inference API did: `huggingface_hub.InferenceClient(url).text_classification`
posts {"inputs": text} to the URL and returns the first element of the list it reads, so a
flat list would give it only the best label; nested, it returns every label's score.
"""

from __future__ import annotations

import json
import time

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .served import Served, ServingError, timed_route


def _error(e: ServingError) -> JSONResponse:
    return JSONResponse({"error": e.message, "error_type": e.kind}, status_code=e.status, headers=e.headers)


def _sequence(item, at: str) -> tuple[str, str | None]:
    """One TEI Sequence: a text, [text], or [text, pair]."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, list) and len(item) in (1, 2) and all(isinstance(t, str) for t in item):
        return item[0], (item[1] if len(item) == 2 else None)
    raise ServingError(422, f"{at}: expected a text or a [text, text_pair] list, got {json.dumps(item)[:80]}")


def parse_inputs(inputs) -> tuple[list[str], list[str] | None, bool]:
    """(texts, pairs or None, single input?) of TEI's `inputs`."""
    if isinstance(inputs, str) or (
        isinstance(inputs, list) and len(inputs) == 2 and all(isinstance(t, str) for t in inputs)
    ):
        text, pair = _sequence(inputs, "inputs")
        return [text], None if pair is None else [pair], True
    if not isinstance(inputs, list):
        raise ServingError(422, f"'inputs' must be a text, a pair or a list of them, got {type(inputs).__name__}")
    if not inputs:
        raise ServingError(422, "'inputs' is an empty list")
    rows = [_sequence(item, f"inputs[{i}]") for i, item in enumerate(inputs)]
    with_pair = [pair is not None for _, pair in rows]
    if any(with_pair) and not all(with_pair):
        raise ServingError(422, "'inputs' mixes single texts and pairs")
    return [text for text, _ in rows], ([pair for _, pair in rows] if all(with_pair) else None), False


async def _request_json(served: Served, request: Request) -> dict:
    body = await served.body(request)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServingError(422, f"the body is not valid JSON: {e}") from None
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise ServingError(422, 'the body must be a JSON object with "inputs"')
    return payload


async def predict(served: Served, request: Request, *, nest_single: bool) -> Response:
    served.check_ready()
    payload = await _request_json(served, request)
    texts, pairs, single = parse_inputs(payload["inputs"])
    started = time.perf_counter()
    logits = await served.classify(texts, pairs, truncate=payload.get("truncate") is not False)
    scores = logits if payload.get("raw_scores") else served.scores(logits)
    labels = served.clf.labels
    rows = [[{"label": labels[i], "score": float(row[i])} for i in np.argsort(-row, kind="stable")] for row in scores]
    took = f"{(time.perf_counter() - started) * 1000:.3f}"
    headers = {"x-compute-time": took, "x-compute-characters": str(sum(map(len, texts)) + sum(map(len, pairs or [])))}
    return JSONResponse(rows[0] if single and not nest_single else rows, headers=headers)


def _info(served: Served) -> dict:
    from .. import __version__

    served.check_ready()
    clf, limits = served.clf, served.limits
    return {
        "model_id": served.name,
        "model_sha": None,
        "model_dtype": clf.precision,
        "model_type": {
            "classifier": {
                "id2label": dict(enumerate(clf.labels)),
                "label2id": {label: i for i, label in enumerate(clf.labels)},
            }
        },
        "max_concurrent_requests": limits.max_queue,
        "max_input_length": clf.tokenizer.max_length,
        "max_batch_tokens": limits.max_batch_tokens,
        "max_batch_requests": limits.max_batch_size,
        "max_client_batch_size": limits.max_client_batch_size,
        "tokenization_workers": 2,
        "version": __version__,
        "backend": clf.backend,
        "precision": clf.precision,
        "multi_label": clf.multi_label,
    }


def routes(served: Served) -> list[Route]:
    """The TEI routes of one served model."""

    def route(path: str, handler, methods=("GET",)) -> Route:
        return timed_route(served, path, handler, _error, methods)

    async def health(request):
        served.start()
        if served.ready and not served.draining:
            return Response(status_code=200)
        return _error(ServingError(503, served.error or "not ready", "Unhealthy"))

    async def info(request):
        return JSONResponse(_info(served))

    async def metrics(request):
        return Response(served.metrics.text(), media_type=served.metrics.content_type)

    return [
        route("/predict", lambda r: predict(served, r, nest_single=False), ("POST",)),
        route("/", lambda r: predict(served, r, nest_single=True), ("POST",)),
        route("/health", health),
        route("/info", info),
        Route("/metrics", metrics),
    ]
