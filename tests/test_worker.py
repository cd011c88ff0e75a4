"""The worker process machinery, exercised with the Hugging Face backend forced
into a worker (UNIFIED_NLP_HUGGINGFACE_WORKER=1), so these tests need no second
environment; the PaddleNLP worker tests live in test_paddlenlp.py."""

from __future__ import annotations

import contextlib
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

from .conftest import default_classifier, require, require_module

psutil = require_module("psutil")
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


def _waits_for_the_worker_in(ident: int, qualname: str, unless: str | None = None) -> bool:
    """Thread `ident` waits for a reply on the worker pipe (not halfway through a frame)
    beneath a call of `qualname` (and of no `unless`)."""
    top = frame = sys._current_frames().get(ident)
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_qualname)
        frame = frame.f_back
    # wire.wait_readable between frames (the old code had only wire._read_exact); the
    # start-up greeting is awaited inside read_message
    waiting = (
        top is not None
        and top.f_code.co_name in ("wait_readable", "_read_exact")
        and (top.f_back.f_code.co_name != "_read_exact" or "WorkerProcess._start" in names)
    )
    return waiting and qualname in names and unless not in names


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
    deadline = time.monotonic() + 120
    while not _waits_for_the_worker_in(thread.ident, "RemoteModel.__call__") and thread.is_alive():
        assert time.monotonic() < deadline, "the call never reached the worker"
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)  # mid-forward: the parent waits for the worker's reply
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


# --- interrupted and timed-out calls -------------------------------------------

SLOW = ["a fairly long sentence to keep the worker busy for a while " * 8] * 128  # ~1 s forward on 2 cores
SLOW_TO_TOKENIZE = [SLOW[0] * 5] * 2048  # one tokenizer request, ~1 s


@contextlib.contextmanager
def _interrupt_while_waiting_in(
    qualname: str, exc: type[BaseException] = KeyboardInterrupt, *, worker_pid=None, unless: str | None = None
):
    """Raise `exc` in this (the main) thread through a real SIGINT once it waits for a
    reply on the worker pipe (not halfway through a frame) beneath a call of `qualname`,
    as Ctrl-C would; with `worker_pid`, the worker gets the SIGINT too, as from a
    terminal. A signal that comes too late is swallowed and the test fails on the
    missing exception instead of aborting the session."""
    main = threading.main_thread().ident
    armed, fired = threading.Event(), threading.Event()
    armed.set()

    def handler(signum, frame):
        if armed.is_set():
            armed.clear()
            raise exc("interrupted by the test")

    def watch():
        deadline = time.monotonic() + 120
        while armed.is_set() and time.monotonic() < deadline:
            if _waits_for_the_worker_in(main, qualname, unless):
                if worker_pid is not None:
                    os.kill(worker_pid, signal.SIGINT)
                fired.set()
                signal.pthread_kill(main, signal.SIGINT)
                return
            time.sleep(0.001)

    previous = signal.signal(signal.SIGINT, handler)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield fired
    finally:
        armed.clear()
        watcher.join()
        time.sleep(0.05)  # a signal still pending is handled (and swallowed) before the old handler returns
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(
    ("stage", "exc"),
    [
        ("RemoteTokenizer.__call__", KeyboardInterrupt),
        ("RemoteModel.__call__", KeyboardInterrupt),
        ("RemoteModel.__call__", TimeoutError),  # a caller's own timeout (signal.alarm and the like)
    ],
    ids=["tokenize-ctrl-c", "forward-ctrl-c", "forward-caller-timeout"],
)
def test_interrupted_predict_leaves_the_worker_usable(remote, stage, exc):
    expected, encoding = remote.logits(TEXTS), remote.tokenizer(TEXTS)
    pid = remote.model.worker_pid
    with pytest.raises(exc), _interrupt_while_waiting_in(stage, exc, worker_pid=pid) as fired:
        remote.logits(SLOW_TO_TOKENIZE if stage.startswith("RemoteTokenizer") else SLOW, batch_size=len(SLOW))
    assert fired.is_set()
    # the worker finishes the interrupted request; the next call waits behind it (a second
    # Ctrl-C while it waits changes nothing) and gets its own answer
    with pytest.raises(exc), _interrupt_while_waiting_in("RemoteTokenizer.__call__", exc):
        remote.logits(TEXTS)
    np.testing.assert_array_equal(remote.logits(TEXTS), expected)
    np.testing.assert_array_equal(remote.tokenizer(TEXTS).input_ids, encoding.input_ids)
    assert remote.predict(["This is a great movie!"])[0].label == "POSITIVE"
    assert remote.model.worker_pid == pid  # neither killed by the SIGINT nor restarted


def test_interrupted_fit_keeps_the_trained_worker(remote):
    expected = remote.logits(TEXTS)
    pid = remote.model.worker_pid
    labels = ["POSITIVE", "NEGATIVE"] * 8
    options = {"epochs": 1, "batch_size": 16, "learning_rate": 1e-12, "progress": False}  # weights ~unchanged
    with pytest.raises(KeyboardInterrupt), _interrupt_while_waiting_in("RemoteModel.train_step", worker_pid=pid):
        remote.fit(SLOW[:16], labels, **options)  # fit's `finally` sends end_training behind the train_step
    assert remote.model.worker_pid == pid  # the weights trained so far are still there
    np.testing.assert_allclose(remote.logits(TEXTS), expected, atol=1e-4)
    history = remote.fit(TEXTS[:2], ["POSITIVE", "NEGATIVE"], **options)
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    np.testing.assert_allclose(remote.logits(TEXTS), expected, atol=1e-4)


@pytest.mark.parametrize("running", [True, False], ids=["load", "start-and-load"])
def test_interrupted_load_then_load_again(remote, running):
    expected = remote.logits(TEXTS)
    if not running:
        worker_mod.shutdown_workers()
    before = _children()
    with (
        pytest.raises(KeyboardInterrupt),
        _interrupt_while_waiting_in(
            "WorkerProcess._start" if not running else "_RemoteHandle.ensure_loaded",
            unless=None if not running else "WorkerProcess._start",
        ),
    ):
        un.load_classifier("default", backend="huggingface")
    if not running:
        assert _children() <= before  # the half-started worker was killed, not left to answer later
    again = un.load_classifier("default", backend="huggingface")
    np.testing.assert_array_equal(again.logits(TEXTS), expected)
    np.testing.assert_array_equal(remote.logits(TEXTS), expected)
    assert again.model.worker_pid == remote.model.worker_pid
    assert _zombies() == []


def test_reply_cut_mid_frame_restarts_the_worker(remote, monkeypatch):
    expected = remote.logits(TEXTS)
    real = worker_mod.read_message

    def cut_once(fd, *args, **kwargs):
        monkeypatch.setattr(worker_mod, "read_message", real)
        os.read(fd, 3)  # part of the next frame is gone: the stream is desynchronised
        raise KeyboardInterrupt

    for trained in (False, True):
        pid = remote.model.worker_pid
        monkeypatch.setattr(worker_mod, "read_message", cut_once)
        with pytest.raises(KeyboardInterrupt):
            remote.logits(TEXTS)
        if trained:  # restarting loses what was trained in the worker, and says so
            with pytest.raises(un.WorkerError, match="weights trained in it were lost"):
                remote.logits(TEXTS)
        else:
            np.testing.assert_array_equal(remote.logits(TEXTS), expected)
            assert remote.model.worker_pid not in (None, pid)
            remote.fit(TEXTS[:2], ["POSITIVE", "NEGATIVE"], learning_rate=1e-12, progress=False)
        assert _zombies() == [] and len(_children()) <= 1


def test_timeout_while_a_reply_is_on_its_way_leaves_the_backend_usable(remote, monkeypatch):
    expected = remote.logits(TEXTS)
    monkeypatch.setenv("UNIFIED_NLP_WORKER_TIMEOUT", "0.5")
    with pytest.raises(un.WorkerError, match="did not answer"):
        remote.logits(SLOW * 4, batch_size=len(SLOW) * 4)  # killed long before it is done
    monkeypatch.setenv("UNIFIED_NLP_WORKER_TIMEOUT", "300")
    np.testing.assert_array_equal(remote.logits(TEXTS), expected)
    # a call queued behind an interrupted one waits for it within its own timeout
    pid = remote.model.worker_pid
    with pytest.raises(KeyboardInterrupt), _interrupt_while_waiting_in("RemoteModel.__call__"):
        remote.logits(SLOW * 4, batch_size=len(SLOW) * 4)
    monkeypatch.setenv("UNIFIED_NLP_WORKER_TIMEOUT", "0.2")
    with pytest.raises(un.WorkerError, match="queued behind an interrupted call"):
        remote.logits(TEXTS)
    assert not psutil.pid_exists(pid)  # killed and reaped
    monkeypatch.setenv("UNIFIED_NLP_WORKER_TIMEOUT", "300")
    np.testing.assert_array_equal(remote.logits(TEXTS), expected)
    assert _zombies() == []
