"""ModernBERT (model_type "modernbert") on every backend that runs it, against
transformers' own ModernBertForSequenceClassification on the same folder.

Tiny checkpoints written by transformers 5's save_pretrained (tests/checkpoints.py): 3
layers, global / local / global (global_attn_every_n_layers=2), the local layer's window
8 tokens (4 each side), 64 positions, a byte-level BPE tokenizer.json with [CLS] A [SEP] B
[SEP]. "cls" pools the first token with transformers' defaults (no biases but the
classifier's); "mean" pools over the attention mask with every optional bias present.
Inputs run at every length up to the 64 positions, far past the window, single texts and
pairs, padded and not.

tfhub runs the adapter's own TF encoder for the family (rotary_encoder.py), paddlenlp the adapter's
own Paddle port (unified_nlp_paddlenlp/modernbert.py, through its Paddle Inference predictor; PaddleNLP
2.8 has no ModernBERT); each refuses a head activation it does not compute.
"""

from __future__ import annotations

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp.errors import InvalidModelError, UnifiedNLPError

from .checkpoints import LABELS, assert_parity, loaded, make_checkpoint, transformers_logits
from .conftest import require

pytestmark = pytest.mark.filterwarnings("ignore")

TOL = 1e-5
BACKENDS = ("huggingface", "onnxruntime", "tfhub", "paddlenlp")
# the other pooling, with every bias transformers can give the family
MEAN_STYLE = dict(classifier_pooling="mean", norm_bias=True, attention_bias=True, mlp_bias=True, classifier_bias=True)
WORDS = "the movie was a great and moving story of love , loss and an awful script".split()
# every length from 1 word to past the 64 positions (truncated), in one padded batch
TEXTS = [" ".join(WORDS[i % len(WORDS)] for i in range(n)) for n in range(0, 80, 3)]
PAIRS = (
    ["A man plays a guitar.", "great", " ".join(WORDS * 2), "ok", "Café naïve 日本語 😀"],
    ["A person makes music.", " ".join(WORDS * 3), "it was bad", "", "fine"],
)
# single texts without padding: shorter than the window, at it, and past it
LENGTHS = (1, 2, 3, 4, 5, 9, 17, 40, 200)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    require("huggingface")
    root = tmp_path_factory.mktemp("modernbert")
    return {
        "cls": make_checkpoint("modernbert", root / "cls", scale=8.0),
        "mean": make_checkpoint("modernbert", root / "mean", scale=8.0, config=MEAN_STYLE),
        "multi": make_checkpoint(
            "modernbert", root / "multi", num_labels=4, problem_type="multi_label_classification", scale=8.0
        ),
    }


def _classifier(folders, variant: str, backend: str):
    return loaded(folders[variant], backend)


@pytest.mark.parametrize("variant", ["cls", "mean"])
def test_the_architecture_table_is_transformers_state_dict(folders, variant):
    from unified_nlp.architectures.modernbert import attention_settings
    from unified_nlp.folder_spec import check, tensor_shapes

    config, arch, _ = check(folders[variant])
    assert arch.classifier_shapes(config, len(LABELS)) == tensor_shapes(folders[variant])
    settings = attention_settings(config)
    assert settings["pooling"] == variant and settings["window"] == 4
    assert settings["layer_types"] == ["full_attention", "sliding_attention", "full_attention"]
    spec = un.inspect(folders[variant])
    assert spec["architecture"] == "modernbert" and spec["labels"] == list(LABELS)
    assert {"tfhub", "paddlenlp"} <= set(spec["runs_on"]) & set(spec["converts_to"]) and "why" not in spec


def test_the_inputs_reach_past_the_local_window(folders):
    """The long texts see the local window: with a window wider than the input, transformers'
    own logits move by far more than the tolerance (a backend attending globally would fail)."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(folders["cls"]))
    batch = tok(TEXTS, padding=True, truncation=True, return_tensors="pt")
    logits = {}
    for window in (8, 128):
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(folders["cls"]), local_attention=window
        ).eval()
        with torch.no_grad():
            logits[window] = model(**batch).logits.numpy()
    moved = np.abs(logits[8] - logits[128]).max(axis=1)
    lengths = batch["attention_mask"].sum(1).numpy()
    assert moved[lengths <= 5].max() < 1e-5 and moved[lengths > 20].min() > 1000 * TOL, (lengths, moved)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["cls", "mean"])
def test_logits_match_transformers_at_every_length(folders, variant, backend):
    clf = _classifier(folders, variant, backend)
    enc = clf.tokenizer(TEXTS)
    assert enc.input_ids.shape[1] == 64 and enc.attention_mask.sum(1).min() == 2  # [CLS] [SEP] .. 64
    assert_parity(clf.logits(TEXTS), transformers_logits(folders[variant], TEXTS), TOL)
    for n in LENGTHS:  # one text, no padding
        text = [" ".join(WORDS[i % len(WORDS)] for i in range(n))]
        got, want = clf.logits(text), transformers_logits(folders[variant], text)
        assert np.abs(got - want).max() <= TOL, (n, np.abs(got - want).max())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["cls", "mean"])
def test_sentence_pairs_match_transformers(folders, variant, backend):
    import transformers

    clf = _classifier(folders, variant, backend)
    enc = clf.tokenizer(PAIRS[0], text_pair=PAIRS[1])
    theirs = transformers.AutoTokenizer.from_pretrained(str(folders[variant]))(
        PAIRS[0], PAIRS[1], padding=True, truncation=True
    )
    assert enc.input_ids.tolist() == theirs["input_ids"] and "token_type_ids" not in theirs
    assert_parity(clf.model(enc).logits, transformers_logits(folders[variant], PAIRS[0], PAIRS[1]), TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_multi_label_scores_are_sigmoids_of_transformers_logits(folders, backend):
    clf = _classifier(folders, "multi", backend)
    assert clf.spec.problem_type == "multi_label_classification" and len(clf.labels) == 4
    expected = transformers_logits(folders["multi"], TEXTS)
    assert_parity(clf.logits(TEXTS), expected, TOL)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), 1 / (1 + np.exp(-expected)), atol=1e-5)


@pytest.mark.parametrize("backend", ["huggingface", "tfhub", "paddlenlp"])
def test_fit_one_step_moves_the_weights_and_saves_a_folder_transformers_loads(folders, tmp_path, backend):
    require(backend)
    clf = un.load_classifier(folders["mean"], backend=backend)
    before = clf.logits(TEXTS[:4])
    # one step: "constant", since the linear schedule gives the last step a learning rate of 0
    texts, labels = ["good film", "bad film"], ["positive", "negative"]
    history = clf.fit(texts, labels, epochs=1, batch_size=2, schedule="constant", learning_rate=1e-3, progress=False)
    assert history["steps"] == 1 and np.isfinite(history["epoch_loss"][0])
    assert np.abs(clf.logits(TEXTS[:4]) - before).max() > 1e-4
    out = clf.save(tmp_path / "fitted")
    assert_parity(clf.logits(TEXTS), transformers_logits(out, TEXTS), TOL)


@pytest.mark.parametrize("backend", ["onnxruntime", "tfhub", "paddlenlp"])
@pytest.mark.parametrize("variant", ["cls", "mean"])
def test_convert_round_trip_is_bit_exact_and_the_export_matches_transformers(folders, tmp_path, backend, variant):
    from safetensors.numpy import load_file

    require(backend)
    source = folders[variant]
    out = un.convert(source, to=backend, out=tmp_path / backend)
    exported = un.load_classifier(out, backend=backend)
    assert_parity(exported.logits(TEXTS), transformers_logits(source, TEXTS), TOL)
    if backend == "paddlenlp":  # transformers' names, yet a PaddleNLP folder: its config says so
        from unified_nlp.paddlenlp_format.paddle_folder import is_native

        assert is_native(out / "paddlenlp") and not is_native(source)
    if backend == "onnxruntime":  # an ONNX graph does not convert back
        return
    back = un.convert(out, to="huggingface", out=tmp_path / "back")
    original, again = load_file(source / "model.safetensors"), load_file(back / "model.safetensors")
    assert sorted(again) == sorted(original)
    for name, array in original.items():
        assert again[name].tobytes() == array.tobytes(), name


def test_a_bare_encoder_gets_the_same_fresh_head_on_every_backend(folders, tmp_path):
    """ModernBertModel without a head, labels= given: the core draws the head (its LayerNorm at
    1, as transformers starts it); every backend computes the same, and the saved folder is it."""
    import shutil

    import transformers

    bare = tmp_path / "bare"
    transformers.AutoModelForSequenceClassification.from_pretrained(str(folders["cls"])).model.save_pretrained(bare)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(folders["cls"] / name, bare / name)
    saved = un.load_classifier(bare, backend="huggingface", labels=["no", "yes"]).save(tmp_path / "fresh")
    want = transformers_logits(saved, TEXTS)
    for backend in BACKENDS:
        require(backend)
        clf = un.load_classifier(bare, backend=backend, labels=["no", "yes"])
        assert clf.spec.fresh_head and clf.labels == ("no", "yes")
        assert np.abs(clf.logits(TEXTS) - want).max() <= TOL, backend


def test_tfhub_refuses_a_head_activation_it_does_not_compute(tmp_path):
    require("tfhub")
    folder = make_checkpoint("modernbert", tmp_path / "silu", config={"classifier_activation": "silu"})
    with pytest.raises(InvalidModelError, match="classifier_activation 'silu'"):
        un.load_classifier(folder, backend="tfhub")


def test_paddlenlp_refuses_a_head_activation_it_does_not_compute(tmp_path):
    """gelu_new (tanh GELU) is not the exact GELU the Paddle port computes: refused on load and
    convert, and inspect leaves paddlenlp out."""
    require("paddlenlp")
    folder = make_checkpoint("modernbert", tmp_path / "tanh", config={"classifier_activation": "gelu_new"})
    assert "paddlenlp" not in un.inspect(folder)["runs_on"]
    for attempt in (
        lambda: un.load_classifier(folder, backend="paddlenlp"),
        lambda: un.convert(folder, to="paddlenlp", out=tmp_path / "paddle"),
    ):
        with pytest.raises(UnifiedNLPError, match="classifier_activation 'gelu_new'"):
            attempt()
    assert not (tmp_path / "paddle").exists()
