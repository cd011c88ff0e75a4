"""Shadow mode (unified_nlp.serving.shadow) through real servers on 127.0.0.1: a candidate the
same as the primary passes (100% agreement), a different one (int8 against fp32) is caught,
sampling takes the fraction asked for, and a candidate that is behind never holds the
primary's answers: its work is dropped and counted. SST-2 dev texts; bounded traffic."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import default_classifier, require, require_module
from tests.serving_helpers import Running, call, metric

require_module("uvicorn")
require_module("starlette")
require_module("prometheus_client")

from unified_nlp.errors import InvalidInputError  # noqa: E402
from unified_nlp.serving import create_app  # noqa: E402 - after the checks that skip without the extra
from unified_nlp.serving.shadow import NICE, QUEUE  # noqa: E402

ROWS = 8  # texts per request
# small batches: each server warms its largest batch at start-up (twice: the candidate too)
LIMITS = {"max_batch_size": 16, "max_batch_tokens": 2048}


def shadow_report(url: str) -> dict:
    status, _, raw = call(url, "/v2/models/default/shadow")
    assert status == 200, raw
    return json.loads(raw)


def wait_until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)


def send(url: str, texts: list[str], concurrency: int = 4) -> list[int]:
    """The statuses of `texts` sent as v2 requests of ROWS texts."""
    chunks = [texts[i : i + ROWS] for i in range(0, len(texts), ROWS)]

    def one(chunk):
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(chunk)], "data": chunk}]}
        return call(url, "/v2/models/default/infer", body)[0]

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, chunks))


def serving_with_shadow(primary, shadow: str, fraction: float = 1.0) -> Running:
    app = create_app(primary, name="default", shadows=[f"default@{shadow}"], shadow_fraction=fraction, **LIMITS)
    running = Running(app).__enter__()
    running.shadow = app.state.repository.get("default").shadow
    wait_until(lambda: shadow_report(running.url)["candidate_ready"], "the candidate loads")
    return running


@pytest.fixture(scope="module")
def same():
    """The default model on huggingface, its shadow the same model on onnxruntime (fp32)."""
    require("onnxruntime")
    running = serving_with_shadow(default_classifier("huggingface"), "onnxruntime")
    yield running
    running.__exit__(None, None, None)


def test_an_identical_candidate_passes(same, sst2_dev):
    texts = sst2_dev[0][:128]
    before = shadow_report(same.url)["n_texts"]
    assert set(send(same.url, texts)) == {200}
    wait_until(lambda: shadow_report(same.url)["n_texts"] == before + len(texts), "every text is compared")
    report = shadow_report(same.url)
    assert report["backends"] == ["huggingface:fp32", "onnxruntime:fp32"] and report["dropped"] == {}
    assert report["argmax_agreement"] == 1.0 and report["passed"] is True and report["failures"] == [], report
    assert 0 < report["logits_p99_abs_diff"] <= report["logits_max_abs_diff"] < 1e-4, report
    assert report["latency_ms"]["primary"]["p50"] > 0 and report["latency_ms"]["candidate"]["p99"] > 0
    labels = {"model": "default", "candidate": "onnxruntime:fp32"}
    assert metric(same.url, "unified_nlp_shadow_texts_total", **labels) == report["n_texts"]
    assert metric(same.url, "unified_nlp_shadow_agreeing_texts_total", **labels) == report["n_texts"]


def test_the_candidate_computes_at_a_lower_cpu_priority_than_the_primary(same):
    """On a busy core the primary's threads win: the candidate's run `NICE` steps lower (Linux)."""
    if not hasattr(os, "setpriority"):
        pytest.skip("no thread priorities on this platform")

    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    primary = same.app.state.repository.get("default").batcher
    candidate = same.shadow.candidate.batcher
    ours = primary._forward.submit(priority).result(10)
    for pool in (candidate._forward, candidate._tokenize):
        assert pool.submit(priority).result(10) == min(ours + NICE, 19)
    assert primary._tokenize.submit(priority).result(10) == ours


def test_a_candidate_that_is_behind_never_holds_the_primary(same):
    """The candidate's forward thread is held: its queue fills, what is offered beyond is dropped
    and counted, and every client is answered meanwhile."""
    batcher = same.shadow.candidate.batcher
    dropped = shadow_report(same.url)["dropped"].get("behind", 0)
    gate = threading.Event()
    batcher._forward.submit(gate.wait, 60)  # deterministic: nothing the candidate holds is computed
    try:
        texts = [f"text number {i}, plain and short" for i in range((QUEUE + 12) * ROWS)]
        assert set(send(same.url, texts)) == {200}  # answered while the candidate computes nothing
        report = shadow_report(same.url)
        assert report["dropped"].get("behind", 0) - dropped >= 12, report
    finally:
        gate.set()
    wait_until(lambda: batcher.pending == 0, "the candidate catches up")
    labels = {"model": "default", "candidate": "onnxruntime:fp32", "reason": "behind"}
    assert (
        metric(same.url, "unified_nlp_shadow_dropped_total", **labels) == shadow_report(same.url)["dropped"]["behind"]
    )


def test_a_different_candidate_is_caught(sst2_dev):
    """int8 against fp32 on onnxruntime: labels differ on some texts, and the report says so."""
    require("onnxruntime")
    running = serving_with_shadow(default_classifier("onnxruntime"), "onnxruntime:int8")
    try:
        texts = sst2_dev[0][:256]
        shadow = running.shadow  # offered before each answer: compared (or dropped) once the candidate is done
        for at in range(0, len(texts), 4 * ROWS):  # paced: the candidate, at a lower CPU priority, never falls behind
            assert set(send(running.url, texts[at : at + 4 * ROWS])) == {200}
            wait_until(lambda: shadow.compared_requests + sum(shadow.dropped.values()) == shadow.offered, "catch-up")
        wait_until(lambda: shadow_report(running.url)["n_texts"] == len(texts), "every text is compared")
        report = shadow_report(running.url)
    finally:
        running.__exit__(None, None, None)
    assert report["backends"] == ["onnxruntime:fp32", "onnxruntime:int8"]
    assert 0.9 < report["argmax_agreement"] < 1.0 and report["passed"] is False, report
    assert any(f.startswith("argmax agreement") for f in report["failures"]), report
    assert report["logits_max_abs_diff"] > report["tolerance"]


def test_the_fraction_samples_requests_evenly():
    require("onnxruntime")
    clf = default_classifier("onnxruntime")
    app = create_app(clf, name="default", shadows=["default@onnxruntime"], shadow_fraction=0.25, **LIMITS)
    with Running(app) as running:
        wait_until(lambda: shadow_report(running.url)["candidate_ready"], "the candidate loads")
        assert set(send(running.url, ["one text"] * (ROWS * 20), concurrency=1)) == {200}
        report = shadow_report(running.url)
    assert report["requests_offered"] == 5 and report["fraction"] == 0.25, report


@pytest.mark.parametrize(
    "shadows, fraction, message",
    [
        (["nope@onnxruntime"], 0.1, "NAME one of 'default'"),
        (["default@tpu"], 0.1, "unknown backend 'tpu'"),
        (["default@onnxruntime"], 0.0, "shadow_fraction must be a number in \\(0, 1\\]"),
    ],
)
def test_bad_shadows_are_refused(shadows, fraction, message):
    with pytest.raises(InvalidInputError, match=message):
        create_app("default", shadows=shadows, shadow_fraction=fraction)


def test_a_model_without_a_shadow_has_no_report(same):
    assert call(same.url, "/v2/models/nope/shadow")[0] == 404
