"""The adapter's Model: a TF Hub encoder SavedModel and a classification head in TF ops,
run as compiled tf.functions; training with a torch-identical AdamW.

Heads (``architectures.HEAD_KINDS``), each as transformers computes it:

- ``pooler``: classifier(pooled_output), the family's tanh pooler (BERT, ALBERT, ERNIE);
- ``dense``: out_proj(act(classifier.dense(first token))), tanh for RoBERTa and XLM-R,
  GELU for ELECTRA (ElectraClassificationHead); DeBERTa's classifier(GELU(pooler.dense(first
  token))) (ContextPooler, whose pooler_hidden_act the encoder checks is "gelu");
- ``pre_classifier``: classifier(ReLU(pre_classifier(first token))) (DistilBERT);
- ``prediction``: classifier(LayerNorm(GELU(head.dense(pooled_output)))) (ModernBERT, whose
  encoder pools as its classifier_pooling says);
- ``mean``: a linear layer on the mean of sequence_output over the attention mask
  (the default model's head, a unified_nlp extension).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    HEAD_FILE,
    Encoding,
    InvalidInputError,
    InvalidModelError,
    Model,
    ModelOutput,
    ModelSpec,
    UnifiedNLPError,
    architectures,
    load_file,
    load_head,
    no_decay,
    read_json,
)

from ._tf import tf
from .encoder import INPUT_KEYS
from .savedmodel import EncoderCall, load_saved_model
from .weight_map import TRANSFORMS, bert_layout, tf_to_hf, weight_rows

_IDS = tf.TensorSpec([None, None], tf.int64)  # [batch, seq] of any size: traced once, never per shape
MULTI_LABEL = "multi_label_classification"
# a "dense" head's two layers: RoBERTa's and ELECTRA's classifier.dense, classifier.out_proj; DeBERTa's
# ContextPooler pooler.dense, then classifier
_DENSE_NAMES = {False: ("classifier.dense", "classifier.out_proj"), True: ("pooler.dense", "classifier")}
_ACTIVATIONS = {"tanh": tf.tanh, "gelu": lambda x: tf.nn.gelu(x, approximate=False), "relu": tf.nn.relu}


def _variable_name(v: tf.Variable) -> str:
    return v.name.split(":")[0]


def classification_loss(logits, labels, multi: bool):
    """The loss every backend trains with: the mean softmax cross-entropy, or (multi-label) the
    mean sigmoid cross-entropy over every element, as torch's binary_cross_entropy_with_logits."""
    if multi:
        losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    else:
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(losses)


def dense_gradients(tape, loss, variables) -> list:
    """Gradients as dense tensors (zeros for unused variables): embedding gradients arrive as
    IndexedSlices, and torch updates embeddings densely, so do we."""
    return [
        tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
        for g, v in zip(tape.gradient(loss, variables), variables)
    ]


def weighted_loss(logits, labels, weights, multi: bool):
    """sum(weights * loss per text); a text's multi-label loss is the mean over its labels."""
    if multi:
        losses = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=1)
    else:
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_sum(losses * weights)


def micro_step(model, inputs: list, rate, num_texts: int, example_weights, apply: bool) -> float:
    """The dispatch of `train_step` for both TF models (`model` has _train_step, _accumulate,
    _sum, _optimizer, _clip): a plain step runs the compiled step; a weighted or accumulating
    one adds into the GradientSum, which clips and steps when `apply`. Called under the model's lock."""
    if example_weights is None and apply and (model._sum is None or not model._sum.pending):
        return float(model._train_step(*inputs, rate).numpy())
    if model._sum is None:
        model._sum = GradientSum(list(model._optimizer.params), model._optimizer, model._clip)
    if example_weights is None:
        example_weights = np.full(num_texts, 1.0 / max(1, num_texts))
    loss = model._accumulate(*inputs, tf.constant(np.asarray(example_weights, np.float32)))
    model._sum.pending = not apply
    if apply:
        model._sum.apply(rate)
    return float(loss.numpy())


class GradientSum:
    """Gradient accumulation: gradients of micro-batches summed in variables, then one clipped
    AdamW step on the sum (clipping applies to the accumulated gradient, as in torch)."""

    def __init__(self, variables: list, optimizer, clip: float) -> None:
        from .adamw import clip_by_global_norm

        self.sums = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.pending = False

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.float64)])
        def apply(learning_rate):
            optimizer.apply(clip_by_global_norm([tf.convert_to_tensor(s) for s in self.sums], clip), learning_rate)
            for s in self.sums:
                s.assign(tf.zeros_like(s))

        self.apply = apply

    def add(self, grads) -> None:
        for s, g in zip(self.sums, grads):
            s.assign_add(g)


def optimizer_state(optimizer, names: list[str], canonical_layout) -> dict[str, np.ndarray]:
    """AdamW's moments by canonical name (``exp_avg/NAME``...), in the canonical layout."""
    step = int(optimizer.step.numpy())
    out: dict[str, np.ndarray] = {}
    if step == 0:
        return out
    for name, m, v in zip(names, optimizer.m, optimizer.v):
        out[f"exp_avg/{name}"] = np.ascontiguousarray(canonical_layout(name, m.numpy()))
        out[f"exp_avg_sq/{name}"] = np.ascontiguousarray(canonical_layout(name, v.numpy()))
        out[f"step/{name}"] = np.array([step], np.int64)  # [1]: safetensors keeps no 0-d
    return out


def set_optimizer_state(optimizer, names: list[str], state: Mapping[str, np.ndarray], to_tf) -> None:
    """The inverse of optimizer_state (one step count for all: this AdamW keeps one)."""
    steps = {int(np.ravel(state[f"step/{n}"])[0]) for n in names if f"step/{n}" in state}
    if len(steps) > 1:
        raise InvalidInputError(f"the optimizer state holds different step counts {sorted(steps)}")
    step = steps.pop() if steps else 0
    for name, m, v in zip(names, optimizer.m, optimizer.v):
        if step and f"exp_avg/{name}" not in state:
            raise InvalidInputError(f"the optimizer state has no moments for {name!r}")
        m.assign(to_tf(name, state[f"exp_avg/{name}"]) if step else tf.zeros_like(m))
        v.assign(to_tf(name, state[f"exp_avg_sq/{name}"]) if step else tf.zeros_like(v))
    optimizer.step.assign(step)


def _linear(x, weight, bias):  # weight [out, in], as torch's Linear
    return tf.matmul(x, weight, transpose_b=True) + bias


def _matmul_bias(x, h, name):  # a Linear whose bias the config may leave out
    x = tf.matmul(x, h[f"{name}.weight"], transpose_b=True)
    return x + h[f"{name}.bias"] if f"{name}.bias" in h else x


def head_logits(
    kind: str, h: Mapping[str, Any], out: Mapping[str, Any], mask, dense_activation: str = "tanh", eps: float = 1e-5
):
    """(logits, sequence_output, pooled) of the head `kind` (architectures.HEAD_KINDS) on an
    encoder's outputs; `h` holds the head's tensors under transformers' names, `eps` is the
    LayerNorm epsilon of a head that has one. Shared by the adapter's Model and the exported
    classifier SavedModel, so both compute the same."""
    states, pooled = out["sequence_output"], out["pooled_output"]
    if kind == "mean":
        weights = tf.cast(mask, states.dtype)[:, :, None]
        pooled = tf.reduce_sum(states * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9)
        logits = _linear(pooled, h["head.weight"], h["head.bias"])
    elif kind == "pooler":
        logits = _linear(pooled, h["classifier.weight"], h["classifier.bias"])
    elif kind == "dense":
        act = _ACTIVATIONS[dense_activation]  # the architecture module's: tanh, GELU for ELECTRA and DeBERTa
        dense, out_proj = _DENSE_NAMES["pooler.dense.weight" in h]
        x = act(_linear(states[:, 0], h[f"{dense}.weight"], h[f"{dense}.bias"]))
        logits = _linear(x, h[f"{out_proj}.weight"], h[f"{out_proj}.bias"])
    elif kind == "prediction":  # ModernBertPredictionHead: pooled_output is already pooled as the config says
        x = _ACTIVATIONS[dense_activation](_matmul_bias(pooled, h, "head.dense"))
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        x = (x - mean) * tf.math.rsqrt(var + eps) * h["head.norm.weight"]
        x = x + h["head.norm.bias"] if "head.norm.bias" in h else x
        logits = _linear(x, h["classifier.weight"], h["classifier.bias"])
    elif kind == "pre_classifier":
        x = tf.nn.relu(_linear(states[:, 0], h["pre_classifier.weight"], h["pre_classifier.bias"]))
        logits = _linear(x, h["classifier.weight"], h["classifier.bias"])
    else:
        raise InvalidModelError(f"head {kind!r} is not supported (supported: {', '.join(architectures.HEAD_KINDS)})")
    return logits, states, pooled


class TFHubModel(Model):
    """Encoder SavedModel -> the architecture's own head (or mean pooling -> linear).

    Inference is one tf.function over [None, None] int64 inputs, so batches of
    any shape reuse one graph; calls from many threads at once are safe.

    >>> model = TFHubModel(Path("my-roberta-tfhub"), spec)                 # doctest: +SKIP
    >>> model(tokenizer(["a fine film"])).logits.shape                      # doctest: +SKIP
    (1, 3)
    """

    def __init__(self, folder: Path, spec: ModelSpec, encoder_dir: Path | None = None) -> None:
        self.kind = "mean" if spec.head == "mean" else None
        if self.kind == "mean" and (spec.pooling or "mean") != "mean":
            raise InvalidModelError(f"{folder}: pooling {spec.pooling!r} is not supported (mean only)")
        encoder_dir = encoder_dir or folder / "encoder"
        self._encoder = EncoderCall(load_saved_model(encoder_dir, "encoder"), encoder_dir)
        probe = self._encoder(
            {k: tf.zeros([1, 2], tf.int32) if k != "input_mask" else tf.ones([1, 2], tf.int32) for k in INPUT_KEYS}
        )
        states = probe.get("sequence_output")
        if states is None or len(states.shape) != 3:
            raise InvalidModelError(f"{encoder_dir}: 'sequence_output' must be [batch, seq, hidden]")
        hidden = int(states.shape[-1])
        self._variables = self._encoder.trainable_variables()
        frozen = [_variable_name(v) for v in self._variables if not v.trainable]
        if frozen:
            raise InvalidModelError(f"{encoder_dir}: encoder variables are not trainable, e.g. {frozen[:3]}")
        self.model_type = spec.architecture or "bert"
        self.arch = architectures.get(self.model_type, folder / "unified_nlp.json")
        # a native TF Hub pair has no config.json: its spec carries the layout read off its variables
        self.config = dict(spec.extra["config"]) if spec.extra.get("config") else self._config(folder)
        self.problem_type = spec.problem_type
        if self.kind is None:
            self.kind = self.arch.head
            if self.config is None:
                raise InvalidModelError(f"{folder}: no config.json, which the {self.model_type} head needs")
        self._head = self._head_variables(folder, spec, hidden)
        self.num_labels = int(self._head["head.bias" if self.kind == "mean" else self._logits_bias()].shape[0])
        self._canonical = self._canonical_names()
        self.max_positions = self._max_positions()
        self._infer = tf.function(self._forward, autograph=False, input_signature=[_IDS, _IDS, _IDS])
        self._train_step = self._optimizer = None
        self._training_lock = threading.Lock()

    # --- construction ---------------------------------------------------------------

    def _config(self, folder: Path) -> dict[str, Any] | None:
        """config.json, or for an encoder without one named as TF Hub's BERT, a config read off its variables."""
        if (folder / "config.json").is_file():
            return read_json(folder / "config.json")
        return bert_layout({_variable_name(v): tuple(v.shape) for v in self._variables})

    def _head_variables(self, folder: Path, spec: ModelSpec, hidden: int) -> dict[str, tf.Variable]:
        """The head's tensors under transformers' names, as tf.Variables ([out, in] like torch's Linear)."""
        n = spec.num_labels
        if self.kind == "mean":
            head = load_head(folder, spec, hidden)
            if head["weight"].shape[1] != hidden:
                raise InvalidModelError(
                    f"{folder / HEAD_FILE}: head takes {head['weight'].shape[1]} inputs, the encoder gives {hidden}"
                )
            tensors = {"head.weight": head["weight"], "head.bias": head["bias"]}
        else:
            prefix = self.arch.prefix + "."
            shapes = {k: v for k, v in self.arch.head_shapes(self.config, n).items() if not k.startswith(prefix)}
            if spec.fresh_head:  # drawn in numpy by the core: the same start on every backend
                fresh = self.arch.fresh_head(self.config, n, spec.seed)
                tensors = {k: fresh[k] for k in shapes}
            elif (folder / HEAD_FILE).is_file():
                saved = load_file(folder / HEAD_FILE)
                for name, shape in shapes.items():
                    if name not in saved:
                        raise InvalidModelError(f"{folder / HEAD_FILE}: missing tensor {name!r}")
                    if tuple(saved[name].shape) != tuple(shape):
                        raise InvalidModelError(
                            f"{folder / HEAD_FILE}: {name!r} has shape {list(saved[name].shape)}, expected {list(shape)}"
                        )
                tensors = {k: saved[k] for k in shapes}
            else:
                raise InvalidModelError(f"{folder}: no {HEAD_FILE}; pass labels=[...] to start a fresh head")
        return {k: tf.Variable(np.asarray(v, np.float32), name=k.replace(".", "/")) for k, v in tensors.items()}

    def _logits_bias(self) -> str:
        """The bias of the layer that gives the logits (the last head row of the architecture)."""
        return [name for _, name, _ in self.arch.head_rows if name.endswith("bias")][-1]

    def _canonical_names(self) -> dict[str, str]:
        """TF variable name -> Hugging Face name (the classifier class's for a native head,
        the bare encoder's for mean pooling); {} when the encoder is not named as ours."""
        if self.config is None:
            return {}
        names = {_variable_name(v) for v in self._variables}
        try:
            rows = weight_rows(self.model_type, self.config)
        except (ValueError, KeyError):
            return {}
        if any(t not in names for _, t, _ in rows):
            return {}
        prefix = "" if self.kind == "mean" else self.arch.prefix + "."
        return {t: prefix + hf for hf, t, _ in rows}

    def _max_positions(self) -> int | None:
        if self.config is not None:
            try:
                return self.arch.position_limit(self.config)
            except ValueError:
                pass
        position = next((v for v in self._variables if _variable_name(v) == "position_embedding/embeddings"), None)
        return int(position.shape[0]) if position is not None else None

    # --- inference ------------------------------------------------------------------

    def _forward(self, ids, mask, types):
        out = self._encoder({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})
        eps = self.arch.layer_norm_eps(self.config) if self.config is not None else 1e-5
        return head_logits(self.kind, self._head, out, mask, self.arch.dense_activation, eps)

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
        """Weights under transformers' names: the classifier class's (``bert.encoder...``,
        ``classifier.weight``) for a native head; bare encoder names plus
        ``head.weight``/``head.bias`` for mean pooling."""
        if not self._canonical:
            raise UnifiedNLPError(
                "this TF Hub encoder's variables are not named as this adapter's encoders "
                "(transformer/layer_{i}/...), or it has no config.json, so they cannot be written as a "
                "canonical Hugging Face folder"
            )
        values = {_variable_name(v): v.numpy() for v in self._variables}
        bare = tf_to_hf(values, self.model_type, self.config, self.arch.dims(self.config)["heads"])
        prefix = "" if self.kind == "mean" else self.arch.prefix + "."
        out = {prefix + k: v for k, v in bare.items()}
        out.update({k: v.numpy().copy() for k, v in self._head.items()})
        return out

    def _layouts(self) -> dict[str, tuple[str, str]]:
        """TF variable name -> (canonical name, transform name of weight_map.TRANSFORMS)."""
        if not self._canonical:
            return {}
        prefix = "" if self.kind == "mean" else self.arch.prefix + "."
        return {t: (prefix + hf, how) for hf, t, how in weight_rows(self.model_type, self.config)}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Set every weight from arrays named as `state_dict` gives them."""
        own = set(self.state_dict())  # and the same refusal for an encoder that is not named as ours
        missing, unknown = sorted(own - set(state)), sorted(set(state) - own)
        if missing or unknown:
            raise InvalidInputError(f"weights do not match the model: missing {missing[:3]}, unknown {unknown[:3]}")
        heads = self.arch.dims(self.config)["heads"]
        by_tf = {_variable_name(v): v for v in self._variables}
        for tf_name, (name, how) in self._layouts().items():
            value = TRANSFORMS[how].to_tf(np.asarray(state[name], np.float32), heads)
            if tuple(value.shape) != tuple(by_tf[tf_name].shape):
                raise InvalidInputError(f"weight {name!r} has shape {list(np.shape(state[name]))}")
            by_tf[tf_name].assign(value)
        for name, v in self._head.items():
            if tuple(np.shape(state[name])) != tuple(v.shape):
                raise InvalidInputError(f"weight {name!r} has shape {list(np.shape(state[name]))}")
            v.assign(np.asarray(state[name], np.float32))

    # --- training: the core drives data order, schedule and progress -------

    def start_training(self, config: Mapping[str, Any]) -> None:
        if float(config.get("dropout", 0.0)) != 0.0:
            raise InvalidInputError(
                f"dropout={config['dropout']} is not supported on the tfhub backend: the exported encoder has no "
                "dropout layers. Train with dropout=0.0 (the default), which the other backends match exactly"
            )
        from .adamw import AdamW, clip_by_global_norm

        params = list(self._head.items())
        if not config.get("freeze_encoder", False):
            for v in self._variables:
                name = _variable_name(v)
                if self.kind == "mean" and name.startswith("pooler_transform/"):
                    continue  # unused by this head: torch leaves its grad None, so AdamW neither steps nor decays it
                params.append((self._canonical.get(name, name), v))
        decay = float(config.get("weight_decay", 0.01))
        variables = [v for _, v in params]
        optimizer = AdamW(variables, [0.0 if no_decay(name) else decay for name, _ in params])
        clip = float(config.get("max_grad_norm", 1.0))
        multi = config.get("problem_type", self.problem_type) == MULTI_LABEL
        labels_spec = tf.TensorSpec([None, None], tf.float32) if multi else tf.TensorSpec([None], tf.int64)

        @tf.function(autograph=False, input_signature=[_IDS, _IDS, _IDS, labels_spec, tf.TensorSpec([], tf.float64)])
        def step(ids, mask, types, labels, learning_rate):
            with tf.GradientTape() as tape:
                logits, _, _ = self._forward(ids, mask, types)
                loss = classification_loss(logits, labels, multi)
            optimizer.apply(clip_by_global_norm(dense_gradients(tape, loss, variables), clip), learning_rate)
            return loss

        def accumulate(ids, mask, types, labels, weights):
            with tf.GradientTape() as tape:
                logits, _, _ = self._forward(ids, mask, types)
                loss = weighted_loss(logits, labels, weights, multi)
            self._sum.add(dense_gradients(tape, loss, variables))
            return loss

        self._accumulate = tf.function(
            accumulate,
            autograph=False,
            input_signature=[_IDS, _IDS, _IDS, labels_spec, tf.TensorSpec([None], tf.float32)],
        )
        self._sum: GradientSum | None = None  # made on the first weighted or accumulated step
        self._optimizer, self._train_step, self._multi, self._clip = optimizer, step, multi, clip
        self._param_names = [name for name, _ in params]

    def train_step(
        self,
        encoding: Encoding,
        label_ids: np.ndarray,
        learning_rate: float,
        example_weights: np.ndarray | None = None,
        apply: bool = True,
    ) -> float:
        """One micro-batch (see the huggingface adapter): the mean loss in one compiled step, or
        sum(example_weights * loss per text) into summed gradients, stepped when `apply`."""
        if self._train_step is None:
            raise RuntimeError("start_training() must come before train_step()")
        self._check(encoding)
        labels = np.asarray(label_ids, np.float32 if self._multi else np.int64)
        inputs = [tf.constant(encoding[k]) for k in ("input_ids", "attention_mask", "token_type_ids")]
        rate = tf.constant(float(learning_rate), tf.float64)
        with self._training_lock:
            return micro_step(self, [*inputs, tf.constant(labels)], rate, encoding.num_texts, example_weights, apply)

    def _canonical_layout(self, name: str, value: np.ndarray) -> np.ndarray:
        layout = self._tf_layout.get(name)
        return value if layout is None else TRANSFORMS[layout].to_hf(value, self._heads)

    def _to_tf(self, name: str, value: np.ndarray) -> np.ndarray:
        layout = self._tf_layout.get(name)
        value = np.asarray(value, np.float32)
        return value if layout is None else TRANSFORMS[layout].to_tf(value, self._heads)

    @property
    def _tf_layout(self) -> dict[str, str]:  # canonical name -> transform, for encoder variables
        return {name: how for name, how in self._layouts().values()}

    @property
    def _heads(self) -> int:
        return self.arch.dims(self.config)["heads"] if self.config else 1

    def training_state(self) -> dict[str, np.ndarray]:
        """AdamW's state by canonical parameter name and layout (see the huggingface adapter)."""
        if self._optimizer is None:
            raise RuntimeError("training_state() needs start_training() first")
        return optimizer_state(self._optimizer, self._param_names, self._canonical_layout)

    def set_training_state(self, state: Mapping[str, np.ndarray]) -> None:
        if self._optimizer is None:
            raise RuntimeError("set_training_state() needs start_training() first")
        set_optimizer_state(self._optimizer, self._param_names, state, self._to_tf)

    def end_training(self) -> None:
        self._optimizer, self._train_step, self._sum = None, None, None
