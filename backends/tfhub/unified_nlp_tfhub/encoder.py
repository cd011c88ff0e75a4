"""The encoder of the seven BERT-like families as one plain tf.Module, exported as a TF Hub
text-encoder SavedModel; TFEncoder, what it shares with ModernBERT's (rotary_encoder.py) and
DeBERTa-v2/v3's (disentangled_encoder.py).

Why a compact tf.Module and not KerasHub or tf-models-official: KerasHub is
Keras 3, but TF Hub's Keras integration (hub.KerasLayer) runs on tf_keras
(TF_USE_LEGACY_KERAS=1), and Keras 3 objects do not compose with tf_keras
layers in one process; KerasHub would also add a large dependency tree.
tf-models-official, TF Hub's own BERT source, pins tensorflow~=2.20 and a very
large tree. A post-LayerNorm Transformer encoder is about eighty lines of
TensorFlow; owning them keeps every op as transformers computes it (exact erf
GELU, LayerNorm with the config's epsilon, additive attention mask), which is
what gives logits within a few 1e-6 of the PyTorch reference, and a plain
tf.Module saved with tf.saved_model.save is exactly the reusable SavedModel that
hub.load and hub.KerasLayer consume, with no Keras serialization inside.

The seven families (BERT and MiniLM, DistilBERT, RoBERTa, XLM-RoBERTa, ELECTRA,
ALBERT, ERNIE) are one network with a few switches, read from config.json
(`EncoderOptions.from_config`) and from which variables exist:

- token-type embeddings: not in DistilBERT (its input_type_ids are ignored);
- positions: 0, 1, 2, ... or, for RoBERTa and XLM-R, counted over the
  non-padding tokens from pad_token_id + 1 (transformers'
  create_position_ids_from_input_ids);
- ERNIE with use_task_id adds task-type embedding 0 (transformers' default task id);
- a projection embedding_size -> hidden_size after the embedding LayerNorm
  (ELECTRA when the sizes differ, ALBERT always);
- ALBERT runs shared layers: `schedule` lists which set of layer weights each
  of the num_hidden_layers steps applies (num_hidden_groups groups of
  inner_group_num layers);
- activation and LayerNorm epsilon from the config (DistilBERT: ``activation``
  and a fixed 1e-12, as transformers hard-codes).

The contract (TF Hub "common SavedModel APIs for text", BERT encoders): called
with a dict of int32 [batch, seq] ``input_word_ids``, ``input_mask`` and
``input_type_ids``, it returns ``sequence_output`` [batch, seq, hidden],
``pooled_output`` [batch, hidden], ``default`` (= pooled_output) and
``encoder_outputs`` (one [batch, seq, hidden] per layer step). pooled_output is
the family's pooler where it has one (BERT, ERNIE: tanh(pooler.dense(first
token)); ALBERT: tanh(albert.pooler(first token))); DistilBERT, RoBERTa, XLM-R
and ELECTRA have none, and their pooled_output is the first token's
sequence_output (the vector their classification heads start from).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import KNOWN_BACKENDS, InvalidModelError, architectures

from ._tf import tf
from .weight_map import weight_rows

INPUT_KEYS = ("input_word_ids", "input_mask", "input_type_ids")
OUTPUT_KEYS = ("sequence_output", "pooled_output", "default", "encoder_outputs")
INPUT_SIGNATURE = {k: tf.TensorSpec([None, None], tf.int32, name=k) for k in INPUT_KEYS}
# the attention kinds this adapter has a TF encoder for (converter.ENCODERS): this module's, rotary_encoder.py's,
# disentangled_encoder.py's;
# the registry states them, so that `inspect` says where a family runs without importing TensorFlow
ATTENTIONS = KNOWN_BACKENDS["tfhub"].attentions

ACTIVATIONS = {
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),  # transformers' "gelu" is the exact erf form
    "gelu_new": lambda x: tf.nn.gelu(x, approximate=True),  # the tanh form (ALBERT's default)
    "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True),
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "tanh": tf.tanh,
}


@dataclass(frozen=True)
class EncoderOptions:
    """What differs between the families' encoders, from config.json.

    >>> EncoderOptions.from_config("roberta", config).position_pad_id   # doctest: +SKIP
    1
    """

    model_type: str
    heads: int
    eps: float
    activation: str
    schedule: tuple[int, ...]  # the set of layer weights applied at each step
    position_pad_id: int | None = None  # RoBERTa/XLM-R: positions start past the padding id
    task_id: bool = False  # ERNIE with use_task_id

    @classmethod
    def from_config(cls, model_type: str, config: Mapping[str, Any]) -> EncoderOptions:
        """Raises ValueError for a config this encoder does not implement."""
        arch = architectures.get(model_type)
        if arch.attention not in ATTENTIONS:
            raise ValueError(
                f"{arch.model_type} needs {architectures.ATTENTION_KINDS[arch.attention]}: not implemented in "
                "this adapter's TF encoder; run it on another backend (huggingface and onnxruntime run every family)"
            )
        dims = arch.dims(config)
        key, act = arch.encoder_activation(config)
        if act not in ACTIVATIONS:
            raise ValueError(f"{key} {act!r} is not supported (supported: {', '.join(ACTIVATIONS)})")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                f"position_embedding_type {config['position_embedding_type']!r} is not supported (absolute only)"
            )
        return cls(
            model_type=arch.model_type,
            heads=dims["heads"],
            eps=arch.layer_norm_eps(config),
            activation=act,
            schedule=arch.layer_schedule(config),
            position_pad_id=int(config.get("pad_token_id", 1)) if arch.position_offset else None,
            task_id=bool(config.get("use_task_id")) and arch.has_role("embeddings.task_type"),
        )


def check_config(model_type: str, config: Mapping[str, Any]) -> EncoderOptions:
    """The encoder options of a config, or ValueError naming what is not supported."""
    return EncoderOptions.from_config(model_type, config)


def check_head_activation(arch, config: Mapping[str, Any], key: str) -> None:
    """InvalidModelError unless config's `key` (the head's activation) is the family's: the head
    (model.head_logits) computes the architecture's dense_activation, whatever the config says."""
    head_act = config.get(key, arch.dense_activation)
    if head_act != arch.dense_activation:
        raise InvalidModelError(
            f"config.json: {key} {head_act!r} is not supported on tfhub ({arch.dense_activation!r} only)"
        )


def save_reusable(encoder, out: Path) -> None:
    """Write `encoder` (its `__call__`, weights `_w` and `serve` signature) as a TF Hub
    reusable SavedModel: callable, variables, trainable_variables, regularization_losses,
    and a ``serving_default`` signature."""
    root = tf.train.Checkpoint()
    root.encoder = encoder
    root.__call__ = encoder.__call__
    root.variables = list(encoder._w.values())
    root.trainable_variables = list(encoder._w.values())
    root.regularization_losses = []
    tf.saved_model.save(root, str(out), signatures={"serving_default": encoder.serve.get_concrete_function()})


class TFEncoder(tf.Module):
    """What the TF encoders share (this module's, rotary_encoder.py's, disentangled_encoder.py's):
    the options, the variables `_w` keyed by TF name (weight_map.NAMES), the ops on them, the
    serving signature and the reusable SavedModel. A subclass writes ``__call__``."""

    def __init__(self, options: EncoderOptions, config: Mapping[str, Any], values: Mapping[str, np.ndarray]) -> None:
        super().__init__(name="transformer_encoder")
        self.options = options
        self._act = ACTIVATIONS[options.activation]
        # a dict keyed by TF Hub variable name; restored variables keep these names
        self._w = {
            tf_name: tf.Variable(values[tf_name], name=tf_name, trainable=True)
            for _, tf_name, _ in weight_rows(options.model_type, config)
        }

    def _dense(self, x, name, width=None):
        """x @ kernel (+ bias where the family has one); a head-split kernel [in, heads, head_dim]
        is one matmul with `width` = heads * head_dim, a head-merged one [heads, head_dim, out] too."""
        kernel = self._w[f"{name}/kernel"]
        if len(kernel.shape) == 3:
            kernel = tf.reshape(kernel, [-1, width or kernel.shape[-1]])
        x = tf.matmul(x, kernel)
        return x + tf.reshape(self._w[f"{name}/bias"], [-1]) if f"{name}/bias" in self._w else x

    def _layer_norm(self, x, name):
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        x = (x - mean) * tf.math.rsqrt(var + self.options.eps) * self._w[f"{name}/gamma"]
        return x + self._w[f"{name}/beta"] if f"{name}/beta" in self._w else x

    def _feed_forward(self, x, prefix):
        """BERT's post-LayerNorm feed-forward block: LayerNorm(x + output(act(intermediate(x))))."""
        inner = self._act(self._dense(x, f"{prefix}/intermediate"))
        return self._layer_norm(x + self._dense(inner, f"{prefix}/output"), f"{prefix}/output_layer_norm")

    @tf.function(autograph=False, input_signature=[INPUT_SIGNATURE])
    def serve(self, inputs):
        """The serving signature: the same keys, with encoder_outputs stacked
        [num_layers, batch, seq, hidden] because a signature returns only tensors."""
        out = self(inputs)
        return {**out, "encoder_outputs": tf.stack(out["encoder_outputs"])}

    def save(self, out: Path) -> None:
        save_reusable(self, out)


class Encoder(TFEncoder):
    """A post-LayerNorm Transformer encoder over TF variables named as TF Hub's BERT.

    >>> enc = Encoder(EncoderOptions.from_config("bert", config), config, values)  # doctest: +SKIP
    >>> enc({k: tf.ones([1, 3], tf.int32) for k in INPUT_KEYS})["pooled_output"].shape  # doctest: +SKIP
    TensorShape([1, 384])
    """

    def __init__(self, options: EncoderOptions, config: Mapping[str, Any], values: Mapping[str, np.ndarray]) -> None:
        super().__init__(options, config, values)
        self.hidden = int(self._w["transformer/layer_0/self_attention/query/kernel"].shape[0])

    def _attention(self, x, mask_bias, batch, seq, prefix):
        h, n = self.hidden, self.options.heads
        d = h // n

        def heads(name):  # [batch*seq, hidden] -> [batch, heads, seq, head_dim]
            return tf.transpose(tf.reshape(self._dense(x, f"{prefix}/{name}", h), [batch, seq, n, d]), [0, 2, 1, 3])

        q, k, v = heads("query"), heads("key"), heads("value")
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(d)) + mask_bias
        context = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch * seq, h])
        return self._dense(context, f"{prefix}/attention_output")

    def _embeddings(self, ids, types, seq):
        w = self._w
        x = tf.gather(w["word_embeddings/embeddings"], ids)
        if "type_embeddings/embeddings" in w:
            x = x + tf.gather(w["type_embeddings/embeddings"], types)
        pad = self.options.position_pad_id
        if pad is not None:  # RoBERTa: non-padding tokens are numbered pad+1, pad+2, ...; padding gets pad
            real = tf.cast(tf.not_equal(ids, pad), tf.int32)
            x = x + tf.gather(w["position_embedding/embeddings"], tf.cumsum(real, axis=1) * real + pad)
        else:
            x = x + w["position_embedding/embeddings"][None, :seq]
        if self.options.task_id:
            x = x + w["task_type_embeddings/embeddings"][0]
        return self._layer_norm(x, "embeddings/layer_norm")

    @tf.function(autograph=False, input_signature=[INPUT_SIGNATURE])
    def __call__(self, inputs):
        ids, mask, types = (inputs[k] for k in INPUT_KEYS)
        batch, seq = tf.shape(ids)[0], tf.shape(ids)[1]
        x = self._embeddings(ids, types, seq)
        x = tf.reshape(x, [batch * seq, -1])
        if "embedding_projection/kernel" in self._w:
            x = self._dense(x, "embedding_projection")
        # padded keys get a large negative score: softmax gives them exactly 0, as in transformers
        mask_bias = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -1e9
        layers = []
        for i in self.options.schedule:
            p = f"transformer/layer_{i}"
            x = self._layer_norm(
                x + self._attention(x, mask_bias, batch, seq, f"{p}/self_attention"), f"{p}/self_attention_layer_norm"
            )
            x = self._feed_forward(x, p)
            layers.append(tf.reshape(x, [batch, seq, self.hidden]))
        sequence = layers[-1]
        if "pooler_transform/kernel" in self._w:
            pooled = tf.tanh(self._dense(sequence[:, 0], "pooler_transform"))
        else:  # no pooler in this family: the first token, where its classification head starts
            pooled = sequence[:, 0]
        return {"sequence_output": sequence, "pooled_output": pooled, "default": pooled, "encoder_outputs": layers}
