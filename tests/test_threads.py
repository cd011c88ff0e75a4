"""num_threads (API) and --threads (CLI) reach every framework: torch in-process,
TensorFlow before its runtime starts, Paddle in its worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, require
from unified_nlp import threads
from unified_nlp.errors import InvalidInputError


@pytest.fixture
def restore_threads():
    """The thread count is process-wide: give the next tests back the one they had."""
    saved = threads._requested
    yield
    threads._requested = saved


def test_the_default_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.available_cores() == len(os.sched_getaffinity(0))
    assert threads.default_threads() == threads.available_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a standard variable the user set wins
    assert threads.default_threads() == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_a_bad_count_is_a_clear_error(bad):
    with pytest.raises(InvalidInputError, match="num_threads must be a positive integer"):
        threads.check(bad)


def test_num_threads_reaches_torch(restore_threads):
    require("huggingface")
    import torch

    import unified_nlp as un

    before = torch.get_num_threads()
    try:
        clf = un.load_classifier("default", backend="huggingface", num_threads=1)
        assert torch.get_num_threads() == 1 and clf.num_threads == 1
        assert clf.predict(["a fine film"])[0].label == "POSITIVE"
        un.load_classifier("default", backend="huggingface")  # None keeps the explicit request
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_num_threads_reaches_tensorflow_before_it_starts():
    """TensorFlow sizes its pools when its runtime starts: a fresh process shows it; a
    different count afterwards keeps the first and says why."""
    require("tfhub")
    code = textwrap.dedent(
        """
        import warnings
        import unified_nlp as un
        clf = un.load_classifier("default", backend="tfhub", num_threads=1)
        import tensorflow as tf
        t = tf.config.threading
        print(t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads(), clf.num_threads)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            un.load_classifier("default", backend="tfhub", num_threads=2)
        print(t.get_intra_op_parallelism_threads(), "|".join(str(w.message) for w in caught))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = done.stdout.strip().splitlines()[-2:]
    assert first.split() == ["1", "1", "1"]
    count, message = second.split(" ", 1)
    assert count == "1"
    assert "keeps 1 threads, not the 2 asked for" in message and "TensorFlow" in message


def test_num_threads_reaches_paddle_in_its_worker(restore_threads):
    require("paddlenlp")
    import unified_nlp as un

    clf = un.load_classifier("default", backend="paddlenlp", num_threads=1)
    try:
        if clf.runs != "worker":
            pytest.skip("paddlenlp runs in-process here; this test is about the worker protocol")
        assert clf.num_threads == 1  # as Paddle's MKL reports it, inside the worker
        worker = clf.model._handle.worker
        assert worker.request({"op": "backend", "method": "set_threads", "args": [2]}) == 2
        worker.close()  # a restarted worker starts with the count asked for last
        assert clf.predict(["a fine film"])[0].label == "POSITIVE"
        assert worker.request({"op": "backend", "method": "set_threads", "args": [1]}) == 1
    finally:  # the worker is shared: the next tests get the default back, also after a restart
        from unified_nlp.worker import RemoteAdapter

        RemoteAdapter("paddlenlp", clf.model._handle.worker.python).set_threads(threads.default_threads())


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "x"],
        ["convert", "default", "out", "--to", "tfhub"],
        ["compare", "--backends", "hf,tfhub"],
        ["fit", "--train", "t.tsv", "--out", "o"],
        ["evaluate", "--data", "d.tsv"],
        ["bench"],
    ],
    ids=lambda a: a[0],
)
def test_every_command_takes_threads(argv, capsys):
    from unified_nlp.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([*argv, "--threads", "1"]).threads == 1
    assert parser.parse_args(argv).threads is None  # None: the default count, decided at run time
    if argv[0] != "bench":
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--threads", "0"])
        assert "expected a positive integer" in capsys.readouterr().err


def test_classify_threads_reach_the_framework(restore_threads, capsys):
    require("huggingface")
    import torch

    from unified_nlp.cli import main

    before = torch.get_num_threads()
    try:
        assert main(["classify", "--threads", "1", "a fine film"]) == 0
        assert torch.get_num_threads() == 1
        assert "1 threads]" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
