"""PaddleNLP folders as PaddleNLP's save_pretrained writes them (model_state.pdparams,
model.safetensors, sharded), on every backend, against PaddleNLP's own tokenizer and forward.

The folders and PaddleNLP's reference (token ids, logits) are built once per session
by tests/paddle_fixtures.py in the Paddle environment; everything here runs in this
one: the core reads the folders in numpy (pdparams through the restricted reader),
the huggingface and tfhub backends run their canonical import, the paddlenlp backend
runs through its worker. ERNIE-M, which has no transformers class, runs on paddlenlp
only and is refused elsewhere with the reason.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp import paddlenlp_format as pf
from unified_nlp import registry
from unified_nlp.errors import ConversionError, InvalidModelError
from unified_nlp.weights import load_file

from .conftest import REPO, require

pytestmark = pytest.mark.filterwarnings("ignore")

LABELS = ("negative", "neutral", "positive")
# fixture -> (transformers model_type, PaddleNLP tokenizer class, weight files save_pretrained wrote)
EXPECTED = {
    "bert": ("bert", "BertTokenizer", "pdparams"),
    "ernie": ("ernie", "ErnieTokenizer", "safetensors"),
    "roberta-wordpiece": ("roberta", "RobertaChineseTokenizer", "pdparams"),
    "roberta-bpe": ("roberta", "RobertaBPETokenizer", "safetensors"),
    "electra": ("electra", "ElectraTokenizer", "pdparams-sharded"),
    "albert": ("albert", "AlbertEnglishTokenizer", "pdparams"),
    "distilbert": ("distilbert", "DistilBertTokenizer", "safetensors-sharded"),
    "ernie-m": (None, "ErnieMTokenizer", "pdparams"),
    "deberta-v2": ("deberta-v2", "DebertaV2Tokenizer", "safetensors"),
}
NO_TOKEN_TYPES = ("distilbert", "deberta-v2")  # PaddleNLP's DistilBERT reads none; DeBERTa-v3: type_vocab_size 0
CONVERTIBLE = [name for name, (arch, _, _) in EXPECTED.items() if arch is not None]
BACKENDS = ("huggingface", "tfhub", "paddlenlp")


def _paddle_python() -> str:
    require("paddlenlp")  # skips, or fails where CI requires every backend
    if registry.installed_here("paddlenlp"):
        return sys.executable
    return registry.worker_python("paddlenlp") or str(REPO / ".venv-paddle" / "bin" / "python")


@pytest.fixture(scope="module", autouse=True)
def store(tmp_path_factory):
    """Imports of this module go to a fresh store, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIFIED_NLP_HOME", str(tmp_path_factory.mktemp("store")))
        yield


@pytest.fixture(scope="session")
def native(tmp_path_factory):
    root = tmp_path_factory.mktemp("paddle-native")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run(
        [_paddle_python(), str(REPO / "tests" / "paddle_fixtures.py"), str(root)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    ref = dict(np.load(root / "reference.npz"))
    given = json.loads((root / "texts.json").read_text())
    return {"root": root, "ref": ref, "texts": given["texts"], "pairs": [tuple(p) for p in given["pairs"]]}


def _rows(ids: np.ndarray, mask: np.ndarray) -> list[list[int]]:
    return [row[: int(m.sum())].tolist() for row, m in zip(ids, mask)]


# --- detection, without frameworks -------------------------------------------------


@pytest.mark.parametrize("name", list(EXPECTED))
def test_detected_and_described_without_reading_weights(native, name):
    folder = native["root"] / name
    arch, tokenizer, weights = EXPECTED[name]
    assert pf.is_native(folder)
    info = pf.describe_native(folder)
    json.dumps(info)  # JSON-ready
    assert info["format"] == "paddlenlp" and info["architecture"] == arch and info["tokenizer"] == tokenizer
    assert info["labels"] == list(LABELS)
    suffix = ".pdparams" if weights.startswith("pdparams") else ".safetensors"
    assert all(w.endswith(suffix) for w in info["weights"])
    assert (len(info["weights"]) > 1) == weights.endswith("sharded")
    if arch is None:
        assert info["paddle_class"] == "ErnieMForSequenceClassification" and not info["convertible"]
        assert "no transformers class" in info["why"]
    else:
        assert info["convertible"] and info["why"] is None


def test_a_bfloat16_pdparams_reads_as_paddle_holds_it(native):
    """paddle.save writes bfloat16 weights as uint16 (numpy has no bfloat16): widened, not misread."""
    state = pf.read_weights(native["root"] / "bert-bf16")
    expected = {k.removeprefix("bert-bf16/"): v for k, v in native["ref"].items() if k.startswith("bert-bf16/")}
    assert sorted(state) == sorted(expected)
    for name, array in expected.items():
        assert state[name].dtype == np.float32 and state[name].tobytes() == array.tobytes(), name


def test_other_folders_are_not_taken_for_paddlenlp_ones(native, default_dir, tmp_path):
    assert not pf.is_native(default_dir)
    canonical = tmp_path / "canonical"
    pf.to_canonical(native["root"] / "bert", canonical)
    assert not pf.is_native(canonical) and not pf.is_native(tmp_path / "absent")


# --- every backend ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CONVERTIBLE)
def test_runs_on_every_backend_with_paddlenlps_own_ids_and_logits(native, name, backend):
    require(backend)
    ref = native["ref"]
    clf = un.load_classifier(native["root"] / name, backend=backend)
    assert clf.labels == LABELS and clf.spec.head == "native"
    for kind, items in (("single", native["texts"]), ("pair", native["pairs"])):
        first, second = (items, None) if kind == "single" else ([a for a, _ in items], [b for _, b in items])
        enc = clf.tokenizer(first, text_pair=second)
        key = f"{name}/{kind}"
        assert _rows(enc.input_ids, enc.attention_mask) == _rows(ref[f"{key}/input_ids"], ref[f"{key}/attention_mask"])
        if name not in NO_TOKEN_TYPES:
            assert _rows(enc.token_type_ids, enc.attention_mask) == _rows(
                ref[f"{key}/token_type_ids"], ref[f"{key}/attention_mask"]
            ), kind
        expected = ref[f"{key}/logits"]
        assert np.abs(expected - expected.mean(0)).max() > 1e-2  # the fixture's logits depend on the input
        logits = clf.logits(first, text_pair=second)
        assert np.abs(logits - expected).max() <= 1e-5, (kind, np.abs(logits - expected).max())
    labels = [p.label for p in clf.predict(native["texts"])]
    assert labels == [LABELS[i] for i in ref[f"{name}/single/logits"].argmax(1)]


def test_ernie_m_runs_on_paddlenlp_as_it_is(native):
    require("paddlenlp")
    texts, ref = native["texts"], native["ref"]
    clf = un.load_classifier(native["root"] / "ernie-m", backend="paddlenlp")
    assert clf.labels == LABELS and clf.spec.format == "paddlenlp-native"
    enc = clf.tokenizer(texts)
    assert _rows(enc.input_ids, enc.attention_mask) == _rows(
        ref["ernie-m/single/input_ids"], ref["ernie-m/single/attention_mask"]
    )
    assert np.abs(clf.logits(texts) - ref["ernie-m/single/logits"]).max() <= 1e-5
    pairs = native["pairs"]
    enc = clf.tokenizer([a for a, _ in pairs], text_pair=[b for _, b in pairs])
    assert _rows(enc.input_ids, enc.attention_mask) == _rows(
        ref["ernie-m/pair/input_ids"], ref["ernie-m/pair/attention_mask"]
    )
    assert np.abs(clf.logits(pairs) - ref["ernie-m/pair/logits"]).max() <= 1e-5
    fresh = un.load_classifier(native["root"] / "ernie-m", backend="paddlenlp", labels=["no", "yes"], seed=1)
    assert fresh.labels == ("no", "yes") and fresh.spec.fresh_head and fresh.logits(texts).shape == (8, 2)


def test_ernie_m_without_labels_in_its_config_takes_labels(native, tmp_path):
    require("paddlenlp")
    folder = Path(shutil.copytree(native["root"] / "ernie-m", tmp_path / "ernie-m"))
    config = json.loads((folder / "config.json").read_text())
    del config["id2label"], config["label2id"]
    (folder / "config.json").write_text(json.dumps(config))
    assert pf.native_spec(folder).labels == ("LABEL_0", "LABEL_1", "LABEL_2")  # the head's three outputs
    clf = un.load_classifier(folder, backend="paddlenlp", labels=["a", "b", "c"])
    assert clf.labels == ("a", "b", "c") and not clf.spec.fresh_head  # the folder's own head, named
    assert np.abs(clf.logits(native["texts"]) - native["ref"]["ernie-m/single/logits"]).max() <= 1e-5


def test_ernie_m_fine_tunes_and_saves_as_a_paddlenlp_folder(native, tmp_path):
    require("paddlenlp")
    texts = native["texts"]
    labels = ["negative", "neutral", "positive", "negative", "positive", "neutral", "negative", "positive"]
    clf = un.load_classifier(native["root"] / "ernie-m", backend="paddlenlp")
    history = clf.fit(texts, labels, epochs=4, batch_size=8, learning_rate=1e-3, progress=False)
    assert history["loss"][-1] < history["loss"][0] / 2
    tuned = clf.logits(texts)
    assert np.abs(tuned - native["ref"]["ernie-m/single/logits"]).max() > 1e-2  # the weights did change
    out = tmp_path / "tuned"
    assert clf.save(out) == out  # clf.save writes PaddleNLP's layout again (paddlenlp_format.save_native)
    assert pf.is_native(out) and not list(out.glob("*.pdparams"))
    again = un.load_classifier(out, backend="paddlenlp")
    assert again.labels == LABELS and np.abs(again.logits(texts) - tuned).max() <= 1e-6


@pytest.mark.parametrize("backend", ["huggingface", "tfhub"])
def test_ernie_m_elsewhere_is_refused_with_the_reason(native, backend, tmp_path):
    require(backend)
    with pytest.raises(InvalidModelError, match="ERNIE-M .*no transformers class.*paddlenlp backend only"):
        un.load_classifier(native["root"] / "ernie-m", backend=backend)
    with pytest.raises(ConversionError, match="no transformers class"):
        un.convert(native["root"] / "ernie-m", to=backend, out=tmp_path / "out")
    with pytest.raises(ConversionError, match="no transformers class"):
        pf.to_canonical(native["root"] / "ernie-m", tmp_path / "canonical")
    assert not (tmp_path / "out").exists() and not (tmp_path / "canonical").exists()


def test_labels_come_from_labels_when_the_config_has_none(native, tmp_path):
    folder = Path(shutil.copytree(native["root"] / "bert", tmp_path / "bert"))
    config = json.loads((folder / "config.json").read_text())
    del config["id2label"], config["label2id"]
    (folder / "config.json").write_text(json.dumps(config))
    assert pf.describe_native(folder)["labels"] is None
    clf = un.load_classifier(folder, backend="huggingface", labels=["a", "b", "c"])
    assert clf.labels == ("a", "b", "c") and not clf.spec.fresh_head  # placeholders renamed: the same head
    assert np.abs(clf.logits(native["texts"]) - native["ref"]["bert/single/logits"]).max() <= 1e-5


# --- conversion -------------------------------------------------------------------


@pytest.mark.parametrize("name", CONVERTIBLE)
def test_weights_cross_to_every_backend_and_back_bit_exact(native, name, tmp_path):
    folder = native["root"] / name
    canonical = tmp_path / "canonical"
    pf.to_canonical(folder, canonical)
    ours = load_file(canonical / "model.safetensors")
    # against the PaddleNLP tensors through the family's table: transposes and copies only
    pd_config = json.loads((folder / "config.json").read_text())
    family = pf.paddle_folder.family_of(pd_config, folder)
    theirs = pf.read_weights(folder)
    rows = family.rows(json.loads((canonical / "config.json").read_text()), task=True)
    assert sorted(ours) == sorted(hf for hf, _, _ in rows)
    for hf, pd, fn in rows:
        assert ours[hf].tobytes() == np.ascontiguousarray(fn(theirs[pd])).tobytes(), hf
    for backend in ("tfhub", "paddlenlp"):
        require(backend)
        out = un.convert(folder, to=backend, out=tmp_path / backend)  # the native folder, straight
        back = un.convert(out, to="huggingface", out=tmp_path / f"{backend}-back")
        again = load_file(back / "model.safetensors")
        assert sorted(again) == sorted(ours), backend
        for key, array in ours.items():
            assert again[key].dtype == array.dtype and again[key].tobytes() == array.tobytes(), (backend, key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hostile_pdparams_in_a_paddlenlp_folder_never_runs(native, backend, tmp_path):
    """The user's path: load_classifier on a folder whose model_state.pdparams would run a
    command on unpickling. Refused with the reason; the command never runs."""
    require(backend)
    folder = Path(shutil.copytree(native["root"] / "bert", tmp_path / "bert"))
    marker = tmp_path / "pwned"

    class Runs:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    weights = pf.read_weights(native["root"] / "bert")
    (folder / "model_state.pdparams").write_bytes(pickle.dumps({**weights, "z": Runs()}, protocol=4))
    with pytest.raises(InvalidModelError, match=r"model_state.pdparams: refused .*global \w+\.system"):
        un.load_classifier(folder, backend=backend)
    assert not marker.exists()


def test_broken_folders_get_clear_errors(native, tmp_path):
    sharded = Path(shutil.copytree(native["root"] / "electra", tmp_path / "electra"))
    next(sharded.glob("model_state-00002-of-*.pdparams")).unlink()
    with pytest.raises(InvalidModelError, match=r"model_state.pdparams.index.json: shard\(s\) missing"):
        pf.to_canonical(sharded, tmp_path / "out")
    other = Path(shutil.copytree(native["root"] / "bert", tmp_path / "gpt"))
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps(config | {"architectures": ["GPTLMHeadModel"], "model_type": "gpt"}))
    with pytest.raises(InvalidModelError, match="model_type 'gpt' .* is not supported; supported: albert, bert"):
        pf.describe_native(other)
    empty = Path(shutil.copytree(native["root"] / "bert", tmp_path / "empty"))
    (empty / "model_state.pdparams").unlink()
    with pytest.raises(InvalidModelError, match="no PaddleNLP weights .*model.safetensors.*model_state.pdparams"):
        pf.describe_native(empty)
    assert not (tmp_path / "out").exists()


def test_a_wordpiece_roberta_exports_paddlenlps_chinese_roberta_tokenizer(native, tmp_path):
    """PaddleNLP's RoBERTa with a vocab.txt, moved out and back in: plain PaddleNLP's AutoTokenizer
    reads the export (RobertaChineseTokenizer) and gives the original folder's token ids."""
    out = un.convert(native["root"] / "roberta-wordpiece", to="paddlenlp", out=tmp_path / "export")
    settings = json.loads((out / "paddlenlp" / "tokenizer_config.json").read_text())
    assert settings["tokenizer_class"] == "RobertaChineseTokenizer"
    script = (
        "import json, sys\n"
        "from paddlenlp.transformers import AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "print(json.dumps([tok(t, max_length=64, truncation=True)['input_ids'] for t in json.loads(sys.argv[2])]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run(
        [_paddle_python(), "-c", script, str(out / "paddlenlp"), json.dumps(native["texts"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ref = native["ref"]
    expected = _rows(ref["roberta-wordpiece/single/input_ids"], ref["roberta-wordpiece/single/attention_mask"])
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


def test_unified_nlp_inspect_on_each_folder(capsys, native):
    from unified_nlp.cli import main

    for name, (arch, tokenizer, _) in EXPECTED.items():
        assert main(["inspect", str(native["root"] / name), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["format"] == "paddlenlp-native" and info["labels"] == list(LABELS), name
        if arch is None:  # ERNIE-M
            assert info["runs_on"] == ["paddlenlp"] and info["converts_to"] == [] and "transformers" in info["why"]
        else:
            assert (
                info["architecture"] == arch
                and info["runs_on"] == [*BACKENDS, "onnxruntime"]
                and tokenizer in info["tokenizer"]
            )
