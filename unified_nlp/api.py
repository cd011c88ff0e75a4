"""The public entry points: load_classifier and convert."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import registry
from .checkpoint import check, describe
from .classifier import TextClassifier
from .errors import InvalidInputError, InvalidModelError
from .models import SPEC_FILE, read_spec, resolve


def _adapter(backend: str):
    where = registry.placement(backend)
    if where.mode == "in-process":
        return registry.load_adapter(backend), where
    from .worker import RemoteAdapter

    return RemoteAdapter(backend, where.python), where


def model_spec(
    path: Path, labels: Sequence[str] | None = None, problem_type: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """What an adapter needs to know about a model folder, validated by the core."""
    spec = read_spec(path)
    fmt = spec.get("format", "huggingface")
    if fmt == "huggingface":
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


def load_classifier(
    model: str | os.PathLike = "default",
    backend: str = "huggingface",
    *,
    labels: Sequence[str] | None = None,
    problem_type: str | None = None,
    seed: int = 0,
) -> TextClassifier:
    """Load a text classifier on one backend, offline.

    `model` is "default" (the embedded MiniLM sentiment model), a local folder
    in the canonical format or in a backend's own format (written by `convert`),
    or a Hugging Face id already in the local cache. A Hugging Face classifier
    folder (any supported architecture, see `unified_nlp.architectures`) loads with
    its own head and its id2label labels. `labels` different from the saved ones
    start a fresh, untrained head drawn from `seed` (see `fit`); placeholder labels
    (LABEL_0, ...) are only renamed. `problem_type="multi_label_classification"`
    makes a fresh head multi-label (sigmoid per label).

    >>> clf = load_classifier("default", backend="tfhub")   # doctest: +SKIP
    >>> clf.predict(["This is a great movie!"])[0].label    # doctest: +SKIP
    'POSITIVE'
    """
    name = registry.canonical_name(backend)
    where = registry.placement(name)  # fails early, before any file work, if it can run nowhere
    path = resolve(model).absolute()
    spec = model_spec(path, labels, problem_type, seed)
    adapter, where = _adapter(name)
    tokenizer, net = adapter.load(path, spec)
    source = path if (path / "config.json").is_file() else None
    return TextClassifier(tokenizer, net, spec["labels"], name, source, spec, where.mode)


def convert(model: str | os.PathLike, to: str, out: str | os.PathLike) -> Path:
    """Write `model` in backend `to`'s native format at `out`, atomically; returns `out`.

    `model` is a name, a canonical folder, or a backend's native folder written by
    an earlier convert: ``to="huggingface"`` turns a TF Hub or Paddle folder back
    into the canonical format (for users leaving a stack).

    >>> convert("default", to="tfhub", out="minilm-tfhub/")           # doctest: +SKIP
    >>> convert("minilm-paddle/", to="huggingface", out="minilm-hf/")  # doctest: +SKIP
    """
    import tempfile

    from .errors import ConversionError

    name = registry.canonical_name(to)
    path = resolve(model).absolute()
    out = Path(out).absolute()
    if out == path or path in out.parents:
        raise ConversionError(f"the output {out} must not be the source folder or inside it")
    fmt = read_spec(path).get("format", "huggingface")
    if fmt == "huggingface":
        check(path)  # validate before any framework sees it
    else:
        source_backend = registry.canonical_name(fmt)
        exporter, _ = _adapter(source_backend)
        if not hasattr(exporter, "export_canonical"):
            raise ConversionError(f"the {source_backend} backend cannot convert its format back to the canonical one")
        if name == "huggingface":
            exporter.export_canonical(path, out)
            return out
        with tempfile.TemporaryDirectory(prefix="unified-nlp-convert-") as tmp:
            canonical = Path(tmp) / "canonical"
            exporter.export_canonical(path, canonical)
            return convert(canonical, to=name, out=out)
    if name == "huggingface":
        from .models import copy_canonical

        copy_canonical(path, out)
        return out
    adapter, _ = _adapter(name)
    adapter.convert(path, out)
    return out
