"""ModernBERT's encoder (attention kind "rotary_local_global") as a plain tf.Module with the
same contract as encoder.Encoder, exported as a TF Hub text-encoder SavedModel.

Written here because no maintained TensorFlow library has it: KerasHub has no ModernBERT
(and is Keras 3, which does not compose with TF Hub's tf_keras, see encoder.py), and TF
Hub never published one. What it computes, as transformers' ModernBertModel does:

- embeddings: the token table, then LayerNorm (no positions, no token types);
- each layer, pre-LayerNorm: x + Wo(attention(attn_norm(x))) (the first layer has no
  attn_norm), then x + Wo(act(a) * g) with a, g the two halves of Wi(mlp_norm(x)) (GeGLU);
- attention: one fused q/k/v projection, rotary position embeddings on q and k (RoPE with
  the layer kind's theta, cos/sin in float32 of positions 0, 1, 2, ...), softmax(q.k /
  sqrt(d) + mask) . v; a "sliding_attention" layer also masks keys further than
  local_attention // 2 from the query (transformers' bidirectional sliding-window mask);
- the final LayerNorm; pooled_output is what the head starts from: the first token with
  classifier_pooling "cls", the mean over the attention mask with "mean".

Biases that the config leaves out (norm_bias, attention_bias, mlp_bias) are zeros here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from unified_nlp.backend_kit import architectures

from ._tf import tf
from .encoder import INPUT_KEYS, INPUT_SIGNATURE, EncoderOptions, TFEncoder, check_head_activation


class RotaryEncoder(TFEncoder):
    """ModernBERT's encoder over TF variables (weight_map.NAMES), with encoder.Encoder's contract."""

    def __init__(self, options: EncoderOptions, config: Mapping[str, Any], values: Mapping[str, np.ndarray]) -> None:
        arch = architectures.get(options.model_type)
        check_head_activation(arch, config, "classifier_activation")
        super().__init__(options, config, values)
        settings = arch.attention_settings(config)
        self._kinds, self._window = settings["layer_types"], settings["window"]
        self._theta, self._pooling = settings["theta"], settings["pooling"]
        self.hidden = int(self._w["word_embeddings/embeddings"].shape[1])

    def _rotary(self, seq, theta):
        """cos and sin [seq, head_dim] of RoPE, as ModernBertRotaryEmbedding computes them."""
        d = self.hidden // self.options.heads
        inv_freq = 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.float32) / d))
        freqs = tf.cast(tf.range(seq), tf.float32)[:, None] * tf.constant(inv_freq.astype(np.float32))[None, :]
        angles = tf.concat([freqs, freqs], axis=-1)
        return tf.cos(angles), tf.sin(angles)

    def _attention(self, x, bias, rope, batch, seq, prefix):
        h, n = self.hidden, self.options.heads
        d = h // n
        qkv = tf.reshape(self._dense(x, f"{prefix}/qkv"), [batch, seq, 3, n, d])
        q, k, v = (tf.transpose(qkv[:, :, j], [0, 2, 1, 3]) for j in range(3))  # [batch, heads, seq, d]
        cos, sin = rope

        def rotate(t):  # t * cos + rotate_half(t) * sin
            half = d // 2
            return t * cos + tf.concat([-t[..., half:], t[..., :half]], axis=-1) * sin

        scores = tf.matmul(rotate(q), rotate(k), transpose_b=True) * (1.0 / math.sqrt(d)) + bias
        context = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch * seq, h])
        return self._dense(context, f"{prefix}/attention_output")

    def _masks(self, mask, seq):
        """The additive masks of the two layer kinds: padded keys, and for the local layers also
        keys further than the window (a large negative score: softmax gives them exactly 0)."""
        padding = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -1e9
        where = tf.range(seq)
        far = tf.cast(tf.abs(where[:, None] - where[None, :]) > self._window, tf.float32) * -1e9
        return {"full_attention": padding, "sliding_attention": padding + far[None, None]}

    @tf.function(autograph=False, input_signature=[INPUT_SIGNATURE])
    def __call__(self, inputs):
        ids, mask, _ = (inputs[k] for k in INPUT_KEYS)
        batch, seq = tf.shape(ids)[0], tf.shape(ids)[1]
        x = self._layer_norm(tf.gather(self._w["word_embeddings/embeddings"], ids), "embeddings/layer_norm")
        x = tf.reshape(x, [batch * seq, self.hidden])
        masks = self._masks(mask, seq)
        ropes = {kind: self._rotary(seq, theta) for kind, theta in self._theta.items()}
        layers = []
        for i, kind in enumerate(self._kinds):
            p = f"transformer/layer_{i}"
            y = x if i == 0 else self._layer_norm(x, f"{p}/attention_layer_norm")  # the first has none
            x = x + self._attention(y, masks[kind], ropes[kind], batch, seq, f"{p}/self_attention")
            a, g = tf.split(self._dense(self._layer_norm(x, f"{p}/mlp_layer_norm"), f"{p}/gated_intermediate"), 2, -1)
            x = x + self._dense(self._act(a) * g, f"{p}/output")
            layers.append(tf.reshape(x, [batch, seq, self.hidden]))
        sequence = tf.reshape(self._layer_norm(x, "final_layer_norm"), [batch, seq, self.hidden])
        if self._pooling == "mean":
            weights = tf.cast(mask, tf.float32)[:, :, None]
            pooled = tf.reduce_sum(sequence * weights, axis=1) / tf.reduce_sum(weights, axis=1)
        else:
            pooled = sequence[:, 0]
        return {"sequence_output": sequence, "pooled_output": pooled, "default": pooled, "encoder_outputs": layers}
