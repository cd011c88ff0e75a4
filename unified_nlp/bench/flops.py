"""The machine's ceiling for this model: FLOPs per token from config.json, and
what a measured matmul rate makes of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unified_nlp.architectures import get as get_architecture

FORMULA = (
    "per layer and token: 2*(4*h*h + 2*h*i) for the Q/K/V/output projections and the "
    "feed-forward, plus 2*2*seq*h for attention scores and the weighted sum; times the layers. "
    "Embeddings, layer norms, softmax, GELU, pooling and the head are left out (<1%). "
    "seq is the mean real (unpadded) token count of the data; padding is not counted as useful work."
)


def encoder_flops_per_token(config: dict[str, Any], seq_len: float) -> float:
    """Forward FLOPs per token of a BERT encoder (a multiply-add counts 2); see FORMULA.

    >>> cfg = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6}
    >>> round(encoder_flops_per_token(cfg, 25.0) / 1e6, 2)
    21.46
    """
    arch = get_architecture(config.get("model_type", "bert"))  # each family names its sizes its own way
    h, i, layers = (int(config[arch.key(dim)]) for dim in ("hidden", "intermediate", "layers"))
    per_layer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * float(seq_len) * h
    return layers * per_layer


def model_summary(model_dir: Path) -> dict[str, Any] | None:
    """The architecture figures the ceiling needs, read from the model folder's config.json;
    None for a folder without one (a SavedModel run as a black box)."""
    if not (Path(model_dir) / "config.json").is_file():
        return None
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    arch = get_architecture(config.get("model_type", "bert"))
    names = {"hidden": "hidden_size", "intermediate": "intermediate_size", "layers": "num_hidden_layers"}
    names |= {"heads": "num_attention_heads", "vocab": "vocab_size"}
    summary: dict[str, Any] = {"model_type": arch.model_type}
    summary |= {key: config.get(arch.key(dim)) for dim, key in names.items()}
    summary["flops_formula"] = FORMULA
    summary["flops_per_token_no_attention"] = encoder_flops_per_token(config, 0.0)
    return summary


def ceiling_fraction(tokens_per_s: float, flops_per_token: float, ceiling_gflops: float) -> float | None:
    """Useful FLOP/s of a run as a fraction of the measured matmul rate."""
    if not ceiling_gflops or not tokens_per_s:
        return None
    return tokens_per_s * flops_per_token / (ceiling_gflops * 1e9)
