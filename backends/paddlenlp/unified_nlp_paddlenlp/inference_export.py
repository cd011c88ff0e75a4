"""Paddle Inference models as PaddleNLP's export_model.py writes them, run as black boxes.

PaddleNLP's text-classification ``export_model.py`` turns a trained classifier into
``paddle.jit.save``'s files: the program (Paddle 3: ``inference.json``, PIR; older Paddle:
``inference.pdmodel``) and ``inference.pdiparams``, beside the tokenizer's save_pretrained files
(``vocab.txt``, ``tokenizer_config.json``). The graph takes int64 ``input_ids`` and
``token_type_ids`` (some exports ``attention_mask`` too) and returns the logits. Such a folder
runs here through a Paddle Inference predictor (in the paddlenlp worker), with the folder's own
tokenizer; the program's parameters have no mapping back to a checkpoint, so it neither
trains nor converts.

Files: only the program and parameters inside the folder are read (a symlink resolving
elsewhere is refused); a truncated or corrupt file is an InvalidModelError (Paddle's own
parse error).

>>> spec = describe(Path("text_classification/export"), labels=["neg", "pos"])   # doctest: +SKIP
>>> spec.extra["program"]                                                        # doctest: +SKIP
'inference.json'
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    PADDLE_INFERENCE_FORMAT,
    PROBLEM_TYPES,
    Encoding,
    FastTokenizer,
    InvalidInputError,
    InvalidModelError,
    Model,
    ModelOutput,
    ModelSpec,
    NotSupportedError,
    UnifiedNLPError,
    config_labels,
    read_json,
    token_limit,
)

from ._framework import math_threads, paddle

INPUTS = ("input_ids", "token_type_ids", "attention_mask")
WHY = "a Paddle Inference model is an inference graph with no mapping back to a training checkpoint"
NEEDED = "the PaddleNLP save_pretrained folder it was exported from, loaded on a backend that trains"


def _files(path: Path) -> tuple[Path, Path]:
    """(program, parameters) of the folder: one <prefix>.pdiparams with <prefix>.json or .pdmodel,
    both resolving inside the folder."""
    found = [
        (p.with_suffix(s), p) for p in sorted(path.glob("*.pdiparams")) for s in (".json", ".pdmodel")
        if p.with_suffix(s).is_file()
    ]  # fmt: skip
    if len(found) != 1:
        names = [f"{a.name} + {b.name}" for a, b in found]
        raise InvalidModelError(
            f"{path}: expected one Paddle Inference model (<prefix>.pdiparams + .json or .pdmodel), found {names}"
        )
    root = path.resolve()
    for file in found[0]:
        if root not in file.resolve().parents:
            raise InvalidModelError(f"{file}: resolves to {file.resolve()}, outside the model folder; refused")
    return found[0]


def predictor(path: Path, threads: int):
    """A Paddle Inference CPU predictor of the folder's model; InvalidModelError where Paddle cannot read it."""
    pi = paddle.inference
    program, params = _files(Path(path))
    try:
        config = pi.Config(str(program), str(params))
        config.disable_gpu()
        config.disable_glog_info()
        config.set_cpu_math_library_num_threads(int(threads))
        return pi.create_predictor(config)
    except Exception as e:  # Paddle raises RuntimeError/ValueError from its C++ parsers
        message = " ".join(str(e).split())[:300]
        raise InvalidModelError(
            f"{program}: Paddle Inference cannot load this model ({type(e).__name__}: {message})"
        ) from None


def _probe(run, inputs: Sequence[str]) -> int:
    """The number of logits the graph gives, from one short input."""
    ids = np.array([[1, 2, 3]], np.int64)
    feed = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}
    out = run({name: feed[name] for name in inputs})
    if out.ndim != 2:
        raise InvalidModelError(
            f"the Paddle Inference model returns shape {list(out.shape)}; expected [batch, num_labels]"
        )
    return int(out.shape[1])


def _labels(path: Path, config: dict[str, Any], width: int, labels: Sequence[str] | None) -> list[str]:
    saved = (config_labels(config, path / "config.json") if config else None) or [f"LABEL_{i}" for i in range(width)]
    if len(saved) != width:
        raise InvalidModelError(f"{path / 'config.json'}: {len(saved)} labels, but the graph gives {width} logits")
    if labels is None:
        return saved
    given = [str(x) for x in labels]
    if len(given) != width or len(set(given)) != width or not all(given):
        raise InvalidInputError(
            f"{path}: the graph gives {width} logits, so labels= names them with {width} distinct names (got {given})"
        )
    return given


def describe(
    path: Path, *, labels: Sequence[str] | None = None, problem_type: str | None = None, seed: int = 0
) -> ModelSpec:
    """The spec of a Paddle Inference folder: labels from a config.json's id2label if there is
    one, else LABEL_i (`labels` names them, same count); the graph's inputs in `extra`."""
    path = Path(path)
    if not any((path / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise InvalidModelError(
            f"{path}: no tokenizer files (vocab.txt or tokenizer.json) beside the Paddle Inference model"
        )
    graph = InferenceGraph(path, 1)  # one thread: a probe run only
    config = read_json(path / "config.json") if (path / "config.json").is_file() else {}
    problem = problem_type or config.get("problem_type") or PROBLEM_TYPES[0]
    if problem not in PROBLEM_TYPES:
        raise InvalidInputError(f"problem_type must be one of {', '.join(PROBLEM_TYPES)}, got {problem!r}")
    return ModelSpec(
        format=PADDLE_INFERENCE_FORMAT,
        architecture=None,
        labels=tuple(_labels(path, config, graph.num_labels, labels)),
        problem_type=problem,
        head="native",
        token_types="token_type_ids" in graph.inputs,
        max_length=token_limit(path, config, {}),  # positions (config.json's, else 512), the tokenizer's limit
        seed=int(seed),
        extra={"inputs": graph.inputs, "program": graph.program.name},
    )


def inspect(path: Path) -> dict[str, Any]:
    spec = describe(path)
    return {
        "format": spec.format,
        "kind": "paddle-inference",
        "architecture": None,
        "labels": list(spec.labels),
        "head": "in the graph",
        "max_length": spec.max_length,
        "tokenizer": "the folder's " + ("tokenizer.json" if (Path(path) / "tokenizer.json").is_file() else "vocab.txt"),
        "inputs": list(spec.extra["inputs"]),
        "program": spec.extra["program"],
        "convertible": False,
        "trainable": False,
        "why": f"{WHY}; to convert or fine-tune it, use {NEEDED}",
    }


class InferenceGraph(Model):
    """A Paddle Inference predictor: an Encoding in, its logits out (calls serialised: a predictor
    is not thread-safe)."""

    def __init__(self, path: Path, threads: int, num_labels: int | None = None) -> None:
        self.program = _files(Path(path))[0]
        self._predictor = predictor(path, threads)
        names = list(self._predictor.get_input_names())
        unknown = sorted(set(names) - set(INPUTS))
        if "input_ids" not in names or unknown:
            raise InvalidModelError(
                f"{self.program}: takes {names}; a PaddleNLP classifier export takes {', '.join(INPUTS[:2])}"
            )
        self.inputs = names
        self._lock = threading.Lock()
        self.num_labels = _probe(self._run, names)
        if num_labels is not None and num_labels != self.num_labels:
            raise InvalidInputError(f"{self.program}: {self.num_labels} logits, but {num_labels} labels")

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            p = self._predictor
            for name, value in feed.items():
                p.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(value, np.int64))
            p.run()
            return p.get_output_handle(p.get_output_names()[0]).copy_to_cpu()

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        if encoding.input_ids.shape[1] == 0:
            return ModelOutput(np.zeros((encoding.num_texts, self.num_labels), np.float32))
        try:
            logits = self._run({name: encoding[name] for name in self.inputs})
        except Exception as e:  # Paddle's C++ errors
            message = " ".join(str(e).split())
            if "OP(embedding)" in message:  # the folder does not say how many positions the graph embeds
                raise InvalidInputError(
                    f"{self.program}: {encoding.input_ids.shape[1]} tokens are beyond the model's embedding tables "
                    f"({message[:200]}); pass max_length= (e.g. predict(texts, max_length=N)), or put a config.json "
                    "with max_position_embeddings beside the model"
                ) from None
            raise UnifiedNLPError(f"{self.program}: Paddle Inference failed on this batch ({message[:400]})") from None
        return ModelOutput(np.asarray(logits, np.float32))

    def state_dict(self):
        raise UnifiedNLPError(f"{self.program}: {WHY}; for weights, load {NEEDED}")

    def unsupported(self, method: str) -> NotSupportedError:
        return NotSupportedError(f"{self.program}: {WHY}, so it has no {method}; to fine-tune it, use {NEEDED}")


def load(path: Path, spec: ModelSpec) -> tuple[FastTokenizer, InferenceGraph]:
    """(tokenizer, model) of a folder described by `describe`."""
    if spec.fresh_head:
        raise InvalidInputError(f"{path}: {WHY}; a fresh head needs {NEEDED}")
    if (spec.precision or "fp32") != "fp32" or spec.device not in (None, "cpu"):
        raise InvalidInputError(f"{path}: a Paddle Inference export runs here as it is: fp32, on the CPU")
    model = InferenceGraph(Path(path), math_threads(), spec.num_labels)
    return FastTokenizer.from_folder(Path(path), int(spec.max_length), spec.token_types), model
