"""DeBERTa-v2 and v3 (transformers' DebertaV2Model): disentangled attention over shared
relative position embeddings (log buckets, c2p/p2c), ContextPooler + classifier, SentencePiece.

Which tensors a checkpoint has depends on its config, as transformers builds them:
absolute positions only with position_biased_input (v3: none), token types only with
type_vocab_size > 0 (v3: none), embed_proj only when embedding_size != hidden_size,
pos_key_proj / pos_query_proj only without share_att_key (v3 shares the content
projections), the relative embeddings' LayerNorm only with norm_rel_ebd "layer_norm", and
the convolution after the first layer only with conv_kernel_size > 0 (v2 xlarge).

The head (transformers' ContextPooler, then the classifier) is the "dense" kind: a dense
layer + activation on the first token, then a linear layer; its activation is the
config's pooler_hidden_act ("gelu" by default), not a constant of the family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import SEQUENCE_CLASSIFICATION, Architecture

# fmt: off
EMBEDDINGS = (
    ("embeddings.word",        "{p}embeddings.word_embeddings.weight",       ("vocab", "embedding")),
    ("embeddings.position",    "{p}embeddings.position_embeddings.weight",   ("positions", "embedding")),
    ("embeddings.token_type",  "{p}embeddings.token_type_embeddings.weight", ("types", "embedding")),
    ("embeddings.norm.weight", "{p}embeddings.LayerNorm.weight",             ("hidden",)),
    ("embeddings.norm.bias",   "{p}embeddings.LayerNorm.bias",               ("hidden",)),
)
ENCODER_EXTRA = (
    ("projection.weight",               "{p}embeddings.embed_proj.weight",    ("hidden", "embedding")),  # no bias
    ("relative.embeddings",             "{p}encoder.rel_embeddings.weight",   ("relative", "hidden")),
    ("relative.norm.weight",            "{p}encoder.LayerNorm.weight",        ("hidden",)),
    ("relative.norm.bias",              "{p}encoder.LayerNorm.bias",          ("hidden",)),
    ("conv.weight",                     "{p}encoder.conv.conv.weight",        ("hidden", "conv_in", "conv_kernel")),
    ("conv.bias",                       "{p}encoder.conv.conv.bias",          ("hidden",)),
    ("conv.norm.weight",                "{p}encoder.conv.LayerNorm.weight",   ("hidden",)),
    ("conv.norm.bias",                  "{p}encoder.conv.LayerNorm.bias",     ("hidden",)),
)
LAYER = (
    ("layer.query.weight",            "{p}encoder.layer.{i}.attention.self.query_proj.weight",     ("hidden", "hidden")),
    ("layer.query.bias",              "{p}encoder.layer.{i}.attention.self.query_proj.bias",       ("hidden",)),
    ("layer.key.weight",              "{p}encoder.layer.{i}.attention.self.key_proj.weight",       ("hidden", "hidden")),
    ("layer.key.bias",                "{p}encoder.layer.{i}.attention.self.key_proj.bias",         ("hidden",)),
    ("layer.value.weight",            "{p}encoder.layer.{i}.attention.self.value_proj.weight",     ("hidden", "hidden")),
    ("layer.value.bias",              "{p}encoder.layer.{i}.attention.self.value_proj.bias",       ("hidden",)),
    ("layer.pos_key.weight",          "{p}encoder.layer.{i}.attention.self.pos_key_proj.weight",   ("hidden", "hidden")),
    ("layer.pos_key.bias",            "{p}encoder.layer.{i}.attention.self.pos_key_proj.bias",     ("hidden",)),
    ("layer.pos_query.weight",        "{p}encoder.layer.{i}.attention.self.pos_query_proj.weight", ("hidden", "hidden")),
    ("layer.pos_query.bias",          "{p}encoder.layer.{i}.attention.self.pos_query_proj.bias",   ("hidden",)),
    ("layer.attention_output.weight", "{p}encoder.layer.{i}.attention.output.dense.weight",        ("hidden", "hidden")),
    ("layer.attention_output.bias",   "{p}encoder.layer.{i}.attention.output.dense.bias",          ("hidden",)),
    ("layer.attention_norm.weight",   "{p}encoder.layer.{i}.attention.output.LayerNorm.weight",    ("hidden",)),
    ("layer.attention_norm.bias",     "{p}encoder.layer.{i}.attention.output.LayerNorm.bias",      ("hidden",)),
    ("layer.intermediate.weight",     "{p}encoder.layer.{i}.intermediate.dense.weight",            ("intermediate", "hidden")),
    ("layer.intermediate.bias",       "{p}encoder.layer.{i}.intermediate.dense.bias",              ("intermediate",)),
    ("layer.output.weight",           "{p}encoder.layer.{i}.output.dense.weight",                  ("hidden", "intermediate")),
    ("layer.output.bias",             "{p}encoder.layer.{i}.output.dense.bias",                    ("hidden",)),
    ("layer.output_norm.weight",      "{p}encoder.layer.{i}.output.LayerNorm.weight",              ("hidden",)),
    ("layer.output_norm.bias",        "{p}encoder.layer.{i}.output.LayerNorm.bias",                ("hidden",)),
)
HEAD = (  # ContextPooler (dense + pooler_hidden_act on the first token), then the classifier
    ("head.dense.weight",    "pooler.dense.weight", ("pooler", "pooler")),
    ("head.dense.bias",      "pooler.dense.bias",   ("pooler",)),
    ("head.out_proj.weight", "classifier.weight",   ("labels", "hidden")),
    ("head.out_proj.bias",   "classifier.bias",     ("labels",)),
)
# fmt: on


def relative_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The disentangled attention's settings, as transformers reads them from the config:
    relative (on/off), buckets (position_buckets, -1: none), max_relative (max_relative_positions,
    max_position_embeddings when < 1), span (the embedding rows per side), c2p, p2c, share_key,
    norm (LayerNorm on the relative embeddings).

    >>> relative_settings({"relative_attention": True, "position_buckets": 256, "pos_att_type": "p2c|c2p"})["span"]
    256
    """
    max_relative = int(config.get("max_relative_positions", -1))
    if max_relative < 1:
        max_relative = int(config.get("max_position_embeddings", 512))
    buckets = int(config.get("position_buckets", -1))
    kinds = config.get("pos_att_type") or []
    if isinstance(kinds, str):
        kinds = [x.strip() for x in kinds.lower().split("|")]
    norm = [x.strip() for x in str(config.get("norm_rel_ebd", "none")).lower().split("|")]
    return {
        "relative": bool(config.get("relative_attention", False)),
        "buckets": buckets,
        "max_relative": max_relative,
        "span": buckets if buckets > 0 else max_relative,
        "c2p": "c2p" in kinds,
        "p2c": "p2c" in kinds,
        "share_key": bool(config.get("share_att_key", False)),
        "norm": "layer_norm" in norm,
    }


@dataclass(frozen=True)
class _DebertaV2(Architecture):
    def dims(self, config: Mapping[str, Any]) -> dict[str, int]:
        config = {"type_vocab_size": 0, **config}  # transformers' default: no token types
        out = super().dims(config)
        out["relative"] = 2 * relative_settings(config)["span"]
        out["pooler"] = int(config.get("pooler_hidden_size", out["hidden"]))
        out["conv_kernel"] = int(config.get("conv_kernel_size", 0))
        out["conv_in"] = out["hidden"] // max(int(config.get("conv_groups", 1)), 1)
        return out

    def encoder_shapes(self, config: Mapping[str, Any], *, prefixed: bool = True) -> dict[str, tuple[int, ...]]:
        shapes = super().encoder_shapes(config, prefixed=prefixed)
        rel = relative_settings(config)
        own = rel["relative"] and not rel["share_key"]
        unused = {"pos_key_proj": not (own and rel["c2p"]), "pos_query_proj": not (own and rel["p2c"])}
        return {k: v for k, v in shapes.items() if not any(unused[part] and f".{part}." in k for part in unused)}

    def attention_settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """relative_settings(config), for an adapter that holds the architecture."""
        return relative_settings(config)

    def layer_norm_eps(self, config: Mapping[str, Any]) -> float:
        return float(config.get("layer_norm_eps", 1e-7))  # transformers' default for this family

    def _wanted(self, role: str, name: str, config: Mapping[str, Any], dims: Mapping[str, int]) -> bool:
        rel = relative_settings(config)
        if role == "embeddings.position":
            return bool(config.get("position_biased_input", True))
        if role == "embeddings.token_type":
            return dims["types"] > 0
        if role == "projection.weight":
            return dims["embedding"] != dims["hidden"]
        if role == "relative.embeddings":
            return rel["relative"]
        if role.startswith("relative.norm."):
            return rel["norm"]
        if role.startswith("conv."):
            return dims["conv_kernel"] > 0
        return True


ARCHITECTURE = _DebertaV2(
    model_type="deberta-v2",
    classifier_class="DebertaV2ForSequenceClassification",
    encoder_class="DebertaV2Model",
    prefix="deberta",
    head="dense",
    tokenizer="sentencepiece",
    embeddings=EMBEDDINGS,
    encoder_extra=ENCODER_EXTRA,
    layer=LAYER,
    heads={SEQUENCE_CLASSIFICATION: HEAD},
    dense_activation="gelu",  # ContextPooler: the config's pooler_hidden_act, "gelu" unless it says otherwise
    attention="disentangled",
    notes="relative positions (log buckets) in every layer's attention; the head's activation is pooler_hidden_act",
)
