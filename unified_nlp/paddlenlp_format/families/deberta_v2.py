"""DeBERTa-v2/v3 on PaddleNLP's DebertaV2ForSequenceClassification / DebertaV2Model.

PaddleNLP 2.8's classes are a port of transformers' (disentangled attention, log-bucket
relative positions, ContextPooler + classifier) under transformers' own tensor names:
its _get_name_mappings maps every name to itself, Linear weights transposed ([in, out]).
Measured here on the tiny checkpoints of tests/checkpoints.py (v3-style: buckets, shared
keys, no absolute positions; v2-style: absolute positions, token types, own position
projections, factorised embedding, convolution), padded batches and pairs: logits within
6e-7 of transformers. PaddleNLP's softmax_with_mask masks with -inf: a padding token's row is
NaN, and under Paddle Inference a padded text's logits are NaN too; the adapter gives it
transformers' finite mask (paddle_masked_softmax).

Where PaddleNLP computes another function, the family refuses the config (`unsupported`):
its intermediate layer and ContextPooler apply exact GELU whatever hidden_act and
pooler_hidden_act say, and its ConvLayer GELU whatever conv_act says (transformers'
default for conv_act is tanh). PaddleNLP's DebertaV2Tokenizer reads a SentencePiece
spm.model: a PaddleNLP folder's becomes the canonical tokenizer.json
(tokenizer_files.deberta_tokenizer_json) and is kept, so its export writes it again;
transformers 5 writes none, and an export of such a folder writes no PaddleNLP tokenizer
files (the canonical tokenizer.json stays beside).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import Family, TokenizerClass, same, transpose

# fmt: off
# PaddleNLP's name for every role of the core's deberta_v2 rows: transformers' names under "deberta."
NAMES = {
    "embeddings.word":               ("{q}embeddings.word_embeddings.weight",       same),
    "embeddings.position":           ("{q}embeddings.position_embeddings.weight",   same),
    "embeddings.token_type":         ("{q}embeddings.token_type_embeddings.weight", same),
    "embeddings.norm.weight":        ("{q}embeddings.LayerNorm.weight",             same),
    "embeddings.norm.bias":          ("{q}embeddings.LayerNorm.bias",               same),
    "projection.weight":             ("{q}embeddings.embed_proj.weight",            transpose),
    "relative.embeddings":           ("{q}encoder.rel_embeddings.weight",           same),
    "relative.norm.weight":          ("{q}encoder.LayerNorm.weight",                same),
    "relative.norm.bias":            ("{q}encoder.LayerNorm.bias",                  same),
    "conv.weight":                   ("{q}encoder.conv.conv.weight",                same),  # Conv1D [out, in, k] in both
    "conv.bias":                     ("{q}encoder.conv.conv.bias",                  same),
    "conv.norm.weight":              ("{q}encoder.conv.LayerNorm.weight",           same),
    "conv.norm.bias":                ("{q}encoder.conv.LayerNorm.bias",             same),
    "layer.query.weight":            ("{q}encoder.layer.{i}.attention.self.query_proj.weight",     transpose),
    "layer.query.bias":              ("{q}encoder.layer.{i}.attention.self.query_proj.bias",       same),
    "layer.key.weight":              ("{q}encoder.layer.{i}.attention.self.key_proj.weight",       transpose),
    "layer.key.bias":                ("{q}encoder.layer.{i}.attention.self.key_proj.bias",         same),
    "layer.value.weight":            ("{q}encoder.layer.{i}.attention.self.value_proj.weight",     transpose),
    "layer.value.bias":              ("{q}encoder.layer.{i}.attention.self.value_proj.bias",       same),
    "layer.pos_key.weight":          ("{q}encoder.layer.{i}.attention.self.pos_key_proj.weight",   transpose),
    "layer.pos_key.bias":            ("{q}encoder.layer.{i}.attention.self.pos_key_proj.bias",     same),
    "layer.pos_query.weight":        ("{q}encoder.layer.{i}.attention.self.pos_query_proj.weight", transpose),
    "layer.pos_query.bias":          ("{q}encoder.layer.{i}.attention.self.pos_query_proj.bias",   same),
    "layer.attention_output.weight": ("{q}encoder.layer.{i}.attention.output.dense.weight",        transpose),
    "layer.attention_output.bias":   ("{q}encoder.layer.{i}.attention.output.dense.bias",          same),
    "layer.attention_norm.weight":   ("{q}encoder.layer.{i}.attention.output.LayerNorm.weight",    same),
    "layer.attention_norm.bias":     ("{q}encoder.layer.{i}.attention.output.LayerNorm.bias",      same),
    "layer.intermediate.weight":     ("{q}encoder.layer.{i}.intermediate.dense.weight",            transpose),
    "layer.intermediate.bias":       ("{q}encoder.layer.{i}.intermediate.dense.bias",              same),
    "layer.output.weight":           ("{q}encoder.layer.{i}.output.dense.weight",                  transpose),
    "layer.output.bias":             ("{q}encoder.layer.{i}.output.dense.bias",                    same),
    "layer.output_norm.weight":      ("{q}encoder.layer.{i}.output.LayerNorm.weight",              same),
    "layer.output_norm.bias":        ("{q}encoder.layer.{i}.output.LayerNorm.bias",                same),
    "head.dense.weight":             ("pooler.dense.weight", transpose),  # ContextPooler
    "head.dense.bias":               ("pooler.dense.bias",   same),
    "head.out_proj.weight":          ("classifier.weight",   transpose),
    "head.out_proj.bias":            ("classifier.bias",     same),
}
CONFIG = (  # transformers key, PaddleNLP key, transformers' default
    ("vocab_size",                   "vocab_size",                   128100),
    ("hidden_size",                  "hidden_size",                  1536),
    ("num_hidden_layers",            "num_hidden_layers",            24),
    ("num_attention_heads",          "num_attention_heads",          24),
    ("intermediate_size",            "intermediate_size",            6144),
    ("hidden_act",                   "hidden_act",                   "gelu"),
    ("hidden_dropout_prob",          "hidden_dropout_prob",          0.1),
    ("attention_probs_dropout_prob", "attention_probs_dropout_prob", 0.1),
    ("max_position_embeddings",      "max_position_embeddings",      512),
    ("type_vocab_size",              "type_vocab_size",              0),
    ("initializer_range",            "initializer_range",            0.02),
    ("layer_norm_eps",               "layer_norm_eps",               1e-7),
    ("relative_attention",           "relative_attention",           False),
    ("max_relative_positions",       "max_relative_positions",       -1),
    ("position_buckets",             "position_buckets",             -1),
    ("pos_att_type",                 "pos_att_type",                 None),
    ("share_att_key",                "share_att_key",                False),
    ("norm_rel_ebd",                 "norm_rel_ebd",                 "none"),
    ("position_biased_input",        "position_biased_input",        True),
    ("pad_token_id",                 "pad_token_id",                 0),
    ("pooler_dropout",               "pooler_dropout",               0),
    ("pooler_hidden_act",            "pooler_hidden_act",            "gelu"),
    ("pooler_hidden_size",           "pooler_hidden_size",           None),
    ("embedding_size",               "embedding_size",               None),
    ("conv_kernel_size",             "conv_kernel_size",             0),
    ("conv_groups",                  "conv_groups",                  1),
    ("conv_act",                     "conv_act",                     "tanh"),
    ("cls_dropout",                  "cls_dropout",                  None),
)
# fmt: on


@dataclass(frozen=True)
class _DebertaV2(Family):
    def unsupported(self, config: Mapping[str, Any]) -> str | None:
        why = super().unsupported(config)
        if why is not None:
            return why
        # PaddleNLP's ContextPooler and ConvLayer apply exact GELU whatever the config says
        for key, default in (("pooler_hidden_act", "gelu"), ("conv_act", "tanh")):
            act = config.get(key, default)
            if act != "gelu" and (key != "conv_act" or int(config.get("conv_kernel_size", 0)) > 0):
                return f"{key} {act!r}; PaddleNLP's {self.paddle_class} applies GELU there whatever the config says"
        return None

    def to_paddle_config(self, config: Mapping[str, Any], *, task: bool = True) -> dict[str, Any]:
        # PaddleNLP reads None as "absent" for these two, transformers leaves them out
        out = super().to_paddle_config(config, task=task)
        return {k: v for k, v in out.items() if not (v is None and k in ("pooler_hidden_size", "embedding_size"))}

    def from_paddle_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        out = super().from_paddle_config(config)
        return {k: v for k, v in out.items() if not (v is None and k in ("pooler_hidden_size", "embedding_size"))}


FAMILY = _DebertaV2(
    model_type="deberta-v2",
    display="DeBERTa-v2",
    paddle_class="DebertaV2ForSequenceClassification",
    paddle_base="DebertaV2Model",
    paddle_config="DebertaV2Config",
    paddle_model_type="deberta-v2",
    paddle_prefix="deberta",
    config=CONFIG,
    names=NAMES,
    activations=("gelu",),  # PaddleNLP's DebertaV2Intermediate: GELUActivation (exact) always
    paddle_masked_softmax="paddlenlp.transformers.deberta_v2.modeling",
    tokenizers=(TokenizerClass("DebertaV2Tokenizer", "DebertaV2Tokenizer", "sentencepiece"),),
)
