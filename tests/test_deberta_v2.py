"""DeBERTa-v2/v3 (model_type "deberta-v2") on every backend that runs it, against
transformers' own DebertaV2ForSequenceClassification on the same folder.

Two tiny checkpoints written by transformers 5's save_pretrained (tests/checkpoints.py):
"v3" as DeBERTa-v3 (relative attention in 2 x 16 log buckets, c2p + p2c, keys shared with
the content projections, LayerNorm on the relative embeddings, no absolute positions, no
token types) and "v2" as DeBERTa-v2 (absolute positions, token types, its own position
projections, relative positions up to max_position_embeddings, a factorised embedding, the
convolution after the first layer). Inputs run at every length up to the 64 positions,
far past the buckets' exact range (8), single texts and pairs, padded and not.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp.errors import InvalidModelError

from .checkpoints import DEBERTA_V2_STYLE, LABELS, assert_parity, loaded, make_checkpoint, transformers_logits
from .conftest import require

pytestmark = pytest.mark.filterwarnings("ignore")

TOL = 1e-5
BACKENDS = ("huggingface", "onnxruntime", "paddlenlp", "tfhub")
WORDS = "the movie was a great and moving story of love , loss and an awful script".split()
# every length from 1 word to past the 64 positions (truncated), in one padded batch
TEXTS = [" ".join(WORDS[i % len(WORDS)] for i in range(n)) for n in range(0, 80, 3)]
PAIRS = (
    ["A man plays a guitar.", "great", " ".join(WORDS * 2), "ok", "Café naïve 日本語 😀"],
    ["A person makes music.", " ".join(WORDS * 3), "it was bad", "", "fine"],
)
# single texts without padding: the ONNX graph and the paddle predictor at each length
LENGTHS = (1, 2, 8, 9, 17, 40, 200)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    require("huggingface")
    root = tmp_path_factory.mktemp("deberta")
    return {
        "v3": make_checkpoint("deberta-v2", root / "v3", scale=8.0),
        "v2": make_checkpoint("deberta-v2", root / "v2", scale=8.0, config=DEBERTA_V2_STYLE),
        "multi": make_checkpoint(
            "deberta-v2", root / "multi", num_labels=4, problem_type="multi_label_classification", scale=8.0
        ),
    }


def _classifier(folders, variant: str, backend: str):
    return loaded(folders[variant], backend)


@pytest.mark.parametrize("variant", ["v3", "v2"])
def test_the_architecture_table_is_transformers_state_dict(folders, variant):
    from unified_nlp.folder_spec import check, tensor_shapes

    config, arch, _ = check(folders[variant])
    assert arch.classifier_shapes(config, len(LABELS)) == tensor_shapes(folders[variant])
    spec = un.inspect(folders[variant])
    assert spec["architecture"] == "deberta-v2" and spec["labels"] == list(LABELS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["v3", "v2"])
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
@pytest.mark.parametrize("variant", ["v3", "v2"])
def test_sentence_pairs_match_transformers(folders, variant, backend):
    clf = _classifier(folders, variant, backend)
    got = clf.model(clf.tokenizer(PAIRS[0], text_pair=PAIRS[1])).logits
    assert_parity(got, transformers_logits(folders[variant], PAIRS[0], PAIRS[1]), TOL)
    # the v2 checkpoint reads token types: the second text's segment changes the logits
    enc = clf.tokenizer(PAIRS[0], text_pair=PAIRS[1])
    assert enc.token_type_ids.max() == (1 if variant == "v2" else enc.token_type_ids.max())


@pytest.mark.parametrize("backend", BACKENDS)
def test_multi_label_scores_are_sigmoids_of_transformers_logits(folders, backend):
    clf = _classifier(folders, "multi", backend)
    assert clf.spec.problem_type == "multi_label_classification" and len(clf.labels) == 4
    expected = transformers_logits(folders["multi"], TEXTS)
    assert_parity(clf.logits(TEXTS), expected, TOL)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), 1 / (1 + np.exp(-expected)), atol=1e-5)


@pytest.mark.parametrize("backend", ["huggingface", "tfhub"])
def test_fit_one_step_moves_the_weights_and_saves_a_folder_transformers_loads(folders, tmp_path, backend):
    require(backend)
    clf = un.load_classifier(folders["v3"], backend=backend)
    before = clf.logits(TEXTS[:4])
    # one step: "constant", since the linear schedule gives the last step a learning rate of 0
    texts, labels = ["good film", "bad film"], ["positive", "negative"]
    history = clf.fit(texts, labels, epochs=1, batch_size=2, schedule="constant", learning_rate=1e-3, progress=False)
    assert history["steps"] == 1 and np.isfinite(history["epoch_loss"][0])
    assert np.abs(clf.logits(TEXTS[:4]) - before).max() > 1e-4
    out = clf.save(tmp_path / "fitted")
    assert_parity(clf.logits(TEXTS), transformers_logits(out, TEXTS), TOL)


@pytest.mark.parametrize("backend", ["onnxruntime", "paddlenlp", "tfhub"])
def test_convert_round_trip_is_bit_exact_and_the_export_matches_transformers(folders, backend, tmp_path):
    from safetensors.numpy import load_file

    require(backend)
    source = folders["v2"]
    out = un.convert(source, to=backend, out=tmp_path / backend)
    exported = un.load_classifier(out, backend=backend)
    assert_parity(exported.logits(TEXTS), transformers_logits(source, TEXTS), TOL)
    if backend == "onnxruntime":  # an ONNX graph does not convert back
        return
    back = un.convert(out, to="huggingface", out=tmp_path / "back")
    original, again = load_file(source / "model.safetensors"), load_file(back / "model.safetensors")
    assert sorted(again) == sorted(original)
    for name, array in original.items():
        assert again[name].tobytes() == array.tobytes(), name
    assert_parity(
        un.load_classifier(back, backend="huggingface").logits(TEXTS), transformers_logits(source, TEXTS), TOL
    )


def test_plain_paddlenlp_loads_the_paddlenlp_export(folders, tmp_path):
    """PaddleNLP's own DebertaV2ForSequenceClassification.from_pretrained on the export, in the
    Paddle environment (PaddleNLP 2.8's AutoModelForSequenceClassification has no DeBERTa-v2 entry)."""
    require("paddlenlp")
    python = os.environ.get("UNIFIED_NLP_PADDLENLP_PYTHON")
    if not python:
        pytest.skip("UNIFIED_NLP_PADDLENLP_PYTHON is not set")
    out = un.convert(folders["v3"], to="paddlenlp", out=tmp_path / "paddle")
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(folders["v3"]))
    batch = tok(TEXTS, padding=True, truncation=True)
    code = (
        "import sys, json, paddle\n"
        "from paddlenlp.transformers import DebertaV2ForSequenceClassification\n"
        "m = DebertaV2ForSequenceClassification.from_pretrained(sys.argv[1]); m.eval()\n"
        "b = json.loads(sys.argv[2])\n"
        "with paddle.no_grad(): out = m(input_ids=paddle.to_tensor(b['input_ids']),"
        " attention_mask=paddle.to_tensor(b['attention_mask']))\n"
        "out = out[0] if isinstance(out, (tuple, list)) else out\n"
        "print(type(m).__name__); print(json.dumps(out.numpy().tolist()))\n"
    )
    inputs = json.dumps({k: batch[k] for k in ("input_ids", "attention_mask")})
    done = subprocess.run(
        [python, "-c", code, str(out / "paddlenlp"), inputs], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == "DebertaV2ForSequenceClassification"
    assert_parity(np.array(json.loads(lines[-1]), np.float32), transformers_logits(folders["v3"], TEXTS), TOL)


def test_tfhub_buckets_relative_positions_as_transformers(folders):
    """The log buckets at DeBERTa-v3's real sizes (256 buckets, 512 positions), far past the tests' 64."""
    require("tfhub")
    import torch
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position
    from unified_nlp_tfhub._tf import tf
    from unified_nlp_tfhub.disentangled_encoder import log_bucket_position

    relative = np.arange(-3000, 3001)
    for buckets, positions in ((256, 512), (16, 64)):
        want = make_log_bucket_position(torch.tensor(relative), buckets, positions).long().numpy()
        got = log_bucket_position(tf.constant(relative, tf.int32), buckets, positions).numpy()
        np.testing.assert_array_equal(got, want)
    spec = un.inspect(folders["v3"])  # every backend runs the family, said before anything loads
    assert {"huggingface", "paddlenlp", "onnxruntime", "tfhub"} <= set(spec["runs_on"]), spec
    assert "tfhub" in spec["converts_to"], spec


def test_tfhub_refuses_a_head_activation_it_does_not_compute(folders, tmp_path):
    import shutil

    require("tfhub")
    folder = tmp_path / "tanh"
    shutil.copytree(folders["v3"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "pooler_hidden_act": "tanh"}))
    with pytest.raises(InvalidModelError, match="pooler_hidden_act 'tanh'"):
        un.convert(folder, to="tfhub", out=tmp_path / "tf")
    assert not (tmp_path / "tf").exists()
