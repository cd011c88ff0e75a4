"""fit's validation, early stopping, best weights, gradient accumulation, class weights and
checkpoints, on every backend, on a few dozen SST-2 sentences (real models, real data)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp.fit_options import learning_rate_at

from .conftest import REPO, Backend, require

ALL = [b.value for b in Backend]
_FRESH: dict[str, tuple] = {}


@pytest.fixture(scope="module")
def sst2():
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, labels = read_tsv(sst2_path("dev"))
    return texts[:64], labels[:64]


@pytest.fixture
def fresh(backend):
    """The default encoder with a fresh two-label head, loaded once per backend, reset to
    its starting weights before each test (load_state_dict: the setter under test too)."""
    return _fresh(backend)


def _fresh(backend: str):
    if backend not in _FRESH:
        clf = un.load_classifier("default", backend=backend, labels=["neg", "pos"])
        _FRESH[backend] = (clf, clf.model.state_dict())
    clf, start = _FRESH[backend]
    clf.model.load_state_dict(start)
    return clf


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]


def _ids(labels) -> np.ndarray:
    return np.array([["neg", "pos"].index(x) if isinstance(x, str) else int(x) for x in labels])


BAD = [
    ({"early_stopping": {"patience": -1}}, "patience"),
    ({"early_stopping": {"metric": "f2"}}, "unknown metric 'f2'"),
    ({"early_stopping": {"metrc": "loss"}}, "unknown early_stopping key"),
    ({"gradient_accumulation": 0}, "gradient_accumulation must be an integer >= 1"),
    ({"class_weight": {"MAYBE": 2.0}}, "MAYBE"),
    ({"class_weight": {"POSITIVE": -1.0}}, "positive number"),
    ({"class_weight": "balance"}, "'balanced'"),
    ({"schedule": "exponential"}, "unknown schedule 'exponential'"),
    ({"checkpoint_every": 2}, "need checkpoint_dir"),
    ({"resume": True}, "need checkpoint_dir"),
    ({"keep_best": True}, "validation"),
    ({"eval_every": 0}, "eval_every"),
    ({"eval_every": 5}, "validation"),
    ({"max_length": 100_000}, "exceeds the model's"),
    ({"batch_size": 0}, "batch_size"),
    ({"learning_rate": float("nan")}, "learning_rate"),
]


@pytest.mark.parametrize("options, fragment", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_options_fail_before_training_starts(clf, options, fragment):
    calls = []
    original = clf.model.start_training
    clf.model.start_training = lambda config: calls.append(config)  # must never be reached
    try:
        with pytest.raises(un.InvalidInputError, match=fragment):
            clf.fit(["a fine film", "a dull film"], ["POSITIVE", "NEGATIVE"], progress=False, **options)
    finally:
        del clf.model.start_training
    assert clf.model.start_training == original and calls == []


def test_unknown_metric_is_also_refused_for_validation_with_data(clf):
    with pytest.raises(un.InvalidInputError, match="known: loss, accuracy, macro_f1"):
        clf.fit(["a", "b"], [0, 1], validation=(["c", "d"], [0, 1]), early_stopping={"metric": "auc"}, progress=False)


def test_schedules_warm_up_then_decay_or_hold():
    peak, total, warmup = 2.0, 20, 4
    for schedule in ("linear", "cosine", "constant"):
        lrs = [learning_rate_at(s, total, peak, warmup, schedule) for s in range(total)]
        assert lrs[:warmup] == [peak * (s + 1) / warmup for s in range(warmup)]
        tail = lrs[warmup:]
        if schedule == "constant":
            assert tail == [peak] * len(tail)
        else:
            assert all(a > b for a, b in zip(tail, tail[1:])) and tail[-1] == 0.0
    # half-way through the decay: the cosine is at half the peak, as the linear one is
    middle = warmup + (total - warmup) // 2 - 1
    assert learning_rate_at(middle, total, peak, warmup, "cosine") == pytest.approx(peak / 2)
    assert learning_rate_at(middle, total, peak, warmup, "linear") == pytest.approx(peak / 2)
    # the cosine stays above the line in the first half of the decay, below it in the second
    assert learning_rate_at(warmup + 2, total, peak, warmup, "cosine") > learning_rate_at(
        warmup + 2, total, peak, warmup
    )
    assert learning_rate_at(total - 3, total, peak, warmup, "cosine") < learning_rate_at(total - 3, total, peak, warmup)


def test_early_stopping_stops_where_the_history_says_and_keep_best_restores(fresh, sst2):
    texts, labels = sst2
    val_texts, val_labels = texts[32:48], labels[32:48]
    # from a fresh head at ln 2 = 0.69 the loss cannot fall by 1.0: only the first evaluation is best
    stopping = {"metric": "val_loss", "patience": 2, "min_delta": 1.0}
    history = fresh.fit(
        texts[:16],
        labels[:16],
        validation=(val_texts, val_labels),
        batch_size=2,
        learning_rate=1e-3,
        schedule="constant",
        warmup_ratio=0.0,
        eval_every=1,
        early_stopping=stopping,
        keep_best=True,
        progress=False,
    )
    evals = history["eval"]
    # where it should have stopped, recomputed from the recorded figures
    best, wait, should_stop = None, 0, None
    for i, e in enumerate(evals):
        if best is None or e["loss"] < best - stopping["min_delta"]:
            best, wait, best_at = e["loss"], 0, i
        else:
            wait += 1
            if wait >= stopping["patience"]:
                should_stop = i
                break
    assert should_stop is not None, evals
    assert history["stopped_early"] and history["steps"] == evals[should_stop]["step"] < 8
    assert len(evals) == should_stop + 1 and len(history["loss"]) == history["steps"]
    assert history["best"] == {"metric": "loss", "value": evals[best_at]["loss"], "step": evals[best_at]["step"]}
    assert history["restored_best"] == evals[best_at]["step"]
    # the weights now are those of the best evaluation, not the last one
    now = _cross_entropy(fresh.logits(val_texts), _ids(val_labels)).mean()
    assert now == pytest.approx(evals[best_at]["loss"], abs=1e-5)
    assert abs(now - evals[-1]["loss"]) > 1e-4
    assert [e["accuracy"] for e in evals] == history["val_accuracy"]


def test_accumulating_k_micro_batches_is_one_batch_of_k_times_b(fresh, sst2):
    texts, labels = sst2[0][:12], sst2[1][:12]
    start = fresh.model.state_dict()
    options = {"learning_rate": 1e-4, "schedule": "constant", "warmup_ratio": 0.0, "seed": 2, "progress": False}
    one = fresh.fit(texts, labels, batch_size=12, **options)
    big = fresh.model.state_dict()
    fresh.model.load_state_dict(start)
    accumulated = fresh.fit(texts, labels, batch_size=4, gradient_accumulation=3, **options)
    small = fresh.model.state_dict()
    assert one["steps"] == accumulated["steps"] == 1
    assert accumulated["loss"][0] == pytest.approx(one["loss"][0], abs=1e-5)
    moved = max(float(np.abs(big[k] - start[k]).max()) for k in big)
    assert moved > 5e-5  # the step did move the weights (lr 1e-4)
    for name in big:
        np.testing.assert_allclose(small[name], big[name], atol=1e-5, rtol=0, err_msg=name)


@pytest.mark.parametrize("class_weight", ["balanced", {"neg": 3.0}])
def test_class_weights_change_the_loss_as_the_formula_says(fresh, sst2, class_weight):
    texts, labels = sst2
    y_all = _ids(labels)
    pick = list(np.flatnonzero(y_all == 1)[:7]) + list(np.flatnonzero(y_all == 0)[:2])  # skewed: 7 pos, 2 neg
    texts, y = [texts[i] for i in pick], y_all[pick]
    ce = _cross_entropy(fresh.logits(texts), y)  # before the step
    if class_weight == "balanced":
        w = np.array([len(y) / (2 * np.sum(y == c)) for c in (0, 1)])
    else:
        w = np.array([3.0, 1.0])
    expected = float((w[y] * ce).sum() / w[y].sum())
    history = fresh.fit(texts, list(y), batch_size=len(y), class_weight=class_weight, progress=False)
    assert history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert abs(expected - ce.mean()) > 1e-3  # the weighting did change the loss


def test_class_weights_are_refused_for_a_multi_label_head():
    require("huggingface")
    clf = un.load_classifier(
        "default", backend="huggingface", labels=["a", "b"], problem_type="multi_label_classification"
    )
    with pytest.raises(un.InvalidInputError, match="single-label"):
        clf.fit(["x", "y"], [["a"], ["b"]], class_weight={"a": 2.0}, progress=False)


CHILD = r"""
import json, os, signal, sys
from pathlib import Path

import numpy as np

import unified_nlp as un
from unified_nlp.benchdata import read_tsv, sst2_path

backend, mode, ckpt, out = sys.argv[1:5]
texts, labels = read_tsv(sst2_path("dev"))
common = dict(validation=(texts[200:208], labels[200:208]), epochs=2, batch_size=2, learning_rate=1e-4,
              seed=5, progress=False)
checkpoints = dict(checkpoint_dir=ckpt, checkpoint_every=2)
train = (texts[:6], labels[:6])  # 3 steps per epoch, 6 in all


def load():
    return un.load_classifier("default", backend=backend, labels=["neg", "pos"])


if mode == "kill":
    clf = load()
    step = clf.model.train_step

    def killing(*args, **kwargs):  # SIGKILL at the first step after a checkpoint is complete
        if any(Path(ckpt).glob("checkpoint-*")):
            os.kill(os.getpid(), signal.SIGKILL)
        return step(*args, **kwargs)

    clf.model.train_step = killing
    clf.fit(*train, **common, **checkpoints)
    sys.exit(3)
clf = load()
start = clf.model.state_dict()
reference = clf.fit(*train, **common)
np.savez(Path(out) / "reference.npz", **clf.model.state_dict())
clf.model.load_state_dict(start)  # as loaded again (a second load costs up to 30 s); the resume sets it all
resumed = clf.fit(*train, **common, **checkpoints, resume=True)
np.savez(Path(out) / "resumed.npz", **clf.model.state_dict())
keys = ("loss", "learning_rate", "epoch_loss", "eval", "steps", "resumed_from")
(Path(out) / "histories.json").write_text(json.dumps({"reference": {k: reference[k] for k in keys},
                                                      "resumed": {k: resumed[k] for k in keys}}))
"""


def _child(args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """resumed_run(name): a run of CHILD on backend `name` killed after its first checkpoint,
    then resumed (both children, the checkpoints left by the kill, `out`), made once per
    module on first use: no test depends on another having run."""
    runs: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name not in runs:
            root = tmp_path_factory.mktemp(f"resume-{name}")
            ckpt, out = root / "checkpoints", root / "out"
            out.mkdir()
            killed = _child([name, "kill", ckpt, out])
            left = sorted(p.name for p in ckpt.iterdir()) if ckpt.is_dir() else []
            done = _child([name, "resume", ckpt, out]) if killed.returncode == -9 else None
            runs[name] = dict(killed=killed, left=left, done=done, out=out)
        return runs[name]

    return run


@pytest.mark.parametrize("name", ALL)
def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_weights(name, resumed_run):
    require(name)
    run = resumed_run(name)
    killed, done, out = run["killed"], run["done"], run["out"]
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert run["left"] == ["checkpoint-00000002"]  # complete, nothing half-written beside it
    assert done.returncode == 0, done.stderr[-3000:]
    histories = json.loads((out / "histories.json").read_text())
    reference, resumed = histories["reference"], histories["resumed"]
    assert resumed["resumed_from"] == 2 and reference["resumed_from"] is None
    assert resumed["steps"] == reference["steps"] == 6
    for key in ("loss", "learning_rate", "epoch_loss", "eval"):  # the first two steps come from the checkpoint
        assert resumed[key] == reference[key], key
    with np.load(out / "reference.npz") as a, np.load(out / "resumed.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)  # bit-exact on one backend


@pytest.mark.parametrize("name", [n for n in ALL if n != "huggingface"])
def test_first_step_losses_of_those_runs_agree_across_backends(name, resumed_run):
    require("huggingface")
    require(name)
    losses = {}
    for backend in ("huggingface", name):
        done = resumed_run(backend)["done"]
        assert done is not None and done.returncode == 0, f"the {backend} run failed (see the test above)"
        histories = json.loads((resumed_run(backend)["out"] / "histories.json").read_text())
        losses[backend] = histories["reference"]["loss"][0]
    assert abs(losses[name] - losses["huggingface"]) / abs(losses["huggingface"]) < 1e-3, losses


@pytest.mark.parametrize("name", ["huggingface", "paddlenlp"])  # tfhub's exported encoder has no dropout
def test_with_dropout_an_interrupted_run_resumes_to_the_same_weights(name, sst2, tmp_path):
    """The dropout masks after the resume are those of the uninterrupted run: torch's RNG
    state and paddle's micro-step count are in the checkpoint."""
    require(name)
    texts, labels = sst2[0][:8], sst2[1][:8]
    options = dict(batch_size=2, dropout=0.1, learning_rate=1e-4, progress=False)
    reference = _fresh(name)
    reference.fit(texts, labels, seed=3, **options)
    expected = reference.model.state_dict()
    other_seed = _fresh(name)
    other_seed.fit(texts, labels, seed=4, **options)  # the data order differs too, but so must the masks
    assert any(not np.array_equal(v, expected[k]) for k, v in other_seed.model.state_dict().items())

    clf = _fresh(name)
    _interrupt_after_first_checkpoint(clf, texts, labels, seed=3, checkpoint_dir=tmp_path, **options)
    clf.model.load_state_dict(_FRESH[name][1])  # as a new process would start, before the resume sets them
    history = clf.fit(texts, labels, seed=3, checkpoint_dir=tmp_path, checkpoint_every=2, resume=True, **options)
    assert history["resumed_from"] == 2 and history["steps"] == 4
    for key, value in clf.model.state_dict().items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


def _interrupt_after_first_checkpoint(clf, texts, labels, checkpoint_dir, **options):
    """fit with a checkpoint every 2 steps, stopped by Ctrl-C at the first step after one is complete."""
    step = clf.model.train_step

    def interrupted(*args, **kwargs):
        if any(checkpoint_dir.glob("checkpoint-*")):
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    clf.model.train_step = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            clf.fit(texts, labels, checkpoint_dir=checkpoint_dir, checkpoint_every=2, **options)
    finally:
        del clf.model.train_step


_CROSS = dict(batch_size=2, learning_rate=1e-4, seed=3, progress=False)


@pytest.fixture(scope="module")
def hf_checkpoint(sst2, tmp_path_factory):
    """A huggingface run stopped after its checkpoint of step 2, and the weights of the same run uninterrupted."""
    require("huggingface")
    texts, labels = sst2[0][:8], sst2[1][:8]
    hf = _fresh("huggingface")
    hf.fit(texts, labels, **_CROSS)
    expected = hf.model.state_dict()
    folder = tmp_path_factory.mktemp("hf-checkpoint")
    _interrupt_after_first_checkpoint(_fresh("huggingface"), texts, labels, checkpoint_dir=folder, **_CROSS)
    return folder, expected


@pytest.mark.parametrize("name", ["tfhub", "paddlenlp"])
def test_a_checkpoint_of_huggingface_is_resumed_on_another_backend(name, hf_checkpoint, sst2, tmp_path):
    """Checkpoints hold canonical names and layouts: a run stopped on huggingface finishes on
    another stack with the weights of the uninterrupted huggingface run, within float
    tolerance (the frameworks' kernels differ in the last bits)."""
    require(name)
    folder, expected = hf_checkpoint
    shutil.copytree(folder, tmp_path / "checkpoints")
    clf = _fresh(name)
    history = clf.fit(
        sst2[0][:8], sst2[1][:8], checkpoint_dir=tmp_path / "checkpoints", checkpoint_every=2, resume=True, **_CROSS
    )
    assert history["resumed_from"] == 2 and history["steps"] == 4
    got = clf.model.state_dict()
    assert sorted(got) == sorted(expected)
    worst = max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)
    moved = max(float(np.max(np.abs(expected[k] - _FRESH["huggingface"][1][k]))) for k in expected)
    assert worst < 1e-5 < moved, (worst, moved)


def test_resume_refuses_a_checkpoint_of_other_options(fresh, sst2, tmp_path):
    texts, labels = sst2[0][:4], sst2[1][:4]
    fresh.fit(texts, labels, batch_size=2, checkpoint_dir=tmp_path, checkpoint_every=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-00000002"]  # only the newest is kept
    with pytest.raises(un.InvalidInputError, match="batch_size"):
        fresh.fit(texts, labels, batch_size=4, checkpoint_dir=tmp_path, resume=True, progress=False)


def test_the_cli_takes_the_options_and_writes_the_history_as_csv_and_plot(tmp_path, sst2, capsys):
    import csv

    from unified_nlp.cli import main

    require("huggingface")
    texts, labels = sst2
    for name, rows in (("train.tsv", range(0, 12)), ("dev.tsv", range(40, 48))):
        (tmp_path / name).write_text("".join(f"{texts[i]}\t{labels[i]}\n" for i in rows), encoding="utf-8")
    args = ["fit", "--train", str(tmp_path / "train.tsv"), "--validation", str(tmp_path / "dev.tsv")]
    args += ["--out", str(tmp_path / "model"), "--labels", "neg,pos", "--batch-size", "2"]
    args += ["--gradient-accumulation", "2", "--class-weight", "balanced", "--schedule", "cosine", "--max-length", "16"]
    args += [
        "--eval-every",
        "1",
        "--early-stopping",
        "val_loss",
        "--patience",
        "1",
        "--min-delta",
        "1.0",
        "--keep-best",
    ]
    args += ["--plot", str(tmp_path / "out" / "history.png"), "--history-csv", str(tmp_path / "out" / "history.csv")]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["stopped_early"] and summary["steps"] == 2 and summary["restored_best"] == 1  # 3 steps at most
    with open(tmp_path / "out" / "history.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2] and all(r["val_loss"] and r["val_accuracy"] for r in rows)
    assert (tmp_path / "out" / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "model" / "config.json").is_file()


def test_the_cli_refuses_a_malformed_class_weight_before_loading(tmp_path, capsys):
    from unified_nlp.cli import main

    (tmp_path / "train.tsv").write_text("good\tPOSITIVE\nbad\tNEGATIVE\n", encoding="utf-8")
    code = main(["fit", "--train", str(tmp_path / "train.tsv"), "--out", str(tmp_path / "m"), "--class-weight", "POS"])
    assert code == 2 and "--class-weight" in capsys.readouterr().err
