"""Deployment exports loaded as black boxes on their own stack, with the tokenizer of their folder.

ONNX: a tiny transformers classifier exported with torch.onnx in Hugging Face Optimum's layout
(model.onnx, model_quantized.onnx from ONNX Runtime's quantize_dynamic, config.json, the
tokenizer files; inputs input_ids/attention_mask/token_type_ids and output logits with
dynamic axes batch_size/sequence_length, opset 14), run on the onnxruntime backend. The
reference is ONNX Runtime's own InferenceSession fed by transformers' tokenizer; the training
checkpoint it came from is compared through `un.compare`.

TensorFlow: a tf.Module SavedModel with the TF Serving classify shape (strings in; classes and
scores out) and a single-file Keras model taking strings, on the tfhub backend, against
tf.saved_model.load and keras.models.load_model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.checkpoints import LABELS, make_checkpoint
from tests.conftest import require, require_module
from unified_nlp.errors import NotSupportedError

TEXTS = [
    "This is a great movie!",
    "a dull , lifeless script",
    "Café naïve 日本語 😀",
    "ok",
    "the acting is superb , but the plot drags on and on for far too long",
    "",
]
GOLD = ["positive", "negative", "neutral", "neutral", "positive", "negative"]
OPTIMUM_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


# --- ONNX, Optimum's layout ---------------------------------------------------------------


def _optimum_export(checkpoint: Path, out: Path) -> Path:
    """What `optimum-cli export onnx --task text-classification` writes, made with torch.onnx
    (Optimum cannot be installed beside transformers 5): the same names, axes and files."""
    torch = require_module("torch")
    transformers = require_module("transformers")
    require_module("onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # eager attention: the TorchScript exporter (Optimum's) traces sdpa's mask of the example batch into the graph
    model = transformers.AutoModelForSequenceClassification.from_pretrained(checkpoint, attn_implementation="eager")
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    example = tokenizer(["a short one", "and a longer example text"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in OPTIMUM_INPUTS} | {"logits": {0: "batch_size"}}
    out.mkdir(parents=True)
    with torch.no_grad():
        torch.onnx.export(
            model.eval(),
            tuple(example[name] for name in OPTIMUM_INPUTS),
            str(out / "model.onnx"),
            input_names=OPTIMUM_INPUTS,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=14,
            do_constant_folding=True,
            dynamo=False,
        )
    model.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    quantize_dynamic(out / "model.onnx", out / "model_quantized.onnx", weight_type=QuantType.QInt8)
    return out


@pytest.fixture(scope="session")
def optimum(tmp_path_factory) -> tuple[Path, Path]:
    """(the Optimum-layout folder, the training checkpoint it was exported from)."""
    require("onnxruntime")
    root = tmp_path_factory.mktemp("optimum")
    checkpoint = make_checkpoint("bert", root / "checkpoint", scale=8)
    return _optimum_export(checkpoint, root / "onnx"), checkpoint


def _ort_logits(folder: Path, texts, graph: str = "model.onnx") -> np.ndarray:
    """ONNX Runtime's own session on the graph, fed by transformers' tokenizer of the folder."""
    import onnxruntime
    import transformers

    session = onnxruntime.InferenceSession(str(folder / graph), providers=["CPUExecutionProvider"])
    batch = transformers.AutoTokenizer.from_pretrained(folder)(list(texts), padding=True, truncation=True)
    feed = {name: np.asarray(batch[name], np.int64) for name in OPTIMUM_INPUTS}
    return session.run(["logits"], feed)[0]


def test_an_optimum_onnx_folder_runs_as_onnxruntime_runs_it(optimum):
    import unified_nlp as un

    folder, _ = optimum
    clf = un.load_classifier(folder, backend="onnxruntime")
    assert list(clf.labels) == list(LABELS) and clf.backend == "onnxruntime"
    want = _ort_logits(folder, TEXTS)
    got = clf.logits(TEXTS)
    assert np.abs(got - want).max() <= 1e-6, np.abs(got - want).max()
    assert np.ptp(want, axis=0).max() > 0.1  # the texts give different logits: a wrong input shows
    assert [p.label for p in clf.predict(TEXTS)] == [LABELS[i] for i in want.argmax(1)]
    report = clf.evaluate(TEXTS, GOLD)
    assert report["accuracy"] == pytest.approx(np.mean([LABELS[i] == g for i, g in zip(want.argmax(1), GOLD)]))


def test_the_quantized_graph_runs_at_int8(optimum):
    import unified_nlp as un

    folder, _ = optimum
    clf = un.load_classifier(folder, backend="ort", precision="int8")
    want = _ort_logits(folder, TEXTS, "model_quantized.onnx")
    assert np.abs(clf.logits(TEXTS) - want).max() <= 1e-6
    assert np.abs(want - _ort_logits(folder, TEXTS)).max() > 1e-4  # it is another graph


def test_compare_with_the_checkpoint_it_was_exported_from(optimum):
    import unified_nlp as un

    folder, checkpoint = optimum
    report = un.compare(
        un.load_classifier(folder, backend="onnxruntime"), un.load_classifier(checkpoint), TEXTS, tolerance=1e-5
    )
    assert report.passed, report.failures
    assert report.token_id_equality == 1.0 and report.logits_max_abs_diff <= 1e-5


def test_labels_rename_the_graphs_outputs_and_no_other_count(optimum):
    import unified_nlp as un

    folder, _ = optimum
    clf = un.load_classifier(folder, backend="onnxruntime", labels=["bad", "meh", "good"])
    assert list(clf.labels) == ["bad", "meh", "good"]
    with pytest.raises(un.InvalidInputError, match="3 logits"):
        un.load_classifier(folder, backend="onnxruntime", labels=["bad", "good"])


def test_fit_convert_and_other_backends_refuse_saying_what_is_needed(optimum, tmp_path):
    import unified_nlp as un

    folder, _ = optimum
    clf = un.load_classifier(folder, backend="onnxruntime")
    with pytest.raises(NotSupportedError, match="checkpoint it was exported from"):
        clf.fit(TEXTS, GOLD, epochs=1)
    with pytest.raises(un.ConversionError, match="checkpoint it was exported from"):
        un.convert(folder, to="huggingface", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(un.InvalidModelError, match="runs on the onnxruntime backend"):
        un.load_classifier(folder, backend="huggingface")


def test_inspect_reports_format_stack_and_why(optimum):
    import unified_nlp as un

    folder, _ = optimum
    info = un.inspect_model(folder)
    assert info["format"] == "onnx-optimum"
    assert info["runs_on"] == ["onnxruntime"] and info["converts_to"] == []
    assert "initializers" in info["why"] and info["labels"] == list(LABELS)
    assert info["graphs"] == ["model.onnx", "model_quantized.onnx"]
    assert info["inputs"] == OPTIMUM_INPUTS


def _with_external_data(folder: Path, out: Path, location: str) -> Path:
    """A copy of the Optimum folder whose graph keeps its weights in an external file at `location`
    (onnx itself refuses to write a location leaving the folder, so the field is set afterwards)."""
    import shutil

    import onnx
    from onnx import external_data_helper

    shutil.copytree(folder, out)
    (out / "model_quantized.onnx").unlink()
    model = onnx.load(str(out / "model.onnx"))
    external_data_helper.convert_model_to_external_data(model, location="weights.bin", size_threshold=0)
    onnx.save_model(model, str(out.parent / "model.onnx"))  # weights.bin lands beside it, outside `out`
    graph = onnx.load(str(out.parent / "model.onnx"), load_external_data=False)
    for tensor in external_data_helper._get_all_tensors(graph):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    (out / "model.onnx").write_bytes(graph.SerializeToString())
    return out


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_external_data_leaving_the_folder_is_refused(optimum, tmp_path, where):
    import unified_nlp as un

    folder, _ = optimum
    outside = tmp_path / "weights.bin"
    location = "../weights.bin" if where == "parent" else str(outside)
    hostile = _with_external_data(folder, tmp_path / "hostile", location)
    assert outside.is_file()  # the weights exist there: only the check stops the read
    with pytest.raises(un.InvalidModelError, match="escapes model directory|Absolute path not allowed"):
        un.load_classifier(hostile, backend="onnxruntime")


def test_a_truncated_graph_is_a_clear_error(optimum, tmp_path):
    import shutil

    import unified_nlp as un

    folder, _ = optimum
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    data = (broken / "model.onnx").read_bytes()
    (broken / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(un.InvalidModelError, match="cannot load this model file"):
        un.load_classifier(broken, backend="onnxruntime")


def test_an_onnx_folder_without_a_tokenizer_is_refused(optimum, tmp_path):
    import shutil

    import unified_nlp as un

    folder, _ = optimum
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.onnx", "config.json"):
        shutil.copy2(folder / name, bare / name)
    assert json.loads((bare / "config.json").read_text())["id2label"]
    with pytest.raises(un.InvalidModelError, match="no tokenizer.json"):
        un.load_classifier(bare, backend="onnxruntime")


# --- TensorFlow: TF Serving's classify shape, and a single-file Keras model ---------------


@pytest.fixture(scope="session")
def keras_exports(tmp_path_factory) -> dict[str, Path]:
    """A Keras 3 text classifier (TextVectorization, Embedding, mean pooling, Dense softmax) saved by
    Keras as .keras and .h5, and a tf.Module SavedModel with TF Serving's classify signature over it."""
    require("tfhub")
    tf = require_module("tensorflow")
    keras = require_module("keras")
    root = tmp_path_factory.mktemp("keras")
    keras.utils.set_random_seed(0)
    vocabulary = sorted({w for t in TEXTS for w in t.lower().split()})
    inputs = keras.Input(shape=(), dtype="string")
    x = keras.layers.TextVectorization(vocabulary=vocabulary, output_sequence_length=16)(inputs)
    x = keras.layers.Embedding(len(vocabulary) + 2, 8, embeddings_initializer="random_normal")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(0, 30))(x)
    model = keras.Model(inputs, outputs)
    model.save(root / "classifier.keras")
    model.save(root / "classifier.h5")
    classes = tf.constant(list(LABELS))

    class Classify(tf.Module):
        def __init__(self, model):
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def classify(self, inputs):
            scores = self.model(inputs)
            return {"classes": tf.tile(classes[None], [tf.shape(scores)[0], 1]), "scores": scores}

    module = Classify(model)
    tf.saved_model.save(module, str(root / "classify"), signatures={"serving_default": module.classify})

    class ClassifyExamples(tf.Module):
        """An Estimator's classification export: serialized tf.Example protos in, parsed by the graph."""

        def __init__(self, model, features):
            self.model, self.features = model, features

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def classify(self, inputs):
            parsed = tf.io.parse_example(inputs, self.features)
            scores = self.model(parsed["review"]) * tf.reshape(parsed["weight"], [-1, 1])
            return {"classes": tf.tile(classes[None], [tf.shape(scores)[0], 1]), "scores": scores}

    one = {"review": tf.io.FixedLenFeature([], tf.string), "weight": tf.io.FixedLenFeature([], tf.float32, 1.0)}
    two = {**one, "title": tf.io.FixedLenFeature([], tf.string, "")}
    for name, features in (("examples", one), ("two-string-features", two)):
        module = ClassifyExamples(model, features)
        tf.saved_model.save(module, str(root / name), signatures={"serving_default": module.classify})
    paths = {"keras": "classifier.keras", "h5": "classifier.h5", "classify": "classify", "examples": "examples"}
    return {key: root / name for key, name in {**paths, "two": "two-string-features"}.items()}


def _saved_model_scores(folder: Path, texts) -> np.ndarray:
    import tensorflow as tf

    serving = tf.saved_model.load(str(folder)).signatures["serving_default"]
    return serving(inputs=tf.constant(list(texts)))["scores"].numpy()


def test_a_classify_savedmodel_runs_with_labels_from_its_classes(keras_exports):
    import unified_nlp as un

    clf = un.load_classifier(keras_exports["classify"], backend="tfhub")
    assert list(clf.labels) == list(LABELS)
    want = _saved_model_scores(keras_exports["classify"], TEXTS)
    assert np.ptp(want, axis=0).max() > 0.1
    assert np.abs(clf.predict_proba(TEXTS) - want).max() <= 1e-6
    assert [p.label for p in clf.predict(TEXTS)] == [LABELS[i] for i in want.argmax(1)]
    report = clf.evaluate(TEXTS, GOLD)
    assert report["accuracy"] == pytest.approx(np.mean([LABELS[i] == g for i, g in zip(want.argmax(1), GOLD)]))
    renamed = un.load_classifier(keras_exports["classify"], backend="tfhub", labels=["bad", "meh", "good"])
    assert list(renamed.labels) == ["bad", "meh", "good"]
    with pytest.raises(un.InvalidInputError, match="3 outputs"):
        un.load_classifier(keras_exports["classify"], backend="tfhub", labels=["bad", "good"])


def test_a_classify_savedmodel_of_tf_examples_gets_each_text_in_its_string_feature(keras_exports):
    """As an Estimator exported it: the signature takes serialized tf.Example protos and parses the
    text from its one string feature ("review"), the other features keep their defaults."""
    import tensorflow as tf

    import unified_nlp as un

    clf = un.load_classifier(keras_exports["examples"], backend="tfhub")
    assert list(clf.labels) == list(LABELS)

    def example(text: str) -> bytes:
        feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
        return tf.train.Example(features=tf.train.Features(feature={"review": feature})).SerializeToString()

    serving = tf.saved_model.load(str(keras_exports["examples"])).signatures["serving_default"]
    want = serving(inputs=tf.constant([example(t) for t in TEXTS]))["scores"].numpy()
    assert np.ptp(want, axis=0).max() > 0.1
    assert np.abs(clf.predict_proba(TEXTS) - want).max() <= 1e-6
    # the same model as the plain classify export, which takes the texts themselves
    assert np.abs(want - _saved_model_scores(keras_exports["classify"], TEXTS)).max() <= 1e-6
    with pytest.raises(un.InvalidModelError, match=r"string features \['review', 'title'\]"):
        un.load_classifier(keras_exports["two"], backend="tfhub")


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_a_single_file_keras_model_runs_as_keras_runs_it(keras_exports, kind):
    import keras

    import unified_nlp as un

    file = keras_exports[kind]
    with pytest.raises(un.InvalidInputError, match="3 scores"):
        un.load_classifier(file, backend="tfhub", labels=["bad", "good"])
    clf = un.load_classifier(file, backend="tfhub", labels=list(LABELS))
    want = np.asarray(keras.saving.load_model(str(file))(np.array(TEXTS)))
    assert np.abs(clf.predict_proba(TEXTS) - want).max() <= 1e-6
    assert list(un.load_classifier(file, backend="tf").labels) == ["LABEL_0", "LABEL_1", "LABEL_2"]


def test_compare_the_classify_export_with_the_keras_model_it_came_from(keras_exports):
    import unified_nlp as un

    served = un.load_classifier(keras_exports["classify"], backend="tfhub")
    trained = un.load_classifier(keras_exports["keras"], backend="tfhub", labels=list(LABELS))
    report = un.compare(served, trained, TEXTS, tolerance=1e-5)
    assert report.passed, report.failures


@pytest.mark.parametrize("kind", ["classify", "keras"])
def test_tf_black_boxes_refuse_fit_convert_and_other_backends(keras_exports, tmp_path, kind):
    import unified_nlp as un

    model = keras_exports[kind]
    clf = un.load_classifier(model, backend="tfhub", labels=list(LABELS))
    with pytest.raises(un.UnifiedNLPError, match="fit is not supported.*fit the model it came from"):
        clf.fit(TEXTS, GOLD, epochs=1)
    with pytest.raises(un.ConversionError, match="black box"):
        un.convert(model, to="huggingface", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(un.InvalidModelError, match="black box.*tfhub"):
        un.load_classifier(model, backend="huggingface")


def test_inspect_tf_black_boxes(keras_exports):
    import unified_nlp as un

    saved = un.inspect_model(keras_exports["classify"])
    assert (saved["format"], saved["kind"], saved["labels"]) == ("tfhub-savedmodel", "classify", list(LABELS))
    assert saved["runs_on"] == ["tfhub"] and saved["converts_to"] == [] and "black box" in saved["why"]
    single = un.inspect_model(keras_exports["keras"])
    assert (single["format"], single["outputs"], single["problem_type"]) == (
        "keras-file",
        3,
        "single_label_classification",
    )
    assert single["runs_on"] == ["tfhub"] and single["converts_to"] == [] and "black box" in single["why"]


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_a_truncated_keras_file_is_a_clear_error(keras_exports, tmp_path, kind):
    import unified_nlp as un

    data = keras_exports[kind].read_bytes()
    broken = tmp_path / keras_exports[kind].name
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(un.InvalidModelError, match="Keras cannot load this model file"):
        un.load_classifier(broken, backend="tfhub")
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(un.ModelNotFoundError, match="a model must be a folder"):
        un.load_classifier(other, backend="tfhub")


@pytest.mark.parametrize("export", ["onnx", "classify"])
def test_the_dataset_engine_runs_deployment_exports(request, tmp_path, export):
    import unified_nlp as un

    if export == "onnx":
        model, backend = request.getfixturevalue("optimum")[0], "onnxruntime"
    else:
        model, backend = request.getfixturevalue("keras_exports")["classify"], "tfhub"
    texts = [t for t in TEXTS if t]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    summary = un.classify_dataset(source, tmp_path / "out.jsonl", model=model, backend=backend, chunk_rows=2)
    assert summary["written"] == len(texts)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    want = un.load_classifier(model, backend=backend).predict_proba(texts)
    assert [r["label"] for r in rows] == [LABELS[i] for i in want.argmax(1)]
    got = np.array([[r[f"prob_{name}"] for name in LABELS] for r in rows])
    assert np.abs(got - want).max() <= 1e-6


# --- Paddle Inference, as PaddleNLP's export_model.py writes it ----------------------------


@pytest.fixture(scope="session")
def paddle_export(tmp_path_factory) -> dict:
    """tests/paddle_inference_fixture.py in the Paddle environment: the save_pretrained checkpoint, its
    paddle.jit.save export, and Paddle Inference's own logits on the export."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from unified_nlp import registry

    require("paddlenlp")
    python = sys.executable if registry.installed_here("paddlenlp") else registry.worker_python("paddlenlp")
    root = tmp_path_factory.mktemp("paddle-inference")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    script = str(REPO / "tests" / "paddle_inference_fixture.py")
    done = subprocess.run([python, script, str(root)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    given = json.loads((root / "texts.json").read_text())
    return {"export": root / "export", "checkpoint": root / "checkpoint", **given, **np.load(root / "reference.npz")}


def test_a_paddle_inference_export_runs_as_paddle_inference_runs_it(paddle_export):
    import unified_nlp as un

    clf = un.load_classifier(paddle_export["export"], backend="paddlenlp", labels=paddle_export["labels"])
    texts, want = paddle_export["texts"], paddle_export["logits"]
    enc = clf.tokenizer(texts)
    assert np.array_equal(enc.input_ids, paddle_export["input_ids"])  # PaddleNLP's tokenizer's ids
    got = clf.logits(texts)
    assert np.ptp(want, axis=0).max() > 0.1
    assert np.abs(got - want).max() <= 1e-6, np.abs(got - want).max()
    assert [p.label for p in clf.predict(texts)] == [paddle_export["labels"][i] for i in want.argmax(1)]
    assert clf.evaluate(texts, [paddle_export["labels"][i] for i in want.argmax(1)])["accuracy"] == 1.0
    long = "the plot drags on " * 40  # beyond the 64 positions the graph embeds (the folder does not say so)
    with pytest.raises(un.InvalidInputError, match="max_length="):
        clf.predict([long])
    assert clf.predict([long], max_length=64)[0].truncated
    assert list(un.load_classifier(paddle_export["export"], backend="paddle").labels) == [
        "LABEL_0",
        "LABEL_1",
        "LABEL_2",
    ]
    with pytest.raises(un.InvalidInputError, match="3 logits"):
        un.load_classifier(paddle_export["export"], backend="paddlenlp", labels=["a", "b"])


def test_pairs_run_through_the_paddle_export_as_paddle_inference_runs_them(paddle_export):
    """The second text gets segment 1 (the graph's token_type_ids), as PaddleNLP's tokenizer fed it."""
    import unified_nlp as un

    clf = un.load_classifier(paddle_export["export"], backend="paddlenlp", labels=paddle_export["labels"])
    first, second = ([pair[k] for pair in paddle_export["pairs"]] for k in (0, 1))
    enc = clf.tokenizer(first, text_pair=second)
    assert np.array_equal(enc.input_ids, paddle_export["pair_input_ids"])
    assert np.array_equal(enc.token_type_ids, paddle_export["pair_token_type_ids"])
    assert paddle_export["pair_token_type_ids"].max() == 1  # a pair, not one text
    got, want = clf.logits(list(zip(first, second))), paddle_export["pair_logits"]
    assert np.abs(got - want).max() <= 1e-6, np.abs(got - want).max()
    swapped = clf.logits(list(zip(second, first)))  # the order counts: not two texts read as one
    assert np.abs(swapped - want).max() > 1e-3


def test_compare_the_paddle_export_with_its_checkpoint(paddle_export):
    import unified_nlp as un

    served = un.load_classifier(paddle_export["export"], backend="paddlenlp", labels=paddle_export["labels"])
    trained = un.load_classifier(paddle_export["checkpoint"], backend="huggingface")
    report = un.compare(served, trained, paddle_export["texts"], tolerance=1e-5)
    assert report.passed, report.failures


def test_the_paddle_export_refuses_fit_convert_and_other_backends(paddle_export, tmp_path):
    import unified_nlp as un

    export = paddle_export["export"]
    clf = un.load_classifier(export, backend="paddlenlp", labels=paddle_export["labels"])
    with pytest.raises(un.UnifiedNLPError, match="save_pretrained folder it was exported from"):
        clf.fit(paddle_export["texts"], paddle_export["labels"][:2] * 2, epochs=1)
    with pytest.raises(un.ConversionError, match="save_pretrained folder it was exported from"):
        un.convert(export, to="huggingface", out=tmp_path / "out")
    with pytest.raises(un.InvalidModelError, match="runs on the paddlenlp backend"):
        un.load_classifier(export, backend="onnxruntime")
    info = un.inspect_model(export)
    assert (info["format"], info["runs_on"], info["converts_to"]) == ("paddle-inference", ["paddlenlp"], [])
    assert info["program"] == "inference.json" and info["inputs"] == ["input_ids", "token_type_ids"]


def test_hostile_paddle_inference_files_are_refused(paddle_export, tmp_path):
    import shutil

    import unified_nlp as un

    truncated = tmp_path / "truncated"
    shutil.copytree(paddle_export["export"], truncated)
    data = (truncated / "inference.pdiparams").read_bytes()
    (truncated / "inference.pdiparams").write_bytes(data[: len(data) // 2])
    with pytest.raises(un.InvalidModelError, match="Paddle Inference cannot load this model"):
        un.load_classifier(truncated, backend="paddlenlp")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(paddle_export["export"], elsewhere)
    (elsewhere / "inference.pdiparams").unlink()
    (elsewhere / "inference.pdiparams").symlink_to(paddle_export["export"] / "inference.pdiparams")
    with pytest.raises(un.InvalidModelError, match="outside the model folder"):
        un.load_classifier(elsewhere, backend="paddlenlp")
