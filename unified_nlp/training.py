"""Fine-tuning driven by shared code: data order, batches, learning-rate schedule,
progress and history are the same on every backend; each adapter only runs
`train_step` (forward, cross-entropy, backward, clip, AdamW) in its framework.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInputError
from .metrics import label_ids, multi_hot

if TYPE_CHECKING:
    from .classifier import TextClassifier

DEFAULTS: dict[str, Any] = {
    "epochs": 1,
    "batch_size": 32,
    "learning_rate": 5e-5,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "dropout": 0.0,  # 0 keeps training identical across frameworks; 0.1 is BERT's own
    "freeze_encoder": False,
    "seed": 0,
}


def no_decay(name: str) -> bool:
    """Parameters exempt from weight decay, by canonical name: biases and LayerNorm."""
    return name.endswith("bias") or "LayerNorm" in name


def learning_rate_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to `peak` over `warmup` steps, then linear decay to 0 at `total`.

    >>> [round(learning_rate_at(s, 4, 1.0, 2), 2) for s in range(4)]
    [0.5, 1.0, 0.5, 0.0]
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step - 1) / max(1, total - warmup))


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


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=True)


def fit(
    clf: TextClassifier,
    texts: Sequence[str],
    labels: Sequence[str | int],
    *,
    validation: tuple[Sequence[str], Sequence[str | int]] | None = None,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Fine-tune `clf` in place; returns the history.

    Options (defaults in DEFAULTS): epochs, batch_size, learning_rate,
    warmup_ratio, weight_decay, max_grad_norm, dropout, freeze_encoder, seed.
    AdamW with linear warm-up/decay; the same seed gives the same data order on
    every backend. Texts may be sentence pairs ``(text, text_pair)``; a multi-label
    classifier takes one list of label names per text and trains with binary
    cross-entropy.

    >>> history = clf.fit(texts, labels, epochs=1, seed=0)  # doctest: +SKIP
    >>> history["loss"][:2]                                 # doctest: +SKIP
    [0.69, 0.66]
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown fit option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **options}
    if int(config["epochs"]) < 1 or int(config["batch_size"]) < 1 or float(config["learning_rate"]) <= 0:
        raise InvalidInputError("epochs and batch_size must be >= 1 and learning_rate > 0")
    y = check_training_data(texts, labels, clf.labels, clf.multi_label)
    config["problem_type"] = clf.spec.get("problem_type", "single_label_classification")
    val = None
    if validation is not None:
        val_texts, val_labels = validation
        val_texts = list(val_texts)
        val = (
            val_texts,
            check_training_data(val_texts, val_labels, clf.labels, clf.multi_label) if val_texts else None,
        )
    enc = clf.encode(*clf.prepare(texts))
    batch_size, epochs = int(config["batch_size"]), int(config["epochs"])
    steps_per_epoch = math.ceil(len(y) / batch_size)
    total = steps_per_epoch * epochs
    warmup = int(round(total * float(config["warmup_ratio"])))
    rng = np.random.default_rng(int(config["seed"]))
    history: dict[str, Any] = {"loss": [], "learning_rate": [], "epoch_loss": [], "val_accuracy": [], "config": config}
    bar = _progress(total, progress, f"fit [{clf.backend}]")
    clf.model.start_training(config)
    start, seen, step = time.perf_counter(), 0, 0
    try:
        for _epoch in range(epochs):
            order = rng.permutation(len(y))
            losses = []
            for b in range(0, len(order), batch_size):
                rows = order[b : b + batch_size]
                lr = learning_rate_at(step, total, float(config["learning_rate"]), warmup)
                loss = clf.model.train_step(enc.select(rows), y[rows], lr)
                if not math.isfinite(loss):
                    raise InvalidInputError(f"loss became {loss} at step {step}; lower the learning rate")
                history["loss"].append(loss)
                history["learning_rate"].append(lr)
                losses.append(loss)
                step += 1
                seen += len(rows)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", texts_per_s=f"{seen / (time.perf_counter() - start):.0f}")
            history["epoch_loss"].append(float(np.mean(losses)))
            if val is not None and val[1] is not None:  # a Model's __call__ never applies dropout
                history["val_accuracy"].append(clf.evaluate(val[0], val[1], progress=False)["accuracy"])
    finally:
        clf.model.end_training()
        if bar is not None:
            bar.close()
    history["seconds"] = time.perf_counter() - start
    history["texts_per_second"] = seen / history["seconds"] if history["seconds"] > 0 else float("nan")
    history["steps"] = step
    return history
