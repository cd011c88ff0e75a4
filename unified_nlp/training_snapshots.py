"""Training checkpoints of fit, backend-neutral: a folder ``checkpoint-00000042`` per optimizer
step in `checkpoint_dir`, written atomically (a temporary folder, then a rename), holding

- ``weights.safetensors``: every weight under the canonical (transformers) names;
- ``optimizer.safetensors``: AdamW's moments and step counts by canonical parameter name
  (``exp_avg/NAME``, ``exp_avg_sq/NAME``, ``step/NAME``) and what fixes the dropout masks from
  there on (``rng/torch``: torch's RNG state; ``rng/paddle``: the micro-step count paddle reseeds from);
- ``best.safetensors`` (keep_best): the best validation weights so far;
- ``trainer.json``: the step, the epoch and the position in its data order, numpy's RNG
  state before that epoch's permutation was drawn, the early-stopping state, the history
  so far and the options.

Only the newest checkpoint is kept: an older one is removed after a newer one is complete.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_dir
from .errors import InvalidInputError
from .weights import load_file, save_file

STATE_FILE = "trainer.json"
FORMAT = 1
_NAME = re.compile(r"^checkpoint-(\d{8})$")
# options that may differ between a run and its resumption (the rest must match)
FREE = ("resume", "checkpoint_dir", "checkpoint_every")


def latest(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in `directory`, or None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = sorted(p for p in directory.iterdir() if _NAME.match(p.name) and (p / STATE_FILE).is_file())
    return found[-1] if found else None


def write(
    directory: str | Path,
    step: int,
    weights: Mapping[str, np.ndarray],
    optimizer: Mapping[str, np.ndarray],
    state: Mapping[str, Any],
    best: Mapping[str, np.ndarray] | None = None,
) -> Path:
    directory = Path(directory)
    target = directory / f"checkpoint-{step:08d}"
    with atomic_dir(target) as tmp:
        save_file(weights, tmp / "weights.safetensors")
        save_file(optimizer, tmp / "optimizer.safetensors")
        if best is not None:
            save_file(best, tmp / "best.safetensors")
        (tmp / STATE_FILE).write_text(json.dumps({"format": FORMAT, **state}, indent=1) + "\n", encoding="utf-8")
    for old in directory.iterdir():
        if old != target and _NAME.match(old.name):
            shutil.rmtree(old, ignore_errors=True)
    return target


def read(path: Path) -> dict[str, Any]:
    """{"state": trainer.json, "weights", "optimizer", "best" (or None)}."""
    try:
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidInputError(f"{path / STATE_FILE}: not a readable checkpoint ({e})") from None
    if state.get("format") != FORMAT:
        raise InvalidInputError(f"{path}: checkpoint format {state.get('format')!r}, expected {FORMAT}")
    best = path / "best.safetensors"
    return {
        "state": state,
        "weights": load_file(path / "weights.safetensors"),
        "optimizer": load_file(path / "optimizer.safetensors"),
        "best": load_file(best) if best.is_file() else None,
    }


def check_same_run(saved: Mapping[str, Any], config: Mapping[str, Any], path: Path) -> None:
    """A resumed run must use the options of the run it continues (apart from FREE)."""
    now = json.loads(json.dumps({k: v for k, v in config.items() if k not in FREE}))
    before = {k: v for k, v in saved.items() if k not in FREE}
    differ = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
    if differ:
        detail = ", ".join(f"{k}: {before.get(k)!r} then, {now.get(k)!r} now" for k in differ[:4])
        raise InvalidInputError(f"{path} was written by a run with other options ({detail}); resume with the same")
