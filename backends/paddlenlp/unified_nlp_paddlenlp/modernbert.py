"""ModernBERT (transformers' ModernBertModel / ModernBertForSequenceClassification) in Paddle.

Written here because PaddleNLP 2.8 has no ModernBERT (paddlenlp.transformers has no
modernbert package nor any class of that name; checked in 2.8.1). The classes take the
place PaddleNLP's would (classes.paddlenlp_class finds them first): forward(input_ids,
token_type_ids=None, attention_mask=None) as PaddleNLP's, transformers' tensor names,
Linear weights [in, out] as paddle stores them. What they compute, as transformers 5's
eager path does:

- embeddings: the token table, then LayerNorm (no positions, no token types);
- each layer, pre-LayerNorm: x + Wo(attention(attn_norm(x))) (the first layer has no
  attn_norm), then x + Wo(act(a) * g) with a, g the two halves of Wi(mlp_norm(x)) (GeGLU);
- attention: one fused q/k/v projection, rotary position embeddings on q and k with the
  layer kind's theta (cos/sin in float32 of positions 0, 1, 2, ...), softmax(q.k / sqrt(d)
  + mask) . v; a "sliding_attention" layer also masks keys further than local_attention // 2
  from the query (transformers' bidirectional sliding-window mask);
- the final LayerNorm; the classifier pools the first token ("cls") or the mean over the
  attention mask ("mean"), then classifier(LayerNorm(act(dense(pooled)))).

The config's switches decide which tensors exist, as in transformers (norm_bias,
attention_bias, mlp_bias, classifier_bias). The config this module reads is the one the
family writes (unified_nlp.paddlenlp_format.families.modernbert): layer_types and the two
RoPE thetas already resolved from transformers' keys.

PaddleNLP's RoPE helpers: rotate_half of its LLaMA port is transformers' and is reused;
its LlamaRotaryEmbedding caches cos/sin for max_position_embeddings at construction, as
plain tensors that a saved inference program would carry as constants, so cos/sin are
computed here from the input's length at each call (a few hundred multiplies).
Everything is static-graph friendly (paddle.jit.to_static with dynamic batch and length):
shapes come from paddle.shape, layer kinds and pooling are Python choices made at build.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._framework import paddle
from ._framework import rotate_half as _rotate_half

nn = paddle.nn
F = paddle.nn.functional

# transformers' ACT2FN names whose function paddle computes the same ("gelu": the exact erf form in both)
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu, "swish": F.silu}
_MASKED = -1e9  # added to a masked score: its exp is exactly 0 next to any visible key, and finite in bf16

# transformers' ModernBertConfig defaults, for the keys computed here
_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50368,
    "hidden_size": 768,
    "intermediate_size": 1152,
    "num_hidden_layers": 22,
    "num_attention_heads": 12,
    "hidden_activation": "gelu",
    "max_position_embeddings": 8192,
    "norm_eps": 1e-5,
    "norm_bias": False,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "mlp_dropout": 0.0,
    "embedding_dropout": 0.0,
    "layer_types": None,  # None: every third layer global, as transformers' default
    "local_attention": 128,
    "global_rope_theta": 160000.0,
    "local_rope_theta": 10000.0,
    "classifier_pooling": "cls",
    "classifier_dropout": 0.0,
    "classifier_bias": False,
    "classifier_activation": "gelu",
    "num_labels": 2,
}


class ModernBertConfig:
    """The settings the layers read, as attributes (transformers' defaults where absent).
    Keys it does not compute with (token ids, id2label, ...) are kept as attributes too."""

    model_type = "modernbert"

    def __init__(self, **kwargs: Any) -> None:
        values = {**_DEFAULTS, **kwargs}
        if values["layer_types"] is None:
            values["layer_types"] = [
                "sliding_attention" if i % 3 else "full_attention" for i in range(values["num_hidden_layers"])
            ]
        if "id2label" in kwargs and "num_labels" not in kwargs:
            values["num_labels"] = len(kwargs["id2label"])
        for name in ("hidden_activation", "classifier_activation"):
            if values[name] not in ACTIVATIONS:
                raise ValueError(f"{name} {values[name]!r} is not computed here (known: {', '.join(ACTIVATIONS)})")
        if values["classifier_pooling"] not in ("cls", "mean"):
            raise ValueError(f"classifier_pooling must be 'cls' or 'mean', got {values['classifier_pooling']!r}")
        if len(values["layer_types"]) != values["num_hidden_layers"]:
            raise ValueError(
                f"layer_types has {len(values['layer_types'])} entries for {values['num_hidden_layers']} layers"
            )
        self.__dict__.update(values)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _LayerNorm(nn.LayerNorm):
    """paddle's LayerNorm, bias optional as transformers' (norm_bias). Paddle Inference 3.3.1
    computes a layer_norm op without a bias input wrongly (measured: embeddings off by 0.8), so
    a bias-free one hands the op zeros."""

    def forward(self, x):
        bias = self.bias if self.bias is not None else paddle.zeros_like(self.weight)
        return F.layer_norm(x, self._normalized_shape, self.weight, bias, self._epsilon)


def _layer_norm(config: ModernBertConfig) -> nn.LayerNorm:
    return _LayerNorm(config.hidden_size, epsilon=config.norm_eps, bias_attr=None if config.norm_bias else False)


def _linear(n_in: int, n_out: int, bias: bool) -> nn.Linear:
    return nn.Linear(n_in, n_out, bias_attr=None if bias else False)


class ModernBertEmbeddings(nn.Layer):
    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        # no padding_idx: paddle's would output zeros for it, torch's outputs the stored row
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.norm = _layer_norm(config)
        self.drop = nn.Dropout(config.embedding_dropout)

    def forward(self, input_ids):
        return self.drop(self.norm(self.tok_embeddings(input_ids)))


class ModernBertAttention(nn.Layer):
    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.Wqkv = _linear(config.hidden_size, 3 * config.hidden_size, config.attention_bias)
        self.Wo = _linear(config.hidden_size, config.hidden_size, config.attention_bias)
        self.drop = nn.Dropout(config.attention_dropout)  # on the attention probabilities
        self.out_drop = nn.Dropout(config.attention_dropout)

    def forward(self, x, mask, cos, sin):
        # [batch, seq, 3, heads, d] -> three [batch, heads, seq, d]
        qkv = self.Wqkv(x).reshape([0, 0, 3, self.heads, self.head_dim]).transpose([2, 0, 3, 1, 4])
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        scores = paddle.matmul(q, k, transpose_y=True) * (1.0 / math.sqrt(self.head_dim)) + mask
        context = paddle.matmul(self.drop(F.softmax(scores, axis=-1)), v)
        context = context.transpose([0, 2, 1, 3]).reshape([0, 0, self.heads * self.head_dim])
        return self.out_drop(self.Wo(context))


class ModernBertMLP(nn.Layer):
    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.Wi = _linear(config.hidden_size, 2 * config.intermediate_size, config.mlp_bias)
        self.act = ACTIVATIONS[config.hidden_activation]
        self.drop = nn.Dropout(config.mlp_dropout)
        self.Wo = _linear(config.intermediate_size, config.hidden_size, config.mlp_bias)

    def forward(self, x):
        a, gate = paddle.chunk(self.Wi(x), 2, axis=-1)
        return self.Wo(self.drop(self.act(a) * gate))


class ModernBertEncoderLayer(nn.Layer):
    def __init__(self, config: ModernBertConfig, index: int) -> None:
        super().__init__()
        self.attn_norm = nn.Identity() if index == 0 else _layer_norm(config)  # as transformers: none first
        self.attn = ModernBertAttention(config)
        self.mlp_norm = _layer_norm(config)
        self.mlp = ModernBertMLP(config)
        self.kind = config.layer_types[index]

    def forward(self, x, mask, cos, sin):
        x = x + self.attn(self.attn_norm(x), mask, cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class ModernBertModel(nn.Layer):
    """The encoder: the last hidden state [batch, seq, hidden], after the final LayerNorm."""

    config_class = ModernBertConfig  # PaddleNLP's class attributes, read where a native folder is built
    base_model_prefix = "model"

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = ModernBertEmbeddings(config)
        self.layers = nn.LayerList([ModernBertEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.final_norm = _layer_norm(config)
        self._theta = {"full_attention": config.global_rope_theta, "sliding_attention": config.local_rope_theta}
        self._dim = config.hidden_size // config.num_attention_heads
        self._window = config.local_attention // 2

    def _rotary(self, positions, theta: float):
        """cos, sin [seq, head_dim] as ModernBertRotaryEmbedding: float32 angles pos * inv_freq, twice."""
        inv_freq = 1.0 / (theta ** (paddle.arange(0, self._dim, 2, dtype="float32") / self._dim))
        freqs = positions.unsqueeze(-1) * inv_freq.unsqueeze(0)
        # two copies of the angles, one for cos and one for sin: given one tensor, Paddle Inference
        # 3.3.1 applies sin to cos's output (both came out sin(cos(x)); measured)
        for_cos, for_sin = paddle.split(paddle.concat([freqs, freqs, freqs, freqs], axis=-1), 2, axis=-1)
        return paddle.cos(for_cos), paddle.sin(for_sin)

    def _masks(self, attention_mask, seq):
        """The additive masks [batch, 1, seq, seq] of each layer kind: padded keys, and for the local
        layers also keys further than the window from the query."""
        keys = attention_mask.astype("bool").unsqueeze([1, 2])  # [batch, 1, 1, seq]
        offset = paddle.arange(seq, dtype="int64").unsqueeze(1) - paddle.arange(seq, dtype="int64").unsqueeze(0)
        # |i - j| <= window as two comparisons: Paddle Inference's int64 abs gives wrong values (3.3.1, measured)
        near = paddle.logical_and(offset <= self._window, -offset <= self._window)  # [seq, seq]
        masked = paddle.full([1], _MASKED, dtype="float32")
        zero = paddle.zeros([1], dtype="float32")
        full = paddle.where(keys, zero, masked)
        local = paddle.where(paddle.logical_and(keys, near.unsqueeze([0, 1])), zero, masked)
        return {"full_attention": full, "sliding_attention": local}

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        # token_type_ids: ModernBERT has none; taken for PaddleNLP's calling convention
        seq = paddle.shape(input_ids)[1]
        if attention_mask is None:
            attention_mask = paddle.ones_like(input_ids)
        x = self.embeddings(input_ids)
        masks = self._masks(attention_mask, seq)
        positions = paddle.arange(seq, dtype="float32")
        ropes = {kind: self._rotary(positions, theta) for kind, theta in self._theta.items()}
        for layer in self.layers:
            cos, sin = ropes[layer.kind]
            x = layer(x, masks[layer.kind], cos, sin)
        return self.final_norm(x)


class ModernBertPredictionHead(nn.Layer):
    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.dense = _linear(config.hidden_size, config.hidden_size, config.classifier_bias)
        self.act = ACTIVATIONS[config.classifier_activation]
        self.norm = _layer_norm(config)

    def forward(self, x):
        return self.norm(self.act(self.dense(x)))


class ModernBertForSequenceClassification(nn.Layer):
    """The encoder, pooling by classifier_pooling, the prediction head and a linear classifier:
    the logits [batch, num_labels]."""

    config_class = ModernBertConfig
    base_model_prefix = "model"

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.config = config
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.mean = config.classifier_pooling == "mean"

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        if attention_mask is None:
            attention_mask = paddle.ones_like(input_ids)
        states = self.model(input_ids, attention_mask=attention_mask)
        if self.mean:
            weights = attention_mask.astype(states.dtype).unsqueeze(-1)
            pooled = (states * weights).sum(axis=1) / weights.sum(axis=1)
        else:
            pooled = states[:, 0]
        return self.classifier(self.drop(self.head(pooled)))


def classes() -> Mapping[str, type]:
    """The classes a family names (Family.paddle_class, paddle_base, paddle_config), by name."""
    return {c.__name__: c for c in (ModernBertConfig, ModernBertModel, ModernBertForSequenceClassification)}
