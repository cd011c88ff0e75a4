"""The literal map between Hugging Face encoder weights and the TF Hub encoder's variables, by role.

The core's architecture module of each family types transformers' names once, as
rows keyed by role (``"layer.query.weight"``); this module gives our TF
encoder's variable name for each role and the transform that turns the Hugging
Face tensor into it. A row of `weight_rows` is (the Hugging Face name inside the
encoder, i.e. without the task model's prefix ``bert.``/``roberta.``..., the
TensorFlow variable name, the transform). ``{i}`` is the i-th set of layer
weights (for ALBERT, whose layers share weights, the set's place
``group * inner_group_num + inner``).

The TensorFlow names and layouts are those of TF Hub's own BERT encoders
(tf-models-official BertEncoder: EinsumDense attention kernels split by head,
Dense kernels stored [in, out], ``embedding_projection`` for a factorised
embedding as in TF Hub's ALBERT and ELECTRA). The families TF Hub never
published (DistilBERT, RoBERTa, XLM-R, ERNIE) use the same name for the same
role, so every export reads alike. Which rows a config has (token types, the
ELECTRA projection, ERNIE's task embeddings) is decided by the core's
architecture module too.

>>> NAMES["layer.query.weight"]
('transformer/layer_{i}/self_attention/query/kernel', 'transpose+split_heads')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unified_nlp.backend_kit import architectures

Row = tuple[str, str, str]  # (Hugging Face name in the encoder, TF variable name, transform HF -> TF)

Names = Mapping[str, tuple[str, str]]  # role -> (TF variable template, transform HF -> TF)

# fmt: off
# Our TF encoder's variable for every role of the core's architecture rows, whatever the family.
NAMES: Names = {
    "embeddings.word":               ("word_embeddings/embeddings",      "identity"),
    "embeddings.position":           ("position_embedding/embeddings",   "identity"),
    "embeddings.token_type":         ("type_embeddings/embeddings",      "identity"),
    "embeddings.task_type":          ("task_type_embeddings/embeddings", "identity"),  # ERNIE with use_task_id
    "embeddings.norm.weight":        ("embeddings/layer_norm/gamma",     "identity"),
    "embeddings.norm.bias":          ("embeddings/layer_norm/beta",      "identity"),
    "projection.weight":             ("embedding_projection/kernel",     "transpose"),  # ELECTRA, ALBERT
    "projection.bias":               ("embedding_projection/bias",       "identity"),
    "layer.query.weight":            ("transformer/layer_{i}/self_attention/query/kernel",            "transpose+split_heads"),
    "layer.query.bias":              ("transformer/layer_{i}/self_attention/query/bias",              "split_heads"),
    "layer.key.weight":              ("transformer/layer_{i}/self_attention/key/kernel",              "transpose+split_heads"),
    "layer.key.bias":                ("transformer/layer_{i}/self_attention/key/bias",                "split_heads"),
    "layer.value.weight":            ("transformer/layer_{i}/self_attention/value/kernel",            "transpose+split_heads"),
    "layer.value.bias":              ("transformer/layer_{i}/self_attention/value/bias",              "split_heads"),
    "layer.attention_output.weight": ("transformer/layer_{i}/self_attention/attention_output/kernel", "transpose+merge_heads"),
    "layer.attention_output.bias":   ("transformer/layer_{i}/self_attention/attention_output/bias",   "identity"),
    "layer.attention_norm.weight":   ("transformer/layer_{i}/self_attention_layer_norm/gamma",        "identity"),
    "layer.attention_norm.bias":     ("transformer/layer_{i}/self_attention_layer_norm/beta",         "identity"),
    "layer.intermediate.weight":     ("transformer/layer_{i}/intermediate/kernel",                    "transpose"),
    "layer.intermediate.bias":       ("transformer/layer_{i}/intermediate/bias",                      "identity"),
    "layer.output.weight":           ("transformer/layer_{i}/output/kernel",                          "transpose"),
    "layer.output.bias":             ("transformer/layer_{i}/output/bias",                            "identity"),
    "layer.output_norm.weight":      ("transformer/layer_{i}/output_layer_norm/gamma",                "identity"),
    "layer.output_norm.bias":        ("transformer/layer_{i}/output_layer_norm/beta",                 "identity"),
    # ModernBERT (rotary_encoder.py): pre-LayerNorm layers, fused q/k/v, GeGLU, a final LayerNorm
    "layer.attn_norm.weight":        ("transformer/layer_{i}/attention_layer_norm/gamma",             "identity"),
    "layer.attn_norm.bias":          ("transformer/layer_{i}/attention_layer_norm/beta",              "identity"),
    "layer.qkv.weight":              ("transformer/layer_{i}/self_attention/qkv/kernel",              "transpose"),
    "layer.qkv.bias":                ("transformer/layer_{i}/self_attention/qkv/bias",                "identity"),
    "layer.mlp_norm.weight":         ("transformer/layer_{i}/mlp_layer_norm/gamma",                   "identity"),
    "layer.mlp_norm.bias":           ("transformer/layer_{i}/mlp_layer_norm/beta",                    "identity"),
    "layer.gated.weight":            ("transformer/layer_{i}/gated_intermediate/kernel",              "transpose"),
    "layer.gated.bias":              ("transformer/layer_{i}/gated_intermediate/bias",                "identity"),
    # DeBERTa-v2/v3 (disentangled_encoder.py): relative position embeddings, position projections, the convolution
    "relative.embeddings":           ("relative_embeddings/embeddings",             "identity"),
    "relative.norm.weight":          ("relative_embeddings/layer_norm/gamma",       "identity"),
    "relative.norm.bias":            ("relative_embeddings/layer_norm/beta",        "identity"),
    "layer.pos_key.weight":          ("transformer/layer_{i}/self_attention/pos_key/kernel",          "transpose+split_heads"),
    "layer.pos_key.bias":            ("transformer/layer_{i}/self_attention/pos_key/bias",            "split_heads"),
    "layer.pos_query.weight":        ("transformer/layer_{i}/self_attention/pos_query/kernel",        "transpose+split_heads"),
    "layer.pos_query.bias":          ("transformer/layer_{i}/self_attention/pos_query/bias",          "split_heads"),
    "conv.weight":                   ("conv/kernel",            "conv1d"),
    "conv.bias":                     ("conv/bias",              "identity"),
    "conv.norm.weight":              ("conv/layer_norm/gamma",  "identity"),
    "conv.norm.bias":                ("conv/layer_norm/beta",   "identity"),
    "final_norm.weight":             ("final_layer_norm/gamma", "identity"),
    "final_norm.bias":               ("final_layer_norm/beta",  "identity"),
    "pooler.weight":                 ("pooler_transform/kernel", "transpose"),
    "pooler.bias":                   ("pooler_transform/bias",   "identity"),
}
# fmt: on

# in model.safetensors but not weights: transformers rebuilds them (arange, zeros), so do we
IGNORED = ("position_ids", "token_type_ids")


@dataclass(frozen=True)
class Transform:
    """A layout change and its inverse; `heads` is the number of attention heads."""

    to_tf: Callable[[np.ndarray, int], np.ndarray]
    to_hf: Callable[[np.ndarray, int], np.ndarray]


TRANSFORMS: dict[str, Transform] = {
    "identity": Transform(lambda a, n: a, lambda a, n: a),
    # torch Linear weight [out, in] -> Dense kernel [in, out]
    "transpose": Transform(lambda a, n: a.T, lambda a, n: a.T),
    # [hidden_out, hidden_in] -> [hidden_in, heads, head_dim] (EinsumDense "abc,cde->abde")
    "transpose+split_heads": Transform(
        lambda a, n: a.T.reshape(a.shape[1], n, a.shape[0] // n),
        lambda a, n: a.reshape(a.shape[0], -1).T,
    ),
    # [hidden] -> [heads, head_dim]
    "split_heads": Transform(lambda a, n: a.reshape(n, a.shape[0] // n), lambda a, n: a.reshape(-1)),
    # [hidden_out, hidden_in] -> [heads, head_dim, hidden_out] (EinsumDense "abcd,cde->abe")
    "transpose+merge_heads": Transform(
        lambda a, n: a.T.reshape(n, a.shape[1] // n, a.shape[0]),
        lambda a, n: a.reshape(-1, a.shape[-1]).T,
    ),
    # torch Conv1d weight [out, in / groups, kernel] -> tf.nn.conv1d filters [kernel, in / groups, out]
    "conv1d": Transform(lambda a, n: a.transpose(2, 1, 0), lambda a, n: a.transpose(2, 1, 0)),
}


def weight_rows(model_type: str, config: Mapping[str, Any]) -> list[Row]:
    """Every (HF encoder name, TF name, transform) of this config, in order: the encoder rows
    that the core's architecture says the config has, then the pooler where the head reads
    one (it gives pooled_output).

    >>> len(weight_rows("bert", {"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
    ...     "intermediate_size": 16, "vocab_size": 10}))
    39
    """
    arch = architectures.get(model_type)
    present = arch.encoder_shapes(config, prefixed=False)
    rows = [(hf.format(p=""), *NAMES[role]) for role, hf, _ in arch.embeddings + arch.encoder_extra]
    rows = [row for row in rows if row[0] in present]
    for i in range(arch.dims(config)["layer_count"]):
        layer = [(arch.layer_name(hf, i, config, ""), *_at(NAMES[role], i)) for role, hf, _ in arch.layer]
        rows += [row for row in layer if row[0] in present]  # ModernBERT's first layer has no attn_norm
    if arch.head == "pooler":
        rows += [(hf.format(p=""), *NAMES[role]) for role, hf, _ in arch.pooler]
    return rows


def _at(name: tuple[str, str], i: int) -> tuple[str, str]:
    template, how = name
    return template.format(i=i), how


def pooler_shapes(model_type: str, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Shapes of the pooler tensors (encoder names), from the core's head rows."""
    arch = architectures.get(model_type)
    prefix = arch.prefix + "."
    shapes = arch.head_shapes(config, 1)
    return {name[len(prefix) :]: shape for name, shape in shapes.items() if name.startswith(prefix)}


def encoder_state(state: Mapping[str, np.ndarray], model_type: str) -> dict[str, np.ndarray]:
    """The encoder tensors of a task model's or a bare encoder's state dict, under encoder
    names (``bert.embeddings...`` -> ``embeddings...``); head tensors are left out."""
    prefix = architectures.get(model_type).prefix + "."
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return {k: v for k, v in state.items() if not k.startswith(("classifier.", "pre_classifier."))}


def hf_to_tf(
    state: Mapping[str, np.ndarray], model_type: str, config: Mapping[str, Any], heads: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Encoder tensors (encoder names) -> TF variable values, float32; also the names of
    pooler tensors the checkpoint lacks, which are made zeros (a head that reads the pooler
    then gets zeros, as reproducible as any value). Raises KeyError naming a missing tensor."""
    out, made = {}, []
    pooler = pooler_shapes(model_type, config)
    for hf_name, tf_name, transform in weight_rows(model_type, config):
        if hf_name not in state and hf_name in pooler:
            state = {**state, hf_name: np.zeros(pooler[hf_name], np.float32)}
            made.append(hf_name)
        if hf_name not in state:
            raise KeyError(hf_name)
        array = np.asarray(state[hf_name], dtype=np.float32)
        out[tf_name] = np.ascontiguousarray(TRANSFORMS[transform].to_tf(array, heads))
    return out, made


def tf_to_hf(
    variables: Mapping[str, np.ndarray], model_type: str, config: Mapping[str, Any], heads: int
) -> dict[str, np.ndarray]:
    """TF variable values -> encoder tensors under Hugging Face names; the inverse of hf_to_tf."""
    return {
        hf: np.ascontiguousarray(TRANSFORMS[how].to_hf(np.asarray(variables[tf_name]), heads))
        for hf, tf_name, how in weight_rows(model_type, config)
    }


def bert_layout(shapes: Mapping[str, Sequence[int]]) -> dict[str, int] | None:
    """A BERT config (layers, heads, sizes) read off TF variables {name: shape} named as
    TF Hub's BERT, for an encoder that comes without config.json; None when any variable
    of the map is missing.

    >>> bert_layout({})
    """
    layers = 0
    while f"transformer/layer_{layers}/self_attention/query/kernel" in shapes:
        layers += 1
    query = shapes.get("transformer/layer_0/self_attention/query/kernel")
    words, types = shapes.get("word_embeddings/embeddings"), shapes.get("type_embeddings/embeddings")
    inner = shapes.get("transformer/layer_0/intermediate/kernel")
    position = shapes.get("position_embedding/embeddings")
    if not layers or not query or len(query) != 3 or not (words and types and inner and position):
        return None
    config = {
        "model_type": "bert",
        "hidden_size": int(query[0]),
        "num_attention_heads": int(query[1]),
        "num_hidden_layers": layers,
        "intermediate_size": int(inner[1]),
        "vocab_size": int(words[0]),
        "type_vocab_size": int(types[0]),
        "max_position_embeddings": int(position[0]),
    }
    if any(tf_name not in shapes for _, tf_name, _ in weight_rows("bert", config)):
        return None
    return config
