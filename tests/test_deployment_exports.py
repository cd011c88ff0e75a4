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

from tests import deployment_fixtures
from tests.checkpoints import LABELS, make_checkpoint
from tests.conftest import require, require_module
from tests.deployment_fixtures import OPTIMUM_INPUTS, TEXTS, ort_logits, saved_model_scores
from unified_nlp.errors import NotSupportedError

GOLD = ["positive", "negative", "neutral", "neutral", "positive", "negative"]


# --- ONNX, Optimum's layout ---------------------------------------------------------------


@pytest.fixture(scope="session")
def optimum(tmp_path_factory) -> tuple[Path, Path]:
    """(the Optimum-layout folder, the training checkpoint it was exported from)."""
    require("onnxruntime")
    for name in ("torch", "transformers", "onnx"):
        require_module(name)
    root = tmp_path_factory.mktemp("optimum")
    checkpoint = make_checkpoint("bert", root / "checkpoint", scale=8)
    return deployment_fixtures.optimum_export(checkpoint, root / "onnx"), checkpoint


def test_an_optimum_onnx_folder_runs_as_onnxruntime_runs_it(optimum):
    import unified_nlp as un

    folder, _ = optimum
    clf = un.load_classifier(folder, backend="onnxruntime")
    assert list(clf.labels) == list(LABELS) and clf.backend == "onnxruntime"
    want = ort_logits(folder, TEXTS)
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
    want = ort_logits(folder, TEXTS, "model_quantized.onnx")
    assert np.abs(clf.logits(TEXTS) - want).max() <= 1e-6
    assert np.abs(want - ort_logits(folder, TEXTS)).max() > 1e-4  # it is another graph


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
    """A Keras 3 text classifier saved as .keras and .h5, and TF Serving classify SavedModels over it."""
    require("tfhub")
    require_module("tensorflow")
    require_module("keras")
    return deployment_fixtures.keras_exports(tmp_path_factory.mktemp("keras"))


def test_a_classify_savedmodel_runs_with_labels_from_its_classes(keras_exports):
    import unified_nlp as un

    clf = un.load_classifier(keras_exports["classify"], backend="tfhub")
    assert list(clf.labels) == list(LABELS)
    want = saved_model_scores(keras_exports["classify"], TEXTS)
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
    import unified_nlp as un

    clf = un.load_classifier(keras_exports["examples"], backend="tfhub")
    assert list(clf.labels) == list(LABELS)
    want = saved_model_scores(keras_exports["examples"], TEXTS, examples=True)
    assert np.ptp(want, axis=0).max() > 0.1
    assert np.abs(clf.predict_proba(TEXTS) - want).max() <= 1e-6
    # the same model as the plain classify export, which takes the texts themselves
    assert np.abs(want - saved_model_scores(keras_exports["classify"], TEXTS)).max() <= 1e-6
    with pytest.raises(un.InvalidModelError, match=r"string features \['review', 'title'\]"):
        un.load_classifier(keras_exports["two"], backend="tfhub")


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_a_single_file_keras_model_runs_as_keras_runs_it(keras_exports, kind):
    import unified_nlp as un

    file = keras_exports[kind]
    with pytest.raises(un.InvalidInputError, match="3 scores"):
        un.load_classifier(file, backend="tfhub", labels=["bad", "good"])
    clf = un.load_classifier(file, backend="tfhub", labels=list(LABELS))
    want = deployment_fixtures.keras_scores(file, TEXTS)
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
    """The save_pretrained checkpoint, its Paddle Inference export and Paddle Inference's own logits."""
    require("paddlenlp")
    return deployment_fixtures.paddle_export(tmp_path_factory.mktemp("paddle-inference"))


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
