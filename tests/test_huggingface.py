"""The Hugging Face adapter against transformers itself, and the default model's accuracy."""

from __future__ import annotations

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp.protocols import Model, Tokenizer

from .conftest import default_classifier

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def hf():
    return default_classifier("huggingface")


def test_protocol_conformance(hf):
    assert isinstance(hf.tokenizer, Tokenizer) and isinstance(hf.model, Model)
    assert hf.labels == ("NEGATIVE", "POSITIVE") and hf.backend == "huggingface"
    enc = hf.tokenizer(["This is a great movie!", "ok"])
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert isinstance(enc[key], np.ndarray) and enc[key].dtype == np.int64 and enc[key].shape == (2, 8)
    out = hf.model(enc, output_hidden_states=True)
    assert isinstance(out.logits, np.ndarray) and out.logits.shape == (2, 2) and out.logits.dtype == np.float32
    assert out.last_hidden_state.shape == (2, 8, 384) and out.pooled.shape == (2, 384)
    assert hf.tokenizer.decode(enc.input_ids[0]) == "this is a great movie!"


def test_token_ids_equal_transformers_tokenizer(hf, sst2_dev, default_dir):
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(str(default_dir), local_files_only=True)
    texts = sst2_dev[0] + ["Café naïve", "日本語のテキスト", "emoji 😀👍🏽", "مرحبا بالعالم", "x" * 300, ""]
    ours = hf.tokenizer(texts)
    theirs = ref(texts, padding=True, truncation=True, max_length=512, return_tensors="np")
    np.testing.assert_array_equal(ours.input_ids, theirs["input_ids"])
    np.testing.assert_array_equal(ours.attention_mask, theirs["attention_mask"])


def test_logits_equal_transformers_automodel_with_mean_pooling_and_head(hf, default_dir):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from unified_nlp.weights import load_file

    texts = ["This is a great movie!", "a dull , lifeless script", "it 's not bad at all , really", ""]
    tok = AutoTokenizer.from_pretrained(str(default_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(default_dir), local_files_only=True).eval()
    head = load_file(default_dir / "head.safetensors")
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = ((states * mask).sum(1) / mask.sum(1)).numpy()
    expected = pooled @ head["weight"].T + head["bias"]
    ours = hf.logits(texts)
    assert np.abs(ours - expected).max() <= 1e-6 * max(1.0, np.abs(expected).max())


def test_clear_sentences(hf):
    preds = hf.predict(
        [
            "This is a great movie!",
            "A wonderful, moving film.",
            "Terrible. A waste of two hours.",
            "boring , flat and lifeless",
        ]
    )
    assert [p.label for p in preds] == ["POSITIVE", "POSITIVE", "NEGATIVE", "NEGATIVE"]
    assert all(p.score > 0.8 for p in preds)


@pytest.mark.slow
def test_sst2_dev_accuracy_through_the_public_api(hf, sst2_dev):
    texts, labels = sst2_dev
    report = hf.evaluate(texts, labels)
    assert report["n"] == 872
    assert report["accuracy"] >= 0.80, report["accuracy"]


def test_long_text_is_truncated_and_flagged(hf):
    preds = hf.predict(["good " * 20000, "good"])
    assert preds[0].truncated and not preds[1].truncated
    enc = hf.tokenizer(["good " * 20000])
    assert enc.input_ids.shape == (1, 512)


def test_missing_local_folder():
    with pytest.raises(un.ModelNotFoundError, match="no model folder"):
        un.load_classifier("./no/such/model/folder", backend="huggingface")


def test_save_and_reload_is_exact(hf, tmp_path):
    texts = ["This is a great movie!", "meh"]
    hf.save(tmp_path / "copy")
    again = un.load_classifier(tmp_path / "copy", backend="huggingface")
    np.testing.assert_array_equal(again.logits(texts), hf.logits(texts))
    assert again.labels == hf.labels


def test_tokenizers_backend_without_tokenizer_json_loads_as_on_the_other_backends(hf, default_dir, tmp_path):
    """transformers 5 names a tokenizer.json's tokenizer `TokenizersBackend`; without that file it
    refuses the folder (a ValueError), though vocab.txt is there and tfhub/onnxruntime read it."""
    import json
    import shutil

    folder = tmp_path / "no-tokenizer-json"
    shutil.copytree(default_dir, folder)
    (folder / "tokenizer.json").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "TokenizersBackend"}))
    texts = ["This is a great movie!", "Café naïve, and a dull one.", ""]
    clf = un.load_classifier(folder, backend="huggingface")
    np.testing.assert_array_equal(clf.tokenizer(texts).input_ids, hf.tokenizer(texts).input_ids)
    np.testing.assert_allclose(clf.predict_proba(texts), hf.predict_proba(texts), atol=1e-6)
    (folder / "vocab.txt").unlink()  # nothing left to read: one clear error, not transformers' ValueError
    with pytest.raises(un.InvalidModelError, match="no tokenizer files"):
        un.load_classifier(folder, backend="huggingface")
