"""DeBERTa-v2/v3's encoder (attention kind "disentangled") as a plain tf.Module with the same
contract as encoder.Encoder, exported as a TF Hub text-encoder SavedModel.

Written here because no maintained TensorFlow library that composes with TF Hub's tf_keras
has it: KerasHub's DebertaV3Backbone is Keras 3 (which does not compose with tf_keras, see
encoder.py) and builds the v3 layout only (no absolute positions, token types, position
projections or convolution); transformers 5 dropped its TFDebertaV2Model with the rest of
TensorFlow; TF Hub never published one. What it computes, as transformers 5's DebertaV2Model does:

- embeddings: the token table, + absolute positions 0, 1, 2, ... (position_biased_input),
  + token types (type_vocab_size > 0), the embed_proj projection (embedding_size !=
  hidden_size, no bias), LayerNorm, then multiplied by the attention mask;
- relative positions i - j of query i and key j from tf.shape at run time, in log buckets
  (make_log_bucket_position, in float32 as transformers computes them) when position_buckets
  > 0; the relative embeddings (2 * span rows), LayerNorm-ed when norm_rel_ebd says so;
- each layer, post-LayerNorm as BERT's: scores q.k / sqrt(d * f), + c2p: q . Kr[clamp(i - j
  + span)] / sqrt(d * f), + p2c: k_j . Qr[clamp(j - i + span)] / sqrt(d * f), where Kr, Qr are
  the relative embeddings through the key and query projections (share_att_key) or
  pos_key_proj / pos_query_proj, and f = 1 + the number of c2p/p2c terms; padded keys get
  -1e9 (softmax gives them exactly 0, as transformers' finfo.min);
- with conv_kernel_size > 0, after the first layer: LayerNorm(layer output + conv_act(Conv1d(
  embeddings), zero where padded)), times the mask (ConvLayer).

pooled_output is the first token's sequence_output, where DeBERTa's ContextPooler starts.
Padded query rows differ from transformers' (it masks them too); no real token reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from unified_nlp.backend_kit import InvalidModelError, architectures

from ._tf import tf
from .encoder import ACTIVATIONS, INPUT_KEYS, INPUT_SIGNATURE, EncoderOptions, TFEncoder, check_head_activation


def log_bucket_position(relative, bucket_size: int, max_position: int):
    """transformers' make_log_bucket_position on int32 relative positions: exact within
    bucket_size // 2 of 0, log-spaced buckets further out, in float32 as torch computes them."""
    mid = bucket_size // 2
    sign = tf.cast(tf.sign(relative), tf.float32)
    near = tf.logical_and(relative < mid, relative > -mid)
    far = tf.cast(tf.where(near, tf.fill(tf.shape(relative), mid - 1), tf.abs(relative)), tf.float32)
    denominator = tf.math.log(tf.constant((max_position - 1) / mid, tf.float32))
    log_pos = tf.math.ceil(tf.math.log(far / mid) / denominator * (mid - 1)) + mid
    return tf.cast(tf.where(far <= mid, tf.cast(relative, tf.float32), log_pos * sign), tf.int32)


class DisentangledEncoder(TFEncoder):
    """DeBERTa-v2/v3's encoder over TF variables (weight_map.NAMES), with encoder.Encoder's contract.

    >>> enc = DisentangledEncoder(EncoderOptions.from_config("deberta-v2", config), config, values)  # doctest: +SKIP
    >>> enc({k: tf.ones([1, 3], tf.int32) for k in INPUT_KEYS})["pooled_output"].shape  # doctest: +SKIP
    TensorShape([1, 32])
    """

    def __init__(self, options: EncoderOptions, config: Mapping[str, Any], values: Mapping[str, np.ndarray]) -> None:
        arch = architectures.get(options.model_type)
        check_head_activation(arch, config, "pooler_hidden_act")
        self._conv_act = ACTIVATIONS.get(config.get("conv_act", "tanh"))
        if self._conv_act is None:
            raise InvalidModelError(f"config.json: conv_act {config['conv_act']!r} is not supported on tfhub")
        if int(config.get("conv_groups", 1)) != 1:
            raise InvalidModelError(f"config.json: conv_groups {config['conv_groups']} is not supported on tfhub (1)")
        super().__init__(options, config, values)
        self._rel = arch.attention_settings(config)
        self.hidden = int(self._w["transformer/layer_0/self_attention/query/kernel"].shape[0])
        factor = 1 + int(self._rel["c2p"]) + int(self._rel["p2c"])  # transformers' scale_factor
        self._scale = float(np.sqrt(np.float32(self.hidden // options.heads * factor)))  # sqrt in float32, as torch

    def _embeddings(self, ids, types, mask, seq):
        """[batch * seq, hidden], zero at padded tokens (DebertaV2Embeddings' mask multiplication)."""
        w = self._w
        x = tf.gather(w["word_embeddings/embeddings"], ids)
        if "position_embedding/embeddings" in w:
            x = x + w["position_embedding/embeddings"][None, :seq]
        if "type_embeddings/embeddings" in w:
            x = x + tf.gather(w["type_embeddings/embeddings"], types)
        x = tf.reshape(x, [-1, x.shape[-1]])
        if "embedding_projection/kernel" in w:
            x = self._dense(x, "embedding_projection")
        return self._layer_norm(x, "embeddings/layer_norm") * tf.reshape(tf.cast(mask, tf.float32), [-1, 1])

    def _relative_index(self, seq):
        """The c2p and p2c gather indices [seq, seq] into the 2 * span relative embeddings."""
        where = tf.range(seq)
        relative = where[:, None] - where[None, :]
        if self._rel["buckets"] > 0 and self._rel["max_relative"] > 0:
            relative = log_bucket_position(relative, self._rel["buckets"], self._rel["max_relative"])
        span = self._rel["span"]
        return tf.clip_by_value(relative + span, 0, 2 * span - 1), tf.clip_by_value(span - relative, 0, 2 * span - 1)

    def _relative_embeddings(self):
        table = self._w["relative_embeddings/embeddings"][: 2 * self._rel["span"]]
        if "relative_embeddings/layer_norm/gamma" in self._w:
            table = self._layer_norm(table, "relative_embeddings/layer_norm")
        return table

    def _heads(self, x, name, rows):
        """[rows * seq, hidden] -> [rows, heads, seq, head_dim] through the projection `name`."""
        n = self.options.heads
        projected = tf.reshape(self._dense(x, name, self.hidden), [rows, -1, n, self.hidden // n])
        return tf.transpose(projected, [0, 2, 1, 3])

    def _relative_scores(self, q, k, relative, index, prefix):
        """c2p + p2c of DisentangledSelfAttention.disentangled_attention_bias, [batch, heads, seq, seq]."""
        share = self._rel["share_key"]
        c2p_index, p2c_index = index
        shape = tf.concat([tf.shape(q)[:2], tf.shape(c2p_index)], 0)  # [batch, heads, seq, seq]
        score = 0.0
        if self._rel["c2p"]:
            pos_key = self._heads(relative, f"{prefix}/{'key' if share else 'pos_key'}", 1)
            c2p = tf.matmul(q, pos_key, transpose_b=True)  # [batch, heads, query, 2 * span]
            score += tf.gather(c2p, tf.broadcast_to(c2p_index, shape), batch_dims=3) / self._scale
        if self._rel["p2c"]:
            pos_query = self._heads(relative, f"{prefix}/{'query' if share else 'pos_query'}", 1)
            p2c = tf.matmul(k, pos_query, transpose_b=True)  # [batch, heads, key, 2 * span]
            p2c = tf.gather(p2c, tf.broadcast_to(p2c_index, shape), batch_dims=3)
            score += tf.transpose(p2c, [0, 1, 3, 2]) / self._scale
        return score

    def _attention(self, x, mask_bias, relative, index, batch, prefix):
        q, k, v = (self._heads(x, f"{prefix}/{name}", batch) for name in ("query", "key", "value"))
        scores = tf.matmul(q, k / self._scale, transpose_b=True)
        if relative is not None:
            scores = scores + self._relative_scores(q, k, relative, index, prefix)
        context = tf.matmul(tf.nn.softmax(scores + mask_bias, axis=-1), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, self.hidden])
        return self._dense(context, f"{prefix}/attention_output")

    def _conv(self, embedded, residual, keep, batch, seq):
        """ConvLayer: LayerNorm(residual + act(Conv1d(embeddings)) zero at padding), times the mask."""
        kernel = self._w["conv/kernel"]
        pad = (int(kernel.shape[0]) - 1) // 2
        x = tf.pad(tf.reshape(embedded, [batch, seq, self.hidden]), [[0, 0], [pad, pad], [0, 0]])
        out = tf.nn.conv1d(x, kernel, stride=1, padding="VALID") + self._w["conv/bias"]
        out = self._conv_act(tf.reshape(out, [-1, self.hidden]) * keep)
        return self._layer_norm(residual + out, "conv/layer_norm") * keep

    @tf.function(autograph=False, input_signature=[INPUT_SIGNATURE])
    def __call__(self, inputs):
        ids, mask, types = (inputs[k] for k in INPUT_KEYS)
        batch, seq = tf.shape(ids)[0], tf.shape(ids)[1]
        keep = tf.reshape(tf.cast(mask, tf.float32), [-1, 1])
        embedded = self._embeddings(ids, types, mask, seq)
        mask_bias = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -1e9
        relative = self._relative_embeddings() if self._rel["relative"] else None
        index = self._relative_index(seq) if self._rel["relative"] else None
        x, layers = embedded, []
        for i in self.options.schedule:
            p = f"transformer/layer_{i}"
            attended = self._attention(x, mask_bias, relative, index, batch, f"{p}/self_attention")
            x = self._feed_forward(self._layer_norm(x + attended, f"{p}/self_attention_layer_norm"), p)
            if i == 0 and "conv/kernel" in self._w:
                x = self._conv(embedded, x, keep, batch, seq)
            layers.append(tf.reshape(x, [batch, seq, self.hidden]))
        sequence = layers[-1]
        pooled = sequence[:, 0]  # ContextPooler's input: the head (model.head_logits, "dense") applies it
        return {"sequence_output": sequence, "pooled_output": pooled, "default": pooled, "encoder_outputs": layers}
