"""The PaddleNLP backend from the main environment: through the worker process,
with the same API and results as in-process (in-process tests run inside the
Paddle environment: test_paddlenlp_inprocess.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp import registry
from unified_nlp.weights import load_file

from .conftest import default_classifier, require


@pytest.fixture(scope="module")
def paddle_clf():
    return default_classifier("paddlenlp")


def test_runs_in_a_worker_from_this_environment(paddle_clf):
    if registry.installed_here("paddlenlp"):
        pytest.skip("paddlenlp is installed in this environment")
    assert paddle_clf.runs == "worker" and paddle_clf.model.worker_pid is not None
    rows = {b.name: b for b in un.list_backends()}
    assert rows["paddlenlp"].runs == "worker" and "paddlepaddle" in rows["paddlenlp"].versions


def test_clear_sentences(paddle_clf):
    preds = paddle_clf.predict(["This is a great movie!", "Terrible. A waste of two hours."])
    assert [p.label for p in preds] == ["POSITIVE", "NEGATIVE"]


def test_paddle_after_tensorflow_does_not_crash_the_process():
    """`import paddle` after `import tensorflow` is a segmentation fault; the library
    must route paddle to a worker instead of crashing its caller."""
    require("paddlenlp")
    require("tfhub")
    script = textwrap.dedent(
        """
        import tensorflow as tf  # noqa: F401  first, on purpose
        import unified_nlp as un
        clf = un.load_classifier("default", backend="paddlenlp")
        print(clf.runs, clf.predict(["This is a great movie!"])[0].label)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["worker", "POSITIVE"]


def test_placement_routes_paddle_to_a_worker_after_tensorflow(monkeypatch):
    monkeypatch.setattr(registry, "installed_here", lambda name: True)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow") or object())
    where = registry.placement("paddlenlp")
    assert where.mode == "worker" and "crashes" in where.reason


@pytest.mark.slow
def test_parity_with_huggingface_on_sst2_dev(paddle_clf, sst2_dev):
    hf = default_classifier("huggingface")
    report = un.compare(hf, paddle_clf, sst2_dev[0])
    assert report.token_id_equality == 1.0, report
    assert report.logits_max_abs_diff <= 1e-4, report
    assert report.argmax_agreement == 1.0, report
    assert report.passed


def test_round_trip_hf_paddle_hf_is_bit_exact(tmp_path, default_dir):
    require("paddlenlp")
    paddle_dir = un.convert("default", to="paddlenlp", out=tmp_path / "paddle")
    back = un.convert(paddle_dir, to="huggingface", out=tmp_path / "back")
    original, again = load_file(default_dir / "model.safetensors"), load_file(back / "model.safetensors")
    for name in original:
        if name == "embeddings.position_ids":
            continue  # a buffer, not a weight
        assert name in again, name
        np.testing.assert_array_equal(again[name], original[name], err_msg=name)
    head, head_back = load_file(default_dir / "head.safetensors"), load_file(back / "head.safetensors")
    for name in head:
        np.testing.assert_array_equal(head_back[name], head[name])
    hf = default_classifier("huggingface")
    texts = ["This is a great movie!", "meh"]
    np.testing.assert_array_equal(un.load_classifier(back, backend="huggingface").logits(texts), hf.logits(texts))
    from_paddle_dir = un.load_classifier(paddle_dir, backend="paddlenlp")
    np.testing.assert_allclose(from_paddle_dir.logits(texts), hf.logits(texts), atol=1e-4)


def test_cli_compare_passes(tmp_path):
    require("paddlenlp")
    texts = tmp_path / "texts.txt"
    texts.write_text("This is a great movie!\nawful\n日本語\n\nit 's a charming and often affecting journey .\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "unified_nlp.cli",
            "compare",
            "--backends",
            "huggingface,paddlenlp",
            "--texts",
            str(texts),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "PASS" in done.stdout and "token ids identical      100.00%" in done.stdout
