"""Hugging Face text-embeddings-inference (TEI) compatible routes: POST /predict (and POST /),
POST /rerank, GET /health, /info and /metrics, with TEI's input shapes, response shapes and
status codes.

Input, as TEI reads it: ``"text"`` one text; ``["text", "pair"]`` (exactly two strings) one
sentence pair; ``["a", "b", "c"]`` or ``[["a"], ...]`` a batch of texts; ``[["a", "b"], ...]``
a batch of pairs. A single input answers a flat list of {"label", "score"} (every label,
best first), a batch a list of such lists. ``raw_scores`` gives logits; ``truncate: false``
refuses a text longer than the model's maximum instead of truncating it (on the right, as
the model does: ``truncation_direction`` "Left" is refused).

POST / answers a single input with a batch of one (a list holding the flat list), as the
Hugging Face Inference API did: `huggingface_hub.InferenceClient(url).text_classification`
posts {"inputs": text} to the URL and returns the first element of the list it reads, so a
flat list would give it only the best label; nested, it returns every label's score.

POST /rerank {"query", "texts", "raw_scores", "return_text", "truncate"} scores each
(query, text) pair and answers [{"index", "score"(, "text")}], best first. The score is the
probability that the pair is relevant: sigmoid of the logit for a one-logit model (TEI's
rerankers, sentence-transformers' CrossEncoder); otherwise the probability of the one
label named as in `RELEVANT` (e.g. "entailment" of an NLI model), or of the second label
of a two-label single-label model (id 1, a binary head's positive class). ``raw_scores``
gives its log-odds (the logit of a one-logit model). Another model answers 424, as TEI
answers for a model that is not a reranker, and so does a model that takes no pairs.

Status codes, as TEI's: 400 an empty list; 413 a payload over the limit, more texts than
the limit per request, or with ``truncate: false`` a text over the model's maximum; 422 a
body that is not what the route takes; 424 see above; 429 overloaded (with Retry-After);
503 not ready. Errors are {"error": message, "error_type": kind}.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import InvalidInputError, UnifiedNLPError
from .middleware import note_texts
from .repository import Repository
from .served import Served, ServingError, read_body, timed_route

# label names (compared in lower case) whose probability ranks texts in /rerank
RELEVANT = frozenset(
    {"relevant", "entailment", "yes", "true", "positive", "equivalent", "duplicate", "paraphrase", "similar", "match"}
)


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
        raise ServingError(400, "`inputs` cannot be empty", "Empty")
    rows = [_sequence(item, f"inputs[{i}]") for i, item in enumerate(inputs)]
    with_pair = [pair is not None for _, pair in rows]
    if any(with_pair) and not all(with_pair):
        raise ServingError(422, "'inputs' mixes single texts and pairs")
    return [text for text, _ in rows], ([pair for _, pair in rows] if all(with_pair) else None), False


async def _request_json(repository: Repository, request: Request, *required: str) -> dict:
    repository.default.check_ready()
    body = await read_body(request, repository.limits.payload_limit)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServingError(422, f"the body is not valid JSON: {e}") from None
    if not isinstance(payload, dict) or any(key not in payload for key in required):
        raise ServingError(422, f"the body must be a JSON object with {', '.join(map(json.dumps, required))}")
    return payload


def _flag(payload: dict, name: str, default: bool) -> bool:
    value = payload.get(name)
    if value is None:  # absent or null: the default, as TEI reads an Option<bool>
        return default
    if not isinstance(value, bool):
        raise ServingError(422, f"'{name}' must be true or false, got {json.dumps(value)[:40]}")
    return value


def _truncate(payload: dict) -> bool:
    """`truncate` (default: truncate, as the model does); only right truncation exists."""
    direction = payload.get("truncation_direction")
    if direction is not None and str(direction).lower() != "right":
        raise ServingError(
            422, f"truncation_direction {direction!r} is not supported: texts are cut on the right, as the model does"
        )
    return _flag(payload, "truncate", True)


def _checked(scores: np.ndarray) -> np.ndarray:
    if np.isnan(scores).any():  # JSON has no NaN; TEI answers the same
        raise ServingError(424, "score is NaN", "Backend")
    return scores


def _headers(started: float, characters: int, timings: dict) -> dict[str, str]:
    """TEI's timing headers (milliseconds): total, and the request's tokenization, queue and inference."""
    took = f"{(time.perf_counter() - started) * 1000:.3f}"
    headers = {"x-compute-time": took, "x-total-time": took, "x-compute-characters": str(characters)}
    if "tokens" in timings:
        headers["x-compute-tokens"] = str(timings["tokens"])
    for part in ("tokenization", "queue", "inference"):
        if part in timings:
            headers[f"x-{part}-time"] = f"{timings[part] * 1000:.3f}"
    return headers


async def predict(repository: Repository, request: Request, *, nest_single: bool) -> Response:
    payload = await _request_json(repository, request, "inputs")
    texts, pairs, single = parse_inputs(payload["inputs"])
    note_texts(len(texts))
    truncate, raw = _truncate(payload), _flag(payload, "raw_scores", False)
    started = time.perf_counter()
    timings: dict = {}
    served = repository.default  # the current version, entered with no await between
    logits = await served.classify(texts, pairs, truncate=truncate, request=request, timings=timings)
    scores = _checked(logits if raw else served.scores(logits))
    labels = served.clf.labels
    rows = [[{"label": labels[i], "score": float(row[i])} for i in np.argsort(-row, kind="stable")] for row in scores]
    headers = _headers(started, sum(map(len, texts)) + sum(map(len, pairs or [])), timings)
    return JSONResponse(rows[0] if single and not nest_single else rows, headers=headers)


def relevance_label(labels: tuple[str, ...] | list[str], multi_label: bool) -> int:
    """The label whose score ranks texts in /rerank (the rule: see the module's docstring).

    >>> relevance_label(["contradiction", "entailment", "neutral"], False)
    1
    """
    if len(labels) == 1:
        return 0
    named = [i for i, label in enumerate(labels) if label.strip().lower() in RELEVANT]
    if len(named) == 1:
        return named[0]
    if len(labels) == 2 and not named and not multi_label:
        return 1
    raise ServingError(
        424,
        f"model is not a re-ranker model: its labels {list(labels)} name no single relevance label "
        f"({', '.join(sorted(RELEVANT))}); /rerank needs one logit, such a label, or two labels",
        "Backend",
    )


def relevance(logits: np.ndarray, label: int, multi_label: bool, raw: bool) -> np.ndarray:
    """Per row, the probability of `label` (sigmoid for a multi-label head, softmax else),
    or with `raw` its log-odds, whose sigmoid is that probability."""
    z = np.asarray(logits, dtype=np.float64)
    if multi_label or z.shape[1] == 1:
        odds = z[:, label]
    else:  # log p / (1 - p) = z_label - logsumexp(every other logit)
        others = np.delete(z, label, axis=1)
        top = others.max(axis=1)
        odds = z[:, label] - top - np.log(np.exp(others - top[:, None]).sum(axis=1))
    return odds if raw else 0.5 * (1.0 + np.tanh(0.5 * odds))  # tanh form: no overflow


async def _takes_pairs(served: Served, known: dict) -> bool:
    """Whether the model's tokenizer takes sentence pairs, asked once: no capability declares
    it (a SavedModel with strings in refuses pairs when tokenizing)."""
    if served.clf not in known:
        try:
            await asyncio.to_thread(served.clf.encode, ["query"], ["text"])
            known[served.clf] = True
        except InvalidInputError:
            known[served.clf] = False
        except UnifiedNLPError as e:
            raise ServingError(503, f"the backend failed: {e}", "Backend") from None
    return known[served.clf]


async def rerank(repository: Repository, request: Request, known: dict) -> Response:
    payload = await _request_json(repository, request, "query", "texts")
    query, texts = payload["query"], payload["texts"]
    if not isinstance(query, str):
        raise ServingError(422, "'query' must be a text")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ServingError(422, "'texts' must be a list of texts")
    if not texts:
        raise ServingError(400, "`texts` cannot be empty", "Empty")
    note_texts(len(texts))
    truncate, raw = _truncate(payload), _flag(payload, "raw_scores", False)
    with_text = _flag(payload, "return_text", False)
    clf = repository.default.clf
    relevance_label(clf.labels, clf.multi_label)  # 424 before the pairs are tried
    if not await _takes_pairs(repository.default, known):
        raise ServingError(424, "model is not a re-ranker model: it takes single texts, not pairs", "Backend")
    started = time.perf_counter()
    timings: dict = {}
    served = repository.default  # the current version, entered with no await between
    clf = served.clf
    label = relevance_label(clf.labels, clf.multi_label)
    logits = await served.classify([query] * len(texts), texts, truncate=truncate, request=request, timings=timings)
    scores = _checked(relevance(logits, label, clf.multi_label, raw))
    ranks = [
        {"index": int(i), **({"text": texts[i]} if with_text else {}), "score": float(scores[i])}
        for i in np.argsort(-scores, kind="stable")
    ]
    characters = len(query) * len(texts) + sum(map(len, texts))
    return JSONResponse(ranks, headers=_headers(started, characters, timings))


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
        "auto_truncate": True,
        "tokenization_workers": 2,
        "version": __version__,
        "backend": clf.backend,
        "precision": clf.precision,
        "multi_label": clf.multi_label,
    }


def routes(repository: Repository) -> list[Route]:
    """The TEI routes, answered by the repository's first model; /health and /metrics are the server's."""
    # classifier -> whether it takes pairs (asked on the first /rerank); weak: a replaced version is released
    known_pairs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def route(path: str, handler, methods=("GET",)) -> Route:
        return timed_route(path, handler, _error, _default_of(repository), repository.metrics, methods)

    async def health(request):
        if repository.ready():
            return Response(status_code=200)
        return _error(ServingError(503, repository.error() or "not ready", "Unhealthy"))

    async def info(request):
        return JSONResponse(_info(repository.default))

    async def metrics(request):
        return Response(repository.metrics.text(), media_type=repository.metrics.content_type)

    return [
        route("/predict", lambda r: predict(repository, r, nest_single=False), ("POST",)),
        route("/", lambda r: predict(repository, r, nest_single=True), ("POST",)),
        route("/rerank", lambda r: rerank(repository, r, known_pairs), ("POST",)),
        route("/health", health),
        route("/info", info),
        Route("/metrics", metrics),
    ]


def _default_of(repository: Repository):
    def model_of(request) -> Served | None:
        try:
            return repository.default
        except ServingError:  # every model unloaded
            return None

    return model_of
