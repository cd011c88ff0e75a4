"""The contract between the core and every backend: numpy crosses every boundary.

A backend adapter provides a `Tokenizer` and a `Model`; the core wraps them in a
`TextClassifier` (see classifier.py), which does batching and post-processing
once, in numpy, for every framework.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

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


@runtime_checkable
class Model(Protocol):
    """An `Encoding` in, a `ModelOutput` out, run in the adapter's framework.

    Training (used by TextClassifier.fit) is three calls, so that data order,
    learning-rate schedule and progress are shared code in the core:
    ``start_training(config)``, ``train_step(encoding, label_ids, learning_rate)``
    returning the batch loss, and ``end_training()``. ``config["problem_type"]`` says
    which loss: cross-entropy on int64 label ids [batch], or, for
    ``multi_label_classification``, binary cross-entropy on float32 0/1 [batch, labels].

    Optional, for fit's gradient accumulation, class weights, keep_best and checkpoints
    (the three adapters have them; fit says which one a model lacks, before training):
    ``train_step(..., example_weights, apply)``: with float weights [batch], the loss is
    sum(weight * loss per text) (a multi-label text's loss: the mean over its labels);
    ``apply=False`` only adds the gradients, and the next ``apply=True`` call clips their
    sum and steps. ``load_state_dict(state)`` sets what ``state_dict()`` returns.
    ``training_state()`` / ``set_training_state(state)``: the optimizer's moments and
    step counts as numpy, by canonical parameter name (``exp_avg/NAME``,
    ``exp_avg_sq/NAME``, ``step/NAME``, shape [1]), in the canonical layout.
    """

    num_labels: int

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput: ...

    def state_dict(self) -> dict[str, np.ndarray]:
        """Weights under transformers' names: those of the architecture's classifier
        class for a native head (``bert.encoder...``, ``classifier.weight``), or of the
        bare encoder plus ``head.weight``/``head.bias`` for the mean-pooling head."""
        ...


@runtime_checkable
class BackendAdapter(Protocol):
    """What an entry point in the group `unified_nlp.backends` resolves to."""

    name: str

    def load(self, path: Path, spec: Mapping[str, Any]) -> tuple[Tokenizer, Model]:
        """Load the model folder at `path` (canonical or the backend's own format)."""
        ...

    def convert(self, source: Path, out: Path) -> None:
        """Write the backend's native format of the canonical folder `source` to `out`."""
        ...
