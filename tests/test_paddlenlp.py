"""The PaddleNLP backend from the main environment: through the worker process,
with the same API and results as in-process (in-process tests run inside the
Paddle environment: test_paddlenlp_inprocess.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp import registry
from unified_nlp.weights import load_file

from .conftest import default_classifier, require


@pytest.fixture(scope="module")
def paddle_clf():
    return default_classifier("paddlenlp")


def test_runs_in_a_worker_from_this_environment(paddle_clf):
    if registry.installed_here("paddlenlp"):
        pytest.skip("paddlenlp is installed in this environment")
    assert paddle_clf.runs == "worker" and paddle_clf.model.worker_pid is not None
    rows = {b.name: b for b in un.list_backends()}
    assert rows["paddlenlp"].runs == "worker" and "paddlepaddle" in rows["paddlenlp"].versions


def test_clear_sentences(paddle_clf):
    preds = paddle_clf.predict(["This is a great movie!", "Terrible. A waste of two hours."])
    assert [p.label for p in preds] == ["POSITIVE", "NEGATIVE"]


def test_precisions_come_from_the_worker(paddle_clf, sst2_dev):
    # the worker's adapter says what it runs: bf16 where the CPU has bf16 dot products
    from unified_nlp.api import _adapter

    offered = _adapter("paddlenlp")[0].precisions
    assert offered[0] == "fp32" and set(offered) <= {"fp32", "bf16"}
    if "bf16" not in offered:
        with pytest.raises(un.InvalidInputError, match="runs fp32 only here, not bf16"):
            un.load_classifier("default", backend="paddlenlp", precision="bf16")
        return
    bf16 = un.load_classifier("default", backend="paddlenlp", precision="bf16")
    report = un.compare(paddle_clf, bf16, sst2_dev[0][:96])
    assert bf16.precision == "bf16" and report.argmax_agreement >= 0.99 and report.logits_max_abs_diff > 1e-3
    with pytest.raises(un.InvalidInputError, match="not int8"):
        un.load_classifier("default", backend="paddlenlp", precision="int8")


def test_paddle_after_tensorflow_does_not_crash_the_process():
    """`import paddle` after `import tensorflow` is a segmentation fault; the library
    must route paddle to a worker instead of crashing its caller."""
    require("paddlenlp")
    require("tfhub")
    script = textwrap.dedent(
        """
        import tensorflow as tf  # noqa: F401  first, on purpose
        import unified_nlp as un
        clf = un.load_classifier("default", backend="paddlenlp")
        print(clf.runs, clf.predict(["This is a great movie!"])[0].label)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["worker", "POSITIVE"]


def test_placement_routes_paddle_to_a_worker_after_tensorflow(monkeypatch):
    monkeypatch.setattr(registry, "installed_here", lambda name: True)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow") or object())
    where = registry.placement("paddlenlp")
    assert where.mode == "worker" and "crashes" in where.reason


@pytest.mark.slow
def test_parity_with_huggingface_on_sst2_dev(paddle_clf, sst2_dev):
    hf = default_classifier("huggingface")
    report = un.compare(hf, paddle_clf, sst2_dev[0])
    assert report.token_id_equality == 1.0, report
    assert report.logits_max_abs_diff <= 1e-5, report
    assert report.argmax_agreement == 1.0, report
    assert report.passed


def test_round_trip_hf_paddle_hf_is_bit_exact(tmp_path, default_dir):
    require("paddlenlp")
    paddle_dir = un.convert("default", to="paddlenlp", out=tmp_path / "paddle")
    back = un.convert(paddle_dir, to="huggingface", out=tmp_path / "back")
    original, again = load_file(default_dir / "model.safetensors"), load_file(back / "model.safetensors")
    for name in original:
        if name == "embeddings.position_ids":
            continue  # a buffer, not a weight
        assert name in again, name
        np.testing.assert_array_equal(again[name], original[name], err_msg=name)
    head, head_back = load_file(default_dir / "head.safetensors"), load_file(back / "head.safetensors")
    for name in head:
        np.testing.assert_array_equal(head_back[name], head[name])
    hf = default_classifier("huggingface")
    texts = ["This is a great movie!", "meh"]
    np.testing.assert_array_equal(un.load_classifier(back, backend="huggingface").logits(texts), hf.logits(texts))
    from_paddle_dir = un.load_classifier(paddle_dir, backend="paddlenlp")
    np.testing.assert_allclose(from_paddle_dir.logits(texts), hf.logits(texts), atol=1e-5, rtol=0)


def test_cli_compare_passes(tmp_path):
    require("paddlenlp")
    texts = tmp_path / "texts.txt"
    texts.write_text("This is a great movie!\nawful\n日本語\n\nit 's a charming and often affecting journey .\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "unified_nlp.cli",
            "compare",
            "--backends",
            "huggingface,paddlenlp",
            "--texts",
            str(texts),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "PASS" in done.stdout and "token ids identical      100.00%" in done.stdout


# --- users' own checkpoints of every family, through the worker ---------------------

TEXTS = ["This is a great movie!", "a dull , lifeless script", "", "Café naïve 日本語 😀", "x " * 200]
PAIRS = [("A man plays a guitar.", "A person makes music."), ("great", "it was bad")]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """transformers' save_pretrained folders, matrices scaled up so that logits depend on the input."""
    require("paddlenlp")
    require("huggingface")
    from .checkpoints import ARCHITECTURES, make_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    return {arch: make_checkpoint(arch, root / arch, scale=8.0) for arch in ARCHITECTURES}


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta", "xlm-roberta", "electra", "albert", "ernie"])
def test_every_family_through_the_worker_matches_huggingface(folders, arch):
    paddle = un.load_classifier(folders[arch], backend="paddlenlp")
    hf = un.load_classifier(folders[arch], backend="huggingface")
    assert paddle.runs == "worker" or registry.installed_here("paddlenlp")
    assert paddle.labels == hf.labels and paddle.spec.head == "native"
    np.testing.assert_array_equal(paddle.tokenizer(TEXTS).input_ids, hf.tokenizer(TEXTS).input_ids)
    from .checkpoints import assert_parity, transformers_logits

    assert_parity(paddle.logits(TEXTS), transformers_logits(folders[arch], TEXTS), 1e-5)  # transformers itself
    report = un.compare(hf, paddle, TEXTS)
    assert report.token_id_equality == 1.0 and report.argmax_agreement == 1.0, report


def test_convert_through_the_worker_and_back(folders, tmp_path):
    out = un.convert(folders["roberta"], to="paddlenlp", out=tmp_path / "paddle")
    spec = json.loads((out / "unified_nlp.json").read_text())
    assert spec["paddle_class"] == "RobertaForSequenceClassification" and spec["paddle_tokenizer"]
    hf = un.load_classifier(folders["roberta"], backend="huggingface")
    assert np.abs(un.load_classifier(out, backend="paddlenlp").logits(TEXTS) - hf.logits(TEXTS)).max() <= 1e-5
    back = un.convert(out, to="huggingface", out=tmp_path / "back")
    original, again = load_file(folders["roberta"] / "model.safetensors"), load_file(back / "model.safetensors")
    assert sorted(again) == sorted(original) and all(again[k].tobytes() == original[k].tobytes() for k in original)


def test_fit_through_the_worker_follows_huggingface(folders):
    texts = ["a charming journey", "it is a mess", "an average film", "a triumph", "boring", "nothing special"]
    labels = ["positive", "negative", "neutral", "positive", "negative", "neutral"]
    options = {"epochs": 3, "batch_size": 6, "learning_rate": 1e-3, "warmup_ratio": 0.0, "progress": False}
    losses = {
        backend: un.load_classifier(folders["electra"], backend=backend).fit(texts, labels, **options)["loss"]
        for backend in ("huggingface", "paddlenlp")
    }
    np.testing.assert_allclose(losses["paddlenlp"], losses["huggingface"], rtol=1e-3)
    assert losses["paddlenlp"][-1] < losses["paddlenlp"][0]


def test_a_fresh_head_on_the_bare_minilm_encoder(folders):
    paddle = un.load_classifier("minilm", backend="paddlenlp", labels=["no", "yes"], seed=1)
    hf = un.load_classifier("minilm", backend="huggingface", labels=["no", "yes"], seed=1)
    assert paddle.spec.fresh_head and paddle.spec.head == "native"
    assert np.abs(paddle.logits(TEXTS) - hf.logits(TEXTS)).max() <= 1e-5


def test_a_mean_pooling_head_on_another_family(folders, tmp_path):
    import shutil

    from unified_nlp.weights import save_file

    folder = Path(shutil.copytree(folders["albert"], tmp_path / "mean"))
    rng = np.random.default_rng(0)
    save_file(
        {"weight": rng.standard_normal((2, 32)).astype(np.float32), "bias": np.array([0.1, -0.1], np.float32)},
        folder / "head.safetensors",
    )
    (folder / "unified_nlp.json").write_text(json.dumps({"labels": ["bad", "good"], "pooling": "mean"}))
    paddle, hf = (un.load_classifier(folder, backend=b) for b in ("paddlenlp", "huggingface"))
    assert paddle.spec.head == "mean" and paddle.labels == ("bad", "good")
    assert np.abs(paddle.logits(TEXTS) - hf.logits(TEXTS)).max() <= 1e-5


@pytest.mark.parametrize(
    "arch, change",
    [("ernie", {"layer_norm_eps": 1e-5}), ("electra", {"hidden_act": "relu"}), ("distilbert", {"activation": "relu"})],
)
def test_configs_plain_paddlenlp_computes_differently_still_match(folders, arch, change, tmp_path):
    """ERNIE: PaddleNLP forces LayerNorm epsilon 1e-12; ELECTRA: its head applies hidden_act where
    transformers' applies GELU. The backend corrects both on load; the export says plain PaddleNLP differs."""
    import shutil

    folder = Path(shutil.copytree(folders[arch], tmp_path / "changed"))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | change))
    hf, paddle = (un.load_classifier(folder, backend=b) for b in ("huggingface", "paddlenlp"))
    assert np.abs(paddle.logits(TEXTS) - hf.logits(TEXTS)).max() <= 1e-5
    spec = json.loads((un.convert(folder, to="paddlenlp", out=tmp_path / "paddle") / "unified_nlp.json").read_text())
    assert bool(spec.get("plain_paddlenlp_differs")) == (arch != "distilbert")


def test_albert_with_two_groups_of_two_layers(folders, tmp_path):
    import shutil

    import torch
    import transformers

    from .checkpoints import scale_matrices

    folder = Path(shutil.copytree(folders["albert"], tmp_path / "groups"))
    config = transformers.AutoConfig.from_pretrained(folder)
    config.num_hidden_groups, config.inner_group_num, config.num_hidden_layers = 2, 2, 4
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    scale_matrices(model, 8.0)
    model.save_pretrained(folder)
    hf, paddle = (un.load_classifier(folder, backend=b) for b in ("huggingface", "paddlenlp"))
    assert np.abs(paddle.logits(TEXTS) - hf.logits(TEXTS)).max() <= 1e-5


def test_a_pytorch_model_bin_loads_like_safetensors(folders, tmp_path):
    """Read through the core's restricted reader, never unpickled."""
    import shutil

    from .checkpoints import to_pytorch_bin

    pickled = to_pytorch_bin(Path(shutil.copytree(folders["distilbert"], tmp_path / "bin")))
    a = un.load_classifier(folders["distilbert"], backend="paddlenlp").logits(TEXTS)
    np.testing.assert_array_equal(un.load_classifier(pickled, backend="paddlenlp").logits(TEXTS), a)


def test_an_encoder_without_a_head_converts_and_loads_with_labels(tmp_path):
    """The bare MiniLM (no head): the export is PaddleNLP's BertModel; loaded with labels it
    starts the fresh head every backend starts from."""
    require("paddlenlp")
    out = un.convert("minilm", to="paddlenlp", out=tmp_path / "paddle")
    spec = json.loads((out / "unified_nlp.json").read_text())
    assert spec["paddle_class"] == "BertModel" and "labels" not in spec
    paddle = un.load_classifier(out, backend="paddlenlp", labels=["no", "yes"], seed=2)
    hf = un.load_classifier("minilm", backend="huggingface", labels=["no", "yes"], seed=2)
    assert np.abs(paddle.logits(TEXTS) - hf.logits(TEXTS)).max() <= 1e-5


def test_a_classifier_without_its_pooler_computes_with_the_cores_drawn_one(folders, tmp_path):
    import shutil

    from unified_nlp.weights import save_file

    folder = Path(shutil.copytree(folders["bert"], tmp_path / "nopooler"))
    tensors = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in tensors.items() if ".pooler." not in k}, folder / "model.safetensors")
    hf, paddle = (un.load_classifier(folder, backend=b) for b in ("huggingface", "paddlenlp"))
    assert np.abs(paddle.logits(TEXTS) - hf.logits(TEXTS)).max() <= 1e-5
    back = un.convert(
        un.convert(folder, to="paddlenlp", out=tmp_path / "paddle"), to="huggingface", out=tmp_path / "back"
    )
    assert sorted(load_file(back / "model.safetensors")) == sorted(load_file(folder / "model.safetensors"))


def test_sentence_pairs_through_the_worker(folders):
    paddle = un.load_classifier(folders["bert"], backend="paddlenlp")
    hf = un.load_classifier(folders["bert"], backend="huggingface")
    assert np.abs(paddle.logits(PAIRS) - hf.logits(PAIRS)).max() <= 1e-5


def test_multi_label_fit_through_the_worker(tmp_path):
    require("paddlenlp")
    from .checkpoints import make_checkpoint

    folder = make_checkpoint("bert", tmp_path / "multi", num_labels=3, problem_type="multi_label_classification")
    texts, labels = ["a", "b c", "d"], [["negative"], ["neutral", "positive"], []]
    options = {"epochs": 2, "batch_size": 3, "learning_rate": 1e-3, "progress": False}
    losses = [
        un.load_classifier(folder, backend=b).fit(texts, labels, **options)["loss"]
        for b in ("huggingface", "paddlenlp")
    ]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-3)
