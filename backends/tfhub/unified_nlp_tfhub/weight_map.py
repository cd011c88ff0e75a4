"""The literal map between Hugging Face BERT weight names and TF Hub BERT variables.

One line per tensor family: the Hugging Face (PyTorch) name, the TensorFlow
variable name, and the transform that turns the first into the second. The
TensorFlow names and layouts are those of TF Hub's own BERT encoders
(tf-models-official: EinsumDense attention kernels split by head, Dense kernels
stored [in, out]), so a TF Hub BERT encoder that follows them also maps back to
canonical names.

>>> [row for row in LAYER_WEIGHTS if row[0].endswith("query.weight")]
[('encoder.layer.{i}.attention.self.query.weight', 'transformer/layer_{i}/self_attention/query/kernel', 'transpose+split_heads')]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# (Hugging Face name, TF variable name, transform HF -> TF); one line per tensor family
# fmt: off
EMBEDDING_WEIGHTS: tuple[tuple[str, str, str], ...] = (
    ("embeddings.word_embeddings.weight",       "word_embeddings/embeddings",    "identity"),
    ("embeddings.position_embeddings.weight",   "position_embedding/embeddings", "identity"),
    ("embeddings.token_type_embeddings.weight", "type_embeddings/embeddings",    "identity"),
    ("embeddings.LayerNorm.weight",             "embeddings/layer_norm/gamma",   "identity"),
    ("embeddings.LayerNorm.bias",               "embeddings/layer_norm/beta",    "identity"),
)
LAYER_WEIGHTS: tuple[tuple[str, str, str], ...] = (
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
POOLER_WEIGHTS: tuple[tuple[str, str, str], ...] = (
    ("pooler.dense.weight", "pooler_transform/kernel", "transpose"),
    ("pooler.dense.bias",   "pooler_transform/bias",   "identity"),
)
# fmt: on
# in model.safetensors but not weights: transformers rebuilds it (arange), so do we
IGNORED = ("embeddings.position_ids",)


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


def weight_rows(num_layers: int) -> list[tuple[str, str, str]]:
    """Every (HF name, TF name, transform) of a BERT with `num_layers` layers, in order."""
    rows = list(EMBEDDING_WEIGHTS)
    for i in range(num_layers):
        rows += [(hf.format(i=i), tf_name.format(i=i), t) for hf, tf_name, t in LAYER_WEIGHTS]
    return rows + list(POOLER_WEIGHTS)


def layout(shapes: Mapping[str, Sequence[int]]) -> tuple[int, int] | None:
    """(num_layers, num_heads) of TF variables {name: shape} named as TF Hub's BERT,
    or None when any variable of the map is missing.

    >>> layout({})
    """
    layers = 0
    while f"transformer/layer_{layers}/self_attention/query/kernel" in shapes:
        layers += 1
    if layers == 0 or any(tf_name not in shapes for _, tf_name, _ in weight_rows(layers)):
        return None
    query = shapes["transformer/layer_0/self_attention/query/kernel"]
    return (layers, int(query[1])) if len(query) == 3 else None


def strip_prefix(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop a task model's prefix (``bert.embeddings...`` -> ``embeddings...``),
    keeping only encoder tensors, as transformers' AutoModel does."""
    key = next((k for k in state if k.endswith("embeddings.word_embeddings.weight")), None)
    prefix = key[: -len("embeddings.word_embeddings.weight")] if key else ""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def hf_to_tf(state: Mapping[str, np.ndarray], num_layers: int, heads: int) -> dict[str, np.ndarray]:
    """Canonical (Hugging Face) tensors -> TF variable values, float32.

    Raises KeyError naming the first missing tensor.
    """
    state = strip_prefix(state)
    out = {}
    for hf_name, tf_name, transform in weight_rows(num_layers):
        if hf_name not in state:
            raise KeyError(hf_name)
        array = np.asarray(state[hf_name], dtype=np.float32)
        out[tf_name] = np.ascontiguousarray(TRANSFORMS[transform].to_tf(array, heads))
    return out


def tf_to_hf(variables: Mapping[str, np.ndarray], num_layers: int, heads: int) -> dict[str, np.ndarray]:
    """TF variable values -> canonical (Hugging Face) tensors; the inverse of hf_to_tf."""
    out = {}
    for hf_name, tf_name, transform in weight_rows(num_layers):
        out[hf_name] = np.ascontiguousarray(TRANSFORMS[transform].to_hf(np.asarray(variables[tf_name]), heads))
    return out
