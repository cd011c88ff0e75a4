"""Canonical (transformers) tensors <-> PaddleNLP tensors, through the literal tables in
families/, in numpy: every name and shape checked against config.json first, errors
naming the file. Both transforms (transpose, copy) are their own inverse, so the round
trip is bit-exact; what the source held beyond the table (transformers' old buffers) or
short of it (a pooler a checkpoint may lack, filled with the values the core draws for
every backend) is recorded, so an export writes back exactly the tensors it read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.errors import ConversionError, InvalidModelError

from .families import Family

# names of a bare encoder's tensors (a mean-pooling head's encoder), in both frameworks
_ENCODER_NAMES = ("embeddings.", "encoder.", "transformer.", "pooler.", "embeddings_project.")
# transformers' buffers: rebuilt by both frameworks, left out of the PaddleNLP file,
# written back on export when the source had them (older transformers saved them)
_BUFFERS = {
    "embeddings.position_ids": lambda positions: np.arange(positions, dtype=np.int64)[None, :],
    "embeddings.token_type_ids": lambda positions: np.zeros((1, positions), dtype=np.int64),
}


def _buffer(name: str, positions: int) -> np.ndarray | None:
    for suffix, build in _BUFFERS.items():
        if name == suffix or name.endswith("." + suffix):
            return build(positions)
    return None


def canonical_names(state: Mapping[str, Any], family: Family, task: bool) -> dict[str, Any]:
    """Names as the model class has them: a bare encoder's tensors get the prefix
    under a native head (as transformers does); a task model's lose it under a mean head."""
    p = family.architecture.prefix + "."
    prefixed = any(k.startswith(p) for k in state)
    if task and not prefixed:
        return {(k if k.startswith(("classifier.", "pre_classifier.")) else p + k): v for k, v in state.items()}
    if not task and prefixed:
        return {k.removeprefix(p): v for k, v in state.items()}
    return dict(state)


def _poolers(family: Family, task: bool) -> set[str]:
    """Canonical names of the pooler, which a checkpoint may lack (transformers then draws it)."""
    p = family.architecture.prefix + "." if task else ""
    return {hf.format(p=p) for hf, _, _ in family.pooler}


def drawn(family: Family, config: Mapping[str, Any], names, *, task: bool) -> dict[str, np.ndarray]:
    """Values for tensors a checkpoint lacks, as the core draws them for every backend
    (Architecture.missing_tensors, under the task model's names)."""
    arch = family.architecture
    p = arch.prefix + "."
    full = {(n if task else p + n): n for n in names}
    known = {*arch.encoder_shapes(config), *arch.head_shapes(config, 1)}
    values = arch.missing_tensors(config, [n for n in full if n in known])
    out = {full[k]: v for k, v in values.items()}
    for name in set(full) - known:  # RoBERTa's bare-encoder pooler, which no head of ours reads
        h = arch.dims(config)["hidden"]
        out[full[name]] = np.zeros((h, h) if name.endswith("weight") else (h,), np.float32)
    return out


def logits_name(family: Family) -> str:
    """The canonical name of the weight that gives the logits (classifier / out_proj)."""
    return [hf for hf, _, _ in family.head if hf.endswith("weight")][-1]


def _shapes(family: Family, config: Mapping[str, Any], task: bool, num_labels: int) -> dict[str, tuple[int, ...]]:
    """The canonical shape of every row of the table, from config.json (the core's table)."""
    arch = family.architecture
    shapes = dict(arch.classifier_shapes(config, num_labels))
    h = arch.dims(config)["hidden"]
    p = arch.prefix + "."
    for hf, _, _ in family.pooler:  # RoBERTa's pooler belongs to its bare encoder only
        name = hf.format(p=p)
        shapes.setdefault(name, (h, h) if name.endswith("weight") else (h,))
    if not task:
        shapes = {k.removeprefix(p): v for k, v in shapes.items() if k.startswith(p)}
    return shapes


def to_paddle(
    state: Mapping[str, np.ndarray],
    family: Family,
    config: Mapping[str, Any],
    *,
    task: bool,
    num_labels: int,
    source: Path,
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Canonical tensors -> PaddleNLP tensors, and what the source held beyond or short of
    the table ({"canonical_buffers": [...], "canonical_absent": [...]}).

    Checks every name and shape against config.json first; errors name `source`.
    """
    arch = family.architecture
    state = canonical_names(state, family, task)
    rows = family.rows(config, task=task)
    known = {hf for hf, _, _ in rows}
    positions = arch.dims(config)["positions"]
    buffers = []
    for name, value in state.items():
        build = _buffer(name, positions) if name not in known else None
        if build is not None:
            if value.dtype != build.dtype or not np.array_equal(value, build):
                raise ConversionError(f"{source}: buffer {name!r} is not the standard one; it cannot be converted")
            buffers.append(name)
    unused = set()
    if task and not family.pooler_in_task:  # transformers' RobertaForSequenceClassification has no pooler either
        unused = {hf.format(p=arch.prefix + ".") for hf, _, _ in family.pooler}
    unknown = sorted(
        k
        for k in state
        if k not in known and k not in buffers and k not in unused and (task or k.startswith(_ENCODER_NAMES))
    )
    if unknown:
        raise ConversionError(
            f"{source}: tensor(s) outside the {family.display} architecture, e.g. {', '.join(unknown[:3])}"
        )
    shapes = _shapes(family, config, task, num_labels)
    absent = [hf for hf, _, _ in rows if hf not in state]
    required = [name for name in absent if name not in _poolers(family, task)]
    if required:
        raise ConversionError(f"{source}: missing {len(required)} tensor(s), e.g. {', '.join(required[:3])}")
    for name, array in state.items():
        if name in known and name in shapes and tuple(array.shape) != tuple(shapes[name]):
            raise ConversionError(
                f"{source}: tensor {name!r} has shape {list(array.shape)}, config.json implies {list(shapes[name])}"
            )
    values = {**drawn(family, config, absent, task=task), **state}  # absent: see canonical_absent
    out = {pd: fn(values[hf]) for hf, pd, fn in rows}
    out.update(family.buffers(config, task=task))
    return out, {"canonical_buffers": sorted(buffers), "canonical_absent": absent}


def from_paddle(
    tensors: Mapping[str, np.ndarray],
    family: Family,
    config: Mapping[str, Any],
    *,
    task: bool,
    meta: Mapping[str, Any],
    source: Path,
) -> dict[str, np.ndarray]:
    """PaddleNLP tensors -> canonical tensors (the inverse of to_paddle)."""
    rows = family.rows(config, task=task)
    missing = sorted({pd for _, pd, _ in rows} - set(tensors))
    if missing:
        raise InvalidModelError(f"{source}: missing {len(missing)} PaddleNLP tensor(s), e.g. {missing[:3]}")
    absent = set(meta.get("canonical_absent") or [])
    out = {hf: fn(tensors[pd]) for hf, pd, fn in rows if hf not in absent}
    num_labels = int(out[logits_name(family)].shape[0]) if task and logits_name(family) in out else 1
    for name, shape in _shapes(family, config, task, num_labels).items():
        if name in out and tuple(out[name].shape) != tuple(shape):
            raise InvalidModelError(f"{source}: tensor for {name!r} has the wrong shape {list(out[name].shape)}")
    positions = family.architecture.dims(config)["positions"]
    for name in meta.get("canonical_buffers") or []:
        build = _buffer(name, positions)
        if build is not None:
            out[name] = build
    return out
