"""What an adapter needs to know about a model: the `ModelSpec` value, checked once when it is built.

`folder_spec.model_spec` builds one for a model folder (`folder_spec.canonical_spec` for a
canonical folder, a backend's own unified_nlp.json for an export); the tfhub adapter
and `paddlenlp_format.native_spec` build one for a native folder. Every adapter's
``load(path, spec)`` receives it; it crosses the worker pipe as `to_dict()` (JSON) and
is rebuilt there with `from_dict`. Keys a single backend needs (a TF Hub SavedModel's
paths, a PaddleNLP class name) ride along in `extra`, unread by the core.

>>> spec = ModelSpec(labels=("neg", "pos"), max_length=128)
>>> spec.num_labels, spec.replace(fresh_head=True).fresh_head
(2, True)
>>> ModelSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .devices import parse as parse_device
from .errors import InvalidModelError
from .format_names import HUGGINGFACE

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")
# how logits are made: the architecture's own head, mean pooling + linear (our extension),
# a linear layer on a TF Hub text embedding, a Keras classifier's own output
SPEC_HEADS = ("native", "mean", "linear", "keras")


@dataclass(frozen=True)
class ModelSpec:
    """A model as its adapters run it: format, architecture, labels, head and input limits.

    `labels` may be empty only for an encoder described without a head (converters
    carry the encoder and leave the head to whoever loads it with labels).
    `precision` None runs the model as stored; `device` (unified_nlp.devices: "cpu" or
    "cuda:N") None runs it on the CPU; both say how to run a model, not what it is, so no
    folder records them. `max_length` None means the model has no token limit of ours (a TF
    Hub model that takes strings).
    """

    format: str = HUGGINGFACE
    architecture: str | None = "bert"  # a transformers model_type; None for a native model that maps to none
    labels: tuple[str, ...] = ()
    problem_type: str = PROBLEM_TYPES[0]
    head: str = "native"
    pooling: str | None = None
    token_types: bool = True
    max_length: int | None = None
    seed: int = 0
    fresh_head: bool = False  # labels differ from the stored head's: draw a new one from seed
    precision: str | None = None
    device: str | None = None  # a normalised name (devices.parse); None: the CPU
    head_path: str | None = None
    missing: tuple[str, ...] = ()  # optional tensors the checkpoint lacks, filled the same way everywhere
    extra: Mapping[str, Any] = field(default_factory=dict)  # backend-specific keys, kept as read

    def __post_init__(self) -> None:
        labels = self.labels
        if not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
            raise InvalidModelError(f"spec: labels must be distinct non-empty strings, got {list(labels)}")
        if self.problem_type not in PROBLEM_TYPES:
            raise InvalidModelError(
                f"spec: problem_type {self.problem_type!r} is not supported (supported: {', '.join(PROBLEM_TYPES)})"
            )
        if self.problem_type == PROBLEM_TYPES[0] and len(labels) == 1:
            raise InvalidModelError(f"spec: a single-label classifier needs at least two labels, got {list(labels)}")
        if self.head not in SPEC_HEADS:
            raise InvalidModelError(f"spec: unknown head {self.head!r} (known: {', '.join(SPEC_HEADS)})")
        if self.max_length is not None and (
            not isinstance(self.max_length, int) or isinstance(self.max_length, bool) or self.max_length < 1
        ):
            raise InvalidModelError(f"spec: max_length must be a positive integer, got {self.max_length!r}")
        if self.device is not None and parse_device(self.device) != self.device:
            raise InvalidModelError(f"spec: device must be a normalised name (devices.parse), got {self.device!r}")
        clash = sorted(set(self.extra) & _KEYS)
        if clash:
            raise InvalidModelError(f"spec: extra repeats the field(s) {', '.join(clash)}")

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict (the worker pipe's): every field, num_labels, then `extra`;
        a field that is None by default is left out while it is None."""
        out: dict[str, Any] = {}
        for f in _FIELDS:
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            out[f.name] = list(value) if f.name in ("labels", "missing") else value
            if f.name == "labels":
                out["num_labels"] = len(value)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """The spec of a dict as `to_dict` (or an older version's spec) writes it; keys that
        are not fields go to `extra`."""
        data = dict(data)
        count = data.pop("num_labels", None)
        values: dict[str, Any] = {k: data.pop(k) for k in list(data) if k in _KEYS}
        for key in ("labels", "missing"):
            if key in values:
                values[key] = tuple(values[key] or ())
        for key, kind in (("token_types", bool), ("fresh_head", bool), ("seed", int)):
            if key in values:
                values[key] = kind(values[key])
        spec = cls(**values, extra=data)
        if count is not None and int(count) != spec.num_labels:
            raise InvalidModelError(f"spec: num_labels {count} but {spec.num_labels} labels")
        return spec


_FIELDS = tuple(f for f in dataclasses.fields(ModelSpec) if f.name != "extra")
_KEYS = frozenset(f.name for f in _FIELDS)
