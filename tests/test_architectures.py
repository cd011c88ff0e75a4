"""Users' own Hugging Face classifier folders, every supported family, on the huggingface
backend: checkpoints written by transformers' save_pretrained, checked against
transformers' own forward (the other backends are checked against the same fixtures in
their modules)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp.errors import InvalidInputError, InvalidModelError

from .checkpoints import ARCHITECTURES, LABELS, make_checkpoint, to_pytorch_bin
from .conftest import require

pytestmark = pytest.mark.filterwarnings("ignore")

TEXTS = ["This is a great movie!", "a dull , lifeless script", "", "Café naïve 日本語 😀 " * 3, "x " * 200]
PAIRS = [("A man plays a guitar.", "A person makes music."), ("great", "it was bad"), ("", "only the second")]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    require("huggingface")
    root = tmp_path_factory.mktemp("checkpoints")
    return {arch: make_checkpoint(arch, root / arch, scale=8.0) for arch in ARCHITECTURES}


def _reference(folder, texts, pairs=None):
    """transformers' own tokenizer and classifier on the folder, as a plain user runs them."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tok(texts, pairs, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return batch, model(**batch).logits.numpy()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_users_classifier_loads_with_its_own_head_and_labels(folders, arch):
    clf = un.load_classifier(folders[arch], backend="huggingface")
    assert clf.labels == LABELS and clf.spec.head == "native" and clf.spec.architecture == arch
    batch, expected = _reference(folders[arch], TEXTS)
    np.testing.assert_array_equal(clf.tokenizer(TEXTS).input_ids, batch["input_ids"].numpy())
    logits = clf.logits(TEXTS)
    assert np.abs(logits - expected).max() <= 1e-5
    assert [p.label for p in clf.predict(TEXTS)] == [LABELS[i] for i in expected.argmax(1)]
    assert clf.predict(TEXTS)[-1].truncated  # 400 tokens, over the fixture's 64


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_sentence_pairs_match_transformers(folders, arch):
    clf = un.load_classifier(folders[arch], backend="huggingface")
    batch, expected = _reference(folders[arch], [a for a, _ in PAIRS], [b for _, b in PAIRS])
    enc = clf.tokenizer([a for a, _ in PAIRS], text_pair=[b for _, b in PAIRS])
    np.testing.assert_array_equal(enc.input_ids, batch["input_ids"].numpy())
    if "token_type_ids" in batch:
        np.testing.assert_array_equal(enc.token_type_ids, batch["token_type_ids"].numpy())
    as_tuples = clf.logits(PAIRS)
    as_argument = clf.logits([a for a, _ in PAIRS], text_pair=[b for _, b in PAIRS])
    np.testing.assert_array_equal(as_tuples, as_argument)
    assert np.abs(as_tuples - expected).max() <= 1e-5
    assert np.abs(as_tuples - clf.logits([a for a, _ in PAIRS])).max() > 1e-6  # the second text counts


def test_bert_pairs_get_segment_ids(folders):
    clf = un.load_classifier(folders["bert"], backend="huggingface")
    enc = clf.tokenizer(["a b"], text_pair=["c"])
    sep = clf.tokenizer._decoder.token_to_id("[SEP]")
    first_sep = list(enc.input_ids[0]).index(sep)
    assert enc.token_type_ids[0, : first_sep + 1].tolist() == [0] * (first_sep + 1)
    assert set(enc.token_type_ids[0, first_sep + 1 : int(enc.lengths[0])].tolist()) == {1}


@pytest.mark.parametrize(
    "bad, message",
    [
        ([("a", "b", "c")], "3 parts"),
        ([("a", "b"), "c"], "single str among sentence pairs"),
        ([("a", None)], "in a sentence pair"),
    ],
)
def test_malformed_pairs_are_refused(folders, bad, message):
    clf = un.load_classifier(folders["bert"], backend="huggingface")
    with pytest.raises(InvalidInputError, match=message):
        clf.predict(bad)


def test_text_pair_of_another_length_is_refused(folders):
    clf = un.load_classifier(folders["bert"], backend="huggingface")
    with pytest.raises(InvalidInputError, match="must pair up"):
        clf.predict(["a", "b"], text_pair=["c"])


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_save_writes_a_folder_plain_transformers_loads(folders, arch, tmp_path):
    clf = un.load_classifier(folders[arch], backend="huggingface")
    out = clf.save(tmp_path / "saved")
    assert not (out / "head.safetensors").exists() and not (out / "unified_nlp.json").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {str(i): n for i, n in enumerate(LABELS)} and config["architectures"][0].endswith(
        "ForSequenceClassification"
    )
    # a fresh interpreter that never imports unified_nlp
    code = (
        "import sys, json, torch, transformers\n"
        "tok = transformers.AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "m = transformers.AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()\n"
        "b = tok(json.loads(sys.argv[2]), padding=True, truncation=True, return_tensors='pt')\n"
        "with torch.no_grad(): print(json.dumps(m(**b).logits.tolist()))\n"
        "assert 'unified_nlp' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(out), json.dumps(TEXTS)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    plain = np.array(json.loads(done.stdout.strip().splitlines()[-1]), dtype=np.float32)
    assert np.abs(plain - clf.logits(TEXTS)).max() <= 1e-5


def test_pytorch_model_bin_loads_like_safetensors(folders, tmp_path):
    import shutil

    safe = folders["bert"]
    pickled = to_pytorch_bin(Path(shutil.copytree(safe, tmp_path / "bin")))
    assert (pickled / "pytorch_model.bin").is_file() and not (pickled / "model.safetensors").exists()
    a = un.load_classifier(safe, backend="huggingface").logits(TEXTS)
    b = un.load_classifier(pickled, backend="huggingface").logits(TEXTS)
    np.testing.assert_array_equal(a, b)


def test_convert_to_huggingface_turns_a_pytorch_model_bin_into_safetensors(folders, tmp_path):
    import shutil

    pickled = to_pytorch_bin(Path(shutil.copytree(folders["albert"], tmp_path / "bin")))
    out = un.convert(pickled, to="huggingface", out=tmp_path / "safe")
    assert (out / "model.safetensors").is_file() and not (out / "pytorch_model.bin").exists()
    a = un.load_classifier(folders["albert"], backend="huggingface").logits(TEXTS)
    np.testing.assert_array_equal(un.load_classifier(out, backend="huggingface").logits(TEXTS), a)


def test_a_pytorch_model_bin_that_runs_code_is_refused(tmp_path):
    require("huggingface")
    import torch

    folder = make_checkpoint("bert", tmp_path / "evil", safe_serialization=False)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["classifier.bias"] = Payload()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(InvalidModelError, match="refused global"):
        un.load_classifier(folder, backend="huggingface")
    assert not marker.exists()


def test_id2label_that_does_not_match_the_head_is_refused(folders, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folders["roberta"], bad)
    config = json.loads((bad / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b"}
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        InvalidModelError, match="id2label has 2 labels, but the head 'classifier.out_proj.weight' has 3"
    ):
        un.load_classifier(bad, backend="huggingface")


def test_unknown_model_type_lists_the_supported_ones(folders, tmp_path):
    import shutil

    bad = tmp_path / "gpt"
    shutil.copytree(folders["bert"], bad)
    config = json.loads((bad / "config.json").read_text())
    config["model_type"] = "gpt2"
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        InvalidModelError, match="model_type 'gpt2' is not supported; supported: albert, bert, deberta-v2, distilbert"
    ):
        un.load_classifier(bad, backend="huggingface")


def test_labels_rename_placeholders_and_start_fresh_heads_otherwise(tmp_path):
    require("huggingface")
    folder = make_checkpoint("electra", tmp_path / "m", num_labels=2)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "LABEL_0", "1": "LABEL_1"}, {"LABEL_0": 0, "LABEL_1": 1}
    (folder / "config.json").write_text(json.dumps(config))
    trained = un.load_classifier(folder, backend="huggingface")
    renamed = un.load_classifier(folder, backend="huggingface", labels=["neg", "pos"])
    assert renamed.labels == ("neg", "pos") and not renamed.spec.fresh_head
    np.testing.assert_array_equal(renamed.logits(TEXTS), trained.logits(TEXTS))
    fresh = un.load_classifier(folder, backend="huggingface", labels=["a", "b", "c"])
    again = un.load_classifier(folder, backend="huggingface", labels=["a", "b", "c"])
    assert fresh.spec.fresh_head and fresh.logits(TEXTS).shape == (len(TEXTS), 3)
    np.testing.assert_array_equal(fresh.logits(TEXTS), again.logits(TEXTS))  # drawn from the seed, in numpy


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_fit_lowers_the_loss_for_every_family(folders, arch):
    clf = un.load_classifier(folders[arch], backend="huggingface")
    texts = ["good film", "bad film", "a fine movie", "an awful movie"] * 4
    labels = ["positive", "negative", "positive", "negative"] * 4
    history = clf.fit(texts, labels, epochs=4, batch_size=8, learning_rate=1e-3, progress=False)
    assert history["epoch_loss"][-1] < history["epoch_loss"][0]


@pytest.fixture(scope="module")
def multi_label(tmp_path_factory):
    require("huggingface")
    root = tmp_path_factory.mktemp("multi")
    return make_checkpoint("bert", root / "m", num_labels=4, problem_type="multi_label_classification")


def test_multi_label_scores_are_sigmoids_and_predictions_every_label_above_threshold(multi_label):
    import torch

    clf = un.load_classifier(multi_label, backend="huggingface")
    assert clf.multi_label
    _, expected = _reference(multi_label, TEXTS)
    scores = clf.predict_proba(TEXTS)
    np.testing.assert_allclose(scores, torch.sigmoid(torch.from_numpy(expected)).numpy(), atol=1e-6)
    for row, predicted in zip(scores, clf.predict(TEXTS, threshold=0.5)):
        assert [p.label for p in predicted] == [clf.labels[j] for j in np.argsort(-row, kind="stable") if row[j] >= 0.5]
    assert all(len(p) == 4 for p in clf.predict(TEXTS, threshold=0.0))


def test_multi_label_fit_uses_binary_cross_entropy_and_evaluate_reports_f1(multi_label):
    import torch

    clf = un.load_classifier(multi_label, backend="huggingface")
    texts = ["good film", "bad film", "a fine movie", "an awful movie"] * 2
    targets = [["label_0", "label_2"], ["label_1"], ["label_0"], []] * 2
    y = clf.label_ids(targets)
    assert y.shape == (8, 4) and y[0].tolist() == [1, 0, 1, 0] and y[3].sum() == 0
    logits = clf.logits(texts[:8])
    expected = float(
        torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(y))
    )
    history = clf.fit(texts, targets, epochs=5, batch_size=8, learning_rate=1e-3, progress=False)
    assert history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert history["loss"][-1] < history["loss"][0]
    report = clf.evaluate(texts, targets)
    assert set(report) >= {"accuracy", "micro_f1", "macro_f1", "per_class"} and 0 <= report["micro_f1"] <= 1
    with pytest.raises(InvalidInputError, match="list of label names"):
        clf.fit(texts[:2], ["label_0", "label_1"], progress=False)
