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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import fit_checkpoints
from .errors import InvalidInputError
from .fit_options import DEFAULTS, check_options, class_weights, example_weights, learning_rate_at
from .metrics import classification_report, label_ids, multi_hot, multi_label_report

if TYPE_CHECKING:
    from .classifier import TextClassifier

__all__ = ["DEFAULTS", "check_training_data", "fit", "learning_rate_at", "no_decay"]


def no_decay(name: str) -> bool:
    """Parameters exempt from weight decay, by canonical name: biases and LayerNorm."""
    return name.endswith("bias") or "LayerNorm" in name


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


def _progress(total: int, enabled: bool, desc: str, initial: int = 0):
    if not enabled:
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
    progress: bool = True,
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
    config["problem_type"] = clf.spec.get("problem_type", "single_label_classification")
    val = _validation_set(clf, validation)
    if val is None and (config["early_stopping"] or config["keep_best"] or config["eval_every"] != "epoch"):
        raise InvalidInputError("early_stopping, keep_best and eval_every=N need a non-empty validation set")
    _check_model(clf, config, weights)
    if config["max_length"] is not None and config["max_length"] > clf.tokenizer.max_length:
        raise InvalidInputError(f"max_length {config['max_length']} exceeds the model's {clf.tokenizer.max_length}")
    saved = None
    if config["checkpoint_dir"] is not None:
        from .weights import check_writable

        check_writable(config["checkpoint_dir"])
        found = fit_checkpoints.latest(config["checkpoint_dir"]) if config["resume"] else None
        if found is not None:
            saved = fit_checkpoints.read(found)
            fit_checkpoints.check_same_run(saved["state"]["config"], config, found)
            if saved["state"]["n_texts"] != len(y):
                raise InvalidInputError(f"{found} was written for {saved['state']['n_texts']} texts, not {len(y)}")
    first, second = clf.prepare(texts)
    if second is None:
        enc = clf.tokenizer(first, max_length=config["max_length"])
    else:
        enc = clf.tokenizer(first, text_pair=second, max_length=config["max_length"])

    b, k, epochs = config["batch_size"], config["gradient_accumulation"], config["epochs"]
    n = len(y)
    total = math.ceil(math.ceil(n / b) / k) * epochs
    warmup = int(round(total * config["warmup_ratio"]))
    rng = np.random.default_rng(config["seed"])
    stopping, every, keep = config["early_stopping"], config["eval_every"], config["keep_best"]
    metric = stopping["metric"] if stopping else "loss"
    min_delta = stopping["min_delta"] if stopping else 0.0
    history: dict[str, Any] = {
        "loss": [],
        "learning_rate": [],
        "epoch_loss": [],
        "val_accuracy": [],
        "eval": [],
        "best": None,
        "stopped_early": False,
        "restored_best": None,
        "resumed_from": None,
        "config": config,
    }
    best: dict[str, Any] = {"value": None, "step": None, "wait": 0}
    best_weights = None
    step, epoch, position, epoch_rng = 0, 0, 0, None
    clf.model.start_training(config)
    start, seen = time.perf_counter(), 0
    bar = None
    try:
        if saved is not None:
            state = saved["state"]
            clf.model.load_state_dict(saved["weights"])
            clf.model.set_training_state(saved["optimizer"])
            step, epoch, position, epoch_rng = state["step"], state["epoch"], state["position"], state["rng"]
            history.update({key: state["history"][key] for key in _SAVED_HISTORY})
            history["resumed_from"] = step
            best, best_weights = state["best"], saved["best"]
        bar = _progress(total, progress, f"fit [{clf.backend}]", initial=step)
        postfix: dict[str, str] = {}

        def evaluate(groups_done: float) -> bool:
            """Record the validation figures; True when early stopping says stop."""
            nonlocal best, best_weights
            figures = validation_metrics(clf, *val)
            history["eval"].append({"step": step, "epoch": round(epoch + groups_done, 6), **figures})
            history["val_accuracy"].append(figures["accuracy"])
            value, before = figures[metric], best["value"]
            improved = before is None or (
                value < before - min_delta if metric == "loss" else value > before + min_delta
            )
            if improved:
                best = {"value": value, "step": step, "wait": 0}
                if keep:
                    best_weights = clf.model.state_dict()
            else:
                best["wait"] += 1
            history["best"] = {"metric": metric, "value": best["value"], "step": best["step"]}
            postfix[f"val_{metric}"] = f"{value:.4f}"
            return stopping is not None and best["wait"] >= max(1, stopping["patience"])

        stop = bool(history["stopped_early"])  # a checkpoint written at the step that stopped the run
        while epoch < epochs and not stop:
            if epoch_rng is None:
                epoch_rng = rng.bit_generator.state  # before the draw: a resumed run draws the same order
            else:
                rng.bit_generator.state = epoch_rng
            order = rng.permutation(n)
            batches = [order[i : i + b] for i in range(0, n, b)]
            groups = [batches[i : i + k] for i in range(0, len(batches), k)]
            epoch_start = step - position
            while position < len(groups) and not stop:
                lr = learning_rate_at(step, total, config["learning_rate"], warmup, config["schedule"])
                loss = _one_step(clf.model, enc, y, groups[position], lr, weights)
                if not math.isfinite(loss):
                    raise InvalidInputError(f"loss became {loss} at step {step}; lower the learning rate")
                history["loss"].append(loss)
                history["learning_rate"].append(lr)
                step += 1
                position += 1
                seen += sum(len(rows) for rows in groups[position - 1])
                if every != "epoch" and step % every == 0:
                    stop = evaluate(position / len(groups))
                    history["stopped_early"] = stop
                if config["checkpoint_every"] and step % config["checkpoint_every"] == 0:
                    state = {
                        "step": step,
                        "epoch": epoch,
                        "position": position,
                        "rng": epoch_rng,
                        "n_texts": n,
                        "history": {key: history[key] for key in _SAVED_HISTORY},
                        "best": best,
                        "config": config,
                    }
                    optimizer = clf.model.training_state()
                    fit_checkpoints.write(
                        Path(config["checkpoint_dir"]),
                        step,
                        clf.model.state_dict(),
                        optimizer,
                        state,
                        best_weights if keep else None,
                    )
                if bar is not None:
                    bar.update(1)
                    postfix["loss"] = f"{loss:.4f}"
                    postfix["texts_per_s"] = f"{seen / (time.perf_counter() - start):.0f}"
                    bar.set_postfix(postfix)
            if step > epoch_start:
                history["epoch_loss"].append(float(np.mean(history["loss"][epoch_start:step])))
            if not stop and every == "epoch" and val is not None:
                stop = evaluate(1.0)
                history["stopped_early"] = stop
            epoch, position, epoch_rng = epoch + 1, 0, None
            if bar is not None and postfix:
                bar.set_postfix(postfix)
        if keep and best_weights is not None:
            clf.model.load_state_dict(best_weights)
            history["restored_best"] = best["step"]
    finally:
        clf.model.end_training()
        if bar is not None:
            bar.close()
    history["seconds"] = time.perf_counter() - start
    history["texts_per_second"] = seen / history["seconds"] if history["seconds"] > 0 else float("nan")
    history["steps"] = step
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


def _check_model(clf: TextClassifier, config: dict[str, Any], weights: np.ndarray | None) -> None:
    """What the options need from the adapter's Model, checked before any training starts."""
    import inspect

    model = clf.model
    needs = []
    if config["keep_best"]:
        needs.append("load_state_dict")
    if config["checkpoint_dir"] is not None:
        needs += ["load_state_dict", "training_state", "set_training_state"]
    lacking = sorted({name for name in needs if not hasattr(model, name)})
    if lacking:
        raise InvalidInputError(
            f"keep_best and checkpoints need a model that reads and sets its weights; this {clf.backend} model "
            f"has no {', '.join(lacking)}"
        )
    if needs:
        model.state_dict()  # a model whose weights have no canonical names refuses now, not after training
    if config["gradient_accumulation"] > 1 or weights is not None:
        try:
            accepts = "example_weights" in inspect.signature(model.train_step).parameters
        except (TypeError, ValueError):
            accepts = False
        if not accepts:
            raise InvalidInputError(
                f"gradient_accumulation and class_weight need train_step(..., example_weights, apply); "
                f"this {clf.backend} model's train_step has neither"
            )
