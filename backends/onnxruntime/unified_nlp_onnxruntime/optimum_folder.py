"""ONNX classifier folders as Hugging Face Optimum exports them, run as black boxes.

Optimum's ``optimum-cli export onnx --task text-classification`` (and
``ORTModelForSequenceClassification.save_pretrained``) writes ``model.onnx`` (ORTQuantizer
adds ``model_quantized.onnx``), ``config.json`` with ``id2label`` and the tokenizer files;
the graph takes int64 ``input_ids``, ``attention_mask`` (and ``token_type_ids``)
[batch_size, sequence_length] and returns ``logits`` [batch_size, num_labels]. Such a
folder runs here as it is, on ONNX Runtime with the folder's own tokenizer: its weights
are graph initializers (folded, fused or quantised), so it neither trains nor converts.

Files: the graph is read by ONNX Runtime alone, which (since 1.2x) refuses an external-data
location that is absolute or resolves outside the model's folder before reading it
(``ValidateExternalDataPathFromDir``); a truncated or corrupt graph is an InvalidModelError.

>>> spec = describe(Path("distilbert-sst2-onnx"))    # doctest: +SKIP
>>> spec.labels, spec.extra["model_file"]            # doctest: +SKIP
(('NEGATIVE', 'POSITIVE'), 'model.onnx')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    ONNX_EXPORT_FORMAT,
    PROBLEM_TYPES,
    FastTokenizer,
    InvalidInputError,
    InvalidModelError,
    ModelSpec,
    UnifiedNLPError,
    architectures,
    config_labels,
    get_architecture,
    read_json,
    token_limit,
)

from .session import OrtModel, open_session

FP32_FILE, INT8_FILE = "model.onnx", "model_quantized.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # Optimum's names, int64
WHY = (
    "an ONNX graph is a deployment export: its weights are graph initializers with no mapping back to a "
    "training checkpoint"
)
NEEDED = "the checkpoint it was exported from (config.json + model.safetensors), loaded on a backend that trains"


def model_file(path: Path, precision: str | None) -> Path:
    """The graph to run: model.onnx for fp32, model_quantized.onnx for int8; with no precision
    asked, model.onnx, else the quantised one when it is the only graph."""
    have = {name: (path / name).is_file() for name in (FP32_FILE, INT8_FILE)}
    if precision is None:
        return path / (FP32_FILE if have[FP32_FILE] else INT8_FILE)
    wanted = {"fp32": FP32_FILE, "int8": INT8_FILE}.get(precision)
    if wanted is None or not have[wanted]:
        found = ", ".join(n for n, ok in have.items() if ok)
        raise InvalidInputError(
            f"{path}: precision {precision!r} needs {wanted or 'a graph of that precision'} in an Optimum ONNX "
            f"folder; it has {found}"
        )
    return path / wanted


def _graph(file: Path) -> tuple[dict[str, Any], list[str], int]:
    """(input name -> ONNX type, output names, logits width) of a graph, checked as Optimum's classifier."""
    session = open_session(file, 1)
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    unknown = sorted(set(inputs) - set(INPUTS))
    if "input_ids" not in inputs or unknown or "logits" not in outputs:
        raise InvalidModelError(
            f"{file}: takes {sorted(inputs)} and returns {outputs}; an Optimum text-classification export takes "
            f"{', '.join(INPUTS)} (token_type_ids optional) and returns logits"
        )
    wrong = sorted(name for name, kind in inputs.items() if kind != "tensor(int64)")
    if wrong:
        raise InvalidModelError(f"{file}: inputs {wrong} are not int64, as Optimum's exports take them")
    shape = session.get_outputs()[outputs.index("logits")].shape
    if len(shape) == 2 and isinstance(shape[1], int):
        return inputs, outputs, int(shape[1])
    ids = np.array([[1, 2]], np.int64)  # a symbolic width: one short run says it
    probe = session.run(["logits"], {name: np.ones_like(ids) if name == "attention_mask" else ids for name in inputs})[
        0
    ]
    if probe.ndim != 2:
        raise InvalidModelError(f"{file}: logits of shape {shape}; expected [batch_size, num_labels]")
    return inputs, outputs, int(probe.shape[1])


def _max_length(path: Path, config: dict[str, Any]) -> int:
    """Positions the graph embeds (the family's limit where the family is known), capped by the tokenizer's."""
    model_type = config.get("model_type")
    known = model_type in architectures.ARCHITECTURES
    return token_limit(
        path, config, {}, positions=get_architecture(model_type).position_limit(config) if known else None
    )


def _labels(config: dict[str, Any], path: Path, width: int, labels: Sequence[str] | None) -> list[str]:
    saved = config_labels(config, path / "config.json") or [f"LABEL_{i}" for i in range(width)]
    if len(saved) != width:
        raise InvalidModelError(f"{path / 'config.json'}: id2label has {len(saved)} labels, the graph {width} logits")
    if labels is None:
        return saved
    given = [str(x) for x in labels]
    if len(given) != width or len(set(given)) != len(given) or not all(given):
        raise InvalidInputError(
            f"{path}: the ONNX graph's head gives {width} logits, so labels= renames them with {width} distinct "
            f"names (got {given}); other labels need a new head, trained from {NEEDED}"
        )
    return given


def describe(
    path: Path, *, labels: Sequence[str] | None = None, problem_type: str | None = None, seed: int = 0
) -> ModelSpec:
    """The spec of an Optimum ONNX classifier folder: labels from config.json's id2label
    (`labels` renames them, same count), problem_type from config.json, the folder's
    tokenizer limits, and in `extra` the graph's inputs and outputs."""
    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise InvalidModelError(
            f"{path}: no tokenizer.json; an Optimum ONNX folder keeps its tokenizer beside the graph"
        )
    config = read_json(path / "config.json")
    file = model_file(path, None)
    inputs, outputs, width = _graph(file)
    problem = problem_type or config.get("problem_type") or PROBLEM_TYPES[0]
    if problem not in PROBLEM_TYPES:
        raise InvalidInputError(f"problem_type must be one of {', '.join(PROBLEM_TYPES)}, got {problem!r}")
    model_type = config.get("model_type")
    return ModelSpec(
        format=ONNX_EXPORT_FORMAT,
        architecture=model_type if model_type in architectures.ARCHITECTURES else None,
        labels=tuple(_labels(config, path, width, labels)),
        problem_type=problem,
        head="native",
        token_types="token_type_ids" in inputs,
        max_length=_max_length(path, config),
        seed=int(seed),
        extra={"inputs": sorted(inputs, key=INPUTS.index), "outputs": outputs, "model_type": model_type},
    )


def inspect(path: Path) -> dict[str, Any]:
    """What `unified-nlp inspect` says of an Optimum ONNX folder."""
    spec = describe(path)
    graphs = [name for name in (FP32_FILE, INT8_FILE) if (Path(path) / name).is_file()]
    return {
        "format": spec.format,
        "kind": "onnx-classifier (Optimum layout)",
        "architecture": spec.extra["model_type"],
        "labels": list(spec.labels),
        "head": "in the graph",
        "problem_type": spec.problem_type,
        "max_length": spec.max_length,
        "tokenizer": "the folder's tokenizer.json",
        "inputs": spec.extra["inputs"],
        "graphs": graphs,
        "convertible": False,
        "trainable": False,
        "why": f"{WHY}; to convert or fine-tune it, use {NEEDED}",
    }


class ExportedGraph(OrtModel):
    """An Optimum export on ONNX Runtime: inference only, and no weights to give."""

    def state_dict(self):
        raise UnifiedNLPError(f"{self.file}: {WHY}; for weights, load {NEEDED}")

    def unsupported(self, method: str):
        error = super().unsupported(method)
        return type(error)(f"{self.file}: {WHY}, so it has no {method}; to fine-tune it, use {NEEDED}")


def load(path: Path, spec: ModelSpec, num_threads: int, device: str | None) -> tuple[FastTokenizer, OrtModel]:
    """(tokenizer, model) of an Optimum folder described by `describe`."""
    if spec.fresh_head:
        raise InvalidInputError(f"{path}: {WHY}; a fresh head needs {NEEDED}")
    file = model_file(Path(path), spec.precision)
    meta = {"model_file": file.name, "inputs": spec.extra["inputs"], "labels": list(spec.labels)}
    meta["max_positions"] = spec.max_length
    model = ExportedGraph(Path(path), meta, num_threads, None, device)
    return FastTokenizer.from_folder(Path(path), int(spec.max_length), spec.token_types), model
