"""The Open Inference Protocol v2 over gRPC (unified_nlp.serving.grpc_v2) through one real server
on 127.0.0.1 (uvicorn in a thread, gRPC on the same loop, started by the app's lifespan) and real
clients: tritonclient.grpc (raw contents, as it always sends them) and a grpcio stub of our own
proto (typed contents). Probabilities must equal in-process predict_proba within 1e-5, and REST
and gRPC must give the same answer for the same model in the same server. Loopback only,
bounded in count and time."""

from __future__ import annotations

import asyncio
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.checkpoints import LABELS, make_checkpoint
from tests.conftest import default_classifier, require_module
from tests.serving_helpers import Running, call, free_port, metric

require_module("uvicorn")
require_module("starlette")
require_module("prometheus_client")
grpc = require_module("grpc")
triton = require_module("tritonclient.grpc")
triton_http = require_module("tritonclient.http")

from unified_nlp.serving import create_app  # noqa: E402 - after the checks that skip without the extra
from unified_nlp.serving.grpc_v2 import PortInUseError, start_grpc  # noqa: E402
from unified_nlp.serving.proto import grpc_predict_v2_pb2 as pb  # noqa: E402
from unified_nlp.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402
from unified_nlp.serving.repository import ModelEntry  # noqa: E402

TEXTS = ["This is a great movie!", "A dull, lifeless film.", "It was fine, I guess. " * 3, "é ü — 映画"]
FIRST, SECOND = ["a man plays a guitar", "the cat sleeps"], ["a person makes music", "a dog barks loudly"]
TOL = 1e-5
PAYLOAD_LIMIT = 100_000


@pytest.fixture(scope="module")
def hf():
    return default_classifier("huggingface")


@pytest.fixture(scope="module")
def pair_clf(tmp_path_factory):
    """A tiny random BERT (scaled so that 1e-5 tells inputs apart) for sentence pairs."""
    import unified_nlp as un

    return un.load_classifier(make_checkpoint("bert", tmp_path_factory.mktemp("pairs") / "bert", scale=8.0))


@pytest.fixture(scope="module")
def server(hf, pair_clf):
    """One server: "default" (MiniLM) and "pairs" (tiny), over REST and gRPC; a queue of 2
    requests so that the overload test can fill it (the other tests send one at a time)."""
    grpc_port = free_port()
    app = create_app(
        hf,
        name="default",
        models=[ModelEntry("pairs", pair_clf)],
        grpc_port=grpc_port,
        payload_limit=PAYLOAD_LIMIT,
        max_batch_size=8,
        max_batch_tokens=4096,
        max_queue=2,
    )
    with Running(app) as running:
        running.grpc_port = grpc_port
        running.grpc_address = f"127.0.0.1:{grpc_port}"
        yield running


@pytest.fixture(scope="module")
def grpc_address(server) -> str:
    return server.grpc_address


@pytest.fixture(scope="module")
def client(grpc_address):
    return triton.InferenceServerClient(grpc_address)


def text_input(texts, name: str = "text", shape=None):
    shape = shape or [len(texts)]
    tensor = triton.InferInput(name, shape, "BYTES")
    items = np.array([t.encode() if isinstance(t, str) else t for t in texts], dtype=object)
    tensor.set_data_from_numpy(items.reshape(shape))
    return tensor


def code_of(excinfo) -> str:
    return excinfo.value.status()


# --- health and metadata ---------------------------------------------------------------------


def test_health_and_metadata(client, hf):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("default") and client.is_model_ready("default", "1")
    assert client.is_model_ready("pairs")
    assert client.get_server_metadata().name == "unified-nlp"
    meta = client.get_model_metadata("default")
    assert meta.name == "default" and list(meta.versions) == ["1"] and meta.platform == "unified-nlp_huggingface"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("text", "BYTES", [-1]),
        ("text_pair", "BYTES", [-1]),
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("probabilities", "FP32", [-1, len(hf.labels)]),
        ("label", "BYTES", [-1]),
    ]
    for call_ in (
        lambda: client.is_model_ready("nope"),
        lambda: client.get_model_metadata("nope"),
        lambda: client.get_model_metadata("default", "7"),
    ):
        with pytest.raises(triton.InferenceServerException) as refused:
            call_()
        assert code_of(refused) == "StatusCode.NOT_FOUND" and (
            "nope" in refused.value.message() or "'7'" in str(refused.value)
        )


# --- inference -------------------------------------------------------------------------------


def test_infer_matches_predict_proba(client, hf):
    expected = hf.predict_proba(TEXTS)
    one = client.infer("default", [text_input(TEXTS[:1])])
    np.testing.assert_allclose(one.as_numpy("probabilities"), expected[:1], atol=TOL)
    batch = client.infer("default", [text_input(TEXTS)], request_id="req-7")
    np.testing.assert_allclose(batch.as_numpy("probabilities"), expected, atol=TOL)
    assert [s.decode() for s in batch.as_numpy("label")] == [hf.labels[i] for i in expected.argmax(axis=1)]
    assert batch.get_response().id == "req-7" and batch.get_response().model_version == "1"
    column = client.infer("default", [text_input(TEXTS, shape=[len(TEXTS), 1])])  # [N, 1]: one text per row
    np.testing.assert_allclose(column.as_numpy("probabilities"), expected, atol=TOL)


def test_pairs_match_predict_proba(client, pair_clf):
    expected = pair_clf.predict_proba(FIRST, text_pair=SECOND)
    assert np.abs(expected - pair_clf.predict_proba(SECOND, text_pair=FIRST)).max() > 10 * TOL  # order is seen
    result = client.infer("pairs", [text_input(FIRST), text_input(SECOND, "text_pair")])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=TOL)
    assert list(pair_clf.labels) == list(LABELS)


def test_requested_outputs(client, hf):
    only_label = client.infer("default", [text_input(TEXTS)], outputs=[triton.InferRequestedOutput("label")])
    assert only_label.as_numpy("probabilities") is None
    assert [o.name for o in only_label.get_response().outputs] == ["label"]
    only_probs = client.infer("default", [text_input(TEXTS)], outputs=[triton.InferRequestedOutput("probabilities")])
    assert only_probs.as_numpy("label") is None
    np.testing.assert_allclose(only_probs.as_numpy("probabilities"), hf.predict_proba(TEXTS), atol=TOL)


def test_typed_contents_in_typed_contents_out(grpc_address, hf):
    """A client that sends `contents.bytes_contents` (not raw) gets typed contents back."""
    request = pb.ModelInferRequest(model_name="default", id="typed")
    tensor = request.inputs.add(name="text", datatype="BYTES", shape=[len(TEXTS)])
    tensor.contents.bytes_contents.extend(t.encode() for t in TEXTS)
    with grpc.insecure_channel(grpc_address) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
    assert not reply.raw_output_contents and reply.id == "typed"
    outputs = {o.name: o for o in reply.outputs}
    probs = np.reshape(outputs["probabilities"].contents.fp32_contents, list(outputs["probabilities"].shape))
    np.testing.assert_allclose(probs, hf.predict_proba(TEXTS), atol=TOL)
    labels = [hf.labels[i] for i in probs.argmax(axis=1)]
    assert [s.decode() for s in outputs["label"].contents.bytes_contents] == labels


# --- errors ----------------------------------------------------------------------------------


def _int_input():
    tensor = triton.InferInput("text", [1], "INT32")
    tensor.set_data_from_numpy(np.array([1], dtype=np.int32))
    return tensor


ERRORS = {
    "unknown model": ("nope", lambda: [text_input(["x"])], {}, "NOT_FOUND", "unknown model 'nope'"),
    "unknown version": ("default", lambda: [text_input(["x"])], {"model_version": "7"}, "NOT_FOUND", "version '7'"),
    "missing input": ("default", lambda: [text_input(["x"], "text_pair")], {}, "INVALID_ARGUMENT", "missing input"),
    "unknown input": (
        "default",
        lambda: [text_input(["x"]), text_input(["y"], "other")],
        {},
        "INVALID_ARGUMENT",
        "'other'",
    ),
    "wrong datatype": ("default", lambda: [_int_input()], {}, "INVALID_ARGUMENT", "datatype must be BYTES"),
    "non-UTF-8": (
        "default",
        lambda: [text_input([b"ok", b"\xff\xfe"])],
        {},
        "INVALID_ARGUMENT",
        "element 1 is not valid UTF-8",
    ),
    "pair length": (
        "default",
        lambda: [text_input(["x", "y"]), text_input(["z"], "text_pair")],
        {},
        "INVALID_ARGUMENT",
        "'text_pair' holds 1",
    ),
    "bad shape": ("default", lambda: [text_input(["x", "y"], shape=[1, 2])], {}, "INVALID_ARGUMENT", "shape"),
    "truncate not a bool": (
        "default",
        lambda: [text_input(["x"])],
        {"parameters": {"truncate": "no"}},
        "INVALID_ARGUMENT",
        "truncate",
    ),
    "unknown output": (
        "default",
        lambda: [text_input(["x"])],
        {"outputs": [triton.InferRequestedOutput("logits")]},
        "INVALID_ARGUMENT",
        "unknown output 'logits'",
    ),
    "classification": (
        "default",
        lambda: [text_input(["x"])],
        {"outputs": [triton.InferRequestedOutput("label", class_count=2)]},
        "INVALID_ARGUMENT",
        "classification extension",
    ),
}


@pytest.mark.parametrize("model, inputs, options, code, message", ERRORS.values(), ids=ERRORS.keys())
def test_bad_requests(client, model, inputs, options, code, message):
    with pytest.raises(triton.InferenceServerException) as refused:
        client.infer(model, inputs(), **options)
    assert code_of(refused) == f"StatusCode.{code}" and message in refused.value.message(), refused.value


def _stub_infer(address: str, request):
    with grpc.insecure_channel(address) as channel:
        return pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)


def test_an_empty_list_and_raw_contents_that_do_not_fit(grpc_address):
    empty = pb.ModelInferRequest(model_name="default")
    empty.inputs.add(name="text", datatype="BYTES", shape=[0])
    short = pb.ModelInferRequest(model_name="default", raw_input_contents=[b"\x05\x00\x00\x00ab"])
    short.inputs.add(name="text", datatype="BYTES", shape=[1])
    both = pb.ModelInferRequest(model_name="default", raw_input_contents=[b"\x01\x00\x00\x00a"])
    both.inputs.add(name="text", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"a")
    cases = [(empty, "empty list"), (short, "runs past the data"), (both, "give one of them")]
    for request, message in cases:
        with pytest.raises(grpc.RpcError) as refused:
            _stub_infer(grpc_address, request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in refused.value.details()


def test_a_text_too_long_is_refused_when_truncate_is_false(client, hf):
    long = "word " * 600  # over the model's 512 tokens
    truncated = client.infer("default", [text_input([long])]).as_numpy("probabilities")
    np.testing.assert_allclose(truncated, hf.predict_proba([long]), atol=TOL)
    with pytest.raises(triton.InferenceServerException) as refused:
        client.infer("default", [text_input(["ok", long])], parameters={"truncate": False})
    assert code_of(refused) == "StatusCode.INVALID_ARGUMENT" and "input 1 has" in refused.value.message()


def test_a_message_over_the_payload_limit_is_refused(client):
    with pytest.raises(triton.InferenceServerException) as refused:
        client.infer("default", [text_input(["x" * (PAYLOAD_LIMIT + 1)])])
    assert code_of(refused) == "StatusCode.RESOURCE_EXHAUSTED" and "larger than max" in refused.value.message()


def test_a_full_queue_answers_unavailable(grpc_address):
    texts = [f"{t} {i}" for i in range(16) for t in TEXTS[:2]]

    def one(_):
        try:
            triton.InferenceServerClient(grpc_address).infer("default", [text_input(texts)])
            return "OK"
        except triton.InferenceServerException as e:
            return f"{e.status()}: {e.message()}"

    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(one, range(24)))
    assert "OK" in replies, replies
    refused = [r for r in replies if r != "OK"]
    assert refused and all(r.startswith("StatusCode.UNAVAILABLE") for r in refused), set(replies)


# --- beside REST -----------------------------------------------------------------------------


def test_rest_and_grpc_answer_the_same_in_one_server(server, client):
    rest = triton_http.InferenceServerClient(f"127.0.0.1:{server.port}")
    tensor = triton_http.InferInput("text", [len(TEXTS)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object))
    over_rest = rest.infer("default", [tensor]).as_numpy("probabilities")
    over_grpc = client.infer("default", [text_input(TEXTS)]).as_numpy("probabilities")
    np.testing.assert_allclose(over_grpc, over_rest, atol=1e-6)
    assert json.loads(call(server.url, "/v2/models/default")[2])["versions"] == list(
        client.get_model_metadata("default").versions
    )
    route = "/inference.GRPCInferenceService/ModelInfer"
    assert metric(server.url, "unified_nlp_requests_total", route=route, status="200", model="default") >= 1


def test_a_taken_port_is_a_clear_error(server):
    port = server.grpc_port
    repository = server.app.state.repository

    async def start():
        return await start_grpc(repository, host="127.0.0.1", port=port)

    with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}.*taken"):
        asyncio.run(start())
    with socket.socket() as s:  # a port held by another kind of server
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(PortInUseError, match="taken"):
            asyncio.run(start_grpc(repository, host="127.0.0.1", port=s.getsockname()[1]))


def test_the_api_key_guards_every_rpc_but_the_probes(server):
    """start_grpc(api_key=...): tritonclient's headers= carry the key; probes stay open."""
    repository, port = server.app.state.repository, free_port()

    async def calls() -> dict:
        grpc_server = await start_grpc(repository, host="127.0.0.1", port=port, api_key="s3cret")
        got = {}
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                got["live"] = (await stub.ServerLive(pb.ServerLiveRequest())).live
                for name, metadata in (("none", ()), ("wrong", (("authorization", "Bearer nope"),))):
                    try:
                        await stub.ModelReady(pb.ModelReadyRequest(name="default"), metadata=metadata)
                    except grpc.aio.AioRpcError as e:
                        got[name] = (e.code(), e.details())
                key = (("authorization", "bearer s3cret"),)  # the scheme in any case, as over REST
                got["key"] = (await stub.ModelReady(pb.ModelReadyRequest(name="default"), metadata=key)).ready
        finally:
            await grpc_server.stop(None)
        return got

    got = asyncio.run(calls())
    assert got["live"] is True and got["key"] is True, got
    for name in ("none", "wrong"):
        assert got[name][0] == grpc.StatusCode.UNAUTHENTICATED and "API key" in got[name][1], got
