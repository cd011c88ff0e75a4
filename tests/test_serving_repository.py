"""Several models in one server (unified_nlp.serving.repository): named models on their own
backends, Triton's repository index, a version replaced under a steady stream of requests
with none failed, unload and load, a load that fails, and SIGHUP re-reading the repository
file of a real `unified-nlp serve` process. Real servers on 127.0.0.1, bounded traffic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.checkpoints import minilm_classifier
from tests.conftest import REPO, default_classifier, require, require_module
from tests.serving_helpers import Running, call, free_port, metric, wait_ready

require_module("uvicorn")
require_module("starlette")
require_module("prometheus_client")

from unified_nlp.errors import InvalidInputError  # noqa: E402
from unified_nlp.resolve import default_model_dir  # noqa: E402
from unified_nlp.serving import create_app  # noqa: E402 - after the checks that skip without the extra
from unified_nlp.serving.repository import ModelEntry, parse_model, read_repository  # noqa: E402

TEXTS = ["This is a great movie!", "A dull, lifeless film.", "é ü — 映画"]
TOL = 1e-5
# small batches: every model (and every new version) warms its largest batch before it serves
LIMITS = {"max_batch_size": 16, "max_batch_tokens": 2048}


def infer(url: str, model: str, texts=TEXTS, version: str | None = None):
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
    status, _, raw = call(url, path, body, timeout=60)
    return status, json.loads(raw)


def probabilities(reply: dict) -> np.ndarray:
    out = next(o for o in reply["outputs"] if o["name"] == "probabilities")
    return np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])


def index(url: str) -> dict[str, dict]:
    status, _, raw = call(url, "/v2/repository/index", b"")
    assert status == 200, raw
    return {row["name"]: row for row in json.loads(raw)}


def write_repository(path, **models) -> None:
    """models: name -> (folder, backend)."""
    lines = []
    for name, (folder, backend) in models.items():
        lines += [f"[models.{name}]", f"model = {json.dumps(str(folder))}", f'backend = "{backend}"', ""]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)  # whole, as an editor saves it: a reader never sees half a file


# --- the model specs and the repository file -----------------------------------------------------


@pytest.mark.parametrize(
    "text, entry",
    [
        ("a=models/x", ModelEntry("a", "models/x", "huggingface", None)),
        ("a=models/x@onnxruntime", ModelEntry("a", "models/x", "onnxruntime", None)),
        ("a=x@paddlenlp:bf16", ModelEntry("a", "x", "paddlenlp", "bf16")),
        ("a=user@host/folder", ModelEntry("a", "user@host/folder", "huggingface", None)),  # an @ in a folder's name
        ("sst2=default", ModelEntry("sst2", "default", "huggingface", None)),
    ],
)
def test_a_model_spec_names_its_folder_backend_and_precision(text, entry):
    assert parse_model(text) == entry


@pytest.mark.parametrize(
    "text, message",
    [("models/x", "expected NAME=PATH"), ("=x", "expected NAME=PATH"), ("a/b=x", "model name"), ("a=x@tpu", "tpu")],
)
def test_a_bad_model_spec_says_what_is_expected(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_model(text)


def test_the_repository_file_resolves_folders_beside_it(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[models.a]\nmodel = "m/a"\nbackend = "onnxruntime"\n[models.b]\nmodel = "default"\n')
    a, b = read_repository(path, "tfhub", "fp32")
    assert a == ModelEntry("a", str(tmp_path / "m" / "a"), "onnxruntime", "fp32")
    assert b == ModelEntry("b", "default", "tfhub", "fp32")


@pytest.mark.parametrize(
    "text, message",
    [
        ('[models.a]\nmodel = "x"\npath = "y"\n', "unknown key 'path'"),
        ('[models.a]\nbackend = "onnxruntime"\n', "needs model ="),
        ('[models.a]\nmodel = "x"\nbackend = "tpu"\n', "unknown backend 'tpu'"),
        ('[server]\nport = 1\n[models.a]\nmodel = "x"\n', "expected \\[models.NAME\\] tables only"),
        ("[models.a\n", "repository file"),
        ("", "expected \\[models.NAME\\]"),
    ],
)
def test_a_bad_repository_file_names_the_file_and_the_entry(tmp_path, text, message):
    path = tmp_path / "models.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        read_repository(path)


def test_two_models_may_not_share_a_name():
    with pytest.raises(InvalidInputError, match="distinct names"):
        create_app(models=["a=default", "a=default@onnxruntime"])


# --- several models in one server --------------------------------------------------------------


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """A second model, with other labels than the default model's."""
    import unified_nlp as un

    folder = minilm_classifier(tmp_path_factory.mktemp("other") / "minilm")
    return folder, un.load_classifier(folder, backend="huggingface")


def test_each_model_answers_by_its_name_on_its_backend(other):
    require("onnxruntime")
    folder, clf = other
    default = default_classifier("onnxruntime")
    app = create_app(models=[f"sst2={default_model_dir()}@onnxruntime", f"other={folder}"], **LIMITS)
    with Running(app) as running:
        url = running.url
        status, reply = infer(url, "sst2")
        assert status == 200 and reply["model_version"] == "1"
        np.testing.assert_allclose(probabilities(reply), default.predict_proba(TEXTS), atol=TOL)
        status, reply = infer(url, "other")
        assert status == 200
        np.testing.assert_allclose(probabilities(reply), clf.predict_proba(TEXTS), atol=TOL)
        meta = json.loads(call(url, "/v2/models/other")[2])
        assert meta["platform"] == "unified-nlp_huggingface" and meta["parameters"]["labels"] == list(clf.labels)
        assert json.loads(call(url, "/v2/models/sst2")[2])["platform"] == "unified-nlp_onnxruntime"
        # TEI's routes answer with the first model
        tei = json.loads(call(url, "/predict", {"inputs": TEXTS[0]})[2])
        assert {row["label"] for row in tei} == set(default.labels)
        assert [(r["name"], r["version"], r["state"]) for r in index(url).values()] == [
            ("sst2", "1", "READY"),
            ("other", "1", "READY"),
        ]
        # each model's requests are counted under its name
        route = "/v2/models/{name}/infer"
        assert metric(url, "unified_nlp_requests_total", model="other", backend="huggingface", route=route) == 1
        assert metric(url, "unified_nlp_batch_size_count", model="sst2", backend="onnxruntime") >= 1
        # load and unload are refused unless the server allows model control
        status, _, raw = call(url, "/v2/repository/models/other/unload", b"")
        assert status == 403 and "--model-control" in json.loads(raw)["error"]
        assert infer(url, "nope")[0] == 404 and infer(url, "other", version="2")[0] == 404


class Stream:
    """A steady stream of single-text requests to one model until stopped (bounded: 60 s)."""

    def __init__(self, url: str, model: str) -> None:
        self.url, self.model = url, model
        self.replies: list[tuple[int, str | None, np.ndarray | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        i = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            text = TEXTS[i % len(TEXTS)]
            try:
                status, reply = infer(self.url, self.model, [text])
            except OSError as e:  # counted as a failure
                status, reply = repr(e), {}
            ok = status == 200
            self.replies.append((status, reply.get("model_version"), probabilities(reply) if ok else None))
            i += 1

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.replies) + count
        while len(self.replies) < target:
            assert time.monotonic() < deadline and self._thread.is_alive(), "the stream stalled"
            time.sleep(0.02)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(70)


def test_a_version_is_replaced_under_traffic_with_no_failed_request(tmp_path):
    require("onnxruntime")
    hf, ort = default_classifier("huggingface"), default_classifier("onnxruntime")
    path = tmp_path / "models.toml"
    write_repository(path, sst2=(default_model_dir(), "huggingface"))
    with (
        Running(create_app(repository=path, model_control=True, **LIMITS)) as running,
        Stream(running.url, "sst2") as stream,
    ):
        url = running.url
        stream.wait_for(10)
        write_repository(path, sst2=(default_model_dir(), "onnxruntime"))  # the entry moves to another backend
        status, _, raw = call(url, "/v2/repository/models/sst2/load", {})
        assert status == 200, raw
        stream.wait_for(10)
        assert json.loads(call(url, "/v2/models/sst2")[2])["platform"] == "unified-nlp_onnxruntime"
        assert index(url)["sst2"]["version"] == "2"
    statuses = [s for s, _, _ in stream.replies]
    assert statuses == [200] * len(statuses), statuses
    versions = [v for _, v, _ in stream.replies]
    assert versions == sorted(versions) and versions[0] == "1" and versions[-1] == "2", versions
    for i, (_, version, probs) in enumerate(stream.replies):
        want = (hf if version == "1" else ort).predict_proba([TEXTS[i % len(TEXTS)]])
        np.testing.assert_allclose(probs, want, atol=TOL)


def test_unload_load_and_a_load_that_fails(tmp_path):
    path = tmp_path / "models.toml"
    write_repository(path, sst2=(default_model_dir(), "huggingface"))
    with Running(create_app(repository=path, model_control=True, **LIMITS)) as running:
        url = running.url
        # a load that fails leaves the version that serves
        write_repository(path, sst2=(tmp_path / "missing", "huggingface"))
        status, _, raw = call(url, "/v2/repository/models/sst2/load", b"")
        assert status == 400 and "failed to load model 'sst2' version 2" in json.loads(raw)["error"], raw
        status, reply = infer(url, "sst2")
        assert status == 200 and reply["model_version"] == "1"
        # a request names no file: parameters are refused
        body = {"parameters": {"config": '{"backend": "tfhub"}'}}
        status, _, raw = call(url, "/v2/repository/models/sst2/load", body)
        assert status == 400 and "not accepted" in json.loads(raw)["error"]
        # unload: the model is gone, the index says so; the server is not ready with no model
        assert call(url, "/v2/repository/models/sst2/unload", {"parameters": {"unload_dependents": False}})[0] == 200
        assert infer(url, "sst2")[0] == 404
        assert index(url)["sst2"]["state"] == "UNAVAILABLE" and call(url, "/v2/health/ready")[0] == 503
        assert call(url, "/predict", {"inputs": "x"})[0] == 503
        # load again from the (fixed) file
        write_repository(path, sst2=(default_model_dir(), "huggingface"))
        assert call(url, "/v2/repository/models/sst2/load", b"")[0] == 200
        status, reply = infer(url, "sst2")
        assert status == 200 and reply["model_version"] == "3"
        assert call(url, "/v2/repository/models/nope/load", b"")[0] == 404


def test_sighup_rereads_the_repository_file(tmp_path):
    """The CLI: `serve --repository FILE`; SIGHUP loads an added model, leaves an unchanged one
    alone and unloads a removed one."""
    require("onnxruntime")
    path, port = tmp_path / "models.toml", free_port()
    write_repository(path, first=(default_model_dir(), "onnxruntime"))
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "unified_nlp.cli", "serve", "--repository", str(path), "--port", str(port)]
    process = subprocess.Popen(
        [*cmd, "--threads", "1", "--max-batch-size", "16", "--max-batch-tokens", "2048"],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(url, process=process)
        write_repository(path, first=(default_model_dir(), "onnxruntime"), second=(default_model_dir(), "onnxruntime"))
        process.send_signal(signal.SIGHUP)
        _wait(lambda: index(url).get("second", {}).get("state") == "READY", "the added model serves")
        assert index(url)["first"]["version"] == "1"  # unchanged: not reloaded
        write_repository(path, second=(default_model_dir(), "onnxruntime"))
        process.send_signal(signal.SIGHUP)
        _wait(lambda: index(url).get("first", {}).get("state") == "UNAVAILABLE", "the removed model is unloaded")
        assert infer(url, "second")[0] == 200 and infer(url, "first")[0] == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read().decode()
    assert "serving model 'first' (backend onnxruntime, precision fp32) at" in output, output[-3000:]
    assert "SIGHUP: re-reading" in output and "model 'first': unloading version 1" in output, output[-3000:]


def _wait(condition, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


def test_the_ray_engines_options_are_checked_before_anything_loads(capsys):
    from unified_nlp.cli import build_parser, main

    for bad in ("3:1", "0:2", "two"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--engine", "ray", "--autoscale", bad])
        assert "expected MIN:MAX" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one or the other
        build_parser().parse_args(["serve", "--engine", "ray", "--replicas", "2", "--autoscale", "1:2"])
    raised = []

    def local_with_replicas():  # in a thread: were the check gone, the server would run until killed
        raised.append(main(["serve", "--replicas", "2", "--port", str(free_port())]))

    thread = threading.Thread(target=local_with_replicas, daemon=True)
    thread.start()
    thread.join(60)
    assert raised == [2] and "--replicas is an option of --engine ray" in capsys.readouterr().err, raised
