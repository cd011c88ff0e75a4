"""The TF Hub adapter: conversion, the SavedModel contracts, parity with the Hugging
Face reference, tokenization, errors and training.

Everything runs the real thing: real SavedModels written by the converter and
loaded through tensorflow_hub, compared against transformers on real text.
The model store is a temporary folder, so the suite passes on a clean machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

if "tfhub" in os.environ.get("UNIFIED_NLP_REQUIRE_BACKENDS", ""):
    # required here: a missing backend (or the reference it is checked against) is a failure
    import tensorflow_hub  # noqa: F401
    import unified_nlp_huggingface  # noqa: F401
    import unified_nlp_tfhub
else:
    pytest.importorskip("tensorflow_hub")
    pytest.importorskip("unified_nlp_huggingface")
    unified_nlp_tfhub = pytest.importorskip("unified_nlp_tfhub")

import unified_nlp as un  # noqa: E402
from unified_nlp.benchdata import read_tsv, sst2_path  # noqa: E402
from unified_nlp.resolve import resolve  # noqa: E402
from unified_nlp.store_keys import converted_dir  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

AWKWARD = [
    "",
    "   ",
    "Café naïve résumé Ångström façade Øre",
    "ΣΑΣ İstanbul ẞ straße ǅ",
    "日本語のテキストと中文文本 한국어",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇩🇪 ♥️",
    "مرحبا بالعالم، هذا فيلم رائع \u200f עברית מימין לשמאל",
    "full-width ＡＢＣ１２３ and ligature ﬁne",
    "no\u00a0break\u2009thin\u3000ideographic\u2028line",
    "replacement \ufffd char, zero\u200bwidth",
    "special tokens [SEP] [CLS]x[MASK] [sep] [UNK][PAD]",
    "a" * 99 + " " + "b" * 100 + " " + "c" * 101 + " " + "é" * 101,
    "supercalifragilisticexpialidocious " * 3,
    "x" * 100_000,  # one word of more than 100 characters: [UNK]
    "word " * 20_000,  # 100,000 characters: truncated to 512 tokens
]


@contextlib.contextmanager
def model_store(path: Path):
    """UNIFIED_NLP_HOME set to `path` for the block only (other test modules keep theirs)."""
    old = os.environ.get("UNIFIED_NLP_HOME")
    os.environ["UNIFIED_NLP_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("UNIFIED_NLP_HOME", None)
        else:
            os.environ["UNIFIED_NLP_HOME"] = old


@pytest.fixture(scope="session")
def tfhub_default(tmp_path_factory):
    """The default model loaded on tfhub from an empty store: converted once, then shared."""
    home = tmp_path_factory.mktemp("unified_nlp_home")
    with model_store(home):
        canonical = resolve("default")
        clf = un.load_classifier("default", backend="tfhub")
        export = converted_dir(canonical, "tfhub")
    return SimpleNamespace(clf=clf, export=export, canonical=canonical, home=home)


@pytest.fixture(scope="session")
def hf_default(tfhub_default):
    return un.load_classifier(tfhub_default.canonical, backend="huggingface")


@pytest.fixture(scope="session")
def sst2():
    return read_tsv(sst2_path("dev"))


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=600
    )


# --- conversion and round trip -------------------------------------------------


def test_export_layout_and_metadata(tfhub_default):
    export = tfhub_default.export
    for name in (
        "encoder/saved_model.pb",
        "preprocessor/saved_model.pb",
        "preprocessor/assets/vocab.txt",
        "head.safetensors",
        "config.json",
        "vocab.txt",
        "tokenizer_config.json",
    ):
        assert (export / name).is_file(), name
    meta = json.loads((export / "unified_nlp.json").read_text())
    assert meta["format"] == "tfhub"
    assert meta["labels"] == ["NEGATIVE", "POSITIVE"] and meta["max_length"] == 512 and meta["pooling"] == "mean"
    assert not list(export.parent.glob(".*partial*")), "a finished conversion leaves no temporary folder"


def test_round_trip_predictions_match_huggingface(tfhub_default, hf_default, sst2):
    texts = sst2[0][:96] + ["This is a great movie!", "Terrible. A waste of two hours."]
    report = un.compare(hf_default, tfhub_default.clf, texts)
    assert report.token_id_equality == 1.0
    assert report.logits_max_abs_diff <= 1e-4 and report.hidden_max_abs_diff <= 1e-4, str(report)
    assert report.argmax_agreement == 1.0 and report.passed
    preds = tfhub_default.clf.predict(["This is a great movie!", "Terrible. A waste of two hours."])
    assert [p.label for p in preds] == ["POSITIVE", "NEGATIVE"]


@pytest.mark.slow
def test_full_sst2_dev_parity(tfhub_default, hf_default, sst2):
    report = un.compare(hf_default, tfhub_default.clf, sst2[0])
    assert report.n_texts == 872 and report.token_id_equality == 1.0
    assert report.logits_max_abs_diff <= 1e-4 and report.argmax_agreement == 1.0, str(report)
    assert tfhub_default.clf.evaluate(*sst2)["accuracy"] >= 0.80


def test_loading_again_reuses_the_conversion(tfhub_default):
    stamp = (tfhub_default.export / "encoder" / "saved_model.pb").stat().st_mtime_ns
    with model_store(tfhub_default.home):
        clf = un.load_classifier("default", backend="tfhub")
    assert (tfhub_default.export / "encoder" / "saved_model.pb").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(clf.logits(["fine"]), tfhub_default.clf.logits(["fine"]))


def test_export_loads_directly_and_converts_back_to_canonical(tfhub_default, hf_default, tmp_path):
    clf = un.load_classifier(tfhub_default.export, backend="tfhub")
    assert clf.backend == "tfhub" and clf.labels == ("NEGATIVE", "POSITIVE")
    back = un.convert(tfhub_default.export, to="huggingface", out=tmp_path / "canonical")
    again = un.load_classifier(back, backend="huggingface")
    texts = ["a gorgeous, witty, seductive movie.", "the plot is nothing but boilerplate clichés"]
    np.testing.assert_allclose(again.logits(texts), hf_default.logits(texts), atol=1e-6)


def test_state_dict_has_the_canonical_names_and_values(tfhub_default, hf_default):
    ours, theirs = tfhub_default.clf.model.state_dict(), hf_default.model.state_dict()
    assert sorted(ours) == sorted(theirs) and "pooler.dense.weight" in ours and "head.bias" in ours
    for name in theirs:
        assert ours[name].shape == theirs[name].shape and ours[name].dtype == np.float32, name
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_inference_is_one_graph_for_every_batch_shape(tfhub_default):
    model, tok = tfhub_default.clf.model, tfhub_default.clf.tokenizer
    for texts in (["a"], ["a b c d e f", "g"], ["x"] * 7):
        model(tok(texts), output_hidden_states=True)
    assert model._infer.experimental_get_tracing_count() == 1


def test_protocol_conformance(tfhub_default):
    from unified_nlp.protocols import Model, Tokenizer

    clf = tfhub_default.clf
    assert isinstance(clf.tokenizer, Tokenizer) and isinstance(clf.model, Model)
    assert clf.tokenizer.vocab_size == 30522 and clf.tokenizer.max_length == 512 and clf.model.num_labels == 2
    enc = clf.tokenizer(["This is a great movie!", "ok"])
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert enc[key].dtype == np.int64 and enc[key].shape == (2, 8)
    out = clf.model(enc, output_hidden_states=True)
    assert out.logits.dtype == np.float32 and out.logits.shape == (2, 2)
    assert out.last_hidden_state.shape == (2, 8, 384) and out.pooled.shape == (2, 384)


# --- the SavedModel contracts ------------------------------------------------------


def test_exported_savedmodels_follow_the_tf_hub_contract_in_a_fresh_process(tfhub_default):
    done = run_python(f"""
        import json, os
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow as tf, tensorflow_hub as hub, tensorflow_text  # noqa: F401
        export = {str(tfhub_default.export)!r}
        layer = hub.KerasLayer(export + "/encoder", trainable=True)
        pre = hub.load(export + "/preprocessor")
        inputs = pre(tf.constant(["hello world", "a second, longer sentence"]))
        out = layer(inputs)
        sig = hub.load(export + "/encoder").signatures["serving_default"]
        spec = lambda s: [s.dtype.name, s.shape.rank]
        tokens = pre.tokenize(tf.constant(["hello world"]))
        packed = pre.bert_pack_inputs([tokens], seq_length=16)
        whole = tf.saved_model.load(export + "/classifier")  # strings -> logits, as TF Serving runs it
        serving = whole.signatures["serving_default"]
        print(json.dumps({{
            "classifier_in": {{k: spec(v) for k, v in serving.structured_input_signature[1].items()}},
            "logits": serving(text=tf.constant(["This is a great movie!", "awful"]))["logits"].numpy().tolist(),
            "pre_keys": sorted(inputs), "pre_shape": inputs["input_word_ids"].shape.as_list(),
            "pre_dtype": inputs["input_word_ids"].dtype.name,
            "call_keys": sorted(out), "layers": len(out["encoder_outputs"]),
            "shapes": {{k: out[k].shape.as_list() for k in ("sequence_output", "pooled_output", "default")}},
            "pooled_is_default": bool(tf.reduce_all(out["pooled_output"] == out["default"])),
            "trainable": len(layer.trainable_weights),
            "sig_in": {{k: spec(v) for k, v in sig.structured_input_signature[1].items()}},
            "sig_out": {{k: spec(v) for k, v in sig.structured_outputs.items()}},
            "tokens_rank": tokens.shape.rank, "tokens_dtype": tokens.dtype.name,
            "packed": packed["input_word_ids"].numpy().tolist(),
        }}))
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["pre_keys"] == ["input_mask", "input_type_ids", "input_word_ids"]
    assert got["pre_shape"] == [2, 128] and got["pre_dtype"] == "int32"
    assert got["call_keys"] == ["default", "encoder_outputs", "pooled_output", "sequence_output"]
    assert got["layers"] == 6 and got["pooled_is_default"] and got["trainable"] == 103
    assert got["shapes"] == {"sequence_output": [2, 128, 384], "pooled_output": [2, 384], "default": [2, 384]}
    assert got["sig_in"] == {k: ["int32", 2] for k in ("input_word_ids", "input_mask", "input_type_ids")}
    assert got["sig_out"] == {
        "sequence_output": ["float32", 3],
        "pooled_output": ["float32", 2],
        "default": ["float32", 2],
        "encoder_outputs": ["float32", 4],
    }
    assert got["tokens_rank"] == 3 and got["tokens_dtype"] == "int32"
    assert got["packed"] == [[101, 7592, 2088, 102] + [0] * 12]
    assert got["classifier_in"] == {"text": ["string", 1]}
    expected = tfhub_default.clf.logits(["This is a great movie!", "awful"])
    assert np.abs(np.array(got["logits"]) - expected).max() < 1e-5


def test_bert_pack_inputs_packs_as_tensorflow_texts_trimmer_and_combiner():
    """The preprocessor packs one or two segments with one scatter; it must give what
    RoundRobinTrimmer + combine_segments + pad_model_inputs (TF Hub's own) give."""
    from unified_nlp_tfhub._tf import text, tf
    from unified_nlp_tfhub.preprocessor import BertPackInputs

    pack = BertPackInputs(cls_id=2, sep_id=3, pad_id=0, default_seq_length=16)
    rng = np.random.default_rng(0)
    for _ in range(40):
        n, batch, length = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(3, 20))
        segments = []
        for _ in range(n):
            lengths = rng.integers(0, 15, size=batch)
            values = tf.constant(rng.integers(5, 100, size=int(lengths.sum())), tf.int32)
            segments.append(tf.RaggedTensor.from_row_lengths(values, tf.constant(lengths, tf.int64)))
        got = pack(segments, tf.constant(length, tf.int32))
        trimmed = text.RoundRobinTrimmer(max_seq_length=length - n - 1).trim(segments)
        ids, types = text.combine_segments(trimmed, start_of_sequence_id=2, end_of_segment_id=3)
        word_ids, mask = text.pad_model_inputs(ids, max_seq_length=length, pad_value=0)
        type_ids, _ = text.pad_model_inputs(types, max_seq_length=length, pad_value=0)
        np.testing.assert_array_equal(got["input_word_ids"].numpy(), word_ids.numpy())
        np.testing.assert_array_equal(got["input_mask"].numpy(), mask.numpy())
        np.testing.assert_array_equal(got["input_type_ids"].numpy(), type_ids.numpy())


def test_importing_the_adapter_is_quiet(tfhub_default):
    done = run_python(f"""
        import unified_nlp as un
        clf = un.load_classifier({str(tfhub_default.export)!r}, backend="tfhub")
        print(clf.predict(["quiet please"])[0].label)
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    for noise in ("oneDNN", "cuda", "absl::InitializeLog", "pkg_resources", "Traceback"):
        assert noise not in done.stderr, done.stderr


def _pair(tmp_path: Path, export: Path, encoder: Path | None = None, labels=("a", "b", "c")) -> Path:
    """A user's own TF Hub folder: encoder/ + preprocessor/ + unified_nlp.json, no head."""
    folder = tmp_path / "pair"
    folder.mkdir()
    shutil.copytree(encoder or export / "encoder", folder / "encoder")
    shutil.copytree(export / "preprocessor", folder / "preprocessor")
    (folder / "unified_nlp.json").write_text(json.dumps({"format": "tfhub", "labels": list(labels)}))
    return folder


def test_a_users_own_tf_hub_pair_loads_with_a_fresh_head(tfhub_default, tmp_path):
    clf = un.load_classifier(_pair(tmp_path, tfhub_default.export), backend="tfhub")
    assert clf.labels == ("a", "b", "c") and clf.model.num_labels == 3
    assert clf.tokenizer.max_length == 128  # the preprocessor's seq_length: the native pair it is (formats.detect)
    probs = clf.predict_proba(["some text", "more text"])
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def _tiny_encoder(out: Path, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Path:
    from unified_nlp_tfhub._tf import tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.emb = tf.Variable(tf.random.normal([30522, 8]))

        @tf.function(input_signature=[{k: tf.TensorSpec([None, None], tf.int32) for k in inputs}])
        def __call__(self, x):
            seq = tf.gather(self.emb, x[inputs[0]])
            values = {"sequence_output": seq, "pooled_output": seq[:, 0], "default": seq[:, 0]}
            return {k: values.get(k, seq) for k in outputs}

    tf.saved_model.save(Tiny(), str(out))
    return out


@pytest.mark.parametrize(
    "inputs, outputs, key",
    [
        (("input_word_ids", "input_mask"), ("sequence_output", "pooled_output"), "input_type_ids"),
        (("input_word_ids", "input_mask", "input_type_ids"), ("pooled_output", "default"), "sequence_output"),
        (("input_word_ids", "input_mask", "input_type_ids"), ("sequence_output", "default"), "pooled_output"),
    ],
)
def test_a_savedmodel_missing_a_contract_key_is_named(tfhub_default, tmp_path, inputs, outputs, key):
    encoder = _tiny_encoder(tmp_path / "tiny", inputs, outputs)
    folder = _pair(tmp_path, tfhub_default.export, encoder)
    with pytest.raises(un.InvalidModelError, match=key) as info:
        un.load_classifier(folder, backend="tfhub")
    assert info.value.__cause__ is None


def _break_garbage(encoder: Path) -> str:
    (encoder / "saved_model.pb").write_bytes(b"\x08\x96\x01 this is not a protocol buffer \xff\xfe")
    return "saved_model.pb"


def _break_no_variables(encoder: Path) -> str:
    shutil.rmtree(encoder / "variables")
    return "variables.index"


def _break_truncated_variables(encoder: Path) -> str:
    data = next((encoder / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:4096])
    return "variables.data-00000-of-00001"


def _break_missing_pb(encoder: Path) -> str:
    (encoder / "saved_model.pb").unlink()
    return "saved_model.pb"


@pytest.mark.parametrize(
    "breaker", [_break_garbage, _break_no_variables, _break_truncated_variables, _break_missing_pb]
)
def test_a_corrupt_savedmodel_gets_a_clear_error_naming_the_file(tfhub_default, tmp_path, breaker):
    folder = _pair(tmp_path, tfhub_default.export)
    name = breaker(folder / "encoder")
    with pytest.raises(un.InvalidModelError, match=name.replace(".", r"\.")) as info:
        un.load_classifier(folder, backend="tfhub")
    error = info.value  # no TensorFlow traceback chained to it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert "Traceback" not in str(error) and len(str(error)) < 800


def test_a_corrupt_preprocessor_is_named(tfhub_default, tmp_path):
    folder = _pair(tmp_path, tfhub_default.export)
    (folder / "preprocessor" / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(un.InvalidModelError, match=r"preprocessor.*saved_model\.pb"):
        un.load_classifier(folder, backend="tfhub")


# --- tokenization ----------------------------------------------------------------------


@pytest.fixture(scope="session", params=["adapter", "preprocessor"])
def tokenizer(request, tfhub_default):
    """The adapter's tokenizer (the folder's tokenizer.json), and the exported TF Hub
    preprocessor SavedModel behind the same protocol (what a user's own TF Hub pair gets)."""
    if request.param == "adapter":
        return tfhub_default.clf.tokenizer
    export = tfhub_default.export
    return unified_nlp_tfhub.TFHubTokenizer(export / "preprocessor", 512, export / "vocab.txt")


def test_token_ids_equal_huggingface_on_awkward_text(tfhub_default, hf_default, tokenizer):
    texts = tfhub_default.clf.preprocess(AWKWARD)  # the core's cleaning, as predict applies it
    ours, theirs = tokenizer(texts), hf_default.tokenizer(texts)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    np.testing.assert_array_equal(ours.truncated, theirs.truncated)
    assert ours.input_ids.shape[1] == 512 and ours.truncated[-1] and not ours.truncated[:-1].any()
    assert ours.input_ids[0, :2].tolist() == [101, 102]  # the empty string is [CLS] [SEP]


@pytest.mark.parametrize(
    "options", [{"max_length": 8}, {"padding": "max_length", "max_length": 16}, {"truncation": False}]
)
def test_tokenizer_options_match_huggingface(hf_default, tokenizer, options):
    texts = ["a short one", "a much longer sentence that needs more than eight tokens", ""]
    ours, theirs = tokenizer(texts, **options), hf_default.tokenizer(texts, **options)
    np.testing.assert_array_equal(ours.input_ids, theirs.input_ids)
    np.testing.assert_array_equal(ours.truncated, theirs.truncated)


def test_sentence_pairs_match_huggingface(hf_default, tokenizer):
    first = ["A man plays a guitar.", "great", "", "Café naïve 日本語"]
    second = ["A person makes music.", "it was bad", "only the second", ""]
    ours, theirs = tokenizer(first, text_pair=second), hf_default.tokenizer(first, text_pair=second)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert set(ours.token_type_ids[0].tolist()) == {0, 1}
    # truncated pairs: the longer text gives way, in both (an odd budget can split differently:
    # transformers gives the extra token to the longer text, TF Hub's round robin to the first)
    long_first = ["word " * 40 + "end", "short"]
    long_second = ["short", "word " * 40 + "end"]
    ours = tokenizer(long_first, text_pair=long_second, max_length=16)
    theirs = hf_default.tokenizer(long_first, text_pair=long_second, max_length=16)
    assert ours.input_ids.shape == theirs.input_ids.shape == (2, 16) and ours.truncated.all()
    np.testing.assert_array_equal(ours.input_ids, theirs.input_ids)


def test_decode_matches_huggingface(hf_default, tokenizer, sst2):
    texts = sst2[0][:50] + ["Don't stop... it's [SEP] great!", "café 日本"]
    enc = hf_default.tokenizer(texts)
    for row in enc.input_ids:
        for skip in (True, False):
            assert tokenizer.decode(row, skip) == hf_default.tokenizer.decode(row, skip)


def test_a_users_own_tf_hub_pair_classifies_sentence_pairs(tfhub_default, tmp_path):
    clf = un.load_classifier(_pair(tmp_path, tfhub_default.export), backend="tfhub")
    assert isinstance(clf.tokenizer, unified_nlp_tfhub.TFHubTokenizer)
    pairs = [("A man plays a guitar.", "A person makes music."), ("great", "bad")]
    np.testing.assert_array_equal(clf.logits(pairs), clf.logits([a for a, _ in pairs], text_pair=[b for _, b in pairs]))
    assert not np.allclose(clf.logits(pairs), clf.logits([a for a, _ in pairs]), atol=1e-4)


# --- conversion failures -----------------------------------------------------------------


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_a_failed_conversion_leaves_no_output(tfhub_default, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(tfhub_default.canonical, source)
    weights = source / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out = tmp_path / "out"
    with pytest.raises(un.InvalidModelError, match="model.safetensors"):
        unified_nlp_tfhub.TFHubBackend().convert(source, out)
    assert not out.exists() and not _leftovers(out)


def test_a_conversion_that_fails_midway_leaves_nothing_and_keeps_an_older_export(tfhub_default, tmp_path, monkeypatch):
    from unified_nlp_tfhub import converter

    def explode(self, out):
        raise RuntimeError("disk full")

    monkeypatch.setattr(converter.BertPreprocessor, "save", explode)
    # an empty store: a conversion cached there (keyed by content) would be copied, not redone
    monkeypatch.setenv("UNIFIED_NLP_HOME", str(tmp_path / "empty-store"))
    out = tmp_path / "out"
    with pytest.raises(un.ConversionError, match="disk full"):
        un.convert(tfhub_default.canonical, to="tfhub", out=out)
    assert not out.exists() and not _leftovers(out)
    out.mkdir()
    (out / "keep.txt").write_text("previous export")
    with pytest.raises(un.ConversionError):
        un.convert(tfhub_default.canonical, to="tfhub", out=out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and not _leftovers(out)


# --- training ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_data(sst2):
    texts, labels = sst2
    return texts[100:124], labels[100:124]


def test_training_lowers_the_loss_and_matches_huggingface(tfhub_default, train_data, tmp_path):
    options = dict(epochs=3, batch_size=8, learning_rate=1e-4, seed=0, progress=False)
    runs = {}
    for backend, folder in (("huggingface", tfhub_default.canonical), ("tfhub", tfhub_default.export)):
        clf = un.load_classifier(folder, backend=backend, labels=["neg", "pos"])
        runs[backend] = (clf, clf.fit(*train_data, **options))
    (hf, hf_hist), (tf_clf, tf_hist) = runs["huggingface"], runs["tfhub"]
    first_hf, first_tf = hf_hist["loss"][0], tf_hist["loss"][0]
    assert abs(first_tf - first_hf) / first_hf <= 1e-3
    np.testing.assert_allclose(tf_hist["loss"], hf_hist["loss"], rtol=1e-3)  # AdamW and clipping as torch's
    assert tf_hist["epoch_loss"][-1] < tf_hist["epoch_loss"][0]
    # the trained weights are read back from the SavedModel's own variables, and save canonically
    saved = tf_clf.save(tmp_path / "trained")
    served = un.load_classifier(saved, backend="huggingface")
    texts = train_data[0][:8]
    np.testing.assert_allclose(served.logits(texts), tf_clf.logits(texts), atol=1e-4)
    np.testing.assert_allclose(tf_clf.logits(texts), hf.logits(texts), atol=1e-3)


def test_freeze_encoder_trains_only_the_head(tfhub_default, train_data):
    clf = un.load_classifier(tfhub_default.export, backend="tfhub", labels=["neg", "pos"])
    before = clf.model.state_dict()
    clf.fit(*train_data, epochs=1, batch_size=12, freeze_encoder=True, progress=False)
    after = clf.model.state_dict()
    changed = sorted(k for k in before if not np.array_equal(before[k], after[k]))
    assert changed == ["head.bias", "head.weight"]


def test_dropout_other_than_zero_is_a_clear_error(tfhub_default, train_data):
    clf = un.load_classifier(tfhub_default.export, backend="tfhub")
    with pytest.raises(un.InvalidInputError, match="dropout"):
        clf.fit(*train_data, dropout=0.1, progress=False)
