"""precision="int8": ONNX Runtime's own quantiser (onnxruntime.quantization) on an export.

Dynamic quantisation of the weight products, per output channel: int8 weights with one scale
per column, each batch's activations quantised at run time (MatMulInteger, and QAttention for
the export's fused attention with its query/key/value weights). The attention products
(activation by activation), LayerNorm, GELU and softmax stay fp32.

Activations are quantised per batch, so an int8 logit depends a little on the other texts of its
batch (their ranges set the scale): fp32 gives a text the same logits in any batch, int8 does not.

Chosen by measurement on the default model (SST-2 dev, all 872 sentences, batch 32, 2
threads, 2026-12-02, the machine shared with a test run): dynamic per-channel kept 96.9% of
the fp32 labels, accuracy 0.8108 against 0.8119, at 1.78x the fp32 export's speed. Static QDQ
with calibration on 128 SST-2 train sentences (per-channel weights, MinMax, Percentile 99.99
or Entropy ranges for the activations) kept only 86-92% of the labels; excluding the feed-
forward down-projections from it reached 96.6% and excluding both feed-forward products
97.7%, but no faster than fp32. Dynamic with some products left in fp32 (2026-12-03, same
data): the six feed-forward down-projections 97.59% at 0.67x the all-int8 speed, the last two
of them 97.59% at 0.81x, the first two 97.36% at 0.78x, the six attentions 96.90% at 0.72x;
all-int8 97.13%. The other dynamic recipes (benchmarks/int8_recipes.py, 2026-12-07, quiet
machine): reduce_range 96.67%, symmetric activations 97.13%, uint8 weights 97.48% at 1.32x fp32
instead of 1.99x, per-tensor weights 93.46%. Label agreement depends on how many sentences sit
near the decision boundary, so `compare` against the fp32 model on your own data before
relying on it.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from unified_nlp.backend_kit import SPEC_FILE, BackendNotInstalledError, ConversionError, atomic_dir, read_spec

from .export import quiet_logger

QUANTIZATION = {
    "method": "dynamic",
    "weights": "int8 per output channel",
    "ops": ["Attention (fused query, key, value)", "MatMul (constant weight)"],
}


def quantize(source: Path, out: Path) -> dict[str, Any]:
    """Write the int8 folder of the fp32 export `source` at `out`, atomically; returns its
    unified_nlp.json."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise BackendNotInstalledError(
            f"int8 needs the onnx package to quantise the export once ({e}): pip install 'onnx>=1.23' "
            "(or 'unified-nlp[onnxruntime-export]'); running an int8 folder afterwards does not"
        ) from None

    source, out = Path(source), Path(out)
    meta = read_spec(source)
    with atomic_dir(out) as tmp:
        model = onnx.load(str(source / meta.get("model_file", "model.onnx")))
        # the shapes the optimiser recorded trip onnx's shape inference inside the quantiser
        # ("inferred shape and existing shape differ"); it infers them again without them
        del model.graph.value_info[:]
        plain = tmp / "fp32.onnx"
        onnx.save(model, str(plain))
        try:
            # the quantiser logs on the root logger (advice to pre-process, tensors whose type it
            # cannot infer: the attention products it leaves in fp32 anyway); a library stays quiet
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), quiet_logger(""):
                warnings.simplefilter("ignore")
                quantize_dynamic(
                    plain,
                    tmp / meta.get("model_file", "model.onnx"),
                    per_channel=True,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul", "Attention"],  # Attention: the fused query/key/value weights
                    extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
                )
        except Exception as e:  # the quantiser raises RuntimeError, onnx errors, ValueError
            raise ConversionError(
                f"{source}: ONNX Runtime could not quantise this model: {type(e).__name__}: {e}"
            ) from e
        plain.unlink()
        for item in source.iterdir():
            if item.is_file() and item.name not in (SPEC_FILE, meta.get("model_file", "model.onnx")):
                shutil.copy2(item, tmp / item.name)
        meta = {**meta, "precision": "int8", "quantization": QUANTIZATION}
        (tmp / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta
