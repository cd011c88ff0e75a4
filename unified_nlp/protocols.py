"""The contract between the core and every backend: numpy crosses every boundary.

A backend adapter (a `BackendAdapter`) provides a `Tokenizer` and a `Model`; the core
wraps them in a `TextClassifier` (see classifier.py), which does batching and
post-processing once, in numpy, for every framework. The two base classes declare
every capability the core may ask for, with its default; the worker's allow-list
and its remote proxies are derived from them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import NotSupportedError
from .spec import ModelSpec

ENCODING_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Prediction:
    """One classified text: the top label and its probability.

    `truncated` tells whether the text was cut to the model's maximum length;
    it is left out of the repr and of equality.
    """

    label: str
    score: float
    truncated: bool = field(default=False, repr=False, compare=False)


class Encoding(Mapping[str, np.ndarray]):
    """Tokenized texts as int64 numpy arrays of shape [batch, seq].

    Reads like Hugging Face's BatchEncoding: ``enc["input_ids"]`` and
    ``enc.input_ids`` both work.

    Examples:
        >>> enc = Encoding(np.array([[101, 102, 0]]), np.array([[1, 1, 0]]))
        >>> enc.lengths.tolist()
        [2]
    """

    __slots__ = ("_arrays", "truncated")

    def __init__(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray | None = None,
        truncated: np.ndarray | None = None,
    ) -> None:
        input_ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be 2-D [batch, seq], got shape {input_ids.shape}")
        attention_mask = np.ascontiguousarray(attention_mask, dtype=np.int64)
        if token_type_ids is None:
            token_type_ids = np.zeros_like(input_ids)
        token_type_ids = np.ascontiguousarray(token_type_ids, dtype=np.int64)
        for name, array in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if array.shape != input_ids.shape:
                raise ValueError(f"{name} has shape {array.shape}, input_ids {input_ids.shape}")
        self._arrays = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        if truncated is None:
            truncated = np.zeros(input_ids.shape[0], dtype=bool)
        self.truncated = np.asarray(truncated, dtype=bool)

    def __getitem__(self, key: str) -> np.ndarray:
        return self._arrays[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self._arrays[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"Encoding(batch={self.num_texts}, seq={self.input_ids.shape[1]})"

    @property
    def num_texts(self) -> int:
        return int(self._arrays["input_ids"].shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Number of real (unpadded) tokens per text."""
        return self._arrays["attention_mask"].sum(axis=1)

    def select(self, rows: Sequence[int] | np.ndarray) -> Encoding:
        """The given rows, with padding columns that no selected row needs cut off."""
        rows = np.asarray(rows, dtype=np.int64)
        width = int(self.lengths[rows].max()) if len(rows) else 0
        return Encoding(
            *(self._arrays[key][rows, :width] for key in ENCODING_KEYS),
            truncated=self.truncated[rows],
        )

    def to_dict(self) -> dict[str, np.ndarray]:
        return {**self._arrays, "truncated": self.truncated}

    @classmethod
    def from_dict(cls, arrays: Mapping[str, Any]) -> Encoding:
        return cls(
            arrays["input_ids"],
            arrays["attention_mask"],
            arrays.get("token_type_ids"),
            arrays.get("truncated"),
        )


@dataclass
class ModelOutput:
    """What a Model returns: numpy logits [batch, num_labels], and on request the
    last hidden state [batch, seq, hidden] and the pooled sentence embedding."""

    logits: np.ndarray
    last_hidden_state: np.ndarray | None = None
    pooled: np.ndarray | None = None

    def to_dict(self) -> dict[str, np.ndarray | None]:
        return {
            "logits": self.logits,
            "last_hidden_state": self.last_hidden_state,
            "pooled": self.pooled,
        }


@runtime_checkable
class Tokenizer(Protocol):
    """Texts (and optionally their pair texts) in, an `Encoding` out, with token
    type ids 0 for the first text and 1 for the second where the model has them.
    Adapters wrap their framework's own tokenizer."""

    max_length: int
    vocab_size: int

    def __call__(
        self,
        texts: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
        padding: bool | str = "longest",
        truncation: bool = True,
    ) -> Encoding: ...

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = True) -> str: ...


TOKENIZER_METHODS = ("__call__", "decode")  # what a worker serves of a tokenizer


class Model:
    """Base of every backend's model: an `Encoding` in, a `ModelOutput` out, run in the
    adapter's framework. Every capability the core may ask of a model is declared here
    with its default; an adapter's model overrides what its framework offers, and
    `offers(name)` tells which (the core asks it, and never probes with getattr).

    Training (used by TextClassifier.fit) is three calls, so that data order,
    learning-rate schedule and progress are shared code in the core:
    ``start_training(config)``, ``train_step(encoding, label_ids, learning_rate,
    example_weights, apply)`` returning the batch loss, and ``end_training()``.
    ``config["problem_type"]`` says which loss: cross-entropy on int64 label ids [batch],
    or, for ``multi_label_classification``, binary cross-entropy on float32 0/1
    [batch, labels]. With float `example_weights` [batch] the loss is
    sum(weight * loss per text) (a multi-label text's loss: the mean over its labels);
    ``apply=False`` only adds the gradients, and the next ``apply=True`` call clips their
    sum and steps.

    For keep_best and checkpoints: ``load_state_dict(state)`` sets what ``state_dict()``
    returns; ``training_state()`` / ``set_training_state(state)``: the optimizer's moments
    and step counts as numpy, by canonical parameter name (``exp_avg/NAME``,
    ``exp_avg_sq/NAME``, ``step/NAME``, shape [1]), in the canonical layout.
    """

    num_labels: int

    # everything a worker serves of a model in its process, and RemoteModel forwards
    METHODS = (
        "__call__",
        "state_dict",
        "load_state_dict",
        "start_training",
        "train_step",
        "training_state",
        "set_training_state",
        "end_training",
    )

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Weights under transformers' names: those of the architecture's classifier
        class for a native head (``bert.encoder...``, ``classifier.weight``), or of the
        bare encoder plus ``head.weight``/``head.bias`` for the mean-pooling head."""
        raise self.unsupported("state_dict")

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        raise self.unsupported("load_state_dict")

    def start_training(self, config: Mapping[str, Any]) -> None:
        raise self.unsupported("start_training")

    def train_step(
        self,
        encoding: Encoding,
        label_ids: np.ndarray,
        learning_rate: float,
        example_weights: np.ndarray | None = None,
        apply: bool = True,
    ) -> float:
        raise self.unsupported("train_step")

    def training_state(self) -> dict[str, np.ndarray]:
        raise self.unsupported("training_state")

    def set_training_state(self, state: Mapping[str, np.ndarray]) -> None:
        raise self.unsupported("set_training_state")

    def end_training(self) -> None:
        """Drop what training held (optimizer, compiled steps); nothing by default."""

    def instances(self, count: int | None = None) -> list[Model]:
        """`count` models of the same weights that can run at the same time, each on its share
        of this model's threads (a server runs batches side by side on them under load); None:
        as many as the backend finds worth their memory. By default this model alone, where the
        framework cannot divide its threads per call."""
        return [self]

    def offers(self, method: str) -> bool:
        """Whether this model implements `method` (one of METHODS) rather than refusing it."""
        if method not in self.METHODS:
            raise ValueError(f"{method!r} is not a Model capability; known: {', '.join(self.METHODS)}")
        return getattr(type(self), method) is not getattr(Model, method)

    def unsupported(self, method: str) -> NotSupportedError:
        """The error a capability this model lacks raises; a model may say more (why, and what to do)."""
        return NotSupportedError(f"this model ({type(self).__name__}) does not offer {method}")


class BackendAdapter:
    """Base of every backend adapter: what an entry point in the group
    `unified_nlp.backends` resolves to. `load` is the one thing each adapter must do;
    every other capability is declared here with its default (a clear "not supported on
    this backend" error, or nothing to set), so the core asks, and never probes."""

    name: str = ""
    # what load(spec with precision=...) accepts on this machine (a property where it depends on the CPU)
    precisions: tuple[str, ...] = ("fp32",)
    # what load(spec with device=...) accepts here: "cpu", then "cuda:0", ... as the framework sees
    # them (unified_nlp.devices.usable; a property, as it asks the framework)
    devices: tuple[str, ...] = ("cpu",)
    # what to install where `devices` lists no accelerator: the framework's GPU build
    gpu_install: str = "a GPU build of this backend's framework"

    # what a worker serves of its adapter besides `load` (RemoteAdapter forwards each)
    OPERATIONS = (
        "precisions",
        "devices",
        "gpu_install",
        "set_threads",
        "convert",
        "export_canonical",
        "describe_native",
        "import_native",
        "inspect_native",
    )

    def load(self, path: Path, spec: ModelSpec) -> tuple[Tokenizer, Model]:
        """Load the model folder at `path` (canonical or the backend's own format), as `spec` describes it."""
        raise NotImplementedError

    def set_threads(self, n: int) -> int | None:
        """Give the framework `n` compute threads; returns the count it reports back
        (0: its own default), or None where it has no such setting."""
        return None

    def convert(self, source: Path, out: Path) -> None:
        """Write the backend's own format of the canonical folder `source` to `out`."""
        raise NotSupportedError(f"the {self.name} backend writes no format of its own")

    def export_canonical(self, source: Path, out: Path) -> None:
        """Write the canonical folder of `source`, a folder in this backend's own format (`convert`'s)."""
        raise NotSupportedError(f"the {self.name} backend cannot convert its format back to the canonical one")

    def describe_native(self, path: Path, **options: Any) -> ModelSpec:
        """The spec `load` needs for a folder of this ecosystem's own format that only its
        framework reads (a TF Hub SavedModel)."""
        raise NotSupportedError(f"the {self.name} backend reads no native format by itself")

    def import_native(self, path: Path, out: Path, **options: Any) -> None:
        """Write the canonical folder of such a native folder to `out`."""
        raise NotSupportedError(f"the {self.name} backend imports no native format")

    def inspect_native(self, path: Path, **options: Any) -> dict[str, Any]:
        """What such a native folder holds (`unified_nlp.inspect_model`'s fields)."""
        raise NotSupportedError(f"the {self.name} backend inspects no native format")
