"""The onnxruntime backend: a third-party adapter (its own distribution, registered by entry
point only), exported with torch.onnx from the canonical folder and run by ONNX Runtime.

Everything is checked against the huggingface backend or transformers itself: the default
model on SST-2 dev, every family's tiny checkpoint written by transformers' save_pretrained
(tests/checkpoints.py), sentence pairs, a multi-label head. The model store is a fresh
folder for this module, so each export really happens once here.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO, REQUIRED, require

if "onnxruntime" in REQUIRED:
    import onnxruntime as ort
    import unified_nlp_onnxruntime
else:
    ort = pytest.importorskip("onnxruntime")
    unified_nlp_onnxruntime = pytest.importorskip("unified_nlp_onnxruntime")

import unified_nlp as un  # noqa: E402
from unified_nlp.errors import InvalidModelError, UnifiedNLPError  # noqa: E402

from .checkpoints import ARCHITECTURES, LABELS, make_checkpoint  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

TOL = 1e-5
TEXTS = ["This is a great movie!", "a dull , lifeless script", "", "Café naïve 日本語 😀 " * 3, "x " * 200]
PAIRS = [("A man plays a guitar.", "A person makes music."), ("great", "it was bad"), ("", "only the second")]


@pytest.fixture(scope="module", autouse=True)
def model_store(tmp_path_factory):
    """UNIFIED_NLP_HOME is a fresh folder for this module only."""
    old = os.environ.get("UNIFIED_NLP_HOME")
    os.environ["UNIFIED_NLP_HOME"] = str(tmp_path_factory.mktemp("ort_home"))
    yield Path(os.environ["UNIFIED_NLP_HOME"])
    if old is None:
        os.environ.pop("UNIFIED_NLP_HOME", None)
    else:
        os.environ["UNIFIED_NLP_HOME"] = old


@pytest.fixture(scope="module")
def hf():
    require("huggingface")
    return un.load_classifier("default", backend="huggingface")


@pytest.fixture(scope="module")
def ort_clf():
    require("onnxruntime")
    return un.load_classifier("default", backend="ort")


@pytest.fixture(scope="module")
def exported(ort_clf, tmp_path_factory):
    return un.convert("default", to="onnxruntime", out=tmp_path_factory.mktemp("ort") / "minilm-onnx")


def test_registered_by_its_entry_point_alone():
    from unified_nlp import registry

    assert "onnxruntime" in registry._entry_points()  # its own distribution registers it
    assert "onnxruntime" in registry.backend_names()  # and the core lists it, installed or not (install hint)
    assert "pip install 'unified-nlp[onnxruntime]'" in registry.KNOWN_BACKENDS["onnxruntime"].install
    assert registry.canonical_name("ort") == registry.canonical_name("ONNX") == "onnxruntime"
    row = {b.name: b for b in un.list_backends()}["onnxruntime"]
    assert row.installed and row.runs == "in-process" and "ort" in row.aliases
    assert row.versions["onnxruntime"] == ort.__version__


def test_inspect_says_where_the_canonical_folder_and_the_export_run(exported, capsys):
    from unified_nlp.cli import main

    assert main(["inspect", "default", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runs_on"] == ["huggingface", "tfhub", "paddlenlp", "onnxruntime"]
    assert "onnxruntime" in info["converts_to"] and "onnxruntime" in info["installed"]
    assert main(["inspect", str(exported), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "onnxruntime" and info["runs_on"] == ["onnxruntime"]
    assert (
        info["converts_to"] == [] and "canonical folder" in info["why"] and info["labels"] == ["NEGATIVE", "POSITIVE"]
    )
    for backend in ("huggingface", "tfhub"):  # what inspect says, load_classifier does
        if registry_installed(backend):
            with pytest.raises(InvalidModelError, match="onnxruntime"):
                un.load_classifier(exported, backend=backend)


def registry_installed(name: str) -> bool:
    from unified_nlp import registry

    return registry.installed_here(name)


def test_default_model_matches_huggingface_on_sst2_dev(hf, ort_clf, sst2_dev):
    texts, _ = sst2_dev
    assert ort_clf.backend == "onnxruntime" and ort_clf.labels == hf.labels
    report = un.compare(hf, ort_clf, texts, tolerance=TOL)
    assert report.passed, str(report)
    assert report.token_id_equality == 1.0 and report.argmax_agreement == 1.0
    assert 0 < report.logits_max_abs_diff <= TOL and report.hidden_max_abs_diff <= 1e-4
    out = ort_clf.model(ort_clf.tokenizer(texts[:3]), output_hidden_states=True)
    assert out.pooled.shape == (3, 384) and out.last_hidden_state.shape[:2] == (
        3,
        ort_clf.tokenizer(texts[:3]).input_ids.shape[1],
    )


def test_the_store_keeps_the_export_and_a_second_load_reuses_it(ort_clf, monkeypatch, model_store):
    meta = json.loads(next(model_store.glob("converted/onnxruntime/*/unified_nlp.json")).read_text())
    assert meta["format"] == "onnxruntime" and meta["max_abs_diff_vs_torch"] <= TOL
    assert meta["fusions"].get("SkipLayerNormalization", 0) > 0  # ORT's fusions applied
    assert meta["fusions"].get("Attention") == 6  # one fused attention per layer of MiniLM
    choice = meta["graph_choice"]  # the fused and the plain graph timed here, the faster kept
    assert set(choice["seconds"]) == {"fused", "plain"} and all(v > 0 for v in choice["seconds"].values())
    fused_kept = choice["seconds"]["plain"] >= 0.97 * choice["seconds"]["fused"]
    assert choice["kept"] == ("fused" if fused_kept else "plain") and meta["optimized"] is fused_kept

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    from unified_nlp import threads

    monkeypatch.setattr(unified_nlp_onnxruntime, "export", no_export)
    monkeypatch.setattr(threads, "_requested", threads._requested)  # the count asked for below is undone after
    again = un.load_classifier("default", backend="onnxruntime", num_threads=1)
    assert again.num_threads == 1 and again.model.session.get_session_options().intra_op_num_threads == 1
    np.testing.assert_array_equal(again.logits(TEXTS), ort_clf.logits(TEXTS))


@pytest.fixture(scope="module")
def int8(ort_clf):
    return un.load_classifier("default", backend="ort", precision="int8")


def test_int8_is_a_quantised_graph_that_keeps_most_labels(int8, ort_clf, sst2_dev, monkeypatch):
    import onnx

    assert int8.precision == "int8" and ort_clf.precision == "fp32"
    ops = [n.op_type for n in onnx.load(str(int8.model.file)).graph.node]
    # every weight product: 6 layers x (fused query/key/value; output, up, down) + the head
    assert ops.count("QAttention") == 6 and ops.count("MatMulInteger") == 19
    assert int8.model.file.parent != ort_clf.model.file.parent
    # int8 weights; the embeddings (47 of 91 MB) stay fp32
    assert int8.model.file.stat().st_size < 0.7 * ort_clf.model.file.stat().st_size
    texts, labels = sst2_dev[0][:300], sst2_dev[1][:300]
    report = un.compare(ort_clf, int8, texts)
    assert report.argmax_agreement >= 0.95 and report.logits_max_abs_diff > 1e-3, str(report)
    assert abs(int8.evaluate(texts, labels)["accuracy"] - ort_clf.evaluate(texts, labels)["accuracy"]) <= 0.03

    def no_quantize(*args, **kwargs):
        raise AssertionError("quantised again")

    monkeypatch.setattr(unified_nlp_onnxruntime, "quantize", no_quantize)
    again = un.load_classifier("default", backend="ort", precision="int8")
    np.testing.assert_array_equal(again.logits(TEXTS), int8.logits(TEXTS))


def test_an_exported_folder_runs_int8_and_an_int8_folder_refuses_fp32(exported, int8, tmp_path):
    from_folder = un.load_classifier(exported, backend="ort", precision="int8")
    np.testing.assert_allclose(from_folder.logits(TEXTS), int8.logits(TEXTS), atol=1e-6)
    folder = tmp_path / "int8"
    import shutil

    shutil.copytree(int8.model.file.parent, folder)
    assert un.load_classifier(folder, backend="ort").precision == "int8"  # as stored
    with pytest.raises(un.InvalidInputError, match="int8 export cannot run at fp32"):
        un.load_classifier(folder, backend="ort", precision="fp32")


def test_int8_without_onnx_says_what_to_install(exported, tmp_path):
    code = (
        "import sys; sys.modules['onnx'] = None\n"  # import onnx fails, as in an install without the export extra
        "import unified_nlp as un\n"
        "from unified_nlp.errors import BackendNotInstalledError\n"
        f"try:\n    un.load_classifier({str(exported)!r}, backend='ort', precision='int8')\n"
        "except BackendNotInstalledError as e:\n    print(e)\n"
    )
    env = {**os.environ, "UNIFIED_NLP_HOME": str(tmp_path / "empty-store"), "UNIFIED_NLP_PROGRESS": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "int8 needs the onnx package" in done.stdout and "pip install" in done.stdout, done.stderr[-2000:]


def test_precision_is_refused_where_the_backend_has_none(capsys):
    with pytest.raises(un.InvalidInputError, match=r"huggingface backend runs fp32(, bf16)? only here, not int8"):
        un.load_classifier("default", backend="huggingface", precision="int8")
    with pytest.raises(un.InvalidInputError, match="onnxruntime backend runs fp32, int8 only here, not bf16"):
        un.load_classifier("default", backend="ort", precision="bf16")
    with pytest.raises(un.InvalidInputError, match="precision must be one of fp32, bf16, int8, got 'fp16'"):
        un.load_classifier("default", backend="ort", precision="fp16")
    from unified_nlp.cli import main

    assert main(["classify", "--backend", "ort", "--precision", "int8", "--json", "This is a great movie!"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "POSITIVE"


def test_fit_is_a_clear_error_naming_the_backends_that_train(ort_clf):
    with pytest.raises(UnifiedNLPError, match="inference only.*huggingface, tfhub, paddlenlp"):
        ort_clf.fit(["a fine film", "dull"], ["POSITIVE", "NEGATIVE"], progress=False)


def test_convert_writes_a_folder_plain_onnxruntime_runs(exported, ort_clf):
    from tokenizers import Tokenizer

    assert {"model.onnx", "tokenizer.json", "unified_nlp.json"} <= {p.name for p in exported.iterdir()}
    tok = Tokenizer.from_file(str(exported / "tokenizer.json"))
    tok.enable_padding(pad_id=0)
    rows = tok.encode_batch(TEXTS[:3])
    feeds = {
        "input_ids": np.array([r.ids for r in rows], np.int64),
        "attention_mask": np.array([r.attention_mask for r in rows], np.int64),
        "token_type_ids": np.array([r.type_ids for r in rows], np.int64),
    }
    (logits,) = ort.InferenceSession(str(exported / "model.onnx")).run(["logits"], feeds)
    np.testing.assert_allclose(logits, ort_clf.logits(TEXTS[:3]), atol=1e-6)
    again = un.load_classifier(exported, backend="ort")
    np.testing.assert_array_equal(again.logits(TEXTS), ort_clf.logits(TEXTS))
    with pytest.raises(UnifiedNLPError, match="cannot be saved"):
        again.save(exported.parent / "saved")
    with pytest.raises(UnifiedNLPError, match="onnxruntime"):
        un.load_classifier(exported, backend="huggingface")


def test_running_an_export_imports_no_torch(exported):
    code = (
        "import sys, unified_nlp as un\n"
        f"clf = un.load_classifier({str(exported)!r}, backend='ort')\n"
        "print(clf.predict(['This is a great movie!'])[0].label)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip() == "POSITIVE", done.stderr[-2000:]


def test_export_without_torch_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"  # import torch fails, as where it is not installed
        "import unified_nlp as un\n"
        "from unified_nlp.errors import BackendNotInstalledError\n"
        "try:\n    un.load_classifier('default', backend='ort')\n"
        "except BackendNotInstalledError as e:\n    print(e)\n"
    )
    env = {**os.environ, "UNIFIED_NLP_HOME": str(tmp_path / "empty-store"), "UNIFIED_NLP_PROGRESS": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "needs torch" in done.stdout and "unified-nlp[onnxruntime-export]" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_onnx_file_is_a_clear_error(exported, tmp_path, damage):
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(exported, folder)
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(b"not an onnx file" * 10 if damage == "garbage" else data[: len(data) // 3])
    with pytest.raises(InvalidModelError, match="ONNX Runtime cannot load this model file"):
        un.load_classifier(folder, backend="onnxruntime")


def test_save_writes_the_canonical_folder(hf, ort_clf, tmp_path):
    saved = ort_clf.save(tmp_path / "saved")
    back = un.load_classifier(saved, backend="huggingface")
    np.testing.assert_array_equal(back.logits(TEXTS), hf.logits(TEXTS))


def test_cli_classify_and_compare(capsys, ort_clf, tmp_path):
    from unified_nlp.cli import main

    assert main(["classify", "--backend", "ort", "--json", "This is a great movie!", "a dull , lifeless script"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["label"] for r in rows] == [
        p.label for p in ort_clf.predict(["This is a great movie!", "a dull , lifeless script"])
    ]
    assert [r["label"] for r in rows] == ["POSITIVE", "NEGATIVE"]
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS[:4]) + "\n", encoding="utf-8")
    assert main(["compare", "--backends", "hf,ort", "--texts", str(tmp_path / "texts.txt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["backends"] == ["huggingface", "onnxruntime"]


def test_the_local_dataset_engine(ort_clf, hf, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    summary = un.classify_dataset(source, tmp_path / "out.jsonl", backend="ort", chunk_rows=2)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert summary["rows"] == len(TEXTS) and [r["label"] for r in rows] == [p.label for p in hf.predict(TEXTS)]


# --- every family's checkpoint, against transformers itself --------------------------------


def _reference(folder, texts, pairs=None):
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tok(texts, pairs, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return batch, model(**batch).logits.numpy()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_family_matches_transformers_on_texts_and_pairs(arch, tmp_path):
    require("huggingface")
    folder = make_checkpoint(arch, tmp_path / arch, scale=8.0)
    clf = un.load_classifier(folder, backend="ort")
    assert clf.labels == LABELS and clf.spec.architecture == arch
    meta = json.loads((clf.model.file.parent / "unified_nlp.json").read_text())
    assert meta["fusions"].get("Attention", 0) >= 1  # attention fused in every family (ALBERT: its shared layer once)
    batch, expected = _reference(folder, TEXTS)
    np.testing.assert_array_equal(clf.tokenizer(TEXTS).input_ids, batch["input_ids"].numpy())
    logits = clf.logits(TEXTS)
    assert np.abs(logits - expected).max() <= TOL
    assert np.abs(logits - logits[:1]).max() > 1e-3  # the inputs count: not a constant output
    assert clf.predict(TEXTS)[-1].truncated
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    batch, expected = _reference(folder, first, second)
    assert np.abs(clf.logits(PAIRS) - expected).max() <= TOL
    assert np.abs(clf.logits(PAIRS) - clf.logits(first)).max() > 1e-6  # the second text counts


def test_multi_label_as_the_other_backends(tmp_path):
    require("huggingface")
    folder = make_checkpoint("bert", tmp_path / "multi", problem_type="multi_label_classification", scale=8.0)
    hf_clf = un.load_classifier(folder, backend="huggingface")
    clf = un.load_classifier(folder, backend="ort")
    assert clf.multi_label and hf_clf.multi_label
    assert np.abs(clf.logits(TEXTS) - hf_clf.logits(TEXTS)).max() <= TOL
    same = [[p.label for p in row] for row in clf.predict(TEXTS)]
    assert same == [[p.label for p in row] for row in hf_clf.predict(TEXTS)]


@pytest.mark.parametrize("faster", ["fused", "plain"])
def test_export_keeps_the_graph_that_ran_faster_here(faster, tmp_path, monkeypatch):
    """Whichever graph the timing at export favours is the one written, and it gives the same
    logits (within 1e-5 of transformers) as the other would."""
    require("huggingface")
    onnx = pytest.importorskip("onnx")
    export_module = importlib.import_module("unified_nlp_onnxruntime.export")

    def timed(graphs, *args, **kwargs):
        assert set(graphs) == {"fused", "plain"} and all(p.is_file() for p in graphs.values())
        return {name: 1.0 if name == faster else 2.0 for name in graphs}

    monkeypatch.setattr(export_module, "_seconds", timed)
    folder = make_checkpoint("bert", tmp_path / "bert", scale=8.0)
    clf = un.load_classifier(folder, backend="ort")
    meta = json.loads((clf.model.file.parent / "unified_nlp.json").read_text())
    assert meta["graph_choice"]["kept"] == faster and meta["optimized"] is (faster == "fused")
    ops = {node.op_type for node in onnx.load(str(clf.model.file)).graph.node}
    assert ("Attention" in ops) is (faster == "fused")
    batch, expected = _reference(folder, TEXTS)
    assert np.abs(clf.logits(TEXTS) - expected).max() <= TOL
