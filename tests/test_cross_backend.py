"""One user's checkpoint on all three stacks: the real all-MiniLM-L6-v2 weights as a
transformers BertForSequenceClassification (its own pooler and a trained-shape head),
written by save_pretrained, loaded on every backend and compared with transformers."""

from __future__ import annotations

import numpy as np
import pytest

import unified_nlp as un

from .checkpoints import minilm_classifier
from .conftest import Backend, require

pytestmark = pytest.mark.filterwarnings("ignore")

PAIRS = [("A man plays a guitar.", "A person makes music."), ("It rains.", "The sun is out."), ("", "x")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    require("huggingface")
    return minilm_classifier(tmp_path_factory.mktemp("minilm") / "bert-cls")


@pytest.fixture(scope="module")
def reference(folder):
    return un.load_classifier(folder, backend="huggingface")


@pytest.fixture(scope="module")
def dev(sst2_dev):
    texts, labels = sst2_dev
    return texts[:96], labels[:96]


@pytest.mark.parametrize("name", [b.value for b in Backend if b is not Backend.HUGGINGFACE])
def test_a_bert_classifier_gives_the_same_logits_on_every_backend(folder, reference, dev, name):
    require(name)
    clf = un.load_classifier(folder, backend=name)
    assert clf.labels == ("NEGATIVE", "POSITIVE") and clf.spec.head == "native"
    report = un.compare(reference, clf, dev[0], tolerance=1e-5)
    assert report.passed, str(report)
    assert report.token_id_equality == 1.0 and report.argmax_agreement == 1.0
    pairs = un.compare(reference, clf, PAIRS, tolerance=1e-5)
    assert pairs.passed, str(pairs)


def test_the_reference_is_transformers_itself(folder, reference, dev):
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tok(dev[0], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits.numpy()
    assert np.abs(reference.logits(dev[0]) - expected).max() <= 1e-5


@pytest.mark.parametrize("name", [b.value for b in Backend if b is not Backend.HUGGINGFACE])
def test_export_and_back_is_bit_exact(folder, name, tmp_path):
    require(name)
    from unified_nlp.folder import read_state

    exported = un.convert(folder, to=name, out=tmp_path / name)
    back = un.convert(exported, to="huggingface", out=tmp_path / "back")
    original, returned = read_state(folder), read_state(back)
    for key, value in original.items():
        if key.endswith("position_ids"):
            continue
        np.testing.assert_array_equal(returned[key], value, err_msg=key)


@pytest.mark.parametrize("name", [b.value for b in Backend if b is not Backend.HUGGINGFACE])
def test_an_encoder_without_a_pooler_gets_the_same_pooler_everywhere(tmp_path, name):
    """transformers draws a missing pooler at random; the core draws it once, in numpy."""
    require(name)
    from unified_nlp.folder import read_state
    from unified_nlp.weights import save_file

    from .checkpoints import make_checkpoint

    folder = make_checkpoint("bert", tmp_path / "no-pooler")
    state = {k: v for k, v in read_state(folder).items() if ".pooler." not in k}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    texts = ["a fine film", "dull", ""]
    hf = un.load_classifier(folder, backend="huggingface", labels=["a", "b"])
    assert hf.spec.missing == ("bert.pooler.dense.bias", "bert.pooler.dense.weight")
    other = un.load_classifier(folder, backend=name, labels=["a", "b"])
    np.testing.assert_allclose(other.logits(texts), hf.logits(texts), atol=1e-5)
    np.testing.assert_array_equal(hf.logits(texts), un.load_classifier(folder, labels=["a", "b"]).logits(texts))
