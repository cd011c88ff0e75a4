"""The core on its own: a fake tokenizer and model stand in for a framework here
(and only here) to test batching, post-processing, errors and the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp import registry
from unified_nlp.classifier import TextClassifier
from unified_nlp.errors import InvalidInputError
from unified_nlp.metrics import classification_report, label_ids
from unified_nlp.postprocess import softmax, top_k
from unified_nlp.protocols import Encoding, Model, ModelOutput
from unified_nlp.tokens import encoding_from_rows, join_wordpieces
from unified_nlp.training import learning_rate_at


class FakeTokenizer:
    """One id per character (code point mod 1000), [CLS]=1 ... [SEP]=2."""

    max_length = 16
    vocab_size = 1000

    def __call__(self, texts, *, max_length=None, padding="longest", truncation=True):
        limit = max_length or self.max_length
        rows = [[1] + [3 + ord(c) % 997 for c in t][: limit - 2] + [2] for t in texts]
        truncated = np.array([len(t) + 2 > limit for t in texts])
        width = max((len(r) for r in rows), default=0)
        ids = np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
        return Encoding(ids, (ids > 0).astype(np.int64), None, truncated)

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i - 3) for i in ids if i > 2)


class FakeModel(Model):
    """Logits depend on each row's own tokens only, so batching must not matter."""

    num_labels = 3

    def __init__(self):
        self.calls = []

    def __call__(self, enc, *, output_hidden_states=False):
        self.calls.append(enc.input_ids.shape)
        s = (enc.input_ids * enc.attention_mask).sum(1).astype(np.float64)
        n = enc.lengths.astype(np.float64)
        return ModelOutput(np.stack([s / 100.0, n, -s / 50.0], axis=1).astype(np.float32))

    def state_dict(self):
        return {}


@pytest.fixture
def fake():
    return TextClassifier(FakeTokenizer(), FakeModel(), ["A", "B", "C"], "fake")


def test_predictions_do_not_depend_on_batching(fake):
    texts = ["a", "a much longer text here", "mid text", "", "zz", "another one"]
    full = fake.predict_proba(texts, batch_size=64)
    for bs in (1, 2, 5):
        np.testing.assert_array_equal(fake.predict_proba(texts, batch_size=bs), full)
    single = np.concatenate([fake.predict_proba([t]) for t in texts])
    np.testing.assert_array_equal(single, full)


def test_batches_are_trimmed_to_their_longest_text(fake):
    fake.predict(["a", "bb", "a much longer text"], batch_size=1)
    assert sorted(shape[1] for shape in fake.model.calls) == [3, 4, 16]


def test_probabilities_sum_to_one_and_labels_follow_argmax(fake):
    texts = ["abc", "xyz", ""]
    probs = fake.predict_proba(texts)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    preds = fake.predict(texts)
    assert [p.label for p in preds] == [fake.labels[i] for i in probs.argmax(1)]
    assert all(isinstance(p, un.Prediction) for p in preds)


def test_top_k_is_sorted_and_complete(fake):
    rows = fake.predict(["hello"], top_k=3)[0]
    assert [p.score for p in rows] == sorted((p.score for p in rows), reverse=True)
    assert {p.label for p in rows} == {"A", "B", "C"}


def test_top_k_none_gives_every_label_and_keeps_the_truncated_flag(fake):
    every = fake.predict(["short", "x" * 100], top_k=None)
    assert [len(row) for row in every] == [3, 3] and {p.label for p in every[0]} == {"A", "B", "C"}
    assert [row[0].truncated for row in every] == [False, True]
    assert [row[0].truncated for row in fake.predict(["short", "x" * 100], top_k=2)] == [False, True]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "all"])
def test_top_k_that_is_not_a_positive_integer_is_refused(fake, bad):
    with pytest.raises(un.InvalidInputError, match="top_k"):
        fake.predict(["hello"], top_k=bad)


def test_truncation_is_reported(fake):
    preds = fake.predict(["short", "x" * 100])
    assert [p.truncated for p in preds] == [False, True]


def test_empty_list_gives_empty_results(fake):
    assert fake.predict([]) == []
    assert fake.predict_proba([]).shape == (0, 3)


@pytest.mark.parametrize(
    "bad, kind, fragment",
    [
        ("a single string", TypeError, "single str"),
        (["ok", None], TypeError, "index 1"),
        (["ok", "fine", 3], TypeError, "index 2"),
        ([b"bytes"], TypeError, "decode"),
        (["ok", "bad \ud800 surrogate"], ValueError, "index 1"),
        (None, TypeError, "NoneType"),
    ],
)
def test_bad_input_names_the_item(fake, bad, kind, fragment):
    with pytest.raises(un.InvalidInputError) as info:
        fake.predict(bad)
    assert isinstance(info.value, kind)
    assert fragment in str(info.value)


def test_control_characters_are_dropped_like_bert_does(fake):
    np.testing.assert_array_equal(fake.predict_proba(["a\x00b\x07c"]), fake.predict_proba(["abc"]))


def test_softmax_is_stable_for_huge_logits():
    p = softmax(np.array([[1e4, 0.0], [-1e4, 1e4]]))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, [[1.0, 0.0], [0.0, 1.0]])


def test_identical_logits_give_identical_predictions():
    logits = np.array([[0.1, 2.0], [3.0, -1.0]])
    assert top_k(softmax(logits), ["N", "P"], 1) == top_k(softmax(logits.copy()), ["N", "P"], 1)


def test_encoding_reads_like_batch_encoding():
    enc = FakeTokenizer()(["ab", "a"])
    assert enc["input_ids"] is enc.input_ids
    assert set(enc) == {"input_ids", "attention_mask", "token_type_ids"}
    assert enc.input_ids.dtype == np.int64 and enc.lengths.tolist() == [4, 3]
    assert enc.select([1]).input_ids.shape == (1, 3)


def test_rows_are_padded_into_an_encoding():
    rows, types = [[101, 7, 8, 102], [101, 102]], [[0, 0, 1, 1], [0, 0]]
    enc = encoding_from_rows(rows, pad_id=0, padding="longest", limit=512, type_rows=types, truncated=[True, False])
    assert enc.input_ids.tolist() == [[101, 7, 8, 102], [101, 102, 0, 0]]
    assert enc.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert enc.token_type_ids.tolist() == [[0, 0, 1, 1], [0, 0, 0, 0]]
    assert enc.truncated.tolist() == [True, False]
    assert (
        encoding_from_rows(rows, pad_id=9, padding="max_length", limit=6).input_ids[1].tolist() == [101, 102] + [9] * 4
    )
    assert encoding_from_rows([], pad_id=0, padding="longest", limit=8).input_ids.shape == (0, 0)
    with pytest.raises(un.InvalidInputError, match="equal token length"):
        encoding_from_rows(rows, pad_id=0, padding=False, limit=512)


def test_wordpieces_join_like_the_bert_decoder():
    assert join_wordpieces(["hello", "world", "##s", "!"]) == "hello worlds!"
    assert join_wordpieces(["do", "n't", "stop", "."]) == "don't stop."
    assert join_wordpieces([]) == ""


def test_metrics_by_hand():
    y_true = np.array([0, 0, 1, 1, 1])
    y_pred = np.array([0, 1, 1, 1, 0])
    report = classification_report(y_true, y_pred, ["N", "P"])
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["confusion_matrix"] == [[1, 1], [1, 2]]
    json.dumps(report)  # JSON-ready as it is
    # P: precision 2/3, recall 2/3; N: precision 1/2, recall 1/2
    assert report["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_label_ids_accepts_names_and_indices_and_rejects_the_rest():
    assert label_ids(["P", 0, np.int64(1)], ["N", "P"]).tolist() == [1, 0, 1]
    for bad in (["X"], [2], [-1], [True]):
        with pytest.raises(un.InvalidInputError):
            label_ids(bad, ["N", "P"])


def test_learning_rate_schedule_warms_up_then_decays():
    lrs = [learning_rate_at(s, 10, 1.0, 2) for s in range(10)]
    assert lrs[:2] == [0.5, 1.0] and lrs[-1] == 0.0
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))


# --- registry and errors ---------------------------------------------------


@pytest.mark.parametrize(
    "alias, name",
    [
        ("hf", "huggingface"),
        ("PyTorch", "huggingface"),
        ("tf", "tfhub"),
        ("tensorflow", "tfhub"),
        ("paddle", "paddlenlp"),
    ],
)
def test_aliases(alias, name):
    assert registry.canonical_name(alias) == name


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(un.UnknownBackendError) as info:
        un.load_classifier("default", backend="jax-but-misspelt")
    text = str(info.value)
    assert all(name in text for name in ("huggingface", "tfhub", "paddlenlp"))


def test_missing_backend_says_what_to_install(monkeypatch):
    monkeypatch.setattr(registry, "installed_here", lambda name: False)
    monkeypatch.setattr(registry, "worker_python", lambda name: None)
    with pytest.raises(un.BackendNotInstalledError) as info:
        un.load_classifier("default", backend="tfhub")
    assert "pip install 'unified-nlp[tfhub]'" in str(info.value)  # works outside a checkout too
    assert "-e backends" not in str(info.value)
    assert isinstance(info.value, ImportError)


def test_install_hints_work_outside_a_checkout():
    import re

    import tomllib

    from .conftest import REPO

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for known in registry.KNOWN_BACKENDS.values():
        assert "-e " not in known.install and "backends/" not in known.install, known.install
        assert f"pip install 'unified-nlp[{known.name}]'" in known.install
        assert extras[known.name] == [known.distribution]  # the extra installs the adapter
        cited = re.findall(r"(docs/[\w-]+\.md), '([^']+)'", known.install)
        assert cited or "see " not in known.install, known.install  # a hint that cites a page names a section
        for page, section in cited:  # each cited section is a heading of that docs page
            text = (REPO / page).read_text(encoding="utf-8")
            headings = {line.lstrip("#").strip() for line in text.splitlines() if line[:1] == "#"}
            assert any(h == section or h.startswith(section + " (") for h in headings), (page, section)


def test_unknown_model_lists_known_names(tmp_path):
    with pytest.raises(un.ModelNotFoundError) as info:
        un.load_classifier(str(tmp_path / "nowhere"), backend="huggingface")
    assert "default" in str(info.value)


def test_hub_id_not_cached_explains_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(un.ModelNotFoundError) as info:
        un.load_classifier("someorg/somemodel", backend="huggingface")
    assert "never downloads" in str(info.value) and "--local-dir" in str(info.value)


def test_worker_registration_round_trip(tmp_path, monkeypatch):
    config = tmp_path / "cfg.json"
    monkeypatch.setenv("UNIFIED_NLP_CONFIG", str(config))
    monkeypatch.delenv("UNIFIED_NLP_PADDLENLP_PYTHON", raising=False)
    python = str(Path(sys.executable).absolute())
    registry.register_worker("paddle", python, config)
    assert json.loads(config.read_text())["workers"]["paddlenlp"] == python
    assert registry.worker_python("paddlenlp") == python
    monkeypatch.setenv("UNIFIED_NLP_PADDLENLP_PYTHON", "/elsewhere/python")
    assert registry.worker_python("paddlenlp") == "/elsewhere/python"


@pytest.mark.parametrize("python", ["/opt/envs/none/bin/python", "/etc/hostname", "/bin/false"])
def test_worker_registration_checks_the_interpreter(tmp_path, python):
    config = tmp_path / "cfg.json"
    with pytest.raises(un.WorkerError, match=python):
        registry.register_worker("paddlenlp", python, config)
    assert not config.exists()


def test_import_hygiene_no_framework_on_import_or_listing():
    code = (
        "import sys, unified_nlp as un\n"
        "rows = un.list_backends()\n"
        "assert {r.name for r in rows} >= {'huggingface', 'tfhub', 'paddlenlp'}, rows\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'paddle', 'transformers', 'paddlenlp') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- conventions users know (newcomer pass): top_k on every head, clf(texts), max_length, sets ---


def test_top_k_means_the_same_on_a_multi_label_head():
    clf = TextClassifier(
        FakeTokenizer(), FakeModel(), ["A", "B", "C"], "fake", spec={"problem_type": "multi_label_classification"}
    )
    texts = ["ab", "hello there", "zzzzzz"]
    scores = clf.predict_proba(texts)
    for k in (1, 2, 3):
        got = clf.predict(texts, top_k=k)
        for row, s in zip(got, scores):
            order = np.argsort(-s, kind="stable")[:k]
            assert [p.label for p in row] == [clf.labels[j] for j in order]
            np.testing.assert_array_equal([p.score for p in row], s[order])
    assert [len(row) for row in clf.predict(texts, top_k=None)] == [3, 3, 3]
    above = [[clf.labels[j] for j in np.argsort(-s, kind="stable") if s[j] >= 0.5] for s in scores]
    assert [[p.label for p in row] for row in clf.predict(texts)] == above


def test_a_classifier_is_called_as_a_pipeline(fake):
    texts = ["a", "bb", "a much longer text"]
    assert fake(texts) == fake.predict(texts)
    assert fake(texts, top_k=2) == fake.predict(texts, top_k=2)


def test_max_length_per_call_truncates_that_call_only(fake):
    text = ["a longer text"]  # 15 tokens of the model's 16
    short = fake.predict(text, max_length=6)[0]
    assert fake.model.calls[-1][1] == 6  # the call's batch was 6 tokens wide
    assert short.truncated and not fake.predict(text)[0].truncated
    assert not np.array_equal(fake.logits(text, max_length=6), fake.logits(text))
    for bad in (1, 0, 17, 2.5, True):
        with pytest.raises(InvalidInputError, match="max_length"):
            fake.predict(text, max_length=bad)


def test_an_unordered_input_is_refused(fake):
    for unordered in ({"a", "b"}, frozenset({"a"}), {"a": 1}, {"a": 1}.keys()):
        with pytest.raises(InvalidInputError, match="unordered"):
            fake.predict(unordered)


def test_inspect_is_part_of_the_python_api():
    import unified_nlp as un

    assert un.inspect is un.api.inspect_model and "inspect" in un.__all__


# --- the model spec --------------------------------------------------------------------------


def test_a_model_spec_round_trips_through_its_dict():
    from unified_nlp.spec import ModelSpec

    spec = ModelSpec(
        format="tfhub-savedmodel",
        architecture=None,
        labels=("neg", "pos"),
        head="linear",
        max_length=None,
        fresh_head=True,
        seed=3,
        head_path=None,
        extra={"kind": "embedding", "hidden": 50, "config": {"hidden_size": 50}},
    )
    wire = json.loads(json.dumps(spec.to_dict()))  # as the worker pipe carries it
    assert wire["num_labels"] == 2 and wire["kind"] == "embedding" and "max_length" not in wire
    assert ModelSpec.from_dict(wire) == spec
    assert spec.replace(precision="int8").to_dict() == {**spec.to_dict(), "precision": "int8"}


@pytest.mark.parametrize(
    "changes",
    [
        {"labels": ("a", "a")},
        {"labels": ("a",)},
        {"labels": ("a", "")},
        {"problem_type": "regression"},
        {"head": "crf"},
        {"max_length": 0},
        {"max_length": True},
        {"extra": {"labels": ["x"]}},
    ],
)
def test_a_model_spec_is_checked_when_built(changes):
    from unified_nlp.errors import InvalidModelError
    from unified_nlp.spec import ModelSpec

    with pytest.raises(InvalidModelError):
        ModelSpec(**{"labels": ("a", "b"), **changes})


def test_a_multi_label_spec_or_a_headless_one_may_have_fewer_than_two_labels():
    from unified_nlp.spec import ModelSpec

    assert ModelSpec(labels=("toxic",), problem_type="multi_label_classification").num_labels == 1
    assert ModelSpec().num_labels == 0  # an encoder described for a converter


def test_the_default_models_spec_is_one_value(tmp_path):
    from unified_nlp.folder_spec import model_spec
    from unified_nlp.resolve import resolve
    from unified_nlp.spec import ModelSpec

    spec = model_spec(resolve("default"))
    assert isinstance(spec, ModelSpec) and spec.head == "mean" and spec.labels == ("NEGATIVE", "POSITIVE")
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(AttributeError):
        spec.labels = ("a", "b")  # frozen


def test_a_multi_label_score_at_the_threshold_counts():
    class Even(Model):
        num_labels = 2

        def __call__(self, encoding, *, output_hidden_states=False):  # logit 0: sigmoid exactly 0.5
            return ModelOutput(np.tile(np.array([[0.0, -3.0]], np.float32), (encoding.num_texts, 1)))

    clf = TextClassifier(
        FakeTokenizer(), Even(), ["A", "B"], "fake", spec={"problem_type": "multi_label_classification"}
    )
    assert clf.predict_proba(["x"])[0, 0] == 0.5
    assert [p.label for p in clf.predict(["x"])[0]] == ["A"]
    assert clf.predict(["x"], threshold=0.51) == [[]]
