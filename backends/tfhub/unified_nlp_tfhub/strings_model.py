"""Models over SavedModels that take strings: a text embedding under a trainable linear
head, and a whole Keras classifier run as a black box.

Both read the texts back from the Encoding of strings.StringsTokenizer and call the
SavedModel with a string tensor, so what runs is the user's own graph, tokenizer
included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    Encoding,
    InvalidInputError,
    InvalidModelError,
    Model,
    ModelOutput,
    UnifiedNLPError,
    no_decay,
)

from ._tf import tf
from .model import GradientSum, classification_loss, dense_gradients, micro_step, weighted_loss
from .strings import decode_strings

MULTI_LABEL = "multi_label_classification"


class StringsFunction:
    """A SavedModel's strings -> [batch, width] function: the reusable-SavedModel
    ``__call__`` or a serving signature, taking [batch] or [batch, 1] strings."""

    def __init__(self, fn: Callable, *, by_signature: bool, input_name: str | None, rank: int, owner=None) -> None:
        self._fn, self._by_signature, self._input, self._rank = fn, by_signature, input_name, rank
        self._owner = owner  # the loaded SavedModel: its variables live as long as it does

    def __call__(self, strings):
        x = strings if self._rank == 1 else tf.reshape(strings, [-1, 1])
        out = self._fn(**{self._input: x}) if self._by_signature else self._fn(x)
        if isinstance(out, Mapping):  # TF Hub modules name their main output "default" (ELMo-style dicts)
            key = next((k for k in ("default", "outputs", "logits") if k in out), None)
            if key is None and len(out) != 1:
                raise InvalidModelError(f"the SavedModel returns {sorted(out)}; expected one output or 'default'")
            out = out[key] if key is not None else next(iter(out.values()))
        return tf.cast(out, tf.float32)


class StringsModel(Model):
    """Strings -> SavedModel -> [batch, width]; with `head`, a linear layer on top
    (a text embedding), without it the output is the logits (a Keras classifier).

    >>> model(StringsTokenizer()(["a fine film"])).logits.shape   # doctest: +SKIP
    (1, 2)
    """

    def __init__(
        self,
        function: StringsFunction,
        *,
        head: Mapping[str, np.ndarray] | None,
        encoder_variables: list | None = None,
        problem_type: str = "single_label_classification",
        what: str = "text embedding",
    ) -> None:
        self._fn = function
        self._what = what
        self.problem_type = problem_type
        self._head = (
            {k: tf.Variable(np.asarray(v, np.float32), name=f"head/{k}") for k, v in head.items()} if head else None
        )
        self._encoder_variables = [v for v in (encoder_variables or []) if v.trainable]
        probe = self._fn(tf.constant(["probe"]))
        if len(probe.shape) != 2:
            raise InvalidModelError(f"the {what} must return [batch, width], got shape {list(probe.shape)}")
        self.width = int(probe.shape[-1])
        self.num_labels = int(self._head["bias"].shape[0]) if self._head else self.width
        self._train_step = None
        self._lock = threading.Lock()

    @property
    def trainable(self) -> bool:
        """Whether the SavedModel itself has trainable variables (fit then trains it too)."""
        return bool(self._encoder_variables)

    def _forward(self, strings):
        features = self._fn(strings)
        if self._head is None:
            return features, features
        return tf.matmul(features, self._head["weight"], transpose_b=True) + self._head["bias"], features

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        texts = decode_strings(encoding)
        if not texts:
            return ModelOutput(np.zeros((0, self.num_labels), np.float32))
        logits, features = self._forward(tf.constant(texts, tf.string))
        return ModelOutput(logits.numpy(), None, features.numpy() if output_hidden_states else None)

    def state_dict(self) -> dict[str, np.ndarray]:
        raise UnifiedNLPError(
            f"a {self._what} SavedModel has no architecture to map to transformers' names, so it cannot be "
            "written as a canonical Hugging Face folder; it runs on the tfhub backend only"
        )

    # --- training: the core drives data order, schedule and progress -------

    def start_training(self, config: Mapping[str, Any]) -> None:
        if self._head is None:
            raise UnifiedNLPError(
                f"fit is not supported on a {self._what} (a black box: its loss, optimizer and layers are not "
                "known here); fit the model it came from (in Keras, or the checkpoint it was exported from), or "
                "convert it to another backend when its encoder follows the TF Hub BERT naming"
            )
        if float(config.get("dropout", 0.0)) != 0.0:
            raise InvalidInputError(f"dropout={config['dropout']} is not supported on a SavedModel; use 0.0")
        from .adamw import AdamW, clip_by_global_norm

        params = [(f"head.{k}", v) for k, v in self._head.items()]
        if not config.get("freeze_encoder", False):
            params += [(v.name.split(":")[0], v) for v in self._encoder_variables]
        variables = [v for _, v in params]
        decay = float(config.get("weight_decay", 0.01))
        optimizer = AdamW(variables, [0.0 if no_decay(name) else decay for name, _ in params])
        clip = float(config.get("max_grad_norm", 1.0))
        multi = config.get("problem_type", self.problem_type) == MULTI_LABEL
        labels_spec = tf.TensorSpec([None, None], tf.float32) if multi else tf.TensorSpec([None], tf.int64)

        @tf.function(
            autograph=False,
            input_signature=[tf.TensorSpec([None], tf.string), labels_spec, tf.TensorSpec([], tf.float64)],
        )
        def step(strings, labels, learning_rate):
            with tf.GradientTape() as tape:
                logits, _ = self._forward(strings)
                loss = classification_loss(logits, labels, multi)
            optimizer.apply(clip_by_global_norm(dense_gradients(tape, loss, variables), clip), learning_rate)
            return loss

        def accumulate(strings, labels, weights):
            with tf.GradientTape() as tape:
                logits, _ = self._forward(strings)
                loss = weighted_loss(logits, labels, weights, multi)
            self._sum.add(dense_gradients(tape, loss, variables))
            return loss

        self._accumulate = tf.function(
            accumulate,
            autograph=False,
            input_signature=[tf.TensorSpec([None], tf.string), labels_spec, tf.TensorSpec([None], tf.float32)],
        )
        self._sum: GradientSum | None = None
        self._optimizer, self._train_step, self._multi, self._clip = optimizer, step, multi, clip

    def train_step(
        self,
        encoding: Encoding,
        label_ids: np.ndarray,
        learning_rate: float,
        example_weights: np.ndarray | None = None,
        apply: bool = True,
    ) -> float:
        """One micro-batch, as TFHubModel.train_step."""
        if self._train_step is None:
            raise RuntimeError("start_training() must come before train_step()")
        labels = tf.constant(np.asarray(label_ids, np.float32 if self._multi else np.int64))
        strings = tf.constant(decode_strings(encoding), tf.string)
        rate = tf.constant(float(learning_rate), tf.float64)
        with self._lock:
            return micro_step(self, [strings, labels], rate, encoding.num_texts, example_weights, apply)

    def end_training(self) -> None:
        self._optimizer, self._train_step, self._sum = None, None, None
