"""ModernBERT (transformers' ModernBertModel): pre-LayerNorm layers, rotary position
embeddings (RoPE) instead of a position table, a GeGLU feed-forward, attention that
alternates between global layers and local ones (a sliding window of `local_attention`
tokens, half on each side), and a byte-level BPE tokenizer in tokenizer.json.

Which tensors a checkpoint has depends on its config, as transformers builds them: the
first layer has no attention LayerNorm (nn.Identity), LayerNorm biases only with
norm_bias, the attention's and the feed-forward's biases only with attention_bias /
mlp_bias, the head's dense bias only with classifier_bias; the classifier always has one.

The head ("prediction" kind, transformers' ModernBertPredictionHead then the classifier):
the config's classifier_pooling ("cls": the first token; "mean": the mean over the
attention mask), then dense + classifier_activation + LayerNorm, then a linear layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import SEQUENCE_CLASSIFICATION, Architecture

# fmt: off
EMBEDDINGS = (
    ("embeddings.word",        "{p}embeddings.tok_embeddings.weight", ("vocab", "hidden")),
    ("embeddings.norm.weight", "{p}embeddings.norm.weight",           ("hidden",)),
    ("embeddings.norm.bias",   "{p}embeddings.norm.bias",             ("hidden",)),
)
ENCODER_EXTRA = (
    ("final_norm.weight", "{p}final_norm.weight", ("hidden",)),
    ("final_norm.bias",   "{p}final_norm.bias",   ("hidden",)),
)
LAYER = (  # pre-LN: x + attn(attn_norm(x)), then x + Wo(act(a) * g) with a, g = Wi(mlp_norm(x)) halves
    ("layer.attn_norm.weight",        "{p}layers.{i}.attn_norm.weight", ("hidden",)),
    ("layer.attn_norm.bias",          "{p}layers.{i}.attn_norm.bias",   ("hidden",)),
    ("layer.qkv.weight",              "{p}layers.{i}.attn.Wqkv.weight", ("qkv", "hidden")),  # rows: q, k, v
    ("layer.qkv.bias",                "{p}layers.{i}.attn.Wqkv.bias",   ("qkv",)),
    ("layer.attention_output.weight", "{p}layers.{i}.attn.Wo.weight",   ("hidden", "hidden")),
    ("layer.attention_output.bias",   "{p}layers.{i}.attn.Wo.bias",     ("hidden",)),
    ("layer.mlp_norm.weight",         "{p}layers.{i}.mlp_norm.weight",  ("hidden",)),
    ("layer.mlp_norm.bias",           "{p}layers.{i}.mlp_norm.bias",    ("hidden",)),
    ("layer.gated.weight",            "{p}layers.{i}.mlp.Wi.weight",    ("gated", "hidden")),  # rows: input, gate
    ("layer.gated.bias",              "{p}layers.{i}.mlp.Wi.bias",      ("gated",)),
    ("layer.output.weight",           "{p}layers.{i}.mlp.Wo.weight",    ("hidden", "intermediate")),
    ("layer.output.bias",             "{p}layers.{i}.mlp.Wo.bias",      ("hidden",)),
)
HEAD = (  # ModernBertPredictionHead on the pooled state, then the classifier
    ("head.dense.weight",      "head.dense.weight", ("hidden", "hidden")),
    ("head.dense.bias",        "head.dense.bias",   ("hidden",)),
    ("head.norm.weight",       "head.norm.weight",  ("hidden",)),
    ("head.norm.bias",         "head.norm.bias",    ("hidden",)),
    ("head.classifier.weight", "classifier.weight", ("labels", "hidden")),
    ("head.classifier.bias",   "classifier.bias",   ("labels",)),
)
# fmt: on
_BIAS_SWITCH = {  # the config key that gives a bias row its tensor
    "embeddings.norm.bias": "norm_bias",
    "final_norm.bias": "norm_bias",
    "layer.attn_norm.bias": "norm_bias",
    "layer.mlp_norm.bias": "norm_bias",
    "head.norm.bias": "norm_bias",
    "layer.qkv.bias": "attention_bias",
    "layer.attention_output.bias": "attention_bias",
    "layer.gated.bias": "mlp_bias",
    "layer.output.bias": "mlp_bias",
    "head.dense.bias": "classifier_bias",
}
_DEFAULT_THETA = {"full_attention": 160000.0, "sliding_attention": 10000.0}  # transformers' defaults


def layer_types(config: Mapping[str, Any]) -> list[str]:
    """The kind of each layer ("full_attention" or "sliding_attention"), as transformers' ModernBertConfig
    reads them (layer_types, else every global_attn_every_n_layers-th layer is global).

    >>> layer_types({"num_hidden_layers": 3, "global_attn_every_n_layers": 2})
    ['full_attention', 'sliding_attention', 'full_attention']
    """
    if config.get("layer_types"):
        return list(config["layer_types"])
    every = int(config.get("global_attn_every_n_layers", 3))
    n = int(config.get("num_hidden_layers", 22))
    return ["sliding_attention" if i % every else "full_attention" for i in range(n)]


def attention_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The attention's settings: layer_types, window (a local layer's token sees tokens at
    distance <= local_attention // 2, as transformers' bidirectional sliding-window mask),
    theta per layer type (RoPE's base: rope_parameters, or the older global_rope_theta /
    local_rope_theta keys), pooling ("cls" or "mean").

    >>> attention_settings({"num_hidden_layers": 1, "local_attention": 8})["window"]
    4
    """
    rope = config.get("rope_parameters") or {}
    old = {"full_attention": config.get("global_rope_theta"), "sliding_attention": config.get("local_rope_theta")}
    theta = {}
    for kind, default in _DEFAULT_THETA.items():
        params = rope.get(kind) or {}
        if params.get("rope_type", "default") != "default":
            raise ValueError(f"rope_parameters[{kind!r}]: rope_type {params['rope_type']!r} is not supported")
        theta[kind] = float(params.get("rope_theta") or old[kind] or default)
    pooling = config.get("classifier_pooling", "cls")
    if pooling not in ("cls", "mean"):
        raise ValueError(f"classifier_pooling must be 'cls' or 'mean', got {pooling!r}")
    return {
        "layer_types": layer_types(config),
        "window": int(config.get("local_attention", 128)) // 2,
        "theta": theta,
        "pooling": pooling,
    }


@dataclass(frozen=True)
class _ModernBert(Architecture):
    def dims(self, config: Mapping[str, Any]) -> dict[str, int]:
        out = super().dims(config)
        out["qkv"] = 3 * out["hidden"]
        out["gated"] = 2 * out["intermediate"]
        return out

    def _present(self, role: str, config: Mapping[str, Any]) -> bool:
        key = _BIAS_SWITCH.get(role)
        return key is None or bool(config.get(key, False))  # transformers' defaults: all False

    def encoder_shapes(self, config: Mapping[str, Any], *, prefixed: bool = True) -> dict[str, tuple[int, ...]]:
        dims = self.dims(config)
        p = self.prefix + "." if prefixed else ""
        out = {}
        for role, name, shape in self.embeddings + self.encoder_extra:
            if self._present(role, config):
                out[name.format(p=p)] = tuple(dims[d] for d in shape)
        for i in range(dims["layers"]):
            for role, name, shape in self.layer:
                if self._present(role, config) and not (i == 0 and role.startswith("layer.attn_norm.")):
                    out[name.format(p=p, i=i)] = tuple(dims[d] for d in shape)
        return out

    def head_shapes(self, config: Mapping[str, Any], num_labels: int) -> dict[str, tuple[int, ...]]:
        dims = {**self.dims(config), "labels": num_labels}
        return {
            name.format(p=self.prefix + "."): tuple(dims[d] for d in shape)
            for role, name, shape in self.head_rows
            if self._present(role, config)
        }

    def fresh_head(self, config: Mapping[str, Any], num_labels: int, seed: int = 0) -> dict[str, np.ndarray]:
        out = super().fresh_head(config, num_labels, seed)
        out["head.norm.weight"] = np.ones_like(out["head.norm.weight"])  # a LayerNorm starts at 1, as transformers'
        return out

    def layer_norm_eps(self, config: Mapping[str, Any]) -> float:
        return float(config.get("norm_eps", 1e-5))

    def attention_settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """attention_settings(config), for an adapter that holds the architecture."""
        return attention_settings(config)

    def position_limit(self, config: Mapping[str, Any]) -> int:
        return int(config.get("max_position_embeddings", 8192))  # RoPE has no table; the model's trained length


ARCHITECTURE = _ModernBert(
    model_type="modernbert",
    classifier_class="ModernBertForSequenceClassification",
    encoder_class="ModernBertModel",
    prefix="model",
    head="prediction",
    tokenizer="bpe",
    embeddings=EMBEDDINGS,
    encoder_extra=ENCODER_EXTRA,
    layer=LAYER,
    heads={SEQUENCE_CLASSIFICATION: HEAD},
    keys={"types": "-"},
    token_types=False,  # its tokenizer_config's model_input_names: input_ids and attention_mask
    dense_activation="gelu",  # the head's: the config's classifier_activation, "gelu" unless it says otherwise
    activation=("hidden_activation", "gelu"),
    attention="rotary_local_global",
    notes="RoPE, GeGLU, global and sliding-window (local_attention) layers; the head pools by classifier_pooling",
)
