"""A BERT encoder as a plain tf.Module, exported as a TF Hub text-encoder SavedModel.

Why a compact tf.Module and not KerasHub or tf-models-official: KerasHub is
Keras 3, but TF Hub's Keras integration (hub.KerasLayer) runs on tf_keras
(TF_USE_LEGACY_KERAS=1), and Keras 3 objects do not compose with tf_keras
layers in one process; KerasHub would also add a large dependency tree.
tf-models-official, TF Hub's own BERT source, pins tensorflow~=2.20 and a very
large tree. BERT's forward pass is about sixty lines of TensorFlow; owning them
keeps every op as transformers computes it (exact erf GELU, LayerNorm with the
config's epsilon, additive attention mask), which is what gives logits within
a few 1e-6 of the PyTorch reference, and a plain tf.Module saved with
tf.saved_model.save is exactly the reusable SavedModel that hub.load and
hub.KerasLayer consume, with no Keras serialization inside.

The contract (TF Hub "common SavedModel APIs for text", BERT encoders): called
with a dict of int32 [batch, seq] ``input_word_ids``, ``input_mask`` and
``input_type_ids``, it returns ``sequence_output`` [batch, seq, hidden],
``pooled_output`` [batch, hidden] (tanh dense on [CLS]), ``default`` (=
pooled_output) and ``encoder_outputs`` (one [batch, seq, hidden] per layer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._tf import tf
from .weight_map import weight_rows

INPUT_KEYS = ("input_word_ids", "input_mask", "input_type_ids")
OUTPUT_KEYS = ("sequence_output", "pooled_output", "default", "encoder_outputs")
INPUT_SIGNATURE = {k: tf.TensorSpec([None, None], tf.int32, name=k) for k in INPUT_KEYS}

_ACTIVATIONS = {
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),  # transformers' "gelu" is the exact erf form
    "gelu_new": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True),
    "relu": tf.nn.relu,
}


def check_config(config: Mapping[str, Any]) -> None:
    """Raise ValueError for a BERT config this encoder does not implement."""
    act = config.get("hidden_act", "gelu")
    if act not in _ACTIVATIONS:
        raise ValueError(f"hidden_act {act!r} is not supported (supported: {', '.join(_ACTIVATIONS)})")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            f"position_embedding_type {config['position_embedding_type']!r} is not supported (absolute only)"
        )
    if config["hidden_size"] % config["num_attention_heads"]:
        raise ValueError("hidden_size is not a multiple of num_attention_heads")


class BertEncoder(tf.Module):
    """BERT (post-LayerNorm Transformer encoder) over TF variables named as TF Hub's BERT.

    >>> enc = BertEncoder(config, hf_to_tf(weights, 6, 12))            # doctest: +SKIP
    >>> enc({k: tf.ones([1, 3], tf.int32) for k in INPUT_KEYS})["pooled_output"].shape  # doctest: +SKIP
    TensorShape([1, 384])
    """

    def __init__(self, config: Mapping[str, Any], values: Mapping[str, np.ndarray]) -> None:
        super().__init__(name="bert_encoder")
        check_config(config)
        self.num_layers = int(config["num_hidden_layers"])
        self.num_heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self._act = _ACTIVATIONS[config.get("hidden_act", "gelu")]
        # a dict keyed by TF Hub variable name; restored variables keep these names
        self._w = {
            tf_name: tf.Variable(values[tf_name], name=tf_name, trainable=True)
            for _, tf_name, _ in weight_rows(self.num_layers)
        }

    def _dense(self, x, name, shape=None):
        kernel, bias = self._w[f"{name}/kernel"], self._w[f"{name}/bias"]
        kernel = tf.reshape(kernel, [-1, shape]) if shape else kernel  # head-split kernels as one matmul
        return tf.matmul(x, kernel) + tf.reshape(bias, [-1])

    def _layer_norm(self, x, name):
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + self.eps) * self._w[f"{name}/gamma"] + self._w[f"{name}/beta"]

    def _attention(self, x, mask_bias, batch, seq, prefix):
        h, n = self.hidden, self.num_heads
        d = h // n

        def heads(name):  # [batch*seq, hidden] -> [batch, heads, seq, head_dim]
            return tf.transpose(tf.reshape(self._dense(x, f"{prefix}/{name}", h), [batch, seq, n, d]), [0, 2, 1, 3])

        q, k, v = heads("query"), heads("key"), heads("value")
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(d)) + mask_bias
        context = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch * seq, h])
        kernel = tf.reshape(self._w[f"{prefix}/attention_output/kernel"], [h, h])
        return tf.matmul(context, kernel) + self._w[f"{prefix}/attention_output/bias"]

    @tf.function(autograph=False, input_signature=[INPUT_SIGNATURE])
    def __call__(self, inputs):
        ids, mask, types = (inputs[k] for k in INPUT_KEYS)
        batch, seq = tf.shape(ids)[0], tf.shape(ids)[1]
        x = (
            tf.gather(self._w["word_embeddings/embeddings"], ids)
            + tf.gather(self._w["type_embeddings/embeddings"], types)
            + self._w["position_embedding/embeddings"][None, :seq]
        )
        x = tf.reshape(self._layer_norm(x, "embeddings/layer_norm"), [batch * seq, self.hidden])
        # padded keys get a large negative score: softmax gives them exactly 0, as in transformers
        mask_bias = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -1e9
        layers = []
        for i in range(self.num_layers):
            p = f"transformer/layer_{i}"
            x = self._layer_norm(
                x + self._attention(x, mask_bias, batch, seq, f"{p}/self_attention"), f"{p}/self_attention_layer_norm"
            )
            inner = self._act(self._dense(x, f"{p}/intermediate"))
            x = self._layer_norm(x + self._dense(inner, f"{p}/output"), f"{p}/output_layer_norm")
            layers.append(tf.reshape(x, [batch, seq, self.hidden]))
        sequence = layers[-1]
        pooled = tf.tanh(self._dense(sequence[:, 0], "pooler_transform"))
        return {"sequence_output": sequence, "pooled_output": pooled, "default": pooled, "encoder_outputs": layers}

    @tf.function(autograph=False, input_signature=[INPUT_SIGNATURE])
    def serve(self, inputs):
        """The serving signature: the same keys, with encoder_outputs stacked
        [num_layers, batch, seq, hidden] because a signature returns only tensors."""
        out = self(inputs)
        return {**out, "encoder_outputs": tf.stack(out["encoder_outputs"])}

    def save(self, out: Path) -> None:
        """Write a TF Hub reusable SavedModel (callable, variables, trainable_variables,
        regularization_losses) with a ``serving_default`` signature."""
        root = tf.train.Checkpoint()
        root.encoder = self
        root.__call__ = self.__call__
        root.variables = list(self._w.values())
        root.trainable_variables = list(self._w.values())
        root.regularization_losses = []
        tf.saved_model.save(root, str(out), signatures={"serving_default": self.serve.get_concrete_function()})
