"""ModernBERT on the paddlenlp backend's own Paddle port (unified_nlp_paddlenlp/modernbert.py).

PaddleNLP 2.8 has no ModernBERT class, so the adapter writes the network once in Paddle
(RoPE with a theta per layer kind, GeGLU, global and sliding-window layers, the prediction
head), under transformers' tensor names with Linear weights [in, out] as paddle stores
them. The classes are named as transformers' (ModernBertForSequenceClassification,
ModernBertModel, ModernBertConfig); a ModernBERT "PaddleNLP folder" is therefore one that
only this library reads: PaddleNLP's own from_pretrained / AutoModel know no such class.

The Paddle config holds what the port computes with, resolved here from transformers'
keys once (the core's attention_settings): layer_types, and the two RoPE thetas as
global_rope_theta / local_rope_theta. Configs the port does not compute are refused
(`unsupported`): activations other than those paddle computes the same (exact GELU, ReLU,
SiLU) for hidden_activation or classifier_activation, RoPE scaling types, an unknown
classifier_pooling. The tokenizer is ModernBERT's byte-level BPE tokenizer.json with
BERT's specials ([CLS] A [SEP] B [SEP]), which no PaddleNLP tokenizer class reproduces: an
export writes no PaddleNLP tokenizer files (the canonical tokenizer.json stays beside), as
for XLM-R and DeBERTa.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...architectures.modernbert import attention_settings
from .base import Family, Transform, same, transpose

# fmt: off
# PaddleNLP's name for every role of the core's modernbert rows: transformers' own names
NAMES = {
    "embeddings.word":               ("{q}embeddings.tok_embeddings.weight", same),
    "embeddings.norm.weight":        ("{q}embeddings.norm.weight",           same),
    "embeddings.norm.bias":          ("{q}embeddings.norm.bias",             same),
    "final_norm.weight":             ("{q}final_norm.weight",                same),
    "final_norm.bias":               ("{q}final_norm.bias",                  same),
    "layer.attn_norm.weight":        ("{q}layers.{i}.attn_norm.weight",      same),
    "layer.attn_norm.bias":          ("{q}layers.{i}.attn_norm.bias",        same),
    "layer.qkv.weight":              ("{q}layers.{i}.attn.Wqkv.weight",      transpose),
    "layer.qkv.bias":                ("{q}layers.{i}.attn.Wqkv.bias",        same),
    "layer.attention_output.weight": ("{q}layers.{i}.attn.Wo.weight",        transpose),
    "layer.attention_output.bias":   ("{q}layers.{i}.attn.Wo.bias",          same),
    "layer.mlp_norm.weight":         ("{q}layers.{i}.mlp_norm.weight",       same),
    "layer.mlp_norm.bias":           ("{q}layers.{i}.mlp_norm.bias",         same),
    "layer.gated.weight":            ("{q}layers.{i}.mlp.Wi.weight",         transpose),
    "layer.gated.bias":              ("{q}layers.{i}.mlp.Wi.bias",           same),
    "layer.output.weight":           ("{q}layers.{i}.mlp.Wo.weight",         transpose),
    "layer.output.bias":             ("{q}layers.{i}.mlp.Wo.bias",           same),
    "head.dense.weight":             ("head.dense.weight",                   transpose),
    "head.dense.bias":               ("head.dense.bias",                     same),
    "head.norm.weight":              ("head.norm.weight",                    same),
    "head.norm.bias":                ("head.norm.bias",                      same),
    "head.classifier.weight":        ("classifier.weight",                   transpose),
    "head.classifier.bias":          ("classifier.bias",                     same),
}
CONFIG = (  # transformers key, Paddle port's key, transformers' default
    ("vocab_size",              "vocab_size",              50368),
    ("hidden_size",             "hidden_size",             768),
    ("intermediate_size",       "intermediate_size",       1152),
    ("num_hidden_layers",       "num_hidden_layers",       22),
    ("num_attention_heads",     "num_attention_heads",     12),
    ("hidden_activation",       "hidden_activation",       "gelu"),
    ("max_position_embeddings", "max_position_embeddings", 8192),
    ("initializer_range",       "initializer_range",       0.02),
    ("norm_eps",                "norm_eps",                1e-5),
    ("norm_bias",               "norm_bias",               False),
    ("pad_token_id",            "pad_token_id",            50283),
    ("bos_token_id",            "bos_token_id",            50281),
    ("eos_token_id",            "eos_token_id",            50282),
    ("cls_token_id",            "cls_token_id",            50281),
    ("sep_token_id",            "sep_token_id",            50282),
    ("attention_bias",          "attention_bias",          False),
    ("attention_dropout",       "attention_dropout",       0.0),
    ("local_attention",         "local_attention",         128),
    ("embedding_dropout",       "embedding_dropout",       0.0),
    ("mlp_bias",                "mlp_bias",                False),
    ("mlp_dropout",             "mlp_dropout",             0.0),
    ("classifier_pooling",      "classifier_pooling",      "cls"),
    ("classifier_dropout",      "classifier_dropout",      0.0),
    ("classifier_bias",         "classifier_bias",         False),
    ("classifier_activation",   "classifier_activation",   "gelu"),
)
# fmt: on
# the port's keys for the RoPE theta of each layer kind (transformers 5: rope_parameters[kind]["rope_theta"])
_THETA_KEYS = {"full_attention": "global_rope_theta", "sliding_attention": "local_rope_theta"}
ACTIVATIONS = ("gelu", "relu", "silu", "swish")  # the port's: the same function in transformers and paddle


@dataclass(frozen=True)
class _ModernBert(Family):
    def rows(self, config: Mapping[str, Any], *, task: bool = True) -> list[tuple[str, str, Transform]]:
        # the head's optional biases too (classifier_bias, norm_bias), as the core's table has them
        arch = self.architecture
        kept = set(arch.encoder_shapes(config, prefixed=task)) | set(arch.head_shapes(config, 1))
        return [row for row in super().rows(config, task=task) if row[0] in kept]

    def unsupported(self, config: Mapping[str, Any]) -> str | None:
        why = super().unsupported(config)  # hidden_activation
        if why is not None:
            return why
        act = config.get("classifier_activation", "gelu")
        if act not in self.activations:
            return (
                f"classifier_activation {act!r} has no identical activation in the Paddle port of ModernBERT "
                f"(supported: {', '.join(self.activations)})"
            )
        try:
            attention_settings(config)
        except ValueError as e:
            return f"{e} by the Paddle port of ModernBERT"
        return None

    def to_paddle_config(self, config: Mapping[str, Any], *, task: bool = True) -> dict[str, Any]:
        settings = attention_settings(config)
        out = super().to_paddle_config(config, task=task)
        out["layer_types"] = settings["layer_types"]
        out.update({key: settings["theta"][kind] for kind, key in _THETA_KEYS.items()})
        return out

    def from_paddle_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        out = super().from_paddle_config(config)
        if config.get("layer_types"):
            out["layer_types"] = list(config["layer_types"])
        out["rope_parameters"] = {
            kind: {"rope_type": "default", "rope_theta": float(config[key])}
            for kind, key in _THETA_KEYS.items()
            if key in config
        }
        return out


FAMILY = _ModernBert(
    model_type="modernbert",
    display="ModernBERT",
    paddle_class="ModernBertForSequenceClassification",
    paddle_base="ModernBertModel",
    paddle_config="ModernBertConfig",
    paddle_model_type="modernbert",
    paddle_prefix="model",
    config=CONFIG,
    names=NAMES,
    activations=ACTIVATIONS,
    notes="the adapter's own Paddle port (PaddleNLP 2.8 has none); its folders are read by unified_nlp only",
)
