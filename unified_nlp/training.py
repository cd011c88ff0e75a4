"""Fine-tuning driven by shared code: data order, batches, gradient accumulation, class
weights, learning-rate schedule, validation, early stopping, best weights, checkpoints,
progress and history are the same on every backend; each adapter only runs `train_step`
(forward, cross-entropy, backward, clip, AdamW) in its framework, and reads and sets its
weights and optimizer state as numpy by canonical name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInputError
from .fit_options import DEFAULTS, check_options, class_weights, example_weights, learning_rate_at, no_decay
from .metrics import classification_report, label_ids, multi_hot, multi_label_report
from .progress import wanted
from .training_snapshots import check_same_run
from .training_snapshots import latest as latest_checkpoint
from .training_snapshots import read as read_checkpoint
from .training_snapshots import write as write_checkpoint

if TYPE_CHECKING:
    from .classifier import TextClassifier

__all__ = ["DEFAULTS", "check_training_data", "fit", "learning_rate_at", "no_decay"]


def check_training_data(texts, labels, names: Sequence[str], multi_label: bool = False) -> np.ndarray:
    """Validate before any training starts; returns label indices (a multi-hot float
    matrix for multi-label). `texts` may be sentence pairs."""
    from .inputs import check_pairs

    texts, _ = check_pairs(texts)
    y = multi_hot(labels, names) if multi_label else label_ids(labels, names)
    if len(texts) != len(y):
        raise InvalidInputError(f"{len(texts)} texts but {len(y)} labels")
    if len(texts) == 0:
        raise InvalidInputError("the training set is empty")
    if multi_label:
        return y
    present = np.unique(y)
    if len(present) < 2:
        raise InvalidInputError(
            f"the training set holds only one class ({names[int(present[0])]!r}); a classifier needs at least two"
        )
    return y


def _progress(total: int, enabled: bool | None, desc: str, initial: int = 0):
    if not wanted(enabled):  # None: a bar when stderr is a terminal (not in a log file or a pipe)
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, leave=True)


def validation_metrics(clf: TextClassifier, texts, y: np.ndarray) -> dict[str, float]:
    """What fit records per evaluation: the loss as fit trains it, unweighted (mean softmax
    cross-entropy; multi-label: mean binary cross-entropy over every element), and the
    accuracy and F1 figures of `evaluate`."""
    logits = clf.logits(texts).astype(np.float64)
    if clf.multi_label:
        loss = np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))
        report = multi_label_report(y > 0.5, clf.scores(logits) >= 0.5, clf.labels)
        keys: tuple[str, ...] = ("accuracy", "micro_f1", "macro_f1")
    else:
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_p[np.arange(len(y)), y].mean()
        report = classification_report(y, logits.argmax(axis=1), clf.labels)
        keys = ("accuracy", "macro_f1")
    return {"loss": float(loss), **{k: float(report[k]) for k in keys}}


def _one_step(model, enc, y: np.ndarray, group: list[np.ndarray], lr: float, weights: np.ndarray | None) -> float:
    """One optimizer step over the micro-batches of `group`: its loss is the (class-weighted)
    mean over all of their texts, and its gradient that of one batch of all of them."""
    if len(group) == 1 and weights is None:
        rows = group[0]
        return float(model.train_step(enc.select(rows), y[rows], lr))
    w = example_weights(y[np.concatenate(group)], weights)
    loss, offset = 0.0, 0
    for j, rows in enumerate(group):
        part = w[offset : offset + len(rows)]
        offset += len(rows)
        loss += float(model.train_step(enc.select(rows), y[rows], lr, part, apply=j == len(group) - 1))
    return loss


_SAVED_HISTORY = ("loss", "learning_rate", "epoch_loss", "val_accuracy", "eval", "best", "stopped_early")


def fit(
    clf: TextClassifier,
    texts: Sequence[str],
    labels: Sequence[str | int],
    *,
    validation: tuple[Sequence[str], Sequence[str | int]] | None = None,
    progress: bool | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Fine-tune `clf` in place; returns the history. The options, their defaults
    (fit_options.DEFAULTS) and the history are documented on TextClassifier.fit.

    >>> history = clf.fit(texts, labels, epochs=1, seed=0)  # doctest: +SKIP
    >>> history["loss"][:2]                                 # doctest: +SKIP
    [0.69, 0.66]
    """
    config = check_options(options, clf.multi_label, validation is not None)
    y = check_training_data(texts, labels, clf.labels, clf.multi_label)
    weights = class_weights(config["class_weight"], clf.labels, y)
    config["problem_type"] = clf.spec.problem_type
    val = _validation_set(clf, validation)
    if val is None and (config["early_stopping"] or config["keep_best"] or config["eval_every"] != "epoch"):
        raise InvalidInputError("early_stopping, keep_best and eval_every=N need a non-empty validation set")
    _check_model(clf, config)
    if config["max_length"] is not None and config["max_length"] > clf.tokenizer.max_length:
        raise InvalidInputError(f"max_length {config['max_length']} exceeds the model's {clf.tokenizer.max_length}")
    saved = _saved_run(config, len(y))
    run = _Run(clf, config, _encoded(clf, texts, config["max_length"]), y, weights, val)
    clf.model.start_training(config)
    run.start = time.perf_counter()
    try:
        if saved is not None:
            run.resume(saved)
        run.bar = _progress(run.total, progress, f"fit [{clf.backend}]", initial=run.step)
        while run.epoch < config["epochs"] and not run.history["stopped_early"]:
            run.train_epoch()  # a checkpoint written at the step that stopped the run resumes stopped
        run.restore_best()
    finally:
        clf.model.end_training()
        if run.bar is not None:
            run.bar.close()
    return run.finished()


def _saved_run(config: dict[str, Any], n_texts: int) -> dict[str, Any] | None:
    """The newest checkpoint of this run in config["checkpoint_dir"] with `resume`, else None;
    a checkpoint of other options or another training set refuses."""
    if config["checkpoint_dir"] is None:
        return None
    from .atomic import check_writable

    check_writable(config["checkpoint_dir"])
    found = latest_checkpoint(config["checkpoint_dir"]) if config["resume"] else None
    if found is None:
        return None
    saved = read_checkpoint(found)
    check_same_run(saved["state"]["config"], config, found)
    if saved["state"]["n_texts"] != n_texts:
        raise InvalidInputError(f"{found} was written for {saved['state']['n_texts']} texts, not {n_texts}")
    return saved


def _encoded(clf: TextClassifier, texts, max_length: int | None):
    """The training texts (or sentence pairs) tokenized once, for every epoch."""
    first, second = clf.prepare(texts)
    if second is None:
        return clf.tokenizer(first, max_length=max_length)
    return clf.tokenizer(first, text_pair=second, max_length=max_length)


@dataclass
class _Run:
    """One fit run: what it trains on, and where it is. Its position (step, epoch, place in
    the epoch's order and the RNG state that order was drawn from), its best validation
    figure and its history are what a checkpoint saves and a resumed run starts from."""

    clf: TextClassifier
    config: dict[str, Any]
    enc: Any  # the training texts, tokenized
    y: np.ndarray
    weights: np.ndarray | None  # class weights
    val: tuple[list, np.ndarray] | None
    total: int = field(init=False)  # optimizer steps over all epochs
    warmup: int = field(init=False)
    rng: np.random.Generator = field(init=False)
    history: dict[str, Any] = field(init=False)
    step: int = 0
    epoch: int = 0
    position: int = 0  # optimizer steps done in this epoch
    epoch_rng: dict[str, Any] | None = None  # numpy's RNG state before this epoch's order was drawn
    best: dict[str, Any] = field(default_factory=lambda: {"value": None, "step": None, "wait": 0})
    best_weights: dict[str, np.ndarray] | None = None
    seen: int = 0  # texts trained on in this process
    start: float = 0.0
    bar: Any = None
    postfix: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b, k, epochs = self.config["batch_size"], self.config["gradient_accumulation"], self.config["epochs"]
        self.total = math.ceil(math.ceil(len(self.y) / b) / k) * epochs
        self.warmup = int(round(self.total * self.config["warmup_ratio"]))
        self.rng = np.random.default_rng(self.config["seed"])
        self.history = {
            "loss": [],
            "learning_rate": [],
            "epoch_loss": [],
            "val_accuracy": [],
            "eval": [],
            "best": None,
            "stopped_early": False,
            "restored_best": None,
            "resumed_from": None,
            "config": self.config,
        }

    def resume(self, saved: dict[str, Any]) -> None:
        """Go on from a checkpoint (`training_snapshots.read`): its weights, optimizer state,
        position, best and history."""
        state = saved["state"]
        self.clf.model.load_state_dict(saved["weights"])
        self.clf.model.set_training_state(saved["optimizer"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.epoch_rng = state["rng"]
        self.history.update({key: state["history"][key] for key in _SAVED_HISTORY})
        self.history["resumed_from"] = self.step
        self.best, self.best_weights = state["best"], saved["best"]

    def train_epoch(self) -> None:
        """The rest of the current epoch (all of it unless resumed in its middle), then its
        evaluation with eval_every="epoch"."""
        groups = self._groups()
        epoch_start = self.step - self.position
        while self.position < len(groups) and not self.history["stopped_early"]:
            self.train_step(groups)
        if self.step > epoch_start:
            self.history["epoch_loss"].append(float(np.mean(self.history["loss"][epoch_start : self.step])))
        if not self.history["stopped_early"] and self.config["eval_every"] == "epoch" and self.val is not None:
            self.evaluate(1.0)
        self.epoch, self.position, self.epoch_rng = self.epoch + 1, 0, None
        if self.bar is not None and self.postfix:
            self.bar.set_postfix(self.postfix)

    def _groups(self) -> list[list[np.ndarray]]:
        """This epoch's data order as optimizer steps, each a group of micro-batches of row indices."""
        if self.epoch_rng is None:
            self.epoch_rng = self.rng.bit_generator.state  # before the draw: a resumed run draws the same order
        else:
            self.rng.bit_generator.state = self.epoch_rng
        n, b, k = len(self.y), self.config["batch_size"], self.config["gradient_accumulation"]
        order = self.rng.permutation(n)
        batches = [order[i : i + b] for i in range(0, n, b)]
        return [batches[i : i + k] for i in range(0, len(batches), k)]

    def train_step(self, groups: list[list[np.ndarray]]) -> None:
        """One optimizer step on the epoch's next group, then what is due after it: an
        evaluation, a checkpoint, the progress bar."""
        config = self.config
        lr = learning_rate_at(self.step, self.total, config["learning_rate"], self.warmup, config["schedule"])
        loss = _one_step(self.clf.model, self.enc, self.y, groups[self.position], lr, self.weights)
        if not math.isfinite(loss):
            raise InvalidInputError(f"loss became {loss} at step {self.step}; lower the learning rate")
        self.history["loss"].append(loss)
        self.history["learning_rate"].append(lr)
        self.step += 1
        self.position += 1
        self.seen += sum(len(rows) for rows in groups[self.position - 1])
        every = config["eval_every"]
        if every != "epoch" and self.step % every == 0:
            self.evaluate(self.position / len(groups))
        if config["checkpoint_every"] and self.step % config["checkpoint_every"] == 0:
            self.checkpoint()
        if self.bar is not None:
            self.bar.update(1)
            self.postfix["loss"] = f"{loss:.4f}"
            self.postfix["texts_per_s"] = f"{self.seen / (time.perf_counter() - self.start):.0f}"
            self.bar.set_postfix(self.postfix)

    def evaluate(self, groups_done: float) -> None:
        """Record the validation figures and the best so far; sets history["stopped_early"]
        when early stopping says stop."""
        stopping = self.config["early_stopping"]
        metric = stopping["metric"] if stopping else "loss"
        min_delta = stopping["min_delta"] if stopping else 0.0
        figures = validation_metrics(self.clf, *self.val)
        self.history["eval"].append({"step": self.step, "epoch": round(self.epoch + groups_done, 6), **figures})
        self.history["val_accuracy"].append(figures["accuracy"])
        value, before = figures[metric], self.best["value"]
        improved = before is None or (value < before - min_delta if metric == "loss" else value > before + min_delta)
        if improved:
            self.best = {"value": value, "step": self.step, "wait": 0}
            if self.config["keep_best"]:
                self.best_weights = self.clf.model.state_dict()
        else:
            self.best["wait"] += 1
        self.history["best"] = {"metric": metric, "value": self.best["value"], "step": self.best["step"]}
        self.postfix[f"val_{metric}"] = f"{value:.4f}"
        self.history["stopped_early"] = stopping is not None and self.best["wait"] >= max(1, stopping["patience"])

    def checkpoint(self) -> None:
        """Write the run as it is now (see training_snapshots); only the newest is kept."""
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "rng": self.epoch_rng,
            "n_texts": len(self.y),
            "history": {key: self.history[key] for key in _SAVED_HISTORY},
            "best": self.best,
            "config": self.config,
        }
        optimizer = self.clf.model.training_state()
        write_checkpoint(
            Path(self.config["checkpoint_dir"]),
            self.step,
            self.clf.model.state_dict(),
            optimizer,
            state,
            self.best_weights if self.config["keep_best"] else None,
        )

    def restore_best(self) -> None:
        """keep_best: end with the weights of the best evaluation."""
        if self.config["keep_best"] and self.best_weights is not None:
            self.clf.model.load_state_dict(self.best_weights)
            self.history["restored_best"] = self.best["step"]

    def finished(self) -> dict[str, Any]:
        """The history, with the run's seconds, speed and steps."""
        history = self.history
        history["seconds"] = time.perf_counter() - self.start
        history["texts_per_second"] = self.seen / history["seconds"] if history["seconds"] > 0 else float("nan")
        history["steps"] = self.step
        return history


def _validation_set(clf: TextClassifier, validation) -> tuple[list, np.ndarray] | None:
    if validation is None:
        return None
    try:
        val_texts, val_labels = validation
    except (TypeError, ValueError):
        raise InvalidInputError("validation must be a pair (texts, labels)") from None
    val_texts = list(val_texts)
    if not val_texts:
        return None
    return val_texts, check_training_data(val_texts, val_labels, clf.labels, clf.multi_label)


def _check_model(clf: TextClassifier, config: dict[str, Any]) -> None:
    """What the options need from the adapter's Model, checked before any training starts."""
    model = clf.model
    for name in ("start_training", "train_step"):
        if not model.offers(name):
            raise model.unsupported(name)  # the model's own reason, and what to do instead
    needs = []
    if config["keep_best"]:
        needs.append("load_state_dict")
    if config["checkpoint_dir"] is not None:
        needs += ["load_state_dict", "training_state", "set_training_state"]
    lacking = sorted({name for name in needs if not model.offers(name)})
    if lacking:
        raise InvalidInputError(
            f"keep_best and checkpoints need a model that reads and sets its weights; this {clf.backend} model "
            f"has no {', '.join(lacking)}"
        )
    if needs:
        model.state_dict()  # a model whose weights have no canonical names refuses now, not after training
