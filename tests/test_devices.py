"""load_classifier(device=...): the accepted names, the CPU on every backend, and the clear
error where a GPU is asked of a framework that has none (this machine has no GPU; the GPU
placement of each adapter is written to its framework's documented API, README "Devices")."""

from __future__ import annotations

import json

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp import api, devices, worker
from unified_nlp.classifier import TextClassifier
from unified_nlp.cli import main
from unified_nlp.errors import BackendNotInstalledError, InvalidInputError
from unified_nlp.protocols import BackendAdapter
from unified_nlp.spec import ModelSpec

from .conftest import default_classifier, require

BACKENDS = ("huggingface", "tfhub", "paddlenlp", "onnxruntime")
# the package each framework's GPU build is installed as, which the refusal must name
GPU_PACKAGES = {
    "huggingface": "download.pytorch.org/whl/cu",
    "tfhub": "tensorflow[and-cuda]",
    "paddlenlp": "paddlepaddle-gpu",
    "onnxruntime": "onnxruntime-gpu",
}
TEXTS = ["This is a great movie!", "a dull, lifeless film", "it was fine"]


@pytest.mark.parametrize(
    "given, name",
    [
        (None, "cpu"),
        ("cpu", "cpu"),
        ("CPU", "cpu"),
        ("cuda", "cuda:0"),
        ("cuda:0", "cuda:0"),
        ("cuda:3", "cuda:3"),
        (" cuda:1 ", "cuda:1"),
        ("gpu", "cuda:0"),  # Paddle's spelling
        ("gpu:2", "cuda:2"),
    ],
)
def test_accepted_device_names_are_normalised(given, name):
    assert devices.parse(given) == name


@pytest.mark.parametrize("given", ["", "tpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0", "cuda0", "mps", 0, b"cuda"])
def test_other_device_names_are_refused_with_the_accepted_forms(given):
    with pytest.raises(InvalidInputError, match=r'device must be one of "cpu", "cuda", "cuda:N"'):
        devices.parse(given)


def test_a_bad_device_is_refused_before_anything_loads(monkeypatch):
    monkeypatch.setattr(api, "detect", _no_model_work)
    with pytest.raises(InvalidInputError, match="device must be one of"):
        un.load_classifier("default", backend="huggingface", device="tpu")


def _no_model_work(*args, **kwargs):
    raise AssertionError("the model folder was read before the device was checked")


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpu_gives_the_probabilities_of_no_device(backend):
    reference = default_classifier(backend)
    on_cpu = un.load_classifier("default", backend=backend, device="cpu")
    assert on_cpu.device == reference.device == "cpu"
    expected = reference.predict_proba(TEXTS)
    np.testing.assert_allclose(on_cpu.predict_proba(TEXTS), expected, atol=1e-6)
    assert expected.shape == (len(TEXTS), 2) and expected.argmax(axis=1).tolist()[:2] == [1, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gpu_without_one_names_what_to_install_before_loading(backend, monkeypatch):
    require(backend)
    adapter = api._adapter(backend)[0]
    if len(adapter.devices) > 1:
        pytest.skip(f"{backend} sees a GPU here: {adapter.devices}")

    def no_load(*args, **kwargs):
        raise AssertionError(f"the {backend} model was loaded although its device cannot be used")

    monkeypatch.setattr(type(adapter), "load", no_load)
    for asked in ("cuda", "cuda:1", "gpu:0"):
        with pytest.raises(BackendNotInstalledError) as refused:
            un.load_classifier("default", backend=backend, device=asked)
        message = str(refused.value)
        assert f"the {backend} backend cannot run on {devices.parse(asked)} here" in message
        assert GPU_PACKAGES[backend] in message and "device='cpu'" in message


def test_the_worker_answers_for_its_framework():
    require("paddlenlp")
    adapter = api._adapter("paddlenlp")[0]
    if not isinstance(adapter, worker.RemoteAdapter):
        pytest.skip("paddlenlp runs in this process here")
    assert adapter.devices[0] == "cpu" and "paddlepaddle-gpu" in adapter.gpu_install


class _TwoGPUs(BackendAdapter):
    """An adapter contract as a machine with two GPUs would answer it (the frameworks here see none)."""

    name = "two-gpus"
    devices = devices.usable(2)


def test_an_index_beyond_the_gpus_seen_is_refused_and_one_seen_is_passed_on():
    spec = ModelSpec(labels=("neg", "pos"))
    assert api._run_options(_TwoGPUs(), spec, None, "cuda:1").device == "cuda:1"
    assert api._run_options(_TwoGPUs(), spec, None, "cpu").device is None
    with pytest.raises(InvalidInputError, match="two-gpus backend sees cuda:0, cuda:1 here, not cuda:2"):
        api._run_options(_TwoGPUs(), spec, None, "cuda:2")


def test_the_device_crosses_the_worker_pipe():
    spec = ModelSpec(labels=("neg", "pos"), device="cuda:1")
    assert spec.to_dict()["device"] == "cuda:1" and ModelSpec.from_dict(spec.to_dict()) == spec
    assert "device" not in ModelSpec(labels=("neg", "pos")).to_dict()
    with pytest.raises(un.InvalidModelError, match="normalised"):
        ModelSpec(labels=("neg", "pos"), device="gpu")


def test_a_saved_folder_does_not_record_the_device(tmp_path):
    clf = default_classifier("huggingface")
    on_gpu = TextClassifier(
        clf.tokenizer, clf.model, clf.labels, clf.backend, clf.source, clf.spec.replace(device="cuda:0"), clf.runs
    )
    assert on_gpu.device == "cuda:0"
    out = on_gpu.save(tmp_path / "saved")
    # every json file but the tokenizer's (whose vocabulary holds the word "device")
    written = [p for p in out.rglob("*.json") if p.name != "tokenizer.json"]
    assert {"config.json", "unified_nlp.json"} <= {p.name for p in written}, list(out.iterdir())
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert "cuda" not in text and "device" not in text, (path, text[:2000])
        json.loads(text)
    assert un.load_classifier(out).device == "cpu"


@pytest.mark.parametrize("command", ["classify", "evaluate", "fit", "serve"])
def test_the_cli_refuses_a_gpu_in_one_line(capsys, tmp_path, monkeypatch, command):
    require("huggingface")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.tsv").write_text("sentence\tlabel\na fine film\t1\ndull\t0\n", encoding="utf-8")
    argv = {
        "classify": ["classify", "hello"],
        "evaluate": ["evaluate", "--data", "data.tsv"],
        "fit": ["fit", "--train", "data.tsv", "--out", "model"],
        "serve": ["serve", "--port", "0"],
    }[command]
    code = main([*argv, "--backend", "huggingface", "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("unified-nlp: error: the huggingface backend cannot run on cuda:0")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "torch" in err
    assert not (tmp_path / "model").exists()


def test_the_cli_refuses_an_unknown_device_in_one_line(capsys):
    assert main(["classify", "--device", "tpu:0", "hello"]) == 2
    err = capsys.readouterr().err
    assert "device must be one of" in err and len(err.strip().splitlines()) == 1


def test_a_tfhub_model_run_in_a_device_scope_answers_as_without():
    """The wrapper a GPU (or a machine where TensorFlow sees one) runs tfhub models in, on "/CPU:0"."""
    require("tfhub")
    from unified_nlp_tfhub.placement import Placed, devices, pinned, scope

    assert (scope(None), scope("cpu"), scope("cuda:1")) == ("/CPU:0", "/CPU:0", "/GPU:1")
    assert pinned("cuda:0") and pinned(None) == (len(devices()) > 1)  # a CPU model is pinned where TF sees a GPU
    clf = default_classifier("tfhub")
    placed = Placed(clf.model, scope("cpu"))
    assert [placed.offers(m) for m in placed.METHODS] == [clf.model.offers(m) for m in clf.model.METHODS]
    assert placed.max_positions == clf.model.max_positions
    scoped = TextClassifier(clf.tokenizer, placed, clf.labels, clf.backend, clf.source, clf.spec, clf.runs)
    np.testing.assert_array_equal(scoped.predict_proba(TEXTS), clf.predict_proba(TEXTS))
    assert set(placed.state_dict()) == set(clf.model.state_dict())
