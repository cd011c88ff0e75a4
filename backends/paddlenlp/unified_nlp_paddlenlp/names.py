"""The literal maps between canonical Hugging Face BERT and PaddleNLP 2.8 `BertModel`:
parameter names (with the transform each tensor needs) and config keys.

PaddleNLP builds its encoder from `paddle.nn.TransformerEncoderLayer`, which
names the attention projections `self_attn.{q,k,v,out}_proj`, the feed-forward
`linear1`/`linear2` and the LayerNorms `norm1`/`norm2`, and stores every Linear
weight as [in, out] (torch stores [out, in]): each Linear weight is transposed,
embeddings, biases and LayerNorm parameters are copied as they are. Both
transforms are their own inverse, so the round trip is bit-exact.

Imports numpy and the core only: exporting a PaddleNLP folder needs no framework.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from unified_nlp.models import bert_shapes


def transpose(x: np.ndarray) -> np.ndarray:
    """torch Linear [out, in] <-> paddle Linear [in, out]."""
    return np.ascontiguousarray(x.T)


def same(x: np.ndarray) -> np.ndarray:
    return x


Transform = Callable[[np.ndarray], np.ndarray]

# (canonical Hugging Face name, PaddleNLP BertModel name, transform), one line per tensor family.
EMBEDDINGS: list[tuple[str, str, Transform]] = [
    ("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight", same),
    ("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight", same),
    ("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight", same),
    ("embeddings.LayerNorm.weight", "embeddings.layer_norm.weight", same),
    ("embeddings.LayerNorm.bias", "embeddings.layer_norm.bias", same),
]
LAYER: list[tuple[str, str, Transform]] = [  # "{i}" is the layer index
    ("encoder.layer.{i}.attention.self.query.weight", "encoder.layers.{i}.self_attn.q_proj.weight", transpose),
    ("encoder.layer.{i}.attention.self.query.bias", "encoder.layers.{i}.self_attn.q_proj.bias", same),
    ("encoder.layer.{i}.attention.self.key.weight", "encoder.layers.{i}.self_attn.k_proj.weight", transpose),
    ("encoder.layer.{i}.attention.self.key.bias", "encoder.layers.{i}.self_attn.k_proj.bias", same),
    ("encoder.layer.{i}.attention.self.value.weight", "encoder.layers.{i}.self_attn.v_proj.weight", transpose),
    ("encoder.layer.{i}.attention.self.value.bias", "encoder.layers.{i}.self_attn.v_proj.bias", same),
    ("encoder.layer.{i}.attention.output.dense.weight", "encoder.layers.{i}.self_attn.out_proj.weight", transpose),
    ("encoder.layer.{i}.attention.output.dense.bias", "encoder.layers.{i}.self_attn.out_proj.bias", same),
    ("encoder.layer.{i}.attention.output.LayerNorm.weight", "encoder.layers.{i}.norm1.weight", same),
    ("encoder.layer.{i}.attention.output.LayerNorm.bias", "encoder.layers.{i}.norm1.bias", same),
    ("encoder.layer.{i}.intermediate.dense.weight", "encoder.layers.{i}.linear1.weight", transpose),
    ("encoder.layer.{i}.intermediate.dense.bias", "encoder.layers.{i}.linear1.bias", same),
    ("encoder.layer.{i}.output.dense.weight", "encoder.layers.{i}.linear2.weight", transpose),
    ("encoder.layer.{i}.output.dense.bias", "encoder.layers.{i}.linear2.bias", same),
    ("encoder.layer.{i}.output.LayerNorm.weight", "encoder.layers.{i}.norm2.weight", same),
    ("encoder.layer.{i}.output.LayerNorm.bias", "encoder.layers.{i}.norm2.bias", same),
]
POOLER: list[tuple[str, str, Transform]] = [
    ("pooler.dense.weight", "pooler.dense.weight", transpose),
    ("pooler.dense.bias", "pooler.dense.bias", same),
]
# Buffers, not weights: transformers 5 and PaddleNLP both rebuild them, so the
# PaddleNLP file leaves them out; an export writes them back when the source had them.
BUFFERS: dict[str, Callable[[dict], np.ndarray]] = {
    "embeddings.position_ids": lambda config: np.arange(config.get("max_position_embeddings", 512), dtype=np.int64)[
        None, :
    ],
}

# canonical config.json key -> PaddleNLP BertConfig key, with transformers' BertConfig default.
# PaddleNLP's own defaults differ (type_vocab_size 16), so every value is written out.
CONFIG: list[tuple[str, str, object]] = [
    ("vocab_size", "vocab_size", None),
    ("hidden_size", "hidden_size", None),
    ("num_hidden_layers", "num_hidden_layers", None),
    ("num_attention_heads", "num_attention_heads", None),
    ("intermediate_size", "intermediate_size", None),
    ("hidden_act", "hidden_act", "gelu"),
    ("hidden_dropout_prob", "hidden_dropout_prob", 0.1),
    ("attention_probs_dropout_prob", "attention_probs_dropout_prob", 0.1),
    ("max_position_embeddings", "max_position_embeddings", 512),
    ("type_vocab_size", "type_vocab_size", 2),
    ("initializer_range", "initializer_range", 0.02),
    ("pad_token_id", "pad_token_id", 0),
    ("layer_norm_eps", "layer_norm_eps", 1e-12),
]
PADDLE_ONLY_CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "pool_act": "tanh", "fuse": False}
# Activations that mean the same function in transformers and in paddle.nn.functional
# ("gelu" is the exact erf form in both; transformers' "gelu_new" has no paddle name).
ACTIVATIONS = ("gelu", "relu", "silu")


def weight_map(num_layers: int) -> list[tuple[str, str, Transform]]:
    """Every (canonical name, PaddleNLP name, transform) of a BERT encoder with `num_layers` layers."""
    rows = list(EMBEDDINGS)
    for i in range(num_layers):
        rows += [(hf.format(i=i), pd.format(i=i), fn) for hf, pd, fn in LAYER]
    return rows + POOLER


def paddle_to_canonical_names(num_layers: int) -> dict[str, str]:
    return {pd: hf for hf, pd, _ in weight_map(num_layers)}


def canonical_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """The shape every canonical tensor must have, from config.json: the core's BERT table plus the pooler."""
    h = config["hidden_size"]
    shapes = {name: tuple(shape) for name, shape in bert_shapes(config).items()}
    return shapes | {"pooler.dense.weight": (h, h), "pooler.dense.bias": (h,)}
