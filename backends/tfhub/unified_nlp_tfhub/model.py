"""The adapter's Model: a TF Hub encoder SavedModel -> mean pooling -> linear head,
run as compiled tf.functions; training with a torch-identical AdamW."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.errors import InvalidInputError, InvalidModelError, UnifiedNLPError
from unified_nlp.models import load_head
from unified_nlp.protocols import Encoding, ModelOutput
from unified_nlp.training import no_decay

from ._tf import tf
from .adamw import AdamW, clip_by_global_norm
from .encoder import INPUT_KEYS
from .savedmodel import EncoderCall, load_saved_model
from .weight_map import layout, tf_to_hf, weight_rows

_IDS = tf.TensorSpec([None, None], tf.int64)  # [batch, seq] of any size: traced once, never per shape


def _variable_name(v: tf.Variable) -> str:
    return v.name.split(":")[0]


class TFHubModel:
    """Encoder SavedModel -> mean pooling over the attention mask -> linear head.

    Inference is one tf.function over [None, None] int64 inputs, so batches of
    any shape reuse one graph; calls from many threads at once are safe.

    >>> model = TFHubModel(Path("minilm-tfhub"), spec)                    # doctest: +SKIP
    >>> model(tokenizer(["a fine film"])).logits.shape                      # doctest: +SKIP
    (1, 2)
    """

    def __init__(self, folder: Path, spec: Mapping[str, Any], encoder_dir: Path | None = None) -> None:
        if spec.get("pooling", "mean") != "mean":
            raise InvalidModelError(f"{folder}: pooling {spec.get('pooling')!r} is not supported (mean only)")
        encoder_dir = encoder_dir or folder / "encoder"
        self._encoder = EncoderCall(load_saved_model(encoder_dir, "encoder"), encoder_dir)
        probe = self._encoder(
            {k: tf.zeros([1, 2], tf.int32) if k != "input_mask" else tf.ones([1, 2], tf.int32) for k in INPUT_KEYS}
        )
        states = probe.get("sequence_output")
        if states is None or len(states.shape) != 3:
            raise InvalidModelError(f"{encoder_dir}: 'sequence_output' must be [batch, seq, hidden]")
        hidden = int(states.shape[-1])
        head = load_head(folder, dict(spec), hidden)
        if head["weight"].shape[1] != hidden:
            raise InvalidModelError(
                f"{folder / 'head.safetensors'}: head takes {head['weight'].shape[1]} inputs, the encoder gives {hidden}"
            )
        self.num_labels = int(head["weight"].shape[0])
        self._head_w = tf.Variable(head["weight"], name="head/weight")  # [num_labels, hidden], as torch's Linear
        self._head_b = tf.Variable(head["bias"], name="head/bias")
        self._variables = self._encoder.trainable_variables()
        frozen = [_variable_name(v) for v in self._variables if not v.trainable]
        if frozen:
            raise InvalidModelError(f"{encoder_dir}: encoder variables are not trainable, e.g. {frozen[:3]}")
        self._canonical, self._layout = self._canonical_names()
        position = self._by_name().get("position_embedding/embeddings")
        self.max_positions = int(position.shape[0]) if position is not None else None
        self._infer = tf.function(self._forward, autograph=False, input_signature=[_IDS, _IDS, _IDS])
        self._train_step = None
        self._training_lock = threading.Lock()

    def _by_name(self) -> dict[str, tf.Variable]:
        return {_variable_name(v): v for v in self._variables}

    def _canonical_names(self) -> tuple[dict[str, str], tuple[int, int] | None]:
        """TF variable name -> Hugging Face name, when the encoder follows TF Hub's BERT naming."""
        found = layout({name: tuple(v.shape) for name, v in self._by_name().items()})
        if found is None:
            return {}, None
        return {tf_name: hf for hf, tf_name, _ in weight_rows(found[0])}, found

    def _forward(self, ids, mask, types):
        out = self._encoder({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})
        states = out["sequence_output"]
        weights = tf.cast(mask, states.dtype)[:, :, None]
        pooled = tf.reduce_sum(states * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9)
        logits = tf.matmul(pooled, self._head_w, transpose_b=True) + self._head_b
        return logits, states, pooled

    def _check(self, encoding: Encoding) -> None:
        seq = encoding.input_ids.shape[1]
        if self.max_positions is not None and seq > self.max_positions:
            raise InvalidInputError(
                f"sequence of {seq} tokens exceeds the model's {self.max_positions}; tokenize with truncation=True"
            )

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        self._check(encoding)
        if encoding.num_texts == 0 or encoding.input_ids.shape[1] == 0:
            return ModelOutput(np.zeros((encoding.num_texts, self.num_labels), np.float32))
        logits, states, pooled = self._infer(
            *(tf.constant(encoding[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
        )
        if not output_hidden_states:
            return ModelOutput(logits.numpy())
        return ModelOutput(logits.numpy(), states.numpy(), pooled.numpy())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Encoder weights under Hugging Face BERT names, plus ``head.weight``/``head.bias``."""
        if self._layout is None:
            raise UnifiedNLPError(
                "this TF Hub encoder's variables do not follow TF Hub's BERT naming "
                "(transformer/layer_{i}/...), so they cannot be written as a canonical Hugging Face folder"
            )
        values = {name: v.numpy() for name, v in self._by_name().items() if name in self._canonical}
        out = tf_to_hf(values, *self._layout)
        out["head.weight"] = self._head_w.numpy().copy()
        out["head.bias"] = self._head_b.numpy().copy()
        return out

    # --- training: the core drives data order, schedule and progress -------

    def start_training(self, config: Mapping[str, Any]) -> None:
        if float(config.get("dropout", 0.0)) != 0.0:
            raise InvalidInputError(
                f"dropout={config['dropout']} is not supported on the tfhub backend: the exported encoder has no "
                "dropout layers. Train with dropout=0.0 (the default), which the other backends match exactly"
            )
        params = [("head.weight", self._head_w), ("head.bias", self._head_b)]
        if not config.get("freeze_encoder", False):
            params += [(self._canonical.get(_variable_name(v), _variable_name(v)), v) for v in self._variables]
        decay = float(config.get("weight_decay", 0.01))
        variables = [v for _, v in params]
        optimizer = AdamW(variables, [0.0 if no_decay(name) else decay for name, _ in params])
        clip = float(config.get("max_grad_norm", 1.0))

        @tf.function(
            autograph=False,
            input_signature=[_IDS, _IDS, _IDS, tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.float64)],
        )
        def step(ids, mask, types, labels, learning_rate):
            with tf.GradientTape() as tape:
                logits, _, _ = self._forward(ids, mask, types)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            # embedding gradients arrive as IndexedSlices; torch updates embeddings densely, so do we
            grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
            optimizer.apply(clip_by_global_norm(grads, clip), learning_rate)
            return loss

        self._optimizer, self._train_step = optimizer, step

    def train_step(self, encoding: Encoding, label_ids: np.ndarray, learning_rate: float) -> float:
        if self._train_step is None:
            raise RuntimeError("start_training() must come before train_step()")
        self._check(encoding)
        with self._training_lock:
            loss = self._train_step(
                *(tf.constant(encoding[k]) for k in ("input_ids", "attention_mask", "token_type_ids")),
                tf.constant(np.asarray(label_ids, np.int64)),
                tf.constant(float(learning_rate), tf.float64),
            )
        return float(loss.numpy())

    def end_training(self) -> None:
        self._optimizer, self._train_step = None, None
