"""The PaddleNLP adapter in-process, run inside the Paddle environment:

    UNIFIED_NLP_TEST_MODEL=/path/to/canonical/folder .venv-paddle/bin/python -m pytest tests/test_paddlenlp_inprocess.py

The Hugging Face reference (token ids, logits, hidden states, decoded text,
training losses) cannot be computed here (transformers 5 does not install next
to PaddleNLP), so it comes from backends/paddlenlp/reference/, written in the
main environment by make_reference.py with transformers and torch themselves
(AutoTokenizer, AutoModel, mean pooling and the head in torch, torch's AdamW), not
through a unified_nlp backend.

Skips when paddle/PaddleNLP are not importable (the main environment collects
this module too), unless $UNIFIED_NLP_REQUIRE_BACKENDS lists "paddlenlp-inprocess".
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO, paddle_unavailable, require_paddle_in_process

require_paddle_in_process()

from unified_nlp_paddlenlp import PaddleNLPBackend  # noqa: E402

import unified_nlp as un  # noqa: E402
from unified_nlp.errors import ConversionError, InvalidModelError  # noqa: E402
from unified_nlp.protocols import Model, Tokenizer  # noqa: E402
from unified_nlp.spec import ModelSpec  # noqa: E402
from unified_nlp.weights import load_file, save_file  # noqa: E402

REFERENCE = REPO / "backends" / "paddlenlp" / "reference" / "hf_minilm_reference.safetensors"
CLEAR = [
    ("This is a great movie!", "POSITIVE"),
    ("A wonderful, moving and beautifully acted film.", "POSITIVE"),
    ("Terrible. A waste of two hours.", "NEGATIVE"),
    ("The plot is dull and the acting is awful.", "NEGATIVE"),
]


# --- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def canonical() -> Path:
    value = os.environ.get("UNIFIED_NLP_TEST_MODEL")
    if not value:
        message = (
            "set UNIFIED_NLP_TEST_MODEL to a canonical model folder (the Makefile does); for the default model: "
            ".venv/bin/python -c 'from unified_nlp.resolve import default_model_dir; print(default_model_dir())'"
        )
        paddle_unavailable(message)
    path = Path(value)
    assert (path / "config.json").is_file(), f"UNIFIED_NLP_TEST_MODEL={value} is not a canonical folder"
    return path


@pytest.fixture(scope="session", autouse=True)
def store(tmp_path_factory):
    """Conversions of this session go to a fresh store, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIFIED_NLP_HOME", str(tmp_path_factory.mktemp("store")))
        yield


@pytest.fixture(scope="session")
def backend() -> PaddleNLPBackend:
    return PaddleNLPBackend()


@pytest.fixture(scope="session")
def clf(canonical):
    return un.load_classifier(canonical, backend="paddlenlp")


@pytest.fixture(scope="session")
def paddle_dir(canonical, backend, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("paddle") / "model"
    backend.convert(canonical, out)
    return out


def _metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))["__metadata__"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def ref(canonical):
    """The Hugging Face reference; it holds for the model it was made from only, so a
    mismatch is a failure (a stale reference), never a skip."""
    meta = _metadata(REFERENCE)
    stale = [
        name
        for name, key in (
            ("vocab.txt", "vocab_sha256"),
            ("model.safetensors", "encoder_sha256"),
            ("head.safetensors", "head_sha256"),
        )
        if _sha256(canonical / name) != meta[key]
    ]
    if stale:
        pytest.fail(
            f"{REFERENCE.name} was made from another model: the sha256 of {', '.join(stale)} in {canonical} differ. "
            "Regenerate it in the main environment (it runs transformers itself) with `.venv/bin/python "
            f"backends/paddlenlp/reference/make_reference.py --model {canonical}` (no --model: the default model), "
            "and commit it if this is the default model",
            pytrace=False,
        )
    tensors = load_file(REFERENCE)

    def unflat(name):
        ids, off = tensors[f"{name}_ids"], tensors[f"{name}_offsets"]
        return [ids[off[i] : off[i + 1]].tolist() for i in range(len(off) - 1)]

    def expand(item):
        return (
            item
            if isinstance(item, str)
            else (item["repeat"] * (item["length"] // len(item["repeat"]) + 1))[: item["length"]]
        )

    return {
        **tensors,
        "meta": meta,
        "sst2": unflat("sst2"),
        "awkward": unflat("awkward"),
        "awkward_cleaned": unflat("awkward_cleaned"),
        "awkward_texts": [expand(t) for t in json.loads(meta["awkward_texts"])],
    }


def _rows(enc) -> list[list[int]]:
    return [enc.input_ids[i, : enc.lengths[i]].tolist() for i in range(enc.num_texts)]


# --- conversion ---------------------------------------------------------------------


def test_round_trip_hf_paddle_hf_is_bit_exact(canonical, backend, paddle_dir, tmp_path):
    back = tmp_path / "back"
    backend.export_canonical(paddle_dir, back)
    original, again = load_file(canonical / "model.safetensors"), load_file(back / "model.safetensors")
    assert sorted(again) == sorted(original)  # the position_ids buffer included
    for name, array in original.items():
        assert again[name].dtype == array.dtype and again[name].tobytes() == array.tobytes(), name
    for name in ("config.json", "head.safetensors", "vocab.txt", "tokenizer.json"):
        if (canonical / name).is_file():
            assert (back / name).read_bytes() == (canonical / name).read_bytes(), name
    assert (
        json.loads((back / "unified_nlp.json").read_text())["labels"]
        == json.loads((canonical / "unified_nlp.json").read_text())["labels"]
    )


def test_paddle_folder_holds_paddlenlp_names_and_transposed_linears(canonical, paddle_dir):
    hf, pd = load_file(canonical / "model.safetensors"), load_file(paddle_dir / "paddlenlp" / "model.safetensors")
    np.testing.assert_array_equal(
        pd["encoder.layers.0.self_attn.q_proj.weight"], hf["encoder.layer.0.attention.self.query.weight"].T
    )
    np.testing.assert_array_equal(
        pd["encoder.layers.1.linear1.weight"], hf["encoder.layer.1.intermediate.dense.weight"].T
    )
    np.testing.assert_array_equal(pd["encoder.layers.2.norm2.bias"], hf["encoder.layer.2.output.LayerNorm.bias"])
    np.testing.assert_array_equal(pd["embeddings.layer_norm.weight"], hf["embeddings.LayerNorm.weight"])
    assert not any(k.startswith("encoder.layer.") for k in pd) and "embeddings.position_ids" not in pd
    spec = json.loads((paddle_dir / "unified_nlp.json").read_text())
    assert spec["format"] == "paddlenlp" and spec["encoder_dir"] == "paddlenlp"
    assert not list(paddle_dir.rglob("*.pdparams"))


def test_paddlenlp_itself_loads_the_paddle_folder(canonical, paddle_dir):
    from paddlenlp.transformers import BertModel, BertTokenizer

    model = BertModel.from_pretrained(str(paddle_dir / "paddlenlp"))  # a local folder: nothing is downloaded
    ours = load_file(paddle_dir / "paddlenlp" / "model.safetensors")
    state = model.state_dict()
    assert set(state) == set(ours)
    assert all(np.array_equal(state[k].numpy(), ours[k]) for k in ours)
    assert BertTokenizer.from_pretrained(str(paddle_dir / "paddlenlp")).vocab_size == 30522


def test_export_of_a_paddlenlp_save_pretrained_folder(canonical, clf, tmp_path):
    """Users leaving PaddleNLP: a folder PaddleNLP's own save_pretrained wrote becomes canonical."""
    native = tmp_path / "native"
    clf.model.encoder.save_pretrained(str(native), safe_serialization=True)
    shutil.copy2(canonical / "vocab.txt", native / "vocab.txt")
    out = tmp_path / "canonical"
    PaddleNLPBackend().export_canonical(native, out)
    original, again = load_file(canonical / "model.safetensors"), load_file(out / "model.safetensors")
    assert sorted(again) == sorted(k for k in original if k != "embeddings.position_ids")
    assert all(np.array_equal(again[k], original[k]) for k in again)
    with pytest.raises(InvalidModelError, match="to_canonical"):
        PaddleNLPBackend().load(native, ModelSpec(labels=("a", "b"), max_length=512))


def test_convert_refuses_bad_weights_and_leaves_nothing(canonical, backend, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(canonical, bad)
    tensors = load_file(bad / "model.safetensors")
    tensors["encoder.layer.0.attention.self.unknown.weight"] = np.zeros(3, np.float32)
    save_file(tensors, bad / "model.safetensors")
    with pytest.raises(ConversionError, match="outside the BERT architecture"):
        backend.convert(bad, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]  # no output, no partial folder


def test_a_second_load_reuses_the_conversion(canonical, clf):
    from unified_nlp.store_keys import converted_dir

    folder = converted_dir(canonical, "paddlenlp")
    stamp = (folder / "paddlenlp" / "model.safetensors").stat().st_mtime_ns
    un.load_classifier(canonical, backend="paddlenlp")
    assert (folder / "paddlenlp" / "model.safetensors").stat().st_mtime_ns == stamp


def test_loading_the_paddle_folder_directly_and_saving_canonical(canonical, paddle_dir, clf, tmp_path):
    direct = un.load_classifier(paddle_dir, backend="paddlenlp")
    texts = [t for t, _ in CLEAR]
    np.testing.assert_array_equal(direct.logits(texts), clf.logits(texts))
    saved = direct.save(tmp_path / "saved")
    config, original_config = (json.loads((p / "config.json").read_text()) for p in (saved, canonical))
    assert {k: v for k, v in config.items() if k in original_config and k != "architectures"} == {
        k: v for k, v in original_config.items() if k != "architectures"
    }  # the core adds the labels and the encoder class
    original, again = load_file(canonical / "model.safetensors"), load_file(saved / "model.safetensors")
    for name in again:
        assert again[name].tobytes() == original[name].tobytes(), name
    assert json.loads((saved / "unified_nlp.json").read_text())["format"] == "huggingface"


# --- tokenizer ------------------------------------------------------------------------


def test_token_ids_equal_huggingface_on_sst2_dev(clf, ref, sst2_dev):
    rows = _rows(clf.tokenizer(sst2_dev[0]))
    same = sum(a == b for a, b in zip(rows, ref["sst2"]))
    assert same == len(ref["sst2"]) == 872


def test_token_ids_equal_huggingface_on_awkward_text(clf, ref):
    texts = ref["awkward_texts"]
    enc = clf.tokenizer(texts)
    for text, mine, theirs in zip(texts, _rows(enc), ref["awkward"]):
        assert mine == theirs, text[:80]
    np.testing.assert_array_equal(enc.truncated, ref["awkward_truncated"])
    # two 100,000-character texts are cut to 512 tokens; the third, "xxx...", is one word: one [UNK]
    assert enc.input_ids.shape[1] == 512 and enc.truncated.tolist()[-3:] == [True, True, False]
    # through the core's pipeline too, which drops control characters before any tokenizer
    assert _rows(clf.tokenizer(clf.preprocess(texts))) == ref["awkward_cleaned"]


def test_decode_equals_huggingface(clf, ref):
    enc = clf.tokenizer(ref["awkward_texts"])
    decoded = [clf.tokenizer.decode(enc.input_ids[i, : enc.lengths[i]]) for i in range(enc.num_texts)]
    assert decoded == json.loads(ref["meta"]["decoded_awkward"])
    sst2 = [np.asarray(r) for r in ref["sst2"][:50]]
    assert [clf.tokenizer.decode(r, skip_special_tokens=False) for r in sst2] == json.loads(
        ref["meta"]["decoded_sst2_with_special"]
    )


def test_tokenizer_protocol(clf):
    tok = clf.tokenizer
    assert isinstance(tok, Tokenizer) and tok.max_length == 512 and tok.vocab_size == 30522
    enc = tok(["a great movie", "", "x " * 1000], max_length=16)
    assert enc.input_ids.dtype == np.int64 and enc.input_ids.shape == (3, 16)
    assert enc.truncated.tolist() == [False, False, True]
    assert enc.input_ids[1, :2].tolist() == [101, 102] and enc.attention_mask[1].sum() == 2
    assert tok(["a b"], padding="max_length", max_length=8).input_ids.shape == (1, 8)
    assert tok(["word " * 600], truncation=False).input_ids.shape == (1, 602)


def test_the_paddlenlp_tokenizer_fallback_matches_huggingface(canonical, paddle_dir, clf, ref, sst2_dev):
    """PaddleNLP's BertTokenizer with this adapter's normaliser fixes (used for a folder
    without tokenizer.json or vocab.txt at its top level) on the export's own files."""
    from unified_nlp_paddlenlp.tokenizer import PaddleTokenizer

    tok = PaddleTokenizer(paddle_dir / "paddlenlp", 512)
    assert _rows(tok(sst2_dev[0])) == ref["sst2"]
    enc = tok(ref["awkward_texts"])
    assert _rows(enc) == ref["awkward"]
    np.testing.assert_array_equal(enc.truncated, ref["awkward_truncated"])
    first, second = sst2_dev[0][:436], sst2_dev[0][436:872]
    for limit in (512, 24):
        ours, theirs = (
            tok(first, text_pair=second, max_length=limit),
            clf.tokenizer(first, text_pair=second, max_length=limit),
        )
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        np.testing.assert_array_equal(ours.truncated, theirs.truncated)


# --- model --------------------------------------------------------------------------


def test_clear_sentences(clf):
    assert [p.label for p in clf.predict([t for t, _ in CLEAR])] == [label for _, label in CLEAR]
    assert isinstance(clf.model, Model) and clf.model.num_labels == 2


def test_hidden_states_match_huggingface(clf, ref):
    enc = clf.tokenizer(json.loads(ref["meta"]["clear_texts"]))
    np.testing.assert_array_equal(enc.input_ids, ref["clear_input_ids"])
    out = clf.model(enc, output_hidden_states=True)
    assert out.logits.dtype == np.float32 and out.last_hidden_state.shape == ref["clear_last_hidden_state"].shape
    mask = enc.attention_mask.astype(bool)
    np.testing.assert_allclose(out.last_hidden_state[mask], ref["clear_last_hidden_state"][mask], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.pooled, ref["clear_pooled"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.logits, ref["clear_logits"], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_logits_match_huggingface_on_sst2_dev(clf, ref, sst2_dev):
    logits = clf.logits(sst2_dev[0])
    diff = np.abs(logits - ref["sst2_logits"])
    assert diff.max() <= 1e-5, f"max |diff| {diff.max():.3e}"
    assert (logits.argmax(1) == ref["sst2_logits"].argmax(1)).all()


def test_inference_runs_on_a_paddle_inference_predictor_that_follows_the_weights(canonical, sst2_dev):
    clf = un.load_classifier(canonical, backend="paddlenlp")
    texts = sst2_dev[0][:40]
    before = clf.logits(texts)
    assert type(clf.model._predictor).__name__ == "PaddleInferPredictor"  # oneDNN, not the fallback
    dygraph = clf.model._run(clf.tokenizer(texts))[0].numpy()  # the same Layers, uncompiled
    np.testing.assert_allclose(before, dygraph, atol=1e-5, rtol=0)
    state = clf.model.state_dict()
    state["head.bias"] = state["head.bias"] + np.array([5.0, -5.0], np.float32)
    clf.model.load_state_dict(state)
    after = clf.logits(texts)  # a predictor holds a copy of the weights: remade, not stale
    np.testing.assert_allclose(after - before, np.tile([5.0, -5.0], (len(texts), 1)), atol=1e-4, rtol=0)


def test_a_prediction_leaves_paddle_on_the_threads_asked_for(canonical):
    # a Paddle Inference run() ends by setting the process's math library to one thread; training
    # (dygraph) after a prediction ran on one core until the adapter set the count back
    from unified_nlp_paddlenlp import _framework

    clf = un.load_classifier(canonical, backend="paddlenlp", num_threads=2)
    assert _framework.mkl_threads() == 2
    clf.predict(["A fine film.", "A dull one."])
    assert type(clf.model._predictor).__name__ == "PaddleInferPredictor"
    assert _framework.mkl_threads() == 2


def test_importing_paddle_does_not_set_the_thread_default_to_one():
    # `import paddle` writes OMP_NUM_THREADS=1 where it is unset, which unified_nlp.threads
    # reads as the user's request
    script = textwrap.dedent(
        """
        import os
        from unified_nlp import threads
        from unified_nlp_paddlenlp import _framework
        print(os.environ.get("OMP_NUM_THREADS"), _framework.math_threads(), _framework.mkl_threads(),
              threads.requested(), threads.available_cores())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    omp, math, mkl, requested, cores = done.stdout.split()
    assert omp == "None" and math == mkl == requested == cores, done.stdout
    env["OMP_NUM_THREADS"] = "1"  # the user's own value is kept and used
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.stdout.split()[:4] == ["1", "1", "1", "1"], done.stdout + done.stderr[-2000:]


def test_bf16_runs_onednn_bf16_kernels_and_keeps_the_labels(canonical, clf, sst2_dev, monkeypatch):
    from unified_nlp_paddlenlp import _cpu

    if not _cpu.native_bf16():  # oneDNN would emulate bf16, slower than fp32: not offered
        with pytest.raises(un.InvalidInputError, match="paddlenlp backend runs fp32 only here, not bf16"):
            un.load_classifier(canonical, backend="paddlenlp", precision="bf16")
        return
    bf16 = un.load_classifier(canonical, backend="paddlenlp", precision="bf16")
    assert bf16.precision == "bf16"
    texts = sst2_dev[0][:160]
    fp32, low = clf.logits(texts), bf16.logits(texts)
    assert 1e-3 < np.abs(fp32 - low).max() < 0.1  # rounded to bf16 (fp32 runs agree within 4e-6), and close
    assert (fp32.argmax(1) == low.argmax(1)).mean() >= 0.99
    enc = bf16.tokenizer(texts[:4])
    both = bf16.model(enc, output_hidden_states=True)  # what compare reads: bf16 logits, fp32 states
    np.testing.assert_array_equal(both.logits, bf16.model(enc).logits)
    np.testing.assert_allclose(
        both.last_hidden_state, clf.model(enc, output_hidden_states=True).last_hidden_state, atol=1e-5
    )
    monkeypatch.setenv("UNIFIED_NLP_PADDLE_INFERENCE", "0")
    with pytest.raises(un.InvalidInputError, match="bf16.*Paddle Inference"):
        un.load_classifier(canonical, backend="paddlenlp", precision="bf16")


def test_state_dict_uses_canonical_names(canonical, clf):
    state = clf.model.state_dict()
    original = load_file(canonical / "model.safetensors")
    assert sorted(state) == sorted(
        [k for k in original if k != "embeddings.position_ids"] + ["head.weight", "head.bias"]
    )
    for name in original:
        if name in state:
            assert state[name].tobytes() == original[name].tobytes(), name


def test_concurrent_predictions_equal_sequential(clf, sst2_dev):
    """Each concurrent call equals the same call made alone, bit for bit (same batch size,
    same batches). Across batch sizes padding changes the kernels' summation order: logits
    moved by up to 1.7e-6 (20 runs beside a CPU hog), bounded by the parity contract's 1e-5."""
    texts = sst2_dev[0][:64]
    sizes = [8 + i for i in range(4)]
    expected = [clf.logits(texts, batch_size=b) for b in sizes]
    results, errors = [None] * 4, []

    def run(i):
        try:
            results[i] = clf.logits(texts, batch_size=sizes[i])
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for size, r, alone in zip(sizes, results, expected):
        np.testing.assert_array_equal(r, alone, err_msg=f"batch size {size}")
        np.testing.assert_allclose(r, expected[0], atol=1e-5, rtol=0)


def test_empty_batch(clf):
    assert clf.predict([]) == []
    assert clf.model(clf.tokenizer([]), output_hidden_states=True).logits.shape == (0, 2)


# --- training -----------------------------------------------------------------------


def test_training_steps_match_huggingface(canonical, ref, sst2_dev):
    train = json.loads(ref["meta"]["train"])
    fresh = un.load_classifier(canonical, backend="paddlenlp")
    enc = fresh.tokenizer(sst2_dev[0])
    labels = np.asarray(sst2_dev[1])
    fresh.model.start_training(train["config"])
    losses = []
    for s in range(train["steps"]):
        rows = np.arange(s * train["batch"], (s + 1) * train["batch"])
        losses.append(fresh.model.train_step(enc.select(rows), labels[rows], train["learning_rate"]))
    fresh.model.end_training()
    np.testing.assert_allclose(losses, ref["train_losses"], rtol=1e-3)
    state = fresh.model.state_dict()
    np.testing.assert_allclose(state["head.weight"], ref["train_head_weight"], atol=1e-5)
    np.testing.assert_allclose(
        state["encoder.layer.0.attention.self.query.weight"][:4], ref["train_query_weight_rows"], atol=1e-5
    )
    original = load_file(canonical / "model.safetensors")
    assert np.array_equal(
        state["pooler.dense.weight"], original["pooler.dense.weight"]
    )  # unused: untouched, as in torch


def test_a_short_run_lowers_the_loss(canonical, sst2_dev):
    texts, labels = sst2_dev[0][:48], sst2_dev[1][:48]
    fresh = un.load_classifier(canonical, backend="paddlenlp", labels=["neg", "pos"])  # a fresh head
    history = fresh.fit(
        texts,
        labels,
        epochs=4,
        batch_size=16,
        learning_rate=1e-3,
        freeze_encoder=True,
        warmup_ratio=0.0,
        seed=0,
        progress=False,
    )
    assert history["epoch_loss"][-1] < history["epoch_loss"][0]
    before = load_file(canonical / "model.safetensors")["encoder.layer.0.output.dense.weight"]
    assert np.array_equal(fresh.model.state_dict()["encoder.layer.0.output.dense.weight"], before)  # frozen


# --- errors -------------------------------------------------------------------------


def _broken_copy(paddle_dir: Path, tmp_path: Path) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(paddle_dir, bad)
    return bad


def test_pdparams_only_is_refused_without_unpickling(paddle_dir, backend, tmp_path):
    bad = _broken_copy(paddle_dir, tmp_path)
    (bad / "paddlenlp" / "model.safetensors").unlink()
    (bad / "paddlenlp" / "model_state.pdparams").write_bytes(b"\x80\x04not a pickle, never read")
    with pytest.raises(InvalidModelError, match=r"model\.safetensors: missing.*model_state\.pdparams.*never loaded"):
        un.load_classifier(bad, backend="paddlenlp")


def test_truncated_weights_name_the_file(paddle_dir, tmp_path):
    bad = _broken_copy(paddle_dir, tmp_path)
    weights = bad / "paddlenlp" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1_000_000])
    with pytest.raises(InvalidModelError, match=r"paddlenlp/model\.safetensors.*truncated"):
        un.load_classifier(bad, backend="paddlenlp")


def test_wrong_shape_names_the_tensor(paddle_dir, tmp_path):
    bad = _broken_copy(paddle_dir, tmp_path)
    weights = bad / "paddlenlp" / "model.safetensors"
    tensors = load_file(weights)
    tensors["encoder.layers.3.linear1.bias"] = tensors["encoder.layers.3.linear1.bias"][:-1]
    save_file(tensors, weights)
    with pytest.raises(InvalidModelError, match=r"encoder\.layers\.3\.linear1\.bias.*shape"):
        un.load_classifier(bad, backend="paddlenlp")


def test_missing_paddle_config_names_the_file(paddle_dir, tmp_path):
    bad = _broken_copy(paddle_dir, tmp_path)
    (bad / "paddlenlp" / "config.json").unlink()
    with pytest.raises(InvalidModelError, match=r"paddlenlp/config\.json: missing"):
        un.load_classifier(bad, backend="paddlenlp")


def test_canonical_folder_with_only_a_pickle(canonical, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("config.json", "vocab.txt"):
        shutil.copy2(canonical / name, bad / name)
    (bad / "pytorch_model.bin").write_bytes(b"\x80\x04never unpickled")
    with pytest.raises(InvalidModelError, match="never loaded"):
        un.load_classifier(bad, backend="paddlenlp", labels=["a", "b"])


# --- process hygiene ----------------------------------------------------------------


def test_import_is_light_and_use_is_quiet(canonical):
    script = textwrap.dedent(
        f"""
        import sys
        import unified_nlp_paddlenlp
        assert "paddle" not in sys.modules, "importing the adapter must not import paddle"
        import unified_nlp as un
        clf = un.load_classifier({str(canonical)!r}, backend="paddlenlp")
        assert clf.predict(["This is a great movie!"])[0].label == "POSITIVE"
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "" and done.stderr == "", (done.stdout + done.stderr)[-2000:]


def test_refuses_to_import_paddle_after_tensorflow():
    script = textwrap.dedent(
        """
        import sys, types
        sys.modules["tensorflow"] = types.ModuleType("tensorflow")  # stands in: the real one would crash us
        from unified_nlp.errors import BackendNotInstalledError
        try:
            import unified_nlp_paddlenlp._framework
        except BackendNotInstalledError as e:
            print("refused:", e)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("refused:") and "segmentation fault" in done.stdout


def test_entry_point_is_registered():
    from unified_nlp import registry

    assert isinstance(registry.load_adapter("paddlenlp"), PaddleNLPBackend)
    assert registry.placement("paddle").mode == "in-process"
