"""TF Hub SavedModels as their users have them (no unified_nlp.json): an encoder +
preprocessor pair in tfhub.dev's layout, a text-embedding module, a tf_keras
classifier saved with ``model.save`` and a Keras 3 ``model.export()``.

Each fixture is a real SavedModel written by TensorFlow here (tiny: hidden 32, 2
layers) and checked against its own forward, run with tensorflow_hub / tf directly.
Built once per session.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

if "tfhub" in os.environ.get("UNIFIED_NLP_REQUIRE_BACKENDS", ""):
    import tensorflow_hub  # noqa: F401
    import unified_nlp_huggingface  # noqa: F401
    import unified_nlp_tfhub
else:
    pytest.importorskip("tensorflow_hub")
    pytest.importorskip("unified_nlp_huggingface")
    unified_nlp_tfhub = pytest.importorskip("unified_nlp_tfhub")

from unified_nlp_tfhub import hub_folders as native  # noqa: E402
from unified_nlp_tfhub._tf import hub, tf  # noqa: E402
from unified_nlp_tfhub.backend import TFHubBackend  # noqa: E402

import unified_nlp as un  # noqa: E402
from unified_nlp import architectures  # noqa: E402
from unified_nlp.classifier import TextClassifier  # noqa: E402
from unified_nlp.errors import ConversionError, InvalidInputError, InvalidModelError, UnifiedNLPError  # noqa: E402
from unified_nlp.folder import initial_head  # noqa: E402
from unified_nlp.weights import load_file  # noqa: E402

from .checkpoints import make_checkpoint  # noqa: E402
from .conftest import require  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

TEXTS = [
    "a gripping, beautifully acted film",
    "the plot is thin and the jokes fall flat",
    "A man plays a guitar.",
    "Café naïve résumé 日本語 😀",
    "",
    "word " * 80,  # longer than the encoder's 64 positions: truncated
]
LABELS = ["negative", "neutral", "positive"]
TOL = 1e-5


# --- fixtures: SavedModels written by TensorFlow, once per session ------------------------


@pytest.fixture(scope="session")
def native_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfhub_native")


@pytest.fixture(scope="session")
def bert_hf(native_dir):
    return make_checkpoint("bert", native_dir / "bert-hf", scale=8)


@pytest.fixture(scope="session")
def bert_export(native_dir, bert_hf):
    """Our exporter's TF Hub form of the tiny BERT classifier (encoder/, preprocessor/, classifier/, ...)."""
    out = native_dir / "bert-export"
    un.convert(bert_hf, to="tfhub", out=out)
    return out


@pytest.fixture(scope="session")
def pair(native_dir, bert_export):
    """tfhub.dev's layout: encoder/ and preprocessor/ SavedModels and nothing else (our exporter's,
    with unified_nlp.json, head, config and tokenizer files stripped)."""
    export = bert_export
    out = native_dir / "pair"
    out.mkdir()
    for name in ("encoder", "preprocessor"):
        shutil.copytree(export / name, out / name)
    return out


@pytest.fixture(scope="session")
def independent_pair(native_dir, pair):
    """A pair built without the adapter (tests/tfhub_native_fixtures.py): an einsum BERT with tanh GELU
    under TF Hub's names, and tfhub.dev's preprocessor recipe on tensorflow_text's BertTokenizer."""
    from .tfhub_native_fixtures import IndependentBert, TFHubStylePreprocessor

    out = native_dir / "independent"
    out.mkdir()
    IndependentBert(vocab=600).save(out / "encoder")
    TFHubStylePreprocessor(pair / "preprocessor" / "assets" / "vocab.txt").save(out / "preprocessor")
    return out


class _Embedding(tf.Module):
    """A text embedding as NNLM-style modules are: lower-case, split on spaces, look up, average."""

    def __init__(self):
        super().__init__()
        vocab = ["<unk>", "a", "film", "the", "plot", "is", "thin", "man", "plays", "guitar.", "word", "jokes"]
        init = tf.lookup.KeyValueTensorInitializer(tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64))
        self.table = tf.lookup.StaticHashTable(init, 0)
        self.embeddings = tf.Variable(tf.random.stateless_normal([len(vocab), 16], seed=[3, 4]), name="embeddings")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, strings):
        words = tf.strings.split(tf.strings.lower(strings))
        vectors = tf.ragged.map_flat_values(
            tf.gather, self.embeddings, tf.ragged.map_flat_values(self.table.lookup, words)
        )
        total = tf.reduce_sum(vectors, axis=1)
        count = tf.cast(words.row_lengths(), tf.float32)[:, None]
        return tf.math.divide_no_nan(total, count)


@pytest.fixture(scope="session")
def embedding(native_dir):
    module = _Embedding()
    root = tf.train.Checkpoint()  # the reusable-SavedModel attributes TF Hub modules carry
    root.module = module
    root.__call__ = module.__call__
    root.variables = [module.embeddings]
    root.trainable_variables = [module.embeddings]
    root.regularization_losses = []
    out = native_dir / "embedding"
    tf.saved_model.save(root, str(out))
    return out


@pytest.fixture(scope="session")
def keras2(native_dir, pair):
    """strings -> hub.KerasLayer(preprocessor) -> hub.KerasLayer(encoder)['pooled_output'] -> Dense(3),
    saved by tf_keras model.save(save_format="tf")."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    strings = tf_keras.Input(shape=(), dtype=tf.string)
    packed = hub.KerasLayer(str(pair / "preprocessor"))(strings)
    pooled = hub.KerasLayer(str(pair / "encoder"), trainable=True)(packed)["pooled_output"]
    logits = tf_keras.layers.Dense(3, kernel_initializer=tf_keras.initializers.RandomNormal(stddev=0.5))(pooled)
    model = tf_keras.Model(strings, logits)
    out = native_dir / "keras2"
    model.save(str(out), save_format="tf")
    return out


@pytest.fixture(scope="session")
def keras3(native_dir):
    """A Keras 3 model (TextVectorization -> Embedding -> average -> Dense) exported with model.export()."""
    import keras

    keras.utils.set_random_seed(0)
    vectorize = keras.layers.TextVectorization(max_tokens=40, output_mode="int", output_sequence_length=12)
    vectorize.adapt(TEXTS)
    strings = keras.Input(shape=(1,), dtype="string")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(40, 8)(vectorize(strings)))
    model = keras.Model(strings, keras.layers.Dense(2)(x))
    out = native_dir / "keras3"
    model.export(str(out))
    return out


def on_tfhub(path, **options) -> TextClassifier:
    """Load a native SavedModel the way the core's dispatch does: savedmodel_spec, then TFHubBackend.load."""
    spec = native.savedmodel_spec(Path(path), **options)
    tokenizer, model = TFHubBackend().load(Path(path), spec)
    return TextClassifier(tokenizer, model, spec.labels, "tfhub", None, spec)


# --- each kind on tfhub, against its own forward --------------------------------------------


def _pair_reference(pair, texts, head_of):
    pre, enc = hub.load(str(pair / "preprocessor")), hub.load(str(pair / "encoder"))
    packed = pre(tf.constant(texts))
    out = enc(packed)
    return head_of(out, packed["input_mask"].numpy())


def test_a_pair_loads_with_pooled_output_and_a_fresh_head(pair):
    clf = on_tfhub(pair, labels=LABELS, seed=3)
    spec = clf.spec
    assert (spec.extra["kind"], spec.pooling, spec.architecture, spec.extra["convertible"]) == (
        "encoder-pair",
        "pooled_output",
        "bert",
        True,
    )
    head = architectures.get("bert").fresh_head(spec.extra["config"], 3, 3)  # the core's draw, as on every backend
    ref = _pair_reference(
        pair, TEXTS, lambda out, _: out["pooled_output"].numpy() @ head["classifier.weight"].T + head["classifier.bias"]
    )
    assert np.abs(clf.logits(TEXTS) - ref).max() < TOL
    assert clf.predict(TEXTS[:1])[0].label in LABELS


def test_a_pair_in_two_folders_with_mean_pooling(pair):
    clf = on_tfhub(pair / "encoder", preprocessor=pair / "preprocessor", labels=LABELS, pooling="mean")
    head = initial_head(3, 32, 0)

    def mean_head(out, mask):
        states = out["sequence_output"].numpy()
        pooled = (states * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled @ head["weight"].T + head["bias"]

    assert np.abs(clf.logits(TEXTS) - _pair_reference(pair, TEXTS, mean_head)).max() < TOL


def test_an_independently_built_pair_loads_and_converts(independent_pair, native_dir):
    clf = on_tfhub(independent_pair, labels=["no", "yes"], seed=2)
    head = architectures.get("bert").fresh_head(clf.spec.extra["config"], 2, 2)
    ref = _pair_reference(
        independent_pair,
        TEXTS[:5],
        lambda out, _: out["pooled_output"].numpy() @ head["classifier.weight"].T + head["classifier.bias"],
    )
    assert np.abs(clf.logits(TEXTS[:5]) - ref).max() < TOL
    canonical = native_dir / "independent-hf"
    native.to_canonical(independent_pair, canonical)
    config = json.loads((canonical / "config.json").read_text())
    assert (config["hidden_act"], config["architectures"]) == ("gelu_new", ["BertModel"])  # found by running it
    hf = un.load_classifier(canonical, backend="huggingface", labels=["no", "yes"], seed=2)
    assert np.abs(hf.logits(TEXTS) - clf.logits(TEXTS)).max() < TOL
    # tokenizer.json written from the preprocessor's vocabulary gives tensorflow_text's ids
    ids = hf.tokenizer(TEXTS[:5]).input_ids
    assert np.array_equal(ids, clf.tokenizer(TEXTS[:5]).input_ids)


def test_a_pair_with_its_own_head_loads_trains_and_converts_with_it(pair, tmp_path):
    from unified_nlp.weights import save_file

    folder = tmp_path / "with-head"
    shutil.copytree(pair, folder)
    rng = np.random.default_rng(5)
    head = {
        "classifier.weight": rng.standard_normal((2, 32)).astype(np.float32),
        "classifier.bias": np.ones(2, np.float32),
    }
    save_file(head, folder / "head.safetensors")  # beside encoder/: a given head, under transformers' names
    clf = on_tfhub(folder)
    assert clf.labels == ("LABEL_0", "LABEL_1") and not clf.spec.fresh_head
    ref = _pair_reference(
        folder,
        TEXTS,
        lambda out, _: out["pooled_output"].numpy() @ head["classifier.weight"].T + head["classifier.bias"],
    )
    assert np.abs(clf.logits(TEXTS) - ref).max() < TOL
    native.to_canonical(folder, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and config["id2label"]["1"] == "LABEL_1"
    hf = un.load_classifier(tmp_path / "hf", backend="huggingface", labels=["bad", "good"])  # renames LABEL_i
    assert hf.labels == ("bad", "good") and np.abs(hf.logits(TEXTS) - ref).max() < TOL
    history = clf.fit(TEXTS[:4], ["LABEL_0", "LABEL_1"] * 2, epochs=2, batch_size=2, progress=False)
    assert np.isfinite(history["loss"]).all() and not np.allclose(clf.logits(TEXTS), ref)


def test_a_text_embedding_under_a_trainable_head(embedding):
    clf = on_tfhub(embedding, labels=["neg", "pos"], seed=1)
    assert clf.spec.extra["kind"] == "embedding" and clf.spec.extra["trainable"] and not clf.spec.extra["convertible"]
    head = initial_head(2, 16, 1)
    ref = hub.load(str(embedding))(tf.constant(TEXTS)).numpy() @ head["weight"].T + head["bias"]
    assert np.abs(clf.logits(TEXTS) - ref).max() < TOL
    before = clf.model._encoder_variables[0].numpy().copy()
    history = clf.fit(
        TEXTS[:4] * 4, ["pos", "neg", "pos", "neg"] * 4, epochs=3, batch_size=4, learning_rate=0.05, progress=False
    )
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    assert not np.array_equal(before, clf.model._encoder_variables[0].numpy())  # the module trained too
    with pytest.raises(InvalidModelError, match="labels"):
        native.savedmodel_spec(embedding)


def test_a_tf_keras_classifier_runs_as_a_black_box(keras2):
    clf = on_tfhub(keras2)
    assert clf.labels == ("LABEL_0", "LABEL_1", "LABEL_2") and clf.spec.extra["convertible"]
    ref = hub.KerasLayer(str(keras2))(tf.constant(TEXTS)).numpy()
    assert np.abs(clf.logits(TEXTS) - ref).max() < TOL
    report = clf.evaluate(TEXTS[:3], ["LABEL_0", "LABEL_1", "LABEL_2"])
    assert 0.0 <= report["accuracy"] <= 1.0
    with pytest.raises(UnifiedNLPError, match="black box"):
        clf.fit(TEXTS[:2], ["LABEL_0", "LABEL_1"], progress=False)
    with pytest.raises(InvalidInputError, match="3 outputs"):
        native.savedmodel_spec(keras2, labels=["a", "b"])


def test_a_keras3_export_runs_and_says_why_it_cannot_move(keras3, tmp_path):
    clf = on_tfhub(keras3, labels=["no", "yes"])
    exported = tf.saved_model.load(str(keras3))  # held: a restored function needs its object alive
    ref = exported.serve(tf.constant([[t] for t in TEXTS])).numpy()
    assert np.abs(clf.logits(TEXTS) - ref).max() < TOL
    assert not clf.spec.extra["convertible"] and "BERT naming" in clf.spec.extra["why"]
    with pytest.raises(ConversionError, match="BERT naming"):
        native.to_canonical(keras3, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_inspect_names_each_kind(pair, embedding, keras2, keras3):
    kinds = {p.name: native.inspect_savedmodel(p) for p in (pair, embedding, keras2, keras3)}
    assert {k: (v["kind"], v["convertible"]) for k, v in kinds.items()} == {
        "pair": ("encoder-pair", True),
        "embedding": ("embedding", False),
        "keras2": ("keras-classifier", True),
        "keras3": ("keras-classifier", False),
    }
    assert kinds["pair"]["labels"] is None and kinds["keras3"]["labels"] == ["LABEL_0", "LABEL_1"]


def test_unified_nlp_inspect_on_each_kind(capsys, pair, embedding, keras2, keras3):
    from unified_nlp.cli import main

    every = ["huggingface", "tfhub", "paddlenlp", "onnxruntime"]
    expected = {pair: (every, "native"), keras2: (every, "native"), embedding: (["tfhub"], None)}
    expected[keras3] = (["tfhub"], None)
    for folder, (runs_on, head) in expected.items():
        assert main(["inspect", str(folder), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["format"] == "tfhub-savedmodel" and info["runs_on"] == runs_on, folder.name
        assert info["converts_to"] == (every if head else []) and (head is not None or info["why"])
        if head == "native":
            assert info["architecture"] == "bert" and info["model_class"] in (
                "BertModel",
                "BertForSequenceClassification",
            )
    assert main(["inspect", str(pair)]) == 0
    text = capsys.readouterr().out
    assert "tfhub-savedmodel: TensorFlow SavedModel" in text and "preprocessor:" in text


# --- migration: to Hugging Face, on to PaddleNLP, and back ----------------------------------


@pytest.fixture(scope="session")
def keras2_hf(native_dir, keras2):
    out = native_dir / "keras2-hf"
    native.to_canonical(keras2, out)
    return out


def test_a_keras_classifier_converts_with_its_dense_head(keras2, keras2_hf):
    import transformers

    ref = hub.KerasLayer(str(keras2))(tf.constant(TEXTS)).numpy()
    clf = un.load_classifier(keras2_hf, backend="huggingface")
    assert np.abs(clf.logits(TEXTS) - ref).max() < TOL
    # plain transformers reads it, tokenizer included
    model = transformers.AutoModelForSequenceClassification.from_pretrained(keras2_hf).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(keras2_hf)
    import torch

    with torch.no_grad():
        logits = model(**tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt")).logits.numpy()
    assert np.abs(logits - ref).max() < TOL


def test_a_keras_classifier_on_the_mean_of_sequence_output_converts_to_the_mean_head(pair, tmp_path):
    import tf_keras

    strings = tf_keras.Input(shape=(), dtype=tf.string)
    packed = hub.KerasLayer(str(pair / "preprocessor"))(strings)
    states = hub.KerasLayer(str(pair / "encoder"))(packed)["sequence_output"]
    mask = tf_keras.layers.Lambda(lambda m: tf.cast(m, tf.float32)[:, :, None])(packed["input_mask"])
    mean = tf_keras.layers.Lambda(lambda a: tf.reduce_sum(a[0] * a[1], 1) / tf.reduce_sum(a[1], 1))([states, mask])
    model = tf_keras.Model(strings, tf_keras.layers.Dense(2)(mean))
    model.save(str(tmp_path / "keras"), save_format="tf")
    native.to_canonical(tmp_path / "keras", tmp_path / "hf")
    assert json.loads((tmp_path / "hf" / "unified_nlp.json").read_text())["head"] == "mean"
    clf = un.load_classifier(tmp_path / "hf", backend="huggingface")
    ref = hub.KerasLayer(str(tmp_path / "keras"))(tf.constant(TEXTS)).numpy()
    assert np.abs(clf.logits(TEXTS) - ref).max() < TOL


def test_a_pair_converts_and_comes_back_bit_exact(pair, native_dir, tmp_path):
    canonical = native_dir / "pair-hf"
    native.to_canonical(pair, canonical)
    tfhub = on_tfhub(pair, labels=LABELS)
    hf = un.load_classifier(canonical, backend="huggingface", labels=LABELS)  # the same fresh head, drawn by the core
    assert np.abs(hf.logits(TEXTS) - tfhub.logits(TEXTS)).max() < TOL
    back = tmp_path / "back"
    un.convert(canonical, to="tfhub", out=back)
    original = {v.name: v.numpy() for v in hub.load(str(pair / "encoder")).variables}
    again = {v.name: v.numpy() for v in hub.load(str(back / "encoder")).variables}
    assert original.keys() == again.keys()
    assert all(np.array_equal(original[k], again[k]) for k in original)


def test_a_converted_keras_classifier_moves_on_to_paddlenlp_and_back(keras2, keras2_hf, tmp_path):
    require("paddlenlp")
    ref = hub.KerasLayer(str(keras2))(tf.constant(TEXTS)).numpy()
    paddle_dir = tmp_path / "paddle"
    un.convert(keras2_hf, to="paddlenlp", out=paddle_dir)
    clf = un.load_classifier(paddle_dir, backend="paddlenlp")
    assert np.abs(clf.logits(TEXTS) - ref).max() < TOL
    back = tmp_path / "back"
    un.convert(paddle_dir, to="huggingface", out=back)
    a, b = load_file(keras2_hf / "model.safetensors"), load_file(back / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_the_text_embedding_cannot_leave_tensorflow(embedding, tmp_path):
    with pytest.raises(ConversionError, match="no architecture"):
        native.to_canonical(embedding, tmp_path / "out")


# --- exports that plain TensorFlow tools run -----------------------------------------------


def test_a_tfhub_export_ships_a_classifier_savedmodel(bert_hf, bert_export):
    source = un.load_classifier(bert_hf, backend="huggingface")
    loaded = tf.saved_model.load(str(bert_export / "classifier"))  # held: its signatures need it alive
    serve, pairs = loaded.signatures["serving_default"], loaded.signatures["pairs"]
    assert np.abs(serve(text=tf.constant(TEXTS))["logits"].numpy() - source.logits(TEXTS)).max() < TOL
    second = ["music", "", "A person makes music.", "x", "y", "word " * 40]
    got = pairs(text=tf.constant(TEXTS), text_pair=tf.constant(second))["logits"].numpy()
    assert np.abs(got - source.logits(TEXTS, text_pair=second)).max() < TOL
    meta = json.loads((bert_export / "unified_nlp.json").read_text())
    assert meta["classifier_dir"] == "classifier" and meta["labels"] == list(source.labels)
    # hub.KerasLayer runs the encoder and the preprocessor, as tfhub.dev's pages show
    packed = hub.KerasLayer(str(bert_export / "preprocessor"))(tf.constant(TEXTS))
    assert hub.KerasLayer(str(bert_export / "encoder"))(packed)["pooled_output"].shape == (len(TEXTS), 32)


# --- broken and hostile SavedModels ---------------------------------------------------------


def test_a_missing_variables_folder_is_a_clear_error(pair, tmp_path):
    broken = tmp_path / "pair"
    shutil.copytree(pair, broken)
    shutil.rmtree(broken / "encoder" / "variables")
    with pytest.raises(InvalidModelError, match="variables"):
        native.savedmodel_spec(broken, labels=LABELS)


def test_a_pair_that_disagrees_on_the_vocabulary_is_refused(pair, tmp_path):
    from unified_nlp_tfhub.preprocessor import BertPreprocessor

    vocab = (pair / "preprocessor" / "assets" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    vocab += [f"extra{i}" for i in range(50)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertPreprocessor(tmp_path / "vocab.txt").save(tmp_path / "preprocessor")
    with pytest.raises(InvalidModelError, match="vocabulary"):
        native.savedmodel_spec(pair / "encoder", preprocessor=tmp_path / "preprocessor", labels=LABELS)


def test_an_unknown_signature_and_a_lone_encoder_are_clear_errors(pair, tmp_path):
    class Scorer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x):
            return tf.reduce_sum(x, axis=1)

    tf.saved_model.save(Scorer(), str(tmp_path / "scorer"))
    with pytest.raises(InvalidModelError, match="unknown signature"):
        native.savedmodel_spec(tmp_path / "scorer", labels=LABELS)
    with pytest.raises(InvalidModelError, match="preprocessor"):
        native.savedmodel_spec(pair / "encoder", labels=LABELS)
    with pytest.raises(InvalidModelError, match="labels"):
        native.savedmodel_spec(pair)


def test_mean_pooling_reaches_the_other_backends_and_the_head_file_keys_the_import(pair, tmp_path):
    """pooling='mean' on huggingface runs the mean-head extension with the same fresh head as
    tfhub; a changed head.safetensors beside encoder/ makes a new import, not a stale one."""
    on_tf = un.load_classifier(pair, backend="tfhub", labels=LABELS, pooling="mean")
    on_hf = un.load_classifier(pair, backend="huggingface", labels=LABELS, pooling="mean")
    assert on_hf.spec.head == "mean" and np.abs(on_hf.logits(TEXTS) - on_tf.logits(TEXTS)).max() < TOL
    pooled = un.load_classifier(pair, backend="huggingface", labels=LABELS)
    assert pooled.spec.head == "native" and np.abs(pooled.logits(TEXTS) - on_hf.logits(TEXTS)).max() > 1e-4

    own = Path(shutil.copytree(pair, tmp_path / "pair"))
    head = initial_head(3, 32, 5)
    from unified_nlp.weights import save_file

    save_file({"classifier.weight": head["weight"], "classifier.bias": head["bias"] + 1.0}, own / "head.safetensors")
    first = un.load_classifier(own, backend="huggingface", labels=LABELS)
    save_file({"classifier.weight": head["weight"], "classifier.bias": head["bias"] - 1.0}, own / "head.safetensors")
    second = un.load_classifier(own, backend="huggingface", labels=LABELS)
    assert first.source != second.source
    assert np.abs((first.logits(TEXTS) - second.logits(TEXTS)) - 2.0).max() < 1e-5


@pytest.fixture(scope="session")
def described_pair(native_dir, pair):
    """The pair with our own unified_nlp.json (``"format": "tfhub"`` and labels, no config.json), as
    earlier versions had a user lay out a TF Hub pair."""
    out = native_dir / "described-pair"
    shutil.copytree(pair, out)
    (out / "unified_nlp.json").write_text(json.dumps({"format": "tfhub", "labels": LABELS}))
    return out


@pytest.mark.parametrize("backend", ["huggingface", "tfhub", "paddlenlp"])
def test_a_pair_with_our_unified_nlp_json_loads_as_the_pair_without_it(described_pair, pair, backend):
    require(backend)
    described = un.load_classifier(described_pair, backend=backend)
    plain = un.load_classifier(pair, backend=backend, labels=LABELS)
    assert described.labels == plain.labels == tuple(LABELS)
    np.testing.assert_allclose(described.logits(TEXTS), plain.logits(TEXTS), atol=TOL, rtol=0)


def test_a_pair_with_our_unified_nlp_json_converts_and_inspects(described_pair, tmp_path):
    info = un.inspect_model(described_pair)
    assert info["format"] == "tfhub-savedmodel" and info["labels"] == LABELS
    assert info["runs_on"][:3] == ["huggingface", "tfhub", "paddlenlp"]
    out = un.convert(described_pair, to="huggingface", out=tmp_path / "hf")
    assert (out / "config.json").is_file()
