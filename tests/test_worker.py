"""The worker process machinery, exercised with the Hugging Face backend forced
into a worker (UNIFIED_NLP_HUGGINGFACE_WORKER=1), so these tests need no second
environment; the PaddleNLP worker tests live in test_paddlenlp.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp import worker as worker_mod

from .conftest import default_classifier, require

psutil = pytest.importorskip("psutil")
TEXTS = ["This is a great movie!", "A dull, lifeless script.", "", "ok " * 300]


@pytest.fixture
def remote(monkeypatch):
    require("huggingface")
    monkeypatch.setenv("UNIFIED_NLP_HUGGINGFACE_WORKER", "1")
    clf = un.load_classifier("default", backend="huggingface")
    assert clf.runs == "worker" and clf.model.worker_pid is not None
    yield clf
    worker_mod.shutdown_workers()


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}


def _zombies() -> list[int]:
    return [p.pid for p in psutil.Process().children(recursive=True) if p.status() == psutil.STATUS_ZOMBIE]


def test_worker_results_equal_in_process_results(remote):
    local = default_classifier("huggingface")
    np.testing.assert_array_equal(remote.predict_proba(TEXTS), local.predict_proba(TEXTS))
    assert remote.predict(TEXTS) == local.predict(TEXTS)
    enc_r, enc_l = remote.tokenizer(TEXTS), local.tokenizer(TEXTS)
    np.testing.assert_array_equal(enc_r.input_ids, enc_l.input_ids)
    np.testing.assert_array_equal(enc_r.truncated, enc_l.truncated)
    assert remote.tokenizer.decode(enc_r.input_ids[0]) == local.tokenizer.decode(enc_l.input_ids[0])


def test_errors_cross_the_pipe_with_their_type(remote):
    with pytest.raises(un.InvalidInputError, match="index 1"):
        remote.predict(["fine", None])  # caught in the parent
    with pytest.raises(un.InvalidInputError, match="exceeds"):
        remote.model(un.Encoding(np.ones((1, 600), np.int64), np.ones((1, 600), np.int64)))  # raised in the worker


def test_killed_mid_call_gives_clear_error_then_recovers(remote):
    pid = remote.model.worker_pid
    texts = ["a fairly long sentence to keep the worker busy for a while " * 8] * 2000
    outcome = {}

    def call():
        try:
            remote.predict(texts)
            outcome["result"] = "finished"
        except un.WorkerError as e:
            outcome["error"] = str(e)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(3)
    os.kill(pid, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive()
    assert "died" in outcome.get("error", "") and "restarted" in outcome["error"], outcome
    assert remote.predict(["This is a great movie!"])[0].label == "POSITIVE"
    assert remote.model.worker_pid not in (None, pid)
    assert _zombies() == []


def test_hung_worker_times_out_and_is_replaced(remote, monkeypatch):
    pid = remote.model.worker_pid
    monkeypatch.setenv("UNIFIED_NLP_WORKER_TIMEOUT", "2")
    os.kill(pid, signal.SIGSTOP)
    start = time.monotonic()
    with pytest.raises(un.WorkerError, match="did not answer"):
        remote.predict(["hello"])
    assert time.monotonic() - start < 30
    assert not psutil.pid_exists(pid)  # killed and reaped
    monkeypatch.setenv("UNIFIED_NLP_WORKER_TIMEOUT", "300")
    assert remote.predict(["This is a great movie!"])[0].label == "POSITIVE"
    assert _zombies() == []


def test_broken_environment_gives_clear_error(monkeypatch, tmp_path):
    require("huggingface")
    monkeypatch.setenv("UNIFIED_NLP_HUGGINGFACE_WORKER", "1")
    monkeypatch.setenv("UNIFIED_NLP_HUGGINGFACE_PYTHON", str(tmp_path / "missing" / "python"))
    with pytest.raises(un.WorkerError, match="no interpreter"):
        un.load_classifier("default", backend="huggingface")
    # an interpreter that exists but lacks unified_nlp: the worker cannot even start
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    monkeypatch.setenv("UNIFIED_NLP_HUGGINGFACE_PYTHON", str(bare / "bin" / "python"))
    before = _children()
    with pytest.raises(un.WorkerError) as info:
        un.load_classifier("default", backend="huggingface")
    assert "unified_nlp" in str(info.value)
    assert _children() <= before and _zombies() == []


def test_worker_ends_with_its_parent_even_when_the_parent_is_killed(tmp_path):
    require("huggingface")
    script = textwrap.dedent(
        """
        import os, sys, time
        os.environ["UNIFIED_NLP_HUGGINGFACE_WORKER"] = "1"
        import unified_nlp as un
        clf = un.load_classifier("default", backend="huggingface")
        print(clf.model.worker_pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(parent.stdout.readline())
        assert psutil.pid_exists(worker_pid)
        parent.kill()
        parent.wait(30)
        deadline = time.monotonic() + 30
        while psutil.pid_exists(worker_pid) and time.monotonic() < deadline:
            try:
                if psutil.Process(worker_pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.2)
        alive = psutil.pid_exists(worker_pid) and psutil.Process(worker_pid).status() != psutil.STATUS_ZOMBIE
        assert not alive, "the worker outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_concurrent_callers_through_one_worker(remote):
    expected = remote.predict_proba(TEXTS)
    results, errors = [], []

    def call():
        try:
            results.append(remote.predict_proba(TEXTS))
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors and len(results) == 8
    for r in results:
        np.testing.assert_array_equal(r, expected)
