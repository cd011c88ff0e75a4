"""unified_nlp.serving through real servers on 127.0.0.1 (uvicorn in a thread, or the CLI in a
subprocess for SIGTERM) and real clients: tritonclient.http (binary and JSON),
huggingface_hub.InferenceClient and plain HTTP (KServe's own client does not install beside
our pins: see the README's Serving section). Probabilities must equal in-process
predict_proba within 1e-5 whatever batch a text lands in. All traffic is loopback,
bounded in count and time."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.conftest import REPO, default_classifier, require, require_module
from tests.serving_helpers import Running, call, free_port, metric, wait_ready

uvicorn = require_module("uvicorn")
require_module("starlette")
require_module("prometheus_client")
triton = require_module("tritonclient.http")
hub = require_module("huggingface_hub")

from unified_nlp.errors import InvalidInputError  # noqa: E402
from unified_nlp.postprocess import sigmoid, softmax  # noqa: E402
from unified_nlp.serving import create_app  # noqa: E402 - after the checks that skip without the extra
from unified_nlp.serving.batcher import length_batches  # noqa: E402
from unified_nlp.serving.served import ServingError  # noqa: E402
from unified_nlp.serving.tei import relevance, relevance_label  # noqa: E402

TEXTS = ["This is a great movie!", "A dull, lifeless film.", "It was fine, I guess. " * 3, "é ü — 映画"]
TOL = 1e-5
LONG = "word " * 600  # 602 tokens for the default model (transformers' tokenizer), over its 512


@pytest.fixture(scope="module")
def hf():
    return default_classifier("huggingface")


@pytest.fixture(scope="module")
def server(hf):
    app = create_app(hf, name="default", payload_limit=200_000, max_client_batch_size=64, access_log=True)
    with Running(app) as running:
        yield running


def infer_json(texts, pairs=None, **tensor) -> dict:
    inputs = [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts, **tensor}]
    if pairs is not None:
        inputs.append({"name": "text_pair", "datatype": "BYTES", "shape": [len(pairs)], "data": pairs})
    return {"inputs": inputs}


# --- health, metadata, lifecycle ------------------------------------------------------------


def test_health_and_metadata(server, hf):
    url = server.url
    assert "binary_tensor_data" in json.loads(call(url, "/v2")[2])["extensions"]
    for path in ("/v2/health/live", "/v2/health/ready", "/health", "/v2/models/default/ready"):
        assert call(url, path)[0] == 200, path
    # the bodies KServe's InferenceRESTClient reads (tritonclient reads only the status)
    assert json.loads(call(url, "/v2/health/live")[2]) == {"live": True}
    assert json.loads(call(url, "/v2/health/ready")[2]) == {"ready": True}
    assert json.loads(call(url, "/v2/models/default/ready")[2]) == {"name": "default", "ready": True}
    meta = json.loads(call(url, "/v2/models/default/versions/1")[2])
    assert meta["name"] == "default" and meta["parameters"]["labels"] == list(hf.labels)
    assert meta["outputs"][0] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(hf.labels)]}
    info = json.loads(call(url, "/info")[2])
    assert info["model_type"]["classifier"]["id2label"] == {str(i): lab for i, lab in enumerate(hf.labels)}
    assert info["backend"] == "huggingface"
    status, _, body = call(url, "/v2/models/nope")
    assert status == 404 and "nope" in json.loads(body)["error"]
    assert call(url, "/v2/models/default/versions/7/infer", infer_json(["x"]))[0] == 404


def test_draining_turns_readiness_to_503(server):
    served = server.app.state.served
    served.draining = True
    try:
        status, _, body = call(server.url, "/v2/health/ready")
        assert status == 503 and json.loads(body) == {"ready": False}
        assert call(server.url, "/health")[0] == 503
        assert call(server.url, "/v2/health/live")[0] == 200
    finally:
        served.draining = False


def test_a_model_that_fails_to_load_is_not_ready_nor_live(tmp_path):
    import uvicorn

    app = create_app(str(tmp_path / "no-such-model"), backend="huggingface")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while time.monotonic() < deadline and not app.state.served.broken:
            time.sleep(0.1)
        status, _, body = call(url, "/v2/health/live")
        assert status == 503 and json.loads(body) == {"live": False}
        status, _, body = call(url, "/health")
        assert status == 503 and "no-such-model" in json.loads(body)["error"], body
        assert call(url, "/v2/health/ready")[0] == 503
    finally:
        server.should_exit = True
        thread.join(30)


def test_metrics_are_prometheus_text(server):
    call(server.url, "/predict", {"inputs": "metrics"})
    status, headers, body = call(server.url, "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for name in (
        "unified_nlp_request_duration_seconds_bucket",
        "unified_nlp_batch_size_bucket",
        "unified_nlp_requests_total",
    ):
        assert name in text, name
    assert 'route="/predict",status="200"' in text and 'backend="huggingface"' in text


# --- TEI and huggingface_hub ----------------------------------------------------------------


def test_tei_shapes_match_predict_proba(server, hf):
    probs = hf.predict_proba(TEXTS)
    status, headers, body = call(server.url, "/predict", {"inputs": TEXTS[0]})
    single = json.loads(body)
    assert status == 200 and "x-compute-time" in headers
    # TEI's timing headers: the parts of this request, each within its total
    parts = [float(headers[f"x-{part}-time"]) for part in ("tokenization", "queue", "inference")]
    assert all(0 <= t <= float(headers["x-total-time"]) for t in parts), headers
    tokens = hf.tokenizer([TEXTS[0]]).lengths[0]
    assert headers["x-compute-tokens"] == str(tokens) and headers["x-compute-characters"] == str(len(TEXTS[0]))
    assert [p["label"] for p in single] == [hf.labels[i] for i in np.argsort(-probs[0])]
    assert np.allclose([p["score"] for p in single], np.sort(probs[0])[::-1], atol=TOL)
    batch = json.loads(call(server.url, "/predict", {"inputs": TEXTS})[2])
    got = np.array([[{p["label"]: p["score"] for p in row}[label] for label in hf.labels] for row in batch])
    np.testing.assert_allclose(got, probs, atol=TOL)
    raw = json.loads(call(server.url, "/predict", {"inputs": [TEXTS[1]], "raw_scores": True})[2])[0]
    np.testing.assert_allclose(sorted(p["score"] for p in raw), np.sort(hf.logits([TEXTS[1]])[0]), atol=1e-4)
    pair = json.loads(call(server.url, "/predict", {"inputs": ["a b", "c d"]})[2])  # two strings: one pair
    np.testing.assert_allclose(max(p["score"] for p in pair), hf.predict_proba([("a b", "c d")]).max(), atol=TOL)
    assert isinstance(json.loads(call(server.url, "/", {"inputs": TEXTS[0]})[2])[0], list)  # POST /: nested


def test_each_text_gets_its_own_row_back_when_the_batcher_reorders_them(server, hf):
    """Texts shortest first: the batcher runs them longest first in one batch, and must put each
    row's probabilities back where its text was."""
    texts = ["bad.", "a bad film.", "a really bad film.", "a really very bad film."]
    assert np.all(np.diff(hf.tokenizer(texts).lengths) > 0)
    batch = json.loads(call(server.url, "/predict", {"inputs": texts})[2])
    got = np.array([[{p["label"]: p["score"] for p in row}[label] for label in hf.labels] for row in batch])
    np.testing.assert_allclose(got, hf.predict_proba(texts), atol=TOL)


def test_huggingface_hub_client_gets_every_label(server, hf):
    out = hub.InferenceClient(server.url).text_classification(TEXTS[0])
    assert sorted(o.label for o in out) == sorted(hf.labels)
    scores = {o.label: o.score for o in out}
    np.testing.assert_allclose([scores[lab] for lab in hf.labels], hf.predict_proba([TEXTS[0]])[0], atol=TOL)


# --- v2 with tritonclient -------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_matches_predict_proba(server, hf, binary):
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_ready() and client.is_model_ready("default")
    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object), binary_data=binary)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("probabilities", "label")]
    result = client.infer("default", [text], outputs=outputs, request_id="r1")
    declared = {o["name"]: (o["datatype"], o["shape"]) for o in result.get_response()["outputs"]}
    assert declared == {"probabilities": ("FP32", [len(TEXTS), len(hf.labels)]), "label": ("BYTES", [len(TEXTS)])}
    probs = hf.predict_proba(TEXTS)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, atol=TOL)
    labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")]
    assert labels == [hf.labels[i] for i in probs.argmax(1)]
    assert result.get_response()["id"] == "r1"
    only = client.infer("default", [text], outputs=[triton.InferRequestedOutput("label", binary_data=binary)])
    assert [o["name"] for o in only.get_response()["outputs"]] == ["label"]


def test_any_batch_gives_the_same_probabilities(server, hf):
    """Concurrent requests of different sizes are batched together; each text's row is unchanged."""
    texts = [f"{t} #{i}" for i in range(6) for t in TEXTS]
    expected = hf.predict_proba(texts)
    client_of = threading.local()

    def one(start: int):
        if not hasattr(client_of, "c"):
            client_of.c = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
        size = 1 + start % 5
        part = texts[start : start + size]
        text = triton.InferInput("text", [len(part)], "BYTES")
        text.set_data_from_numpy(np.array([t.encode() for t in part], dtype=object))
        return start, client_of.c.infer("default", [text]).as_numpy("probabilities")

    with ThreadPoolExecutor(8) as pool:
        for start, got in pool.map(one, range(len(texts))):
            np.testing.assert_allclose(got, expected[start : start + len(got)], atol=TOL)


# --- bad requests ----------------------------------------------------------------------------


def _binary_body(items: list[bytes]) -> tuple[bytes, dict]:
    raw = b"".join(len(i).to_bytes(4, "little") + i for i in items)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "datatype": "BYTES",
                    "shape": [len(items)],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head)), "content-type": "application/octet-stream"}


V2_BAD = {
    "wrong datatype": (infer_json(["x"], datatype="FP32"), 400, "datatype must be BYTES"),
    "shape and data disagree": (infer_json(["x", "y"], shape=[3]), 400, "shape [3]"),
    "2-D shape": (infer_json(["x", "y"], shape=[1, 2]), 400, "[N] or [N, 1]"),
    "missing input": (
        {"inputs": [infer_json(["x"])["inputs"][0] | {"name": "text_pair"}]},
        400,
        "missing input 'text'",
    ),
    "unknown input": ({"inputs": [infer_json(["x"])["inputs"][0] | {"name": "sentence"}]}, 400, "unknown input"),
    "empty list": (infer_json([]), 400, "empty"),
    "pair length": (infer_json(["x", "y"], pairs=["z"]), 400, "'text_pair' holds 1"),
    "unknown output": (infer_json(["x"]) | {"outputs": [{"name": "logits"}]}, 400, "unknown output"),
    "not json": (b"{nope", 400, "not valid JSON"),
    "too many texts": (infer_json(["x"] * 65), 400, "65 texts exceed the limit of 64"),
    "too long, no truncation": (
        infer_json(["ok", LONG]) | {"parameters": {"truncate": False}},
        400,
        "input 1 has 602 tokens, more than the model's 512",
    ),
    "truncate not a bool": (infer_json(["x"]) | {"parameters": {"truncate": "no"}}, 400, "'truncate' must be"),
    "parameters not an object": (infer_json(["x"]) | {"parameters": [1]}, 400, "'parameters' must be"),
    "oversize payload": (infer_json(["x" * 250_000]), 413, "exceeds the limit"),
}


@pytest.mark.parametrize("body, status, message", V2_BAD.values(), ids=V2_BAD.keys())
def test_v2_bad_requests(server, body, status, message):
    got, _, reply = call(server.url, "/v2/models/default/infer", body)
    assert got == status and message in json.loads(reply)["error"], reply


def test_v2_binary_non_utf8_and_bad_header_length(server):
    body, headers = _binary_body([b"fine", b"\xff\xfe bad"])
    status, _, reply = call(server.url, "/v2/models/default/infer", body, headers)
    assert status == 400 and "element 1 is not valid UTF-8" in json.loads(reply)["error"]
    status, _, reply = call(
        server.url, "/v2/models/default/infer", body, {**headers, "Inference-Header-Content-Length": "999999"}
    )
    assert status == 400 and "outside the body" in json.loads(reply)["error"]
    assert call(server.url, "/v2/models/default/infer", *_binary_body([b"ok"]))[0] == 200


# TEI's codes (router/src/http/server.rs): 400 Empty, 413 Validation (the batch size, and a text
# over the maximum with truncate false), 422 what does not parse
TEI_BAD = {
    "empty list": ({"inputs": []}, 400, "Empty", "cannot be empty"),
    "not a text": ({"inputs": 5}, 422, "Validation", "'inputs' must be"),
    "no inputs": ({"text": "x"}, 422, "Validation", '"inputs"'),
    "mixed": ({"inputs": [["a", "b"], "c"]}, 422, "Validation", "mixes"),
    "too long, no truncation": (
        {"inputs": ["ok", LONG, "fine"], "truncate": False},  # two strings would be one pair
        413,
        "Validation",
        "input 1 has 602 tokens, more than the model's 512",
    ),
    "left truncation": ({"inputs": "x", "truncation_direction": "Left"}, 422, "Validation", "not supported"),
    "raw_scores not a bool": ({"inputs": "x", "raw_scores": "yes"}, 422, "Validation", "'raw_scores' must be"),
    "too many texts": ({"inputs": ["x"] * 65}, 413, "Validation", "65 texts"),
    "oversize payload": ({"inputs": "x" * 250_000}, 413, "Validation", "exceeds the limit"),
}


@pytest.mark.parametrize("body, status, kind, message", TEI_BAD.values(), ids=TEI_BAD.keys())
def test_tei_bad_requests(server, body, status, kind, message):
    got, _, reply = call(server.url, "/predict", body)
    error = json.loads(reply)
    assert (got, error["error_type"]) == (status, kind) and message in error["error"], reply


def test_texts_are_truncated_unless_the_client_says_not_to(server, hf):
    """Truncated as the model truncates by default (TEI's truncate: null / true, v2 without the parameter)."""
    expected = hf.predict_proba([LONG])[0]
    for truncate in (None, True):
        reply = json.loads(call(server.url, "/predict", {"inputs": [LONG], "truncate": truncate})[2])[0]
        np.testing.assert_allclose(
            [{p["label"]: p["score"] for p in reply}[lab] for lab in hf.labels], expected, atol=TOL
        )
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    text = triton.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"ok", LONG.encode()], dtype=object))
    np.testing.assert_allclose(client.infer("default", [text]).as_numpy("probabilities")[1], expected, atol=TOL)
    with pytest.raises(triton.InferenceServerException) as refused:  # the real client's request parameters
        client.infer("default", [text], parameters={"truncate": False})
    assert refused.value.status() == "400" and "input 1 has 602 tokens" in refused.value.message()


def test_a_request_names_no_file_and_no_backend(server, hf):
    """Only the served model's name exists: keys naming a file or a backend are not read."""
    plain = json.loads(call(server.url, "/predict", {"inputs": TEXTS[:2]})[2])
    named = {"inputs": TEXTS[:2], "model": "/etc/passwd", "model_id": "../..", "backend": "tfhub"}
    assert json.loads(call(server.url, "/predict", named)[2]) == plain
    body = infer_json(TEXTS[:2]) | {"parameters": {"backend": "tfhub", "model": "/etc/passwd"}}
    reply = json.loads(call(server.url, "/v2/models/default/infer", body)[2])
    np.testing.assert_allclose(reply["outputs"][0]["data"], hf.predict_proba(TEXTS[:2]).ravel(), atol=TOL)
    for name in ("%2Fetc%2Fpasswd", "..%2Fdefault", "onnxruntime", "default%00"):
        status, _, reply = call(server.url, f"/v2/models/{name}/infer", infer_json(["x"]))
        assert status == 404 and json.loads(reply)["error"], name  # no route, or "unknown model"


def test_the_access_log_has_a_line_per_request(server, caplog):
    with caplog.at_level(logging.INFO, logger="unified_nlp.serving.access"):
        assert call(server.url, "/predict", {"inputs": TEXTS[:3]})[0] == 200
        assert call(server.url, "/v2/models/nope/ready")[0] == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "unified_nlp.serving.access"]
    assert any('"POST /predict" 200' in line and line.endswith(" ms 3 texts") for line in lines), lines
    assert any('"GET /v2/models/nope/ready" 404' in line and line.endswith(" ms") for line in lines), lines


# --- /rerank ---------------------------------------------------------------------------------

QUERY = "Is the film good?"
DOCS = ["A dull, lifeless film.", "This is a great movie!", "It was fine, I guess.", "é ü — 映画"]


def _ranked(ranks: list[dict], scores: np.ndarray) -> None:
    """`ranks` holds every index once, best first, with its score."""
    order = [r["index"] for r in ranks]
    assert sorted(order) == list(range(len(scores))) and order == list(np.argsort(-scores, kind="stable"))
    np.testing.assert_allclose([r["score"] for r in ranks], scores[order], atol=TOL)


def test_rerank_scores_the_relevance_label(server, hf):
    """A two-label model: the probability of the label named like 'positive' (POSITIVE), raw: its log-odds."""
    assert hf.labels == ("NEGATIVE", "POSITIVE")
    probs = hf.predict_proba([QUERY] * len(DOCS), text_pair=DOCS)[:, 1]
    status, headers, body = call(server.url, "/rerank", {"query": QUERY, "texts": DOCS, "return_text": True})
    ranks = json.loads(body)
    assert status == 200 and "x-compute-time" in headers
    _ranked(ranks, probs)
    assert [r["text"] for r in ranks] == [DOCS[r["index"]] for r in ranks]
    raw = json.loads(call(server.url, "/rerank", {"query": QUERY, "texts": DOCS, "raw_scores": True})[2])
    logits = hf.logits([QUERY] * len(DOCS), text_pair=DOCS)
    assert all(set(r) == {"index", "score"} for r in raw)
    order = [r["index"] for r in raw]
    np.testing.assert_allclose([r["score"] for r in raw], (logits[:, 1] - logits[:, 0])[order], atol=1e-4)


RERANK_BAD = {
    "empty": ({"query": "q", "texts": []}, 400, "Empty", "cannot be empty"),
    "no query": ({"texts": ["a"]}, 422, "Validation", '"query"'),
    "query not a text": ({"query": 1, "texts": ["a"]}, 422, "Validation", "'query' must be"),
    "texts not a list": ({"query": "q", "texts": "a"}, 422, "Validation", "'texts' must be"),
    "return_text not a bool": ({"query": "q", "texts": ["a"], "return_text": 1}, 422, "Validation", "'return_text'"),
    "too many texts": ({"query": "q", "texts": ["x"] * 65}, 413, "Validation", "65 texts"),
    "too long, no truncation": (
        {"query": "q", "texts": ["ok", LONG], "truncate": False},
        413,
        "Validation",
        "more than the model's 512",
    ),
}


@pytest.mark.parametrize("body, status, kind, message", RERANK_BAD.values(), ids=RERANK_BAD.keys())
def test_rerank_bad_requests(server, body, status, kind, message):
    got, _, reply = call(server.url, "/rerank", body)
    error = json.loads(reply)
    assert (got, error["error_type"]) == (status, kind) and message in error["error"], reply


@pytest.mark.parametrize(
    "labels, multi_label, expected",
    [
        (["relevant"], True, 0),
        (["contradiction", "entailment", "neutral"], False, 1),
        (["entailment", "not_entailment"], False, 0),
        (["not_equivalent", "equivalent"], False, 1),
        (["LABEL_0", "LABEL_1"], False, 1),
    ],
)
def test_the_relevance_label(labels, multi_label, expected):
    assert relevance_label(labels, multi_label) == expected


@pytest.mark.parametrize(
    "labels, multi_label", [(["a", "b"], True), (["a", "b", "c"], False), (["yes", "true"], False)]
)
def test_a_model_without_a_relevance_label_is_not_a_reranker(labels, multi_label):
    with pytest.raises(ServingError) as refused:
        relevance_label(labels, multi_label)
    assert refused.value.status == 424 and "not a re-ranker" in refused.value.message


def test_relevance_is_the_label_probability_and_raw_its_log_odds():
    logits = np.random.default_rng(0).normal(size=(6, 3)) * 4
    np.testing.assert_allclose(relevance(logits, 1, False, False), softmax(logits)[:, 1], atol=1e-6)
    np.testing.assert_allclose(sigmoid(relevance(logits, 1, False, True)), softmax(logits)[:, 1], atol=1e-6)
    np.testing.assert_allclose(relevance(logits, 2, True, False), sigmoid(logits)[:, 2], atol=1e-6)
    np.testing.assert_allclose(relevance(logits, 2, True, True), logits[:, 2], atol=1e-12)


# --- the API key: one server of a one-logit pair model (a reranker) --------------------------

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def keyed():
    import unified_nlp as un

    # a fresh one-logit head (only parity matters), loaded as TEI's rerankers are scored: a sigmoid
    clf = un.load_classifier("minilm", labels=["relevant"], problem_type="multi_label_classification")
    with Running(create_app(clf, name="reranker", api_key=KEY, access_log=True)) as running:
        running.clf = clf
        yield running


def test_rerank_of_a_one_logit_model_is_its_sigmoid(keyed):
    clf = keyed.clf
    ranks = json.loads(call(keyed.url, "/rerank", {"query": QUERY, "texts": DOCS}, AUTH)[2])
    _ranked(ranks, clf.predict_proba([QUERY] * len(DOCS), text_pair=DOCS)[:, 0])
    raw = json.loads(call(keyed.url, "/rerank", {"query": QUERY, "texts": DOCS, "raw_scores": True}, AUTH)[2])
    logits = clf.logits([QUERY] * len(DOCS), text_pair=DOCS)[:, 0]
    np.testing.assert_allclose([r["score"] for r in raw], logits[[r["index"] for r in raw]], atol=1e-4)


GUARDED = [
    ("/predict", {"inputs": "x"}),
    ("/", {"inputs": "x"}),
    ("/rerank", {"query": "q", "texts": ["a"]}),
    ("/info", None),
    ("/v2", None),
    ("/v2/models/reranker", None),
    ("/v2/models/reranker/ready", None),
    ("/v2/models/reranker/infer", infer_json(["x"])),
]


ROUTES = {  # GUARDED's paths as /metrics counts them: by route template
    "/predict": "/predict",
    "/": "/",
    "/rerank": "/rerank",
    "/info": "/info",
    "/v2": "/v2",
    "/v2/models/reranker": "/v2/models/{name}",
    "/v2/models/reranker/ready": "/v2/models/{name}/ready",
    "/v2/models/reranker/infer": "/v2/models/{name}/infer",
}


def refusals(url: str) -> dict:
    return {
        r: metric(url, "unified_nlp_requests_total", route=r, status="401") for r in [*ROUTES.values(), "(no route)"]
    }


def test_the_api_key_guards_every_route_but_health_and_metrics(keyed):
    before = refusals(keyed.url)
    for path in ("/health", "/v2/health/live", "/v2/health/ready", "/metrics"):
        assert call(keyed.url, path)[0] == 200, path
    wrong = ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"})
    for path, body in GUARDED:
        for headers in wrong:
            status, got_headers, reply = call(keyed.url, path, body, headers)
            error = json.loads(reply)
            assert status == 401 and got_headers["www-authenticate"] == "Bearer", (path, headers)
            assert "API key" in error["error"] and ("error_type" in error) == (not path.startswith("/v2")), error
        assert call(keyed.url, path, body, AUTH)[0] == 200, path
        assert call(keyed.url, path, body, {"Authorization": f"bearer {KEY}"})[0] == 200, path  # any case of scheme
    assert call(keyed.url, "/made/up", None, {})[0] == 401
    # every refusal in /metrics, under its route's template (a made-up path adds no label value)
    after = refusals(keyed.url)
    assert {r: after[r] - before[r] for r in after} == {**{r: len(wrong) for r in ROUTES.values()}, "(no route)": 1}


def test_clients_send_the_api_key(keyed, monkeypatch):
    clf = keyed.clf
    out = hub.InferenceClient(keyed.url, token=KEY).text_classification(DOCS[0])
    np.testing.assert_allclose([o.score for o in out], clf.predict_proba([DOCS[0]])[0], atol=TOL)
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as refused:
        monkeypatch.delenv("HF_TOKEN", raising=False)  # no token at all (a stored one would be a wrong key: 401 too)
        hub.InferenceClient(keyed.url).text_classification(DOCS[0])
    assert refused.value.response.status_code == 401

    client = triton.InferenceServerClient(f"127.0.0.1:{keyed.port}")
    assert client.is_server_ready() and client.is_model_ready("reranker", headers=AUTH)
    inputs = []
    for name, texts in (("text", [QUERY] * 2), ("text_pair", DOCS[:2])):
        tensor = triton.InferInput(name, [2], "BYTES")
        tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
        inputs.append(tensor)
    got = client.infer("reranker", inputs, headers=AUTH).as_numpy("probabilities")
    np.testing.assert_allclose(got, clf.predict_proba([QUERY] * 2, text_pair=DOCS[:2]), atol=TOL)
    with pytest.raises(triton.InferenceServerException) as refused:
        client.infer("reranker", inputs)
    assert refused.value.status() == "401"


def test_an_empty_api_key_is_refused():
    with pytest.raises(InvalidInputError, match="empty"):
        create_app(default_classifier("huggingface"), api_key=" ")


# --- pairs, the queue limit, backends --------------------------------------------------------


def test_pairs_match_predict_proba():
    import unified_nlp as un

    clf = un.load_classifier("minilm", labels=["no", "yes"])  # a fresh head: only parity matters
    first, second = ["A man plays a guitar.", "The cat sleeps."], ["A person makes music.", "A dog barks loudly."]
    expected = clf.predict_proba(first, text_pair=second)
    with Running(create_app(clf, name="pairs")) as running:
        client = triton.InferenceServerClient(f"127.0.0.1:{running.port}")
        inputs = []
        for name, texts in (("text", first), ("text_pair", second)):
            tensor = triton.InferInput(name, [2, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=object))
            inputs.append(tensor)
        np.testing.assert_allclose(client.infer("pairs", inputs).as_numpy("probabilities"), expected, atol=TOL)
        rows = json.loads(call(running.url, "/predict", {"inputs": [list(p) for p in zip(first, second)]})[2])
        got = [[{p["label"]: p["score"] for p in row}[lab] for lab in clf.labels] for row in rows]
        np.testing.assert_allclose(got, expected, atol=TOL)


def test_multi_label_labels_are_those_at_or_above_one_half():
    import unified_nlp as un

    clf = un.load_classifier("minilm", labels=["a", "b", "c"], problem_type="multi_label_classification")
    expected = clf.predict_proba(TEXTS)
    with Running(create_app(clf, name="tags")) as running:
        reply = json.loads(call(running.url, "/v2/models/tags/infer", infer_json(TEXTS))[2])
        status, _, refused = call(running.url, "/rerank", {"query": "q", "texts": ["a"]})
    assert status == 424 and json.loads(refused)["error_type"] == "Backend", refused  # no relevance label: TEI's 424
    outputs = {o["name"]: o for o in reply["outputs"]}
    np.testing.assert_allclose(np.reshape(outputs["probabilities"]["data"], expected.shape), expected, atol=TOL)
    wanted = [",".join(clf.labels[i] for i in np.argsort(-row, kind="stable") if row[i] >= 0.5) for row in expected]
    assert outputs["label"]["data"] == wanted


def test_a_full_queue_answers_429(hf):
    with Running(create_app(hf, max_queue=2, max_batch_size=8)) as running:
        body = {"inputs": [f"{t} {i}" for i in range(16) for t in TEXTS[:2]]}
        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(lambda _: call(running.url, "/predict", body), range(24)))
    statuses = sorted({status for status, _, _ in replies})
    assert statuses == [200, 429], statuses
    refused = next(r for r in replies if r[0] == 429)
    assert refused[1]["retry-after"] == "1" and json.loads(refused[2])["error_type"] == "Overloaded"


@pytest.mark.parametrize("backend", ["huggingface", "onnxruntime", "tfhub", "paddlenlp"])
def test_every_backend_serves_the_same(backend):
    require(backend)
    clf = default_classifier(backend)
    with Running(create_app(clf, name="default")) as running:
        client = triton.InferenceServerClient(f"127.0.0.1:{running.port}")
        text = triton.InferInput("text", [len(TEXTS)], "BYTES")
        text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object))
        got = client.infer("default", [text]).as_numpy("probabilities")
        np.testing.assert_allclose(got, clf.predict_proba(TEXTS), atol=TOL)
        assert json.loads(call(running.url, "/info")[2])["backend"] == backend


# --- SIGTERM ---------------------------------------------------------------------------------


def test_sigterm_answers_every_accepted_request_and_exits_0():
    """The CLI on onnxruntime (the quickest to start): a burst in flight when SIGTERM comes is answered.
    Also the CLI's API key from $UNIFIED_NLP_API_KEY, its start-up line and its access log."""
    require("onnxruntime")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "unified_nlp.cli", "serve", "--backend", "onnxruntime", "--port", str(port)]
    cmd += ["--threads", "1", "--max-batch-size", "8"]
    env = {**os.environ, "UNIFIED_NLP_API_KEY": KEY}
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, process=process)
        body = {"inputs": [f"{t} {i}" for i in range(24) for t in TEXTS[:2]]}
        assert call(url, "/predict", body)[0] == 401

        def one(_):
            try:
                return call(url, "/predict", body, AUTH)[0], time.monotonic()
            except urllib.error.URLError as e:  # refused once the listener closed: never accepted
                assert isinstance(e.reason, ConnectionRefusedError), e
                return "refused", time.monotonic()

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(one, i) for i in range(16)]
            time.sleep(0.3)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            replies = [f.result(timeout=60) for f in futures]
        assert process.wait(timeout=60) == 0, process.stdout.read().decode()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    statuses = [status for status, _ in replies]
    assert set(statuses) <= {200, "refused"}, statuses
    assert any(status == 200 and done > signalled for status, done in replies), "nothing was in flight at SIGTERM"
    output = process.stdout.read().decode()
    started = f"serving model 'default' (backend onnxruntime, precision fp32) at {url}, API key required"
    assert started in output, output[-3000:]
    assert output.count('"POST /predict" 200') == statuses.count(200), output[-3000:]
    assert output.count('"POST /predict" 401') == 1 and " ms 48 texts" in output, output[-3000:]


def test_the_core_does_not_import_the_server_stack():
    code = (
        "import sys, unified_nlp\nprint([m for m in ('starlette', 'uvicorn', 'prometheus_client') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]


@pytest.mark.parametrize("max_rows,max_tokens", [(32, 16384), (4, 64), (8, 10)])
def test_a_window_is_cut_into_length_sorted_batches_within_both_limits(max_rows, max_tokens):
    lengths = np.random.default_rng(0).integers(1, 120, size=130)
    batches = list(length_batches(lengths, max_rows, max_tokens))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(130))  # every row once
    assert np.all(np.diff(lengths[rows]) <= 0)  # longest first, so each batch pads little
    for b in batches:
        assert len(b) <= max_rows and (len(b) == 1 or len(b) * lengths[b].max() <= max_tokens)


def padded(lengths, batches, forward_cost: int) -> int:
    return sum(len(b) * max(int(lengths[b].max()), 1) + forward_cost for b in batches)


def test_the_cuts_are_the_cheapest_of_every_cut_of_the_sorted_rows():
    import itertools

    rng = np.random.default_rng(1)
    for trial in range(40):
        lengths = rng.integers(1, 60, size=int(rng.integers(1, 9)))
        max_rows, cost = int(rng.integers(1, 6)), int(rng.integers(0, 40))
        got = padded(lengths, list(length_batches(lengths, max_rows, 10_000, cost)), cost)
        order, n = np.argsort(-lengths, kind="stable"), len(lengths)
        cheapest = min(  # every way of cutting the sorted rows into batches of at most max_rows
            padded(lengths, [order[a:b] for a, b in zip((0, *cuts), (*cuts, n))], cost)
            for k in range(n)
            for cuts in itertools.combinations(range(1, n), k)
            if all(b - a <= max_rows for a, b in zip((0, *cuts), (*cuts, n)))
        )
        assert got == cheapest, (trial, lengths, max_rows, cost)


def test_one_long_text_gets_a_batch_of_its_own():
    lengths = np.array([100] + [10] * 31)
    batches = list(length_batches(lengths, 32, 16384))
    assert [len(b) for b in batches] == [1, 31]  # not 32 rows padded to 100 tokens


@pytest.mark.parametrize(
    "max_rows,max_tokens,shape", [(32, 16384, (32, 512)), (32, 1000, (1, 512)), (8, 100, (1, 100))]
)
def test_the_warm_up_runs_the_largest_batch_the_batcher_forms(hf, max_rows, max_tokens, shape):
    from types import SimpleNamespace

    from unified_nlp.serving.batcher import Batcher

    shapes = []

    def model(enc):  # the real model; the shapes it was given noted
        shapes.append(enc.input_ids.shape)
        return hf.model(enc)

    recording = SimpleNamespace(model=model, encode=hf.encode, tokenizer=hf.tokenizer, labels=hf.labels)
    Batcher(recording, max_batch_size=max_rows, max_batch_tokens=max_tokens, max_queue=8).warm()
    assert shapes[-1] == shape, shapes
