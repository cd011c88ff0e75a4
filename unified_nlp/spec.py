"""What an adapter needs to know about a model folder: its spec, read and validated once by the core."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint import describe
from .errors import InvalidInputError, InvalidModelError
from .folder import SPEC_FILE, read_spec
from .format_names import HUGGINGFACE


def model_spec(
    path: Path, labels: Sequence[str] | None = None, problem_type: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """What an adapter needs to know about a model folder, validated by the core."""
    spec = read_spec(path)
    fmt = spec.get("format", HUGGINGFACE)
    if fmt == HUGGINGFACE:
        return describe(path, labels, problem_type=problem_type, seed=seed)
    # a backend's own format written by convert: its unified_nlp.json says what it holds
    spec["format"] = fmt
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise InvalidInputError(f"labels must be at least two distinct names, got {labels}")
        if labels != spec.get("labels"):
            spec["fresh_head"] = True
        spec["labels"] = labels
    elif not spec.get("labels"):
        raise InvalidModelError(
            f"{path}: no classification head ({SPEC_FILE} with labels, and head.safetensors); "
            "pass labels=[...] to start a fresh head, then fit it"
        )
    spec["num_labels"] = len(spec["labels"])
    spec.setdefault("architecture", "bert")
    spec.setdefault("head", "mean" if spec.get("pooling", "mean") == "mean" else "native")
    spec.setdefault("problem_type", "single_label_classification")
    spec.setdefault("token_types", True)
    spec.setdefault("pooling", "mean")
    spec.setdefault("seed", seed)
    return spec
