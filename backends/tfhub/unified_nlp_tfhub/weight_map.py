"""The literal maps between Hugging Face encoder weights and the TF Hub encoder's variables, one table per family.

A row is (the Hugging Face name inside the encoder, i.e. without the task model's
prefix ``bert.``/``roberta.``..., the TensorFlow variable name, the transform that
turns the first into the second). ``{i}`` is the i-th set of layer weights; for
ALBERT, whose layers share weights, ``{g}``/``{k}`` are that set's group and its
place in the group (``i = g * inner_group_num + k``).

The TensorFlow names and layouts are those of TF Hub's own BERT encoders
(tf-models-official BertEncoder: EinsumDense attention kernels split by head,
Dense kernels stored [in, out], ``embedding_projection`` for a factorised
embedding as in TF Hub's ALBERT and ELECTRA). The families TF Hub never
published (DistilBERT, RoBERTa, XLM-R, ERNIE) use the same name for the same
role, so every export reads alike. Which rows a config has (token types, the
ELECTRA projection, ERNIE's task embeddings) is decided by the core's
architecture module, so this table and the core cannot drift apart unnoticed.

>>> [row for row in BERT_LAYER if row[0].endswith("query.weight")]
[('encoder.layer.{i}.attention.self.query.weight', 'transformer/layer_{i}/self_attention/query/kernel', 'transpose+split_heads')]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unified_nlp.backend_kit import architectures

Row = tuple[str, str, str]  # (Hugging Face name in the encoder, TF variable name, transform HF -> TF)

# fmt: off
BERT_EMBEDDINGS: tuple[Row, ...] = (
    ("embeddings.word_embeddings.weight",       "word_embeddings/embeddings",    "identity"),
    ("embeddings.position_embeddings.weight",   "position_embedding/embeddings", "identity"),
    ("embeddings.token_type_embeddings.weight", "type_embeddings/embeddings",    "identity"),
    ("embeddings.LayerNorm.weight",             "embeddings/layer_norm/gamma",   "identity"),
    ("embeddings.LayerNorm.bias",               "embeddings/layer_norm/beta",    "identity"),
)
BERT_LAYER: tuple[Row, ...] = (
    ("encoder.layer.{i}.attention.self.query.weight",        "transformer/layer_{i}/self_attention/query/kernel",            "transpose+split_heads"),
    ("encoder.layer.{i}.attention.self.query.bias",          "transformer/layer_{i}/self_attention/query/bias",              "split_heads"),
    ("encoder.layer.{i}.attention.self.key.weight",          "transformer/layer_{i}/self_attention/key/kernel",              "transpose+split_heads"),
    ("encoder.layer.{i}.attention.self.key.bias",            "transformer/layer_{i}/self_attention/key/bias",                "split_heads"),
    ("encoder.layer.{i}.attention.self.value.weight",        "transformer/layer_{i}/self_attention/value/kernel",            "transpose+split_heads"),
    ("encoder.layer.{i}.attention.self.value.bias",          "transformer/layer_{i}/self_attention/value/bias",              "split_heads"),
    ("encoder.layer.{i}.attention.output.dense.weight",      "transformer/layer_{i}/self_attention/attention_output/kernel", "transpose+merge_heads"),
    ("encoder.layer.{i}.attention.output.dense.bias",        "transformer/layer_{i}/self_attention/attention_output/bias",   "identity"),
    ("encoder.layer.{i}.attention.output.LayerNorm.weight",  "transformer/layer_{i}/self_attention_layer_norm/gamma",        "identity"),
    ("encoder.layer.{i}.attention.output.LayerNorm.bias",    "transformer/layer_{i}/self_attention_layer_norm/beta",         "identity"),
    ("encoder.layer.{i}.intermediate.dense.weight",          "transformer/layer_{i}/intermediate/kernel",                    "transpose"),
    ("encoder.layer.{i}.intermediate.dense.bias",            "transformer/layer_{i}/intermediate/bias",                      "identity"),
    ("encoder.layer.{i}.output.dense.weight",                "transformer/layer_{i}/output/kernel",                          "transpose"),
    ("encoder.layer.{i}.output.dense.bias",                  "transformer/layer_{i}/output/bias",                            "identity"),
    ("encoder.layer.{i}.output.LayerNorm.weight",            "transformer/layer_{i}/output_layer_norm/gamma",                "identity"),
    ("encoder.layer.{i}.output.LayerNorm.bias",              "transformer/layer_{i}/output_layer_norm/beta",                 "identity"),
)
BERT_POOLER: tuple[Row, ...] = (
    ("pooler.dense.weight", "pooler_transform/kernel", "transpose"),
    ("pooler.dense.bias",   "pooler_transform/bias",   "identity"),
)

# ERNIE: BERT's rows plus the task-type embeddings (present when use_task_id)
ERNIE_EMBEDDINGS: tuple[Row, ...] = BERT_EMBEDDINGS + (
    ("embeddings.task_type_embeddings.weight", "task_type_embeddings/embeddings", "identity"),
)

# ELECTRA: BERT's rows plus a projection embedding_size -> hidden_size (present when they differ)
ELECTRA_PROJECTION: tuple[Row, ...] = (
    ("embeddings_project.weight", "embedding_projection/kernel", "transpose"),
    ("embeddings_project.bias",   "embedding_projection/bias",   "identity"),
)

DISTILBERT_EMBEDDINGS: tuple[Row, ...] = (  # no token types
    ("embeddings.word_embeddings.weight",     "word_embeddings/embeddings",    "identity"),
    ("embeddings.position_embeddings.weight", "position_embedding/embeddings", "identity"),
    ("embeddings.LayerNorm.weight",           "embeddings/layer_norm/gamma",   "identity"),
    ("embeddings.LayerNorm.bias",             "embeddings/layer_norm/beta",    "identity"),
)
DISTILBERT_LAYER: tuple[Row, ...] = (
    ("transformer.layer.{i}.attention.q_lin.weight",   "transformer/layer_{i}/self_attention/query/kernel",            "transpose+split_heads"),
    ("transformer.layer.{i}.attention.q_lin.bias",     "transformer/layer_{i}/self_attention/query/bias",              "split_heads"),
    ("transformer.layer.{i}.attention.k_lin.weight",   "transformer/layer_{i}/self_attention/key/kernel",              "transpose+split_heads"),
    ("transformer.layer.{i}.attention.k_lin.bias",     "transformer/layer_{i}/self_attention/key/bias",                "split_heads"),
    ("transformer.layer.{i}.attention.v_lin.weight",   "transformer/layer_{i}/self_attention/value/kernel",            "transpose+split_heads"),
    ("transformer.layer.{i}.attention.v_lin.bias",     "transformer/layer_{i}/self_attention/value/bias",              "split_heads"),
    ("transformer.layer.{i}.attention.out_lin.weight", "transformer/layer_{i}/self_attention/attention_output/kernel", "transpose+merge_heads"),
    ("transformer.layer.{i}.attention.out_lin.bias",   "transformer/layer_{i}/self_attention/attention_output/bias",   "identity"),
    ("transformer.layer.{i}.sa_layer_norm.weight",     "transformer/layer_{i}/self_attention_layer_norm/gamma",        "identity"),
    ("transformer.layer.{i}.sa_layer_norm.bias",       "transformer/layer_{i}/self_attention_layer_norm/beta",         "identity"),
    ("transformer.layer.{i}.ffn.lin1.weight",          "transformer/layer_{i}/intermediate/kernel",                    "transpose"),
    ("transformer.layer.{i}.ffn.lin1.bias",            "transformer/layer_{i}/intermediate/bias",                      "identity"),
    ("transformer.layer.{i}.ffn.lin2.weight",          "transformer/layer_{i}/output/kernel",                          "transpose"),
    ("transformer.layer.{i}.ffn.lin2.bias",            "transformer/layer_{i}/output/bias",                            "identity"),
    ("transformer.layer.{i}.output_layer_norm.weight", "transformer/layer_{i}/output_layer_norm/gamma",                "identity"),
    ("transformer.layer.{i}.output_layer_norm.bias",   "transformer/layer_{i}/output_layer_norm/beta",                 "identity"),
)

ALBERT_PROJECTION: tuple[Row, ...] = (  # always there in ALBERT, even when embedding_size == hidden_size
    ("encoder.embedding_hidden_mapping_in.weight", "embedding_projection/kernel", "transpose"),
    ("encoder.embedding_hidden_mapping_in.bias",   "embedding_projection/bias",   "identity"),
)
ALBERT_LAYER: tuple[Row, ...] = (
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.query.weight",       "transformer/layer_{i}/self_attention/query/kernel",            "transpose+split_heads"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.query.bias",         "transformer/layer_{i}/self_attention/query/bias",              "split_heads"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.key.weight",         "transformer/layer_{i}/self_attention/key/kernel",              "transpose+split_heads"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.key.bias",           "transformer/layer_{i}/self_attention/key/bias",                "split_heads"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.value.weight",       "transformer/layer_{i}/self_attention/value/kernel",            "transpose+split_heads"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.value.bias",         "transformer/layer_{i}/self_attention/value/bias",              "split_heads"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.dense.weight",       "transformer/layer_{i}/self_attention/attention_output/kernel", "transpose+merge_heads"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.dense.bias",         "transformer/layer_{i}/self_attention/attention_output/bias",   "identity"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.LayerNorm.weight",   "transformer/layer_{i}/self_attention_layer_norm/gamma",        "identity"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.LayerNorm.bias",     "transformer/layer_{i}/self_attention_layer_norm/beta",         "identity"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.ffn.weight",                   "transformer/layer_{i}/intermediate/kernel",                    "transpose"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.ffn.bias",                     "transformer/layer_{i}/intermediate/bias",                      "identity"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.ffn_output.weight",            "transformer/layer_{i}/output/kernel",                          "transpose"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.ffn_output.bias",              "transformer/layer_{i}/output/bias",                            "identity"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.full_layer_layer_norm.weight", "transformer/layer_{i}/output_layer_norm/gamma",                "identity"),
    ("encoder.albert_layer_groups.{g}.albert_layers.{k}.full_layer_layer_norm.bias",   "transformer/layer_{i}/output_layer_norm/beta",                 "identity"),
)
ALBERT_POOLER: tuple[Row, ...] = (
    ("pooler.weight", "pooler_transform/kernel", "transpose"),
    ("pooler.bias",   "pooler_transform/bias",   "identity"),
)
# fmt: on


@dataclass(frozen=True)
class Table:
    """A family's rows: embeddings, an optional projection, the repeated layer, the pooler
    (part of the encoder: it gives pooled_output; families without one have none)."""

    embeddings: tuple[Row, ...]
    layer: tuple[Row, ...]
    projection: tuple[Row, ...] = ()
    pooler: tuple[Row, ...] = ()


TABLES: dict[str, Table] = {
    "bert": Table(BERT_EMBEDDINGS, BERT_LAYER, pooler=BERT_POOLER),
    "distilbert": Table(DISTILBERT_EMBEDDINGS, DISTILBERT_LAYER),
    "roberta": Table(BERT_EMBEDDINGS, BERT_LAYER),
    "xlm-roberta": Table(BERT_EMBEDDINGS, BERT_LAYER),
    "electra": Table(BERT_EMBEDDINGS, BERT_LAYER, projection=ELECTRA_PROJECTION),
    "albert": Table(BERT_EMBEDDINGS, ALBERT_LAYER, projection=ALBERT_PROJECTION, pooler=ALBERT_POOLER),
    "ernie": Table(ERNIE_EMBEDDINGS, BERT_LAYER, pooler=BERT_POOLER),
}
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
}


def weight_rows(model_type: str, config: Mapping[str, Any]) -> list[Row]:
    """Every (HF encoder name, TF name, transform) of this config, in order: the rows of the
    family's table that the core's architecture says the config has, then the pooler.

    >>> len(weight_rows("bert", {"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
    ...     "intermediate_size": 16, "vocab_size": 10}))
    39
    """
    arch = architectures.get(model_type)
    family = TABLES[arch.model_type]
    present = arch.encoder_shapes(config, prefixed=False)
    inner = int(config.get("inner_group_num", 1))
    rows = [row for row in family.embeddings + family.projection if row[0] in present]
    for i in range(arch.dims(config)["layer_count"]):
        rows += [(hf.format(i=i, g=i // inner, k=i % inner), t.format(i=i), how) for hf, t, how in family.layer]
    rows += list(family.pooler)
    missing = sorted(set(present) - {hf for hf, _, _ in rows})
    if missing:  # a programming error: the architecture has a tensor this table does not map
        raise AssertionError(f"the {model_type} weight table has no row for {missing[:3]}")
    return rows


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
