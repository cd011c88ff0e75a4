"""Users' own Hugging Face classifier folders, every supported family, on the paddlenlp
backend in-process, run inside the Paddle environment:

    .venv-paddle/bin/python -m pytest tests/test_paddlenlp_architectures.py

transformers cannot be installed next to PaddleNLP 2.8, so the fixtures (tiny random
classifiers written by transformers' save_pretrained at scale 8, tests/checkpoints.py)
and the reference are made in the main environment by one subprocess of
$UNIFIED_NLP_MAIN_PYTHON (default .venv/bin/python): token ids and logits of
transformers' own AutoTokenizer and AutoModelForSequenceClassification, fine-tuning
losses of a plain torch AdamW loop on that model, never a unified_nlp backend. A
second subprocess loads what this backend saves in plain transformers.

Skips when paddle/PaddleNLP are not importable (the main environment collects this
module too), unless $UNIFIED_NLP_REQUIRE_BACKENDS lists "paddlenlp-inprocess".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from .checkpoints import assert_parity
from .conftest import REPO, paddle_unavailable, require_paddle_in_process

require_paddle_in_process()

import unified_nlp as un  # noqa: E402
from unified_nlp.architectures import get as get_architecture  # noqa: E402
from unified_nlp.paddlenlp_format import families  # noqa: E402
from unified_nlp.weights import load_file  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

ARCHITECTURES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra", "albert", "ernie")
LABELS = ("negative", "neutral", "positive")
TEXTS = [
    "This is a great movie!",
    "a dull , lifeless script",
    "",
    "Café naïve 日本語 😀",
    "Café naïve 日本語 😀 " * 3,
    "x " * 200,
]
PAIRS = [("A man plays a guitar.", "A person makes music."), ("great", "it was bad"), ("", "only the second")]
TRAIN = [
    "a charming and often affecting journey",
    "unflinchingly bleak and desperate",
    "it is a mess",
    "the acting is superb",
    "an average film",
    "boring , predictable and slow",
    "a triumph of style",
    "nothing special",
    "one of the year 's best",
    "a waste of time",
    "it 's fine",
    "wonderful and moving",
]
TRAIN_LABELS = [2, 0, 0, 2, 1, 0, 2, 1, 2, 0, 1, 2]
MULTI_LABELS = [[0, 2], [1], [1, 3], [0], [], [1, 2], [0, 3], [2], [0, 2, 3], [1], [3], [0]]
FIT = {"epochs": 3, "batch_size": 12, "learning_rate": 1e-3, "warmup_ratio": 0.0, "seed": 0, "progress": False}
FRESH = ["yes", "no"]  # labels that start a fresh head
FRESH_SEED = 3
SCALE = 8.0  # tests/checkpoints.py: logits that vary across inputs far beyond the tolerance
TOL = 1e-5

# Runs in the main environment: fixtures, then transformers' and torch's own results for each of them,
# with no unified_nlp backend in the way (only the core's numpy draw of a fresh head: see "a fresh head").
BUILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, torch, transformers
    from unified_nlp.architectures import get as get_architecture
    from unified_nlp.weights import save_file
    from tests.checkpoints import make_checkpoint

    out, args = Path(sys.argv[1]), json.loads(sys.argv[2])
    texts, pairs, fit = args["texts"], args["pairs"], args["fit"]
    folders = {a: (a, {}) for a in args["architectures"]}
    folders["bert-multi"] = ("bert", {"num_labels": 4, "problem_type": "multi_label_classification"})
    Auto = transformers.AutoModelForSequenceClassification

    def plain_fit(folder, tok, labels, multi):
        # fit's contract written out in plain torch: AdamW (decay 0.01 except biases and LayerNorm),
        # gradients clipped to norm 1, no dropout, a linear schedule without warm-up; batch_size is
        # len(train), so each epoch is one step on the whole set, at peak * (1 - (step + 1) / epochs)
        model = Auto.from_pretrained(folder).eval()
        named = list(model.named_parameters())
        groups = [
            {"params": [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n)], "weight_decay": 0.01},
            {"params": [p for n, p in named if n.endswith("bias") or "LayerNorm" in n], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=0.0, betas=(0.9, 0.999), eps=1e-8)
        batch = tok(args["train"], padding=True, truncation=True, return_tensors="pt")
        if multi:
            target = torch.zeros(len(labels), model.config.num_labels)
            for row, ids in enumerate(labels):
                target[row, ids] = 1.0
        losses = []
        for step in range(fit["epochs"]):
            logits = model(**batch).logits
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
                if multi
                else torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            for group in optimizer.param_groups:
                group["lr"] = fit["learning_rate"] * (1 - (step + 1) / fit["epochs"])
            optimizer.step()
            losses.append(float(loss))
        return losses

    ref, losses = {}, {}
    for name, (arch, options) in folders.items():
        folder = make_checkpoint(arch, out / name, scale=args["scale"], **options)
        model = Auto.from_pretrained(folder).eval()
        tok = transformers.AutoTokenizer.from_pretrained(folder)
        for kind, batch in (
            ("single", tok(texts, padding=True, truncation=True, return_tensors="pt")),
            ("pair", tok([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True, return_tensors="pt")),
        ):
            with torch.no_grad():
                ref[f"{name}/{kind}/logits"] = model(**batch).logits.numpy()
            for key, value in batch.items():
                ref[f"{name}/{kind}/{key}"] = value.numpy()
        multi = bool(options)
        losses[name] = plain_fit(folder, tok, args["multi_labels"] if multi else args["train_labels"], multi)
        if not multi:
            # a fresh head: transformers' model with the head every backend draws (the core's numpy draw)
            config = json.loads((folder / "config.json").read_text())
            head = get_architecture(arch).fresh_head(config, len(args["fresh"]), args["fresh_seed"])
            fresh = Auto.from_pretrained(folder, num_labels=len(args["fresh"]), ignore_mismatched_sizes=True).eval()
            with torch.no_grad():
                state = fresh.state_dict()
                for key, value in head.items():
                    state[key].copy_(torch.from_numpy(value))
                ref[f"{name}/fresh/logits"] = fresh(**tok(texts, padding=True, truncation=True, return_tensors="pt")).logits.numpy()
    save_file(ref, out / "reference.safetensors")
    (out / "losses.json").write_text(json.dumps(losses))
    assert not any(m.startswith("unified_nlp_") for m in sys.modules)  # no backend adapter: transformers itself
    """
)
# Runs in the main environment: plain transformers on folders this backend saved.
PLAIN = textwrap.dedent(
    """
    import json, sys
    import torch, transformers
    out = {}
    for folder in json.loads(sys.argv[1]):
        tok = transformers.AutoTokenizer.from_pretrained(folder)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
        with torch.no_grad():
            out[folder] = model(**tok(json.loads(sys.argv[2]), padding=True, truncation=True, return_tensors="pt")).logits.tolist()
    print(json.dumps(out))
    assert "unified_nlp" not in sys.modules and "paddle" not in sys.modules
    """
)

# Runs in the main environment: a ModernBERT checkpoint and transformers' own logits on it.
MODERNBERT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from tests.checkpoints import make_checkpoint, transformers_logits
    folder = make_checkpoint("modernbert", Path(sys.argv[1]), scale=8.0)
    print(json.dumps(transformers_logits(folder, json.loads(sys.argv[2])).tolist()))
    """
)


def _main_python() -> str:
    python = os.environ.get("UNIFIED_NLP_MAIN_PYTHON") or str(REPO / ".venv" / "bin" / "python")
    if not Path(python).is_file():
        paddle_unavailable(f"no main-environment interpreter at {python} (set UNIFIED_NLP_MAIN_PYTHON)")
    return python


def _run_main(script: str, *args: str, timeout: int = 900) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run(
        [_main_python(), "-c", script, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


@pytest.fixture(scope="module", autouse=True)
def store(tmp_path_factory):
    """Conversions of this module go to a fresh store, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIFIED_NLP_HOME", str(tmp_path_factory.mktemp("store")))
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    args = {
        "architectures": ARCHITECTURES,
        "texts": TEXTS,
        "pairs": PAIRS,
        "train": TRAIN,
        "train_labels": TRAIN_LABELS,
        "multi_labels": MULTI_LABELS,
        "fit": FIT,
        "fresh": FRESH,
        "fresh_seed": FRESH_SEED,
        "scale": SCALE,
    }
    _run_main(BUILD, str(root), json.dumps(args))
    return {
        "root": root,
        "ref": load_file(root / "reference.safetensors"),
        "losses": json.loads((root / "losses.json").read_text()),
    }


@pytest.fixture(scope="module")
def classifiers(built):
    return {
        name: un.load_classifier(built["root"] / name, backend="paddlenlp") for name in (*ARCHITECTURES, "bert-multi")
    }


def _rows(ids: np.ndarray, mask: np.ndarray) -> list[list[int]]:
    return [row[: int(m.sum())].tolist() for row, m in zip(ids, mask)]


def _plain_logits(model, ref: dict, name: str, kind: str) -> np.ndarray:
    """A PaddleNLP model's own forward on transformers' token ids, as a PaddleNLP user runs it."""
    import paddle

    inputs = {k: paddle.to_tensor(ref[f"{name}/{kind}/{k}"]) for k in ("input_ids", "attention_mask")}
    if f"{name}/{kind}/token_type_ids" in ref:  # transformers' tokenizer hands the model segment ids
        inputs["token_type_ids"] = paddle.to_tensor(ref[f"{name}/{kind}/token_type_ids"])
    with paddle.no_grad():
        out = model(**inputs)
    return (out[0] if isinstance(out, (tuple, list)) else out).numpy()


# --- the tables -----------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_tables_match_transformers_and_paddlenlp(built, arch):
    """Each family's literal table has exactly transformers' tensors (the core's table) on one
    side and PaddleNLP's class's state dict on the other, shapes transformed alike, and
    agrees with PaddleNLP's own _get_name_mappings wherever PaddleNLP has one."""
    from paddlenlp.transformers.model_utils import no_init_weights
    from unified_nlp_paddlenlp.classes import paddlenlp_class

    config = json.loads((built["root"] / arch / "config.json").read_text())
    family, core = families.get(arch), get_architecture(arch)
    rows = family.rows(config, task=True)
    shapes = core.classifier_shapes(config, 3)
    assert sorted(hf for hf, _, _ in rows) == sorted(shapes)
    pd_config = family.to_paddle_config(config) | {"num_labels": 3}
    with no_init_weights():
        model = paddlenlp_class(family.paddle_class)(paddlenlp_class(family.paddle_config)(**pd_config))
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted([pd for _, pd, _ in rows] + list(family.buffers(config))) == sorted(state)
    for hf, pd, fn in rows:
        assert tuple(fn(np.zeros(shapes[hf], np.float32)).shape) == state[pd], hf
    try:
        mappings = paddlenlp_class(family.paddle_class)._get_name_mappings(model.config)
    except NotImplementedError:  # ERNIE: PaddleNLP has none (checked against its state dict above)
        assert arch == "ernie"
        return
    theirs = {m.source_name: (m.target_name, m.action == "transpose") for m in mappings}
    ours = {hf: (pd, fn is families.transpose) for hf, pd, fn in rows}
    for hf in set(ours) & set(theirs):
        assert ours[hf] == theirs[hf], hf
    # what PaddleNLP's mappings leave out, measured with 2.8.1
    left_out = {"bert": {"classifier.bias"}}.get(arch, set())
    assert set(ours) - set(theirs) == left_out


# --- inference ------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_logits_and_token_ids_match_transformers(built, classifiers, arch):
    clf, ref = classifiers[arch], built["ref"]
    assert clf.labels == LABELS and clf.spec.head == "native" and clf.runs == "in-process"
    enc = clf.tokenizer(TEXTS)
    np.testing.assert_array_equal(enc.input_ids, ref[f"{arch}/single/input_ids"])
    logits = clf.logits(TEXTS)
    expected = ref[f"{arch}/single/logits"]
    assert_parity(logits, expected, TOL)  # and the fixture's logits vary across inputs by >= 100 x TOL
    assert [p.label for p in clf.predict(TEXTS)] == [LABELS[i] for i in expected.argmax(1)]
    assert clf.predict(TEXTS)[-1].truncated  # 400 tokens, over the fixture's 64
    # PaddleNLP's own class, on the same ids
    np.testing.assert_allclose(_plain_logits(clf.model.model, ref, arch, "single"), logits, atol=TOL, rtol=0)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_sentence_pairs_match_transformers(built, classifiers, arch):
    clf, ref = classifiers[arch], built["ref"]
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    enc = clf.tokenizer(first, text_pair=second)
    np.testing.assert_array_equal(enc.input_ids, ref[f"{arch}/pair/input_ids"])
    expected_types = ref.get(f"{arch}/pair/token_type_ids", np.zeros_like(enc.input_ids))
    np.testing.assert_array_equal(enc.token_type_ids, expected_types)
    logits = clf.logits(PAIRS)
    assert_parity(logits, ref[f"{arch}/pair/logits"], TOL, "pair logits")
    np.testing.assert_array_equal(clf.logits(first, text_pair=second), logits)
    np.testing.assert_allclose(_plain_logits(clf.model.model, ref, arch, "pair"), logits, atol=TOL, rtol=0)


def _graph_ops(clf) -> set[str]:
    """The ops of the static graph Paddle traces from the classifier's Layers (what Paddle
    Inference is given)."""
    import paddle
    from unified_nlp_paddlenlp.model import _input_spec

    static = paddle.jit.to_static(clf.model.net.forward, input_spec=_input_spec(), full_graph=True)
    return {op.name() for op in static.concrete_program.main_program.global_block().ops}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_inference_graph_has_no_dropout(built, classifiers, arch):
    # the fixtures keep transformers' 0.1 dropout rates; in eval mode paddle's dropout is a copy
    ops = _graph_ops(classifiers[arch])
    assert "pd_op.matmul" in ops and not {op for op in ops if "dropout" in op}


def test_no_dropout_is_left_in_the_graph_after_fitting_with_dropout(built):
    clf = un.load_classifier(built["root"] / "bert", backend="paddlenlp")
    clf.fit(TRAIN[:4], TRAIN_LABELS[:4], **(FIT | {"epochs": 1, "dropout": 0.1}))
    assert not {op for op in _graph_ops(clf) if "dropout" in op}


def test_hidden_states_and_state_dict_names(built, classifiers):
    clf = classifiers["roberta"]
    out = clf.model(clf.tokenizer(TEXTS[:2]), output_hidden_states=True)
    assert out.last_hidden_state.shape[:2] == clf.tokenizer(TEXTS[:2]).input_ids.shape and out.pooled is None
    state = clf.model.state_dict()
    original = load_file(built["root"] / "roberta" / "model.safetensors")
    assert sorted(state) == sorted(original)
    assert all(state[k].tobytes() == original[k].tobytes() for k in original)


def test_a_multi_label_head(built, classifiers):
    clf, ref = classifiers["bert-multi"], built["ref"]
    assert clf.multi_label and clf.labels == tuple(f"label_{i}" for i in range(4))
    logits = clf.logits(TEXTS)
    assert_parity(logits, ref["bert-multi/single/logits"], TOL)
    scores = clf.predict_proba(TEXTS)
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-logits)), rtol=1e-6)  # a sigmoid per label
    assert all(isinstance(p, list) for p in clf.predict(TEXTS))


def test_modernbert_on_the_adapters_port_in_dygraph_and_paddle_inference(tmp_path):
    """ModernBERT has no PaddleNLP class: the adapter's own port (unified_nlp_paddlenlp/modernbert.py)
    runs it, its logits from a Paddle Inference predictor (not the to_static fallback: the port works
    around two of Paddle Inference's faults) and, with hidden states, from dygraph; texts past the
    local window of 8 tokens and the 64 positions (tests/test_modernbert.py: every length, pairs)."""
    want = np.array(json.loads(_run_main(MODERNBERT, str(tmp_path / "modernbert"), json.dumps(TEXTS)).splitlines()[-1]))
    clf = un.load_classifier(tmp_path / "modernbert", backend="paddlenlp")
    assert_parity(clf.logits(TEXTS), want, TOL)
    assert type(clf.model._predictor).__name__ == "PaddleInferPredictor"
    out = clf.model(clf.tokenizer(TEXTS), output_hidden_states=True)  # the Layers in dygraph
    assert out.last_hidden_state.shape[1] == 64
    assert_parity(out.logits, want, TOL, "dygraph logits")


@pytest.mark.parametrize("arch", ["bert", "roberta", "albert"])
def test_a_fresh_head_computes_as_transformers_with_the_same_head(built, arch):
    clf = un.load_classifier(built["root"] / arch, backend="paddlenlp", labels=FRESH, seed=FRESH_SEED)
    assert clf.labels == tuple(FRESH) and clf.spec.fresh_head
    assert_parity(clf.logits(TEXTS), built["ref"][f"{arch}/fresh/logits"], TOL, "fresh-head logits")


# --- conversion -----------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_convert_gives_a_folder_plain_paddlenlp_loads(built, arch, tmp_path):
    from paddlenlp.transformers import AutoModelForSequenceClassification, AutoTokenizer

    ref, source = built["ref"], built["root"] / arch
    out = un.convert(source, to="paddlenlp", out=tmp_path / "paddle")
    family = families.get(arch)
    model = AutoModelForSequenceClassification.from_pretrained(str(out / "paddlenlp"))  # local: nothing downloaded
    assert type(model).__name__ == family.paddle_class  # XLM-R: RobertaForSequenceClassification
    assert [model.config.id2label[i] for i in range(3)] == list(LABELS)
    model.eval()
    for kind in ("single", "pair"):
        logits = _plain_logits(model, ref, arch, kind)
        assert_parity(logits, ref[f"{arch}/{kind}/logits"], TOL, f"{kind} logits")
    meta = json.loads((out / "unified_nlp.json").read_text())
    if family.tokenizer_class is None:
        assert meta["paddle_tokenizer"] is None and "paddle_tokenizer_missing" in meta  # said plainly
        assert arch == "xlm-roberta"
    else:
        tok = AutoTokenizer.from_pretrained(str(out / "paddlenlp"))
        assert type(tok).__name__ == family.tokenizer_class
        for kind, items in (("single", [(t, None) for t in TEXTS]), ("pair", PAIRS)):
            expected = _rows(ref[f"{arch}/{kind}/input_ids"], ref[f"{arch}/{kind}/attention_mask"])
            # PaddleNLP's tokenizers differ in how they take truncation options: compare whole texts
            whole = [(item, row) for item, row in zip(items, expected) if len(row) < 64]
            assert len(whole) >= 3
            got = [tok(a)["input_ids"] if b is None else tok(a, b)["input_ids"] for (a, b), _ in whole]
            assert got == [row for _, row in whole], kind
    assert not list(out.rglob("*.pdparams"))
    # back: bit-exact
    back = un.convert(out, to="huggingface", out=tmp_path / "back")
    original, again = load_file(source / "model.safetensors"), load_file(back / "model.safetensors")
    assert sorted(again) == sorted(original)
    for name, array in original.items():
        assert again[name].dtype == array.dtype and again[name].tobytes() == array.tobytes(), name
    assert (back / "config.json").read_bytes() == (source / "config.json").read_bytes()
    # and the export loads on this backend with the same logits
    direct = un.load_classifier(out, backend="paddlenlp")
    assert_parity(direct.logits(TEXTS), ref[f"{arch}/single/logits"], TOL)


@pytest.mark.parametrize("arch", ["bert", "roberta", "albert"])
def test_a_paddlenlp_save_pretrained_folder_becomes_canonical(built, classifiers, arch, tmp_path):
    """Users leaving PaddleNLP: what PaddleNLP's own save_pretrained writes (task model,
    safetensors) exports to a canonical folder with the same tensors, labels and logits."""
    from unified_nlp_paddlenlp import PaddleNLPBackend

    source, native = built["root"] / arch, tmp_path / "native"
    classifiers[arch].model.model.save_pretrained(str(native), safe_serialization=True)
    exported = tmp_path / "export"
    un.convert(source, to="paddlenlp", out=exported)
    for name in ("vocab.txt", "vocab.json", "merges.txt", "spiece.model", "tokenizer_config.json"):  # PaddleNLP's
        if (exported / "paddlenlp" / name).is_file():
            shutil.copy2(exported / "paddlenlp" / name, native / name)
    out = tmp_path / "canonical"
    PaddleNLPBackend().export_canonical(native, out)
    original, again = load_file(source / "model.safetensors"), load_file(out / "model.safetensors")
    assert sorted(again) == sorted(original) and all(again[k].tobytes() == original[k].tobytes() for k in original)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == arch and [config["id2label"][str(i)] for i in range(3)] == list(LABELS)
    clf = un.load_classifier(out, backend="paddlenlp")
    enc, ref = clf.tokenizer(TEXTS), built["ref"]
    assert _rows(enc.input_ids, enc.attention_mask) == _rows(
        ref[f"{arch}/single/input_ids"], ref[f"{arch}/single/attention_mask"]
    )
    assert_parity(clf.logits(TEXTS), built["ref"][f"{arch}/single/logits"], TOL)


@pytest.mark.parametrize(
    "arch, change, message",
    [
        ("bert", {"hidden_act": "gelu_new"}, "hidden_act 'gelu_new' has no identical activation"),
        ("roberta", {"position_embedding_type": "relative_key"}, "absolute positions only"),
    ],
)
def test_what_paddlenlp_cannot_compute_is_refused(built, arch, change, message, tmp_path):
    from unified_nlp.errors import ConversionError

    folder = Path(shutil.copytree(built["root"] / arch, tmp_path / "changed"))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | change))
    with pytest.raises(ConversionError, match=message):
        un.load_classifier(folder, backend="paddlenlp")
    with pytest.raises(ConversionError, match=message):
        un.convert(folder, to="paddlenlp", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_tensors_are_refused(built, tmp_path):
    from unified_nlp.errors import ConversionError
    from unified_nlp.weights import save_file

    folder = Path(shutil.copytree(built["root"] / "electra", tmp_path / "extra"))
    tensors = load_file(folder / "model.safetensors")
    tensors["electra.encoder.layer.0.attention.self.extra.weight"] = np.zeros((2, 2), np.float32)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(ConversionError, match="outside the ELECTRA architecture"):
        un.convert(folder, to="paddlenlp", out=tmp_path / "out")


# --- training -------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(built, tmp_path_factory):
    """Every family (and the multi-label head) fine-tuned on this backend and saved."""
    root = tmp_path_factory.mktemp("trained")
    out = {}
    for name in (*ARCHITECTURES, "bert-multi"):
        clf = un.load_classifier(built["root"] / name, backend="paddlenlp")
        labels = MULTI_LABELS if name == "bert-multi" else TRAIN_LABELS
        history = clf.fit(TRAIN, labels, **FIT)
        out[name] = {"losses": history["loss"], "saved": clf.save(root / name), "logits": clf.logits(TEXTS)}
    plain = json.loads(
        _run_main(PLAIN, json.dumps([str(v["saved"]) for v in out.values()]), json.dumps(TEXTS)).splitlines()[-1]
    )
    for value in out.values():
        value["plain"] = np.asarray(plain[str(value["saved"])], np.float32)
    return out


@pytest.mark.parametrize("name", [*ARCHITECTURES, "bert-multi"])
def test_fit_follows_a_plain_torch_loop_on_transformers(built, trained, name):
    ours, theirs = trained[name]["losses"], built["losses"][name]
    assert len(ours) == len(theirs) == FIT["epochs"]
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-3)  # the contract: first step within 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)  # the same AdamW arithmetic, step after step
    assert ours[-1] < ours[0]


@pytest.mark.parametrize("name", [*ARCHITECTURES, "bert-multi"])
def test_a_model_trained_here_loads_in_plain_transformers(built, trained, name):
    saved = trained[name]["saved"]
    assert not (saved / "unified_nlp.json").exists() and not (saved / "head.safetensors").exists()
    assert json.loads((saved / "config.json").read_text())["architectures"] == [
        get_architecture("bert" if name == "bert-multi" else name).classifier_class
    ]
    logits = trained[name]["logits"]
    assert np.abs(logits - built["ref"][f"{name}/single/logits"]).max() > 1e-3  # the weights did change
    assert_parity(logits, trained[name]["plain"], TOL)
    shutil.rmtree(saved)
