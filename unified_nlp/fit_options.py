"""fit's options: defaults, checks before any training starts, learning-rate schedules and
class weights, shared by every backend."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InvalidInputError

DEFAULTS: dict[str, Any] = {
    "epochs": 1,
    "batch_size": 32,
    "learning_rate": 5e-5,
    "schedule": "linear",
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "dropout": 0.0,  # 0 keeps training identical across frameworks; 0.1 is BERT's own
    "freeze_encoder": False,
    "seed": 0,
    "max_length": None,
    "gradient_accumulation": 1,
    "class_weight": None,
    "eval_every": "epoch",
    "early_stopping": None,
    "keep_best": False,
    "checkpoint_dir": None,
    "checkpoint_every": None,
    "resume": False,
}

SCHEDULES = ("linear", "cosine", "constant")
EARLY_STOPPING_KEYS = {"metric": "loss", "patience": 1, "min_delta": 0.0}
# the validation metrics fit records; "loss" is minimised, the others maximised
METRICS = ("loss", "accuracy", "macro_f1")
MULTI_LABEL_METRICS = (*METRICS, "micro_f1")


def no_decay(name: str) -> bool:
    """Parameters exempt from weight decay, by canonical name: biases and LayerNorm."""
    return name.endswith("bias") or "LayerNorm" in name


def learning_rate_at(step: int, total: int, peak: float, warmup: int, schedule: str = "linear") -> float:
    """The learning rate of optimizer step `step` (0-based) of `total`: linear warm-up to `peak`
    over `warmup` steps, then, with p = (step - warmup + 1) / (total - warmup) going to 1 at the
    last step: "linear" peak * (1 - p), "cosine" peak * (1 + cos(pi * p)) / 2, "constant" peak.

    >>> [round(learning_rate_at(s, 4, 1.0, 2), 2) for s in range(4)]
    [0.5, 1.0, 0.5, 0.0]
    >>> [round(learning_rate_at(s, 4, 1.0, 0, "cosine"), 2) for s in range(4)]
    [0.85, 0.5, 0.15, 0.0]
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    p = min(1.0, (step - warmup + 1) / max(1, total - warmup))
    if schedule == "cosine":
        return peak * 0.5 * (1.0 + math.cos(math.pi * p))
    return peak * max(0.0, 1.0 - p)


def _integer(config: Mapping[str, Any], name: str, low: int, allow_none: bool = False) -> int | None:
    value = config[name]
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _number(config: Mapping[str, Any], name: str, low: float, high: float = math.inf, low_open: bool = False) -> float:
    value = config[name]
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        ok = (float(value) > low if low_open else float(value) >= low) and float(value) <= high
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        raise InvalidInputError(f"{name} must be a number {bound}" + (f" and <= {high}" if high < math.inf else ""))
    return float(value)


def check_options(options: Mapping[str, Any], multi_label: bool, has_validation: bool) -> dict[str, Any]:
    """DEFAULTS overridden by `options`, every value checked; raises before any training starts."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown fit option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **options}
    for name in ("epochs", "batch_size", "gradient_accumulation"):
        config[name] = _integer(config, name, 1)
    config["seed"] = _integer(config, "seed", 0)
    config["learning_rate"] = _number(config, "learning_rate", 0.0, low_open=True)
    config["warmup_ratio"] = _number(config, "warmup_ratio", 0.0, 1.0)
    config["weight_decay"] = _number(config, "weight_decay", 0.0)
    config["max_grad_norm"] = _number(config, "max_grad_norm", 0.0)
    config["dropout"] = _number(config, "dropout", 0.0, 1.0)
    config["max_length"] = _integer(config, "max_length", 2, allow_none=True)
    if config["schedule"] not in SCHEDULES:
        raise InvalidInputError(f"unknown schedule {config['schedule']!r}; known: {', '.join(SCHEDULES)}")
    every = config["eval_every"]
    if every != "epoch":
        config["eval_every"] = _integer(config, "eval_every", 1)
        if not has_validation:
            raise InvalidInputError("eval_every=N steps needs validation=(texts, labels)")
    config["early_stopping"] = _early_stopping(config["early_stopping"], multi_label)
    if (config["early_stopping"] or config["keep_best"]) and not has_validation:
        raise InvalidInputError("early_stopping and keep_best need validation=(texts, labels)")
    config["keep_best"] = bool(config["keep_best"])
    config["resume"] = bool(config["resume"])
    config["checkpoint_every"] = _integer(config, "checkpoint_every", 1, allow_none=True)
    if config["checkpoint_dir"] is None and (config["checkpoint_every"] is not None or config["resume"]):
        raise InvalidInputError("checkpoint_every and resume need checkpoint_dir")
    if config["checkpoint_dir"] is not None:
        config["checkpoint_dir"] = str(config["checkpoint_dir"])
    if multi_label and config["class_weight"] is not None:
        raise InvalidInputError(
            "class_weight is for single-label classifiers (weighted softmax cross-entropy); a multi-label "
            "head trains one sigmoid per label, for which fit has no weighting"
        )
    return config


def _early_stopping(value: Any, multi_label: bool) -> dict[str, Any] | None:
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"early_stopping must be a dict like {EARLY_STOPPING_KEYS}, got {value!r}")
    unknown = set(value) - set(EARLY_STOPPING_KEYS)
    if unknown:
        raise InvalidInputError(
            f"unknown early_stopping key(s) {sorted(unknown)}; known: {sorted(EARLY_STOPPING_KEYS)}"
        )
    out = {**EARLY_STOPPING_KEYS, **value}
    out["metric"] = metric_name(out["metric"], multi_label)
    out["patience"] = _integer(out, "patience", 0)
    out["min_delta"] = _number(out, "min_delta", 0.0)
    return out


def metric_name(name: Any, multi_label: bool) -> str:
    """A validation metric of fit's history ("val_accuracy" and "accuracy" are the same)."""
    known = MULTI_LABEL_METRICS if multi_label else METRICS
    plain = name[4:] if isinstance(name, str) and name.startswith("val_") else name
    if plain not in known:
        raise InvalidInputError(f"unknown metric {name!r}; known: {', '.join(known)}")
    return plain


def class_weights(value: Any, names: Sequence[str], y: np.ndarray) -> np.ndarray | None:
    """A weight per class: "balanced" gives n / (num_classes * count(class)), as scikit-learn's
    compute_class_weight (0 for a class absent from the training set); a dict {label name or
    index: weight} sets the classes it names (the others keep 1)."""
    if value is None:
        return None
    k = len(names)
    if isinstance(value, str):
        if value != "balanced":
            raise InvalidInputError(f"class_weight must be 'balanced' or a dict {{label: weight}}, got {value!r}")
        counts = np.bincount(y, minlength=k).astype(np.float64)
        present = counts > 0
        out = np.zeros(k)
        out[present] = len(y) / (present.sum() * counts[present])
        return out
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"class_weight must be 'balanced' or a dict {{label: weight}}, got {type(value).__name__}"
        )
    index = {name: i for i, name in enumerate(names)}
    out = np.ones(k)
    for label, weight in value.items():
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= int(label) < k:
            i = int(label)
        elif isinstance(label, str) and label in index:
            i = index[label]
        else:
            raise InvalidInputError(f"class_weight names label {label!r}, which the classifier lacks ({list(names)})")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float, np.number))
            or not 0 < float(weight) < math.inf
        ):
            raise InvalidInputError(f"class_weight[{label!r}] must be a positive number, got {weight!r}")
        out[i] = float(weight)
    return out


def example_weights(y: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Per-example weights of one optimizer step's texts, summing to 1: w[y_i] / sum_j w[y_j],
    so that sum_i weight_i * CE_i is torch's cross_entropy(weight=w) over the whole step."""
    if weights is None:
        return np.full(len(y), 1.0 / len(y))
    w = weights[y]
    total = w.sum()
    if total <= 0:  # every text of the step is of a class weighted 0 (absent from "balanced"): impossible
        raise InvalidInputError("the class weights of a step's texts sum to 0")
    return w / total
