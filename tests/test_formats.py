"""Format detection in the core (unified_nlp.formats): every layout is recognised from its
files alone, an unknown one gets an error that lists what was looked for, and
`unified-nlp inspect` reports what was detected. Native PaddleNLP and TF Hub folders
are exercised end to end in test_paddlenlp_native.py and test_tfhub_native.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import unified_nlp as un
from unified_nlp import formats
from unified_nlp.cli import main
from unified_nlp.errors import InvalidModelError

from .checkpoints import make_checkpoint


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory) -> Path:
    return make_checkpoint("bert", tmp_path_factory.mktemp("formats") / "bert", num_labels=2)


def _savedmodel(folder: Path) -> Path:
    """The files that make a folder a SavedModel for detection (detection reads no protobuf)."""
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    (folder / "variables").mkdir()
    return folder


def test_a_hugging_face_folder_is_canonical(hf_bert):
    found = formats.detect(hf_bert)
    assert found.format == formats.HUGGINGFACE and found.path == hf_bert and found.preprocessor is None


def test_a_savedmodel_alone_or_as_an_encoder_and_preprocessor_pair(tmp_path):
    alone = _savedmodel(tmp_path / "embedding")
    assert formats.detect(alone).format == formats.SAVEDMODEL

    pair = tmp_path / "pair"
    _savedmodel(pair / "encoder")
    _savedmodel(pair / "preprocessor")
    found = formats.detect(pair)
    assert (found.format, found.path, found.preprocessor) == (
        formats.SAVEDMODEL,
        pair / "encoder",
        pair / "preprocessor",
    )

    given = _savedmodel(tmp_path / "other-preprocessor")
    found = formats.detect(alone, given)
    assert found.path == alone and found.preprocessor == given


def test_a_preprocessor_must_be_a_savedmodel_and_go_with_an_encoder(tmp_path, hf_bert):
    encoder = _savedmodel(tmp_path / "encoder")
    with pytest.raises(InvalidModelError, match="preprocessor must be a SavedModel"):
        formats.detect(encoder, tmp_path)
    with pytest.raises(InvalidModelError, match="goes with a TF Hub encoder"):
        formats.detect(hf_bert, encoder)


def test_an_unknown_layout_lists_what_was_looked_for(tmp_path):
    (tmp_path / "weights.h5").write_bytes(b"\x89HDF")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidModelError) as info:
        formats.detect(tmp_path)
    message = str(info.value)
    for expected in ("model.safetensors", "model_state.pdparams", "saved_model.pb", "unified_nlp.json", "weights.h5"):
        assert expected in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidModelError, match="the folder is empty"):
        formats.detect(empty)


def test_an_unknown_format_in_unified_nlp_json_is_refused(tmp_path, hf_bert):
    folder = tmp_path / "odd"
    shutil.copytree(hf_bert, folder)
    (folder / "unified_nlp.json").write_text(json.dumps({"format": "onnx"}))
    with pytest.raises(InvalidModelError, match="unknown format 'onnx'"):
        formats.detect(folder)


def test_a_folder_written_by_convert_is_detected_as_that_backends_export(tmp_path, hf_bert):
    out = un.convert(hf_bert, to="tfhub", out=tmp_path / "bert-tfhub")
    assert formats.detect(out).format == "tfhub"


def test_imported_folders_are_keyed_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIFIED_NLP_HOME", str(tmp_path / "store"))
    source = _savedmodel(tmp_path / "model")
    calls = []

    def write(out: Path) -> None:
        calls.append(out)
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    first = formats.imported(formats.detect(source), write)
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    assert formats.imported(formats.detect(copy), write) == first and len(calls) == 1  # same bytes: reused
    (copy / "variables" / "variables.index").write_bytes(b"changed")
    assert formats.imported(formats.detect(copy), write) != first and len(calls) == 2


def test_inspect_reports_format_labels_and_where_it_runs(capsys, hf_bert):
    assert main(["inspect", str(hf_bert), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    config = json.loads((hf_bert / "config.json").read_text())
    assert info["format"] == "huggingface" and info["architecture"] == "bert"
    assert info["model_class"] == "BertForSequenceClassification" and info["head"] == "native"
    assert info["labels"] == [config["id2label"][str(i)] for i in range(2)]
    assert info["runs_on"] == info["converts_to"] == ["huggingface", "tfhub", "paddlenlp", "onnxruntime"]

    assert main(["inspect", "default"]) == 0
    text = capsys.readouterr().out
    assert "mean pooling" in text and "NEGATIVE, POSITIVE" in text


def test_inspect_of_a_folder_that_is_no_model_is_a_one_line_error(capsys, tmp_path):
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unified-nlp: error:") and err.count("\n") == 1


@pytest.mark.parametrize("backend", ["tfhub", "paddlenlp", "onnxruntime"])
def test_inspect_says_an_export_runs_on_its_own_backend_only(capsys, hf_bert, tmp_path, backend):
    from unified_nlp import registry

    # what convert writes, as detection and inspect read it (the export's weights are not opened)
    export = tmp_path / backend
    export.mkdir()
    shutil.copy2(hf_bert / "config.json", export / "config.json")
    spec = {"format": backend, "architecture": "bert", "labels": ["a", "b"], "max_length": 64}
    (export / "unified_nlp.json").write_text(json.dumps(spec))
    assert main(["inspect", str(export), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == backend and info["runs_on"] == [backend] and info["labels"] == ["a", "b"]
    assert "export written by unified_nlp convert" in info["description"]
    assert info["converts_to"] == ([] if backend == "onnxruntime" else registry.backend_names())


def test_the_backends_are_the_registrys(monkeypatch, hf_bert):
    from unified_nlp import registry

    assert registry.backend_names()[:4] == ["huggingface", "tfhub", "paddlenlp", "onnxruntime"]
    assert formats.export_formats()[:3] == ("tfhub", "paddlenlp", "onnxruntime")
    assert "onnxruntime" not in registry.training_backends() and "huggingface" in registry.training_backends()
    entry_points = registry._entry_points()
    monkeypatch.setattr(registry, "_entry_points", lambda: {**entry_points, "zz-third-party": None})
    assert un.inspect_model(hf_bert)["runs_on"][-1] == "zz-third-party"  # a third party's adapter runs them too
