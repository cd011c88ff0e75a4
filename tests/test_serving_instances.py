"""Model instances side by side (serving/batcher.py, `instances`) on ONNX Runtime, the backend
that offers them: each instance computes what the whole model does; under a burst the batcher
runs batches on the narrow instances at the same time and never beside the whole model; a lone
request runs on the whole model (all its threads); a failed forward on an instance fails its
requests and the batcher goes on. The models are the real ONNX Runtime sessions, wrapped only
to note which one ran when. Bounded: every await has a timeout."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import require, require_module

require_module("starlette")
require_module("prometheus_client")

from unified_nlp.serving.batcher import Batcher  # noqa: E402 - after the checks that skip without the extra

TOL = 1e-5
POISON_TOKENS = 77  # a batch this wide fails on a narrow instance (no SST-2 sentence is that long)


@pytest.fixture(scope="module")
def ort():
    """The default model on ONNX Runtime with 2 threads whatever the machine's cores (instances share them)."""
    require("onnxruntime")
    import unified_nlp as un

    return un.load_classifier("default", backend="onnxruntime", num_threads=2)


@pytest.fixture(scope="module")
def texts(sst2_dev):
    return sst2_dev[0][:60]


class Noted:
    """A real model whose calls are noted: (name, start, end, width) in `log`."""

    def __init__(self, model, name: str, log: list, poison: bool = False) -> None:
        self.model, self.name, self.log, self.poison = model, name, log, poison

    def __call__(self, encoding, **kwargs):
        start = time.perf_counter()
        try:
            if self.poison and encoding.input_ids.shape[1] == POISON_TOKENS:
                raise RuntimeError("poisoned batch")
            return self.model(encoding, **kwargs)
        finally:  # one list for every instance's thread: list.append is atomic
            self.log.append((self.name, start, time.perf_counter(), encoding.input_ids.shape[1]))

    def instances(self, count=None):
        parts = self.model.instances(count)
        return [Noted(part, f"narrow{i}", self.log, self.poison) for i, part in enumerate(parts)]


def noted_classifier(ort, log: list, poison: bool = False):
    return SimpleNamespace(
        model=Noted(ort.model, "whole", log, poison), encode=ort.encode, tokenizer=ort.tokenizer, labels=ort.labels
    )


def run(coroutine, timeout: float = 120):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def serving(clf, requests: list[list[str]], then: list[str] | None = None):
    """Start a batcher on `clf` (instances: the backend's choice), submit `requests` at once, then
    `then` alone: (answers or exceptions of the burst, answer of `then`)."""
    # a small token budget: the warm-up's batch (as wide as the model allows) is quick
    batcher = Batcher(clf, max_batch_size=32, max_batch_tokens=2048, max_queue=256, instances=None)
    await asyncio.to_thread(batcher.warm)
    batcher.start()
    try:
        burst = await asyncio.gather(*(batcher.submit(r, None, None) for r in requests), return_exceptions=True)
        alone = await batcher.submit(then, None, None) if then else None
        return burst, alone
    finally:
        await batcher.stop()


def overlaps(a, b) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def test_each_instance_computes_what_the_whole_model_does(ort, texts):
    enc = ort.encode(texts[:16])
    whole = ort.model(enc).logits
    parts = ort.model.instances(2)
    assert len(parts) == 2 and len({id(p.session) for p in parts} | {id(ort.model.session)}) == 3
    assert [p.num_threads for p in parts] == [1, 1]
    for part in parts:
        np.testing.assert_allclose(part(enc).logits, whole, atol=1e-6)
    assert len(ort.model.instances(None)) == 2  # the default: two, for a small model on 2 threads
    assert ort.model.instances(1) == [ort.model]


def test_a_burst_runs_side_by_side_on_the_instances_and_a_lone_request_on_the_whole_model(ort, texts):
    log: list = []
    burst, alone = run(serving(noted_classifier(ort, log), [[t] for t in texts], then=[texts[0]]))
    expected = ort.predict_proba(texts)
    for k, answer in enumerate(burst):
        assert not isinstance(answer, BaseException), answer
        np.testing.assert_allclose(ort.scores(answer[0])[0], expected[k], atol=TOL)
    np.testing.assert_allclose(ort.scores(alone[0])[0], expected[0], atol=TOL)
    warm, served = log[:3], log[3:]  # the warm-up: the whole model and both instances, once each
    assert {name for name, *_ in warm} == {"whole", "narrow0", "narrow1"}, warm
    narrow = [call for call in served if call[0] != "whole"]
    whole = [call for call in served if call[0] == "whole"]
    assert {call[0] for call in narrow} == {"narrow0", "narrow1"}, served
    assert any(overlaps(a, b) for a in narrow if a[0] == "narrow0" for b in narrow if b[0] == "narrow1"), served
    assert not any(overlaps(w, n) for w in whole for n in narrow), "the whole model ran beside an instance"
    assert served[-1][0] == "whole", "a lone request on an idle batcher runs on the whole model (all its threads)"


def test_a_failed_forward_on_an_instance_fails_its_requests_and_the_batcher_goes_on(ort, texts):
    poison = " ".join(["word"] * (POISON_TOKENS - 2))  # [CLS] + 75 words + [SEP]
    assert ort.encode([poison]).input_ids.shape[1] == POISON_TOKENS
    requests = [[t] for t in texts[:30]] + [[poison]] + [[t] for t in texts[30:]]
    log: list = []
    burst, alone = run(serving(noted_classifier(ort, log, poison=True), requests, then=[texts[0]]))
    failed = [k for k, answer in enumerate(burst) if isinstance(answer, BaseException)]
    assert 30 in failed and all(isinstance(burst[k], RuntimeError) for k in failed), burst
    assert any(name != "whole" and width == POISON_TOKENS for name, _, _, width in log), "not on an instance"
    np.testing.assert_allclose(ort.scores(alone[0])[0], ort.predict_proba([texts[0]])[0], atol=TOL)
