"""Hugging Face folders that hold only tf_model.h5, as transformers 4's TF*ForSequenceClassification
saved them (tests/fixtures/tf_h5/, written by tests/fixtures/make_tf_h5.py with transformers 4.46.3
and TensorFlow 2.21): every family on every backend against the TF model's own logits (its
reference.json), the sharded layout, labels, inspect, and broken or hostile h5 files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp.architectures import ARCHITECTURES
from unified_nlp.errors import InvalidModelError
from unified_nlp.tf_h5 import to_canonical, torch_name
from unified_nlp.weights import load_file

from .checkpoints import LABELS, assert_parity
from .conftest import require, require_module

h5py = require_module("h5py")

pytestmark = pytest.mark.filterwarnings("ignore")

FIXTURES = Path(__file__).parent / "fixtures" / "tf_h5"
# DeBERTa-v2 (its fixture is v3-style) is read where its family module is there
FAMILIES = tuple(
    f for f in ("bert", "distilbert", "roberta", "xlm-roberta", "electra", "albert", "deberta-v2") if f in ARCHITECTURES
)
FOLDERS = (*FAMILIES, "albert-sharded")
BACKENDS = ("huggingface", "tfhub", "paddlenlp", "onnxruntime")
TOL = 1e-5


def _reference(name: str) -> dict:
    return json.loads((FIXTURES / name / "reference.json").read_text(encoding="utf-8"))


def _ids(enc) -> list[list[int]]:
    return [row[: int(n)].tolist() for row, n in zip(enc.input_ids, enc.lengths)]


# onnxruntime exports what the reader gives to ONNX as it exports the family's safetensors folder
# (each family's export is tested in test_architectures): two folders here, one sharded, for
# the reader's path to it (an export costs 15-33 s on an empty store; all eight cost 3 minutes)
ONNX_FOLDERS = ("bert", "albert-sharded")
CASES = [
    (name, backend) for name in FOLDERS for backend in BACKENDS if backend != "onnxruntime" or name in ONNX_FOLDERS
]


@pytest.mark.parametrize("name, backend", CASES)
def test_each_family_runs_on_every_backend_as_the_tf_model_did(name, backend):
    require(backend)
    ref = _reference(name)
    clf = un.load_classifier(FIXTURES / name, backend=backend)
    config = json.loads((FIXTURES / name / "config.json").read_text())
    assert clf.spec.architecture == config["model_type"] and clf.spec.head == "native"
    first, second = [a for a, _ in ref["pairs"]], [b for _, b in ref["pairs"]]
    # the ids transformers 4's tokenizer gave the TF model, then its logits
    assert _ids(clf.tokenizer(ref["texts"])) == ref["input_ids"]
    assert _ids(clf.tokenizer(first, text_pair=second)) == ref["pair_input_ids"]
    assert_parity(clf.logits(ref["texts"]), ref["logits"], TOL)
    assert_parity(clf.logits([tuple(p) for p in ref["pairs"]]), ref["pair_logits"], TOL, "pair logits")


def test_labels_come_from_config_json():
    for name in FAMILIES:
        clf = un.load_classifier(FIXTURES / name, backend="huggingface")
        expected = ("LABEL_0", "LABEL_1") if name == "albert" else LABELS  # albert's config.json names none
        assert clf.labels == expected, name
        best = np.asarray(_reference(name)["logits"]).argmax(1)
        assert [p.label for p in clf.predict(_reference(name)["texts"])] == [expected[i] for i in best]


@pytest.mark.parametrize("name", ["albert", "albert-sharded"])
def test_labels_rename_placeholders_and_keep_the_head(name):
    ref = _reference(name)
    clf = un.load_classifier(FIXTURES / name, backend="huggingface", labels=["bad", "good"])
    assert clf.labels == ("bad", "good") and not clf.spec.fresh_head
    assert_parity(clf.logits(ref["texts"]), ref["logits"], TOL)


def test_other_labels_on_a_named_head_start_a_fresh_one():
    ref = _reference("bert")
    clf = un.load_classifier(FIXTURES / "bert", backend="huggingface", labels=["x", "y"])
    assert clf.labels == ("x", "y") and clf.spec.fresh_head
    assert clf.logits(ref["texts"]).shape == (len(ref["texts"]), 2)


def test_the_sharded_folder_holds_the_same_weights(tmp_path):
    to_canonical(FIXTURES / "albert", tmp_path / "one")
    to_canonical(FIXTURES / "albert-sharded", tmp_path / "shards")
    one, shards = (
        load_file(tmp_path / "one" / "model.safetensors"),
        load_file(tmp_path / "shards" / "model.safetensors"),
    )
    assert sorted(one) == sorted(shards) and len(one) == 27
    for key in one:
        assert one[key].tobytes() == shards[key].tobytes(), key


@pytest.mark.parametrize("name", FAMILIES)
def test_convert_writes_a_folder_plain_transformers_runs_as_the_tf_model_did(name, tmp_path):
    require("huggingface")
    import torch
    import transformers

    ref = _reference(name)
    out = un.convert(FIXTURES / name, to="huggingface", out=tmp_path / "hf")
    assert not (out / "tf_model.h5").exists() and (out / "model.safetensors").is_file()
    tok = transformers.AutoTokenizer.from_pretrained(out)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    first, second = [a for a, _ in ref["pairs"]], [b for _, b in ref["pairs"]]
    with torch.no_grad():
        single = model(**tok(ref["texts"], padding=True, truncation=True, return_tensors="pt")).logits.numpy()
        pairs = model(**tok(first, second, padding=True, truncation=True, return_tensors="pt")).logits.numpy()
    assert_parity(single, ref["logits"], TOL)
    assert_parity(pairs, ref["pair_logits"], TOL, "pair logits")


def test_inspect_reports_the_format(capsys):
    from unified_nlp.cli import main

    for name, weights in (("bert", "tf_model.h5"), ("albert-sharded", "tf_model.h5.index.json (2 shards)")):
        assert main(["inspect", str(FIXTURES / name), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["format"] == "huggingface-tf" and "tf_model.h5" in info["description"], info
        assert info["weights"] == weights and info["runs_on"] == list(BACKENDS) and info["head"] == "native"
    assert main(["inspect", str(FIXTURES / "electra")]) == 0
    assert "huggingface-tf: Hugging Face TensorFlow folder" in capsys.readouterr().out


def test_tf_names_follow_transformers_rule():
    assert torch_name("tf_bert_for_sequence_classification/bert/embeddings/word_embeddings/weight:0") == (
        "bert.embeddings.word_embeddings.weight",
        False,
    )
    assert torch_name(
        "tf_albert_for_sequence_classification/albert/encoder/albert_layer_groups_._0/"
        "albert_layers_._1/attention/LayerNorm/beta:0"
    ) == (
        "albert.encoder.albert_layer_groups.0.albert_layers.1.attention.LayerNorm.bias",
        False,
    )
    assert torch_name("bert/pooler/dense/kernel:0", scoped=False) == ("bert.pooler.dense.weight", True)
    assert torch_name("m/distilbert/embeddings/position_embeddings/embeddings:0")[0].endswith("embeddings.weight")


# broken and hostile files: each refused with a clear error, nothing read outside the folder


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def _refused(folder: Path, match: str) -> None:
    with pytest.raises(InvalidModelError, match=match):
        un.load_classifier(folder, backend="huggingface")


QUERY = "tf_bert_for_sequence_classification/bert/encoder/layer_._0/attention/self/query/kernel:0"


def test_a_truncated_or_foreign_file_is_refused(tmp_path):
    folder = _copy("bert", tmp_path)
    data = (folder / "tf_model.h5").read_bytes()
    (folder / "tf_model.h5").write_bytes(data[: len(data) // 2])
    _refused(folder, r"tf_model.h5: not a readable HDF5 file, truncated or corrupt")
    (folder / "tf_model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    _refused(folder, r"tf_model.h5: not a readable HDF5 file")
    with h5py.File(folder / "tf_model.h5", "w") as f:  # HDF5, but not Keras' weights
        f["x"] = np.zeros(3, np.float32)
    _refused(folder, r"no 'layer_names' attribute: not a Keras or transformers TF weights file")


def test_a_missing_tensor_is_named(tmp_path):
    folder = _copy("bert", tmp_path)
    with h5py.File(folder / "tf_model.h5", "r+") as f:  # gone from the file and from its list
        del f["bert"][QUERY]
        names = [str(n) for n in f["bert"].attrs["weight_names"] if str(n) != QUERY]
        f["bert"].attrs["weight_names"] = names
    _refused(folder, r"missing 1 tensor\(s\) in the TF weights, e.g. bert.encoder.layer.0.attention.self.query.weight")
    with h5py.File(folder / "tf_model.h5", "r+") as f:  # listed, but not in the file
        f["bert"].attrs["weight_names"] = [*names, QUERY]
    _refused(folder, r"no weight '.*query/kernel:0' in the file")


def test_a_wrong_shape_or_dtype_is_refused(tmp_path):
    folder = _copy("bert", tmp_path)
    with h5py.File(folder / "tf_model.h5", "r+") as f:
        del f["bert"][QUERY]
        f["bert"][QUERY] = np.zeros((32, 31), np.float32)
    _refused(
        folder,
        r"'bert.encoder.layer.0.attention.self.query.weight' has shape \[31, 32\], config.json implies \[32, 32\]",
    )
    with h5py.File(folder / "tf_model.h5", "r+") as f:
        del f["bert"][QUERY]
        f["bert"][QUERY] = np.zeros((32, 32), np.int32)
    _refused(folder, r"has dtype int32, expected floating point")


def _outside_h5(tmp_path: Path) -> Path:
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["w"] = np.ones((32, 32), np.float32)
    return outside


def test_links_out_of_the_file_are_refused(tmp_path):
    outside = _outside_h5(tmp_path)
    folder = _copy("bert", tmp_path)
    with h5py.File(folder / "tf_model.h5", "r+") as f:
        del f["bert"][QUERY]
        f["bert"][QUERY] = h5py.ExternalLink(str(outside), "/w")
    _refused(folder, r"'.*query/kernel:0' is a ExternalLink; links are refused")
    with h5py.File(folder / "tf_model.h5", "r+") as f:  # a link on the way to the weight
        group = "tf_bert_for_sequence_classification"
        del f["bert"][group]
        f["bert"][group] = h5py.ExternalLink(str(outside), "/")
    _refused(folder, r"is a ExternalLink; links are refused")


def test_external_and_virtual_storage_are_refused(tmp_path):
    raw = tmp_path / "outside.bin"
    raw.write_bytes(np.ones((32, 32), np.float32).tobytes())
    folder = _copy("bert", tmp_path)
    with h5py.File(folder / "tf_model.h5", "r+") as f:
        del f["bert"][QUERY]
        f["bert"].create_dataset(QUERY, (32, 32), np.float32, external=[(str(raw), 0, raw.stat().st_size)])
    _refused(folder, r"keeps its data in other files \(external or virtual storage\): refused")
    outside = _outside_h5(tmp_path)
    with h5py.File(folder / "tf_model.h5", "r+") as f:
        del f["bert"][QUERY]
        layout = h5py.VirtualLayout((32, 32), np.float32)
        layout[:] = h5py.VirtualSource(str(outside), "w", shape=(32, 32))
        f["bert"].create_virtual_dataset(QUERY, layout)
    _refused(folder, r"keeps its data in other files \(external or virtual storage\): refused")


def test_shards_and_files_outside_the_folder_are_refused(tmp_path):
    folder = _copy("albert-sharded", tmp_path)
    index = json.loads((folder / "tf_model.h5.index.json").read_text())
    first = next(iter(index["weight_map"]))
    shutil.copy(folder / index["weight_map"][first], tmp_path / "elsewhere.h5")
    index["weight_map"][first] = "../elsewhere.h5"
    (folder / "tf_model.h5.index.json").write_text(json.dumps(index))
    _refused(folder, r"tf_model.h5.index.json: file name '../elsewhere.h5' points outside the model folder")
    gone = _copy("albert-sharded", tmp_path / "gone")
    (gone / "tf_model-00002-of-00002.h5").unlink()
    _refused(gone, r"tf_model.h5.index.json: shard\(s\) missing: tf_model-00002-of-00002.h5")
    single = _copy("bert", tmp_path)
    (single / "tf_model.h5").rename(tmp_path / "moved.h5")
    (single / "tf_model.h5").symlink_to(tmp_path / "moved.h5")
    _refused(single, r"file name 'tf_model.h5' points outside the model folder")
