"""Fine-tuning with the same code on every backend; train on one stack, serve on another."""

from __future__ import annotations

import numpy as np
import pytest

import unified_nlp as un

from .conftest import Backend, require

ALL = [b.value for b in Backend]


@pytest.fixture(scope="module")
def sst2_train_small():
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, labels = read_tsv(sst2_path("train"))
    pick = np.random.default_rng(1).permutation(len(texts))[:256]
    return [texts[i] for i in pick], [labels[i] for i in pick]


@pytest.mark.parametrize(
    "texts, labels, fragment",
    [
        (["a", "b"], ["POSITIVE"], "2 texts but 1 labels"),
        (["a", "b"], ["POSITIVE", "MAYBE"], "MAYBE"),
        ([], [], "empty"),
        (["a", "b", "c"], ["POSITIVE", 1, "POSITIVE"], "only one class"),
        (["a", None], [0, 1], "index 1"),
        (["a", "b"], [0, 7], "outside"),
    ],
)
def test_bad_training_data_fails_before_training(clf, texts, labels, fragment):
    before = clf.logits(["This is a great movie!"])
    with pytest.raises(un.InvalidInputError, match=fragment):
        clf.fit(texts, labels, epochs=1, progress=False)
    np.testing.assert_array_equal(clf.logits(["This is a great movie!"]), before)


def test_unknown_fit_option_is_a_clear_error(clf):
    with pytest.raises(TypeError, match="learning_rat"):
        clf.fit(["a", "b"], [0, 1], learning_rat=1e-3)


@pytest.mark.slow
def test_a_short_run_lowers_the_loss(backend, sst2_train_small):
    texts, labels = sst2_train_small
    clf = un.load_classifier("default", backend=backend, labels=["neg", "pos"])  # fresh head
    assert clf.labels == ("neg", "pos")
    before = clf.evaluate(texts, labels)["accuracy"]
    history = clf.fit(texts, labels, epochs=1, batch_size=16, learning_rate=1e-4, seed=0, progress=False)
    assert history["steps"] == 16 and len(history["loss"]) == 16
    assert np.mean(history["loss"][-4:]) < np.mean(history["loss"][:4])
    assert clf.evaluate(texts, labels)["accuracy"] > before


@pytest.mark.slow
def test_first_step_loss_agrees_across_backends(sst2_train_small):
    texts, labels = sst2_train_small
    losses = {}
    for name in ALL:
        require(name)
        clf = un.load_classifier("default", backend=name, labels=["neg", "pos"])
        history = clf.fit(texts[:64], labels[:64], epochs=1, batch_size=32, learning_rate=1e-4, seed=3, progress=False)
        losses[name] = history["loss"]
    ref = losses["huggingface"]
    for loss in losses.values():
        assert abs(loss[0] - ref[0]) / abs(ref[0]) < 1e-3, losses
        assert abs(loss[1] - ref[1]) / abs(ref[1]) < 1e-3, losses  # after one optimisation step


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sst2_train_small):
    """One small model fine-tuned on each backend and saved (canonical format)."""
    texts, labels = sst2_train_small
    out = {}
    for name in ALL:
        require(name)
        clf = un.load_classifier("default", backend=name)
        clf.fit(texts[:96], labels[:96], epochs=1, batch_size=32, learning_rate=5e-5, seed=0, progress=False)
        out[name] = clf.save(tmp_path_factory.mktemp(f"trained-{name}") / "model")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("source", ALL)
@pytest.mark.parametrize("target", ALL)
def test_train_on_one_backend_serve_on_another(trained, source, target, sst2_dev):
    texts = sst2_dev[0][:200]
    here = un.load_classifier(trained[source], backend=source)
    there = un.load_classifier(trained[source], backend=target)
    report = un.compare(here, there, texts)
    assert report.argmax_agreement == 1.0, report
    assert report.logits_max_abs_diff <= 1e-4, report


def test_fit_documents_every_option_with_the_training_defaults():
    import inspect

    from unified_nlp.classifier import TextClassifier
    from unified_nlp.training import DEFAULTS

    parameters = inspect.signature(TextClassifier.fit).parameters
    assert {name: parameters[name].default for name in DEFAULTS} == DEFAULTS  # help() shows the real defaults
    doc = inspect.getdoc(TextClassifier.fit)
    assert all(f"{name}:" in doc for name in (*DEFAULTS, "validation", "progress"))
