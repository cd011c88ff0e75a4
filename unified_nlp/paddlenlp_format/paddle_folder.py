"""PaddleNLP ``save_pretrained`` folders, read in numpy (no paddle, no PaddleNLP).

What PaddleNLP 2.8 writes (measured with paddlepaddle 3.3.1):

    config.json                 PaddleNLP's config (``paddlenlp_version``, ``architectures``, its own keys)
    model_state.pdparams        the default: a paddle.save pickle, read by safe_pickle.read_paddle_state
    model.safetensors           with ``safe_serialization=True`` (Paddle names, Linear weights [in, out])
    *.index.json + shards       with ``max_shard_size`` (model_state-00001-of-00007.pdparams, model-0000x-....safetensors)
    tokenizer files             from ``tokenizer.save_pretrained``: vocab.txt (BERT, ERNIE, ELECTRA, DistilBERT,
                                Chinese RoBERTa), vocab.json + merges.txt (RoBERTa BPE), spiece.model (ALBERT),
                                spm.model (DeBERTa-v2), sentencepiece.bpe.model + vocab.txt (ERNIE-M)

A folder of a family that transformers has (families/) becomes the canonical
Hugging Face folder with `to_canonical` (canonical.py: weights through the literal tables,
config through the family's config mapping, a tokenizer.json built from
PaddleNLP's tokenizer files) and then runs on every backend. ERNIE-M has no
transformers class: `native_spec` describes it for the paddlenlp backend, which
runs it with PaddleNLP's own ErnieMForSequenceClassification.

Tokenization: the canonical folder's tokenizer.json is transformers' tokenizer for
the same files, equal to PaddleNLP's on ordinary text (SST-2 here); PaddleNLP's
BertTokenizer also splits symbols (emoji, currency signs) into words of their own,
which transformers does not (see unified_nlp_paddlenlp/tokenizer.py), so ids can
differ on such characters after the move.

>>> is_native(Path("my-paddle-bert"))                                  # doctest: +SKIP
True
>>> describe_native(Path("my-paddle-bert"))["architecture"]            # doctest: +SKIP
'bert'
>>> to_canonical(Path("my-paddle-bert"), Path("my-bert"))              # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from ..errors import InvalidInputError, InvalidModelError
from ..folder import SPEC_FILE, read_json, safe_join
from ..folder_spec import config_labels, is_placeholder
from ..format_names import PADDLE_NATIVE as NATIVE_FORMAT  # native_spec's: paddlenlp runs the folder as it is
from ..safe_pickle import read_paddle_state
from ..spec import PROBLEM_TYPES, ModelSpec
from ..weights import load_file, read_header, save_file
from .families import FAMILIES, Family

FORMAT = "paddlenlp"  # describe_native's "format"
CONFIG = "config.json"
SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
PDPARAMS, PDPARAMS_INDEX = "model_state.pdparams", "model_state.pdparams.index.json"
TOKENIZER_FILES = (
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "spm.model",
    "sentencepiece.bpe.model",
    "tokenizer.json",
    "special_tokens_map.json",
)
VOCABULARIES = ("vocab.txt", "vocab.json", "spiece.model", "spm.model", "tokenizer.json")  # a folder's tokenizer

# PaddleNLP task classes with no transformers counterpart: they run on the paddlenlp backend only
ERNIE_M_WHY = (
    "ERNIE-M (ErnieMForSequenceClassification) has no transformers class (transformers 5 has no ernie_m), so "
    "there is no architecture to map its weights to: it runs on the paddlenlp backend only and cannot be converted"
)
NATIVE_ONLY: dict[str, dict[str, Any]] = {
    "ErnieMForSequenceClassification": {
        "model_type": "ernie_m",
        "tokenizer": "ErnieMTokenizer",
        "why": ERNIE_M_WHY,
        "position_offset": 2,  # ErnieMEmbeddings numbers positions from 2: 514 positions hold 512 tokens
    },
}


# --- files ---------------------------------------------------------------------


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a PaddleNLP folder: safetensors (single or sharded), else
    model_state.pdparams (single or sharded); InvalidModelError naming what was looked for."""
    folder = Path(folder)
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (PDPARAMS, PDPARAMS_INDEX)):
        if (folder / single).is_file():
            return [folder / single]
        if (folder / index).is_file():
            weight_map = read_json(folder / index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise InvalidModelError(f"{folder / index}: no 'weight_map'")
            files = [safe_join(folder, name, folder / index) for name in sorted(set(weight_map.values()))]
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise InvalidModelError(f"{folder / index}: shard(s) missing: {', '.join(missing[:3])}")
            return files
    raise InvalidModelError(
        f"{folder}: no PaddleNLP weights (looked for {SAFETENSORS}, {SAFETENSORS_INDEX}, {PDPARAMS}, {PDPARAMS_INDEX})"
    )


def read_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of the folder under PaddleNLP's names; pdparams through the restricted reader.
    A bfloat16 model's pdparams hold its weights as uint16 (numpy has no bfloat16; measured with
    paddle 3.3.1): they are widened to float32, which holds every bfloat16 value exactly."""
    folder = Path(folder)
    out: dict[str, np.ndarray] = {}
    for file in weight_files(folder):
        out.update(load_file(file) if file.suffix == ".safetensors" else read_paddle_state(file))
    halves = [k for k, v in out.items() if v.dtype == np.uint16]
    if halves:
        if _config(folder).get("dtype") != "bfloat16":
            raise InvalidModelError(
                f"{folder}: uint16 tensors (e.g. {halves[0]!r}) in a model whose config.json dtype is not bfloat16"
            )
        for k in halves:  # bfloat16 is the top half of a float32
            out[k] = (out[k].astype(np.uint32) << 16).view(np.float32)
    return out


def _cheap_names(folder: Path) -> list[str]:
    """Tensor names without reading any weights: a safetensors header or an index's weight_map."""
    for index in (SAFETENSORS_INDEX, PDPARAMS_INDEX):
        if (folder / index).is_file():
            try:
                return list(json.loads((folder / index).read_text("utf-8")).get("weight_map") or {})
            except (ValueError, OSError, AttributeError):
                return []
    if (folder / SAFETENSORS).is_file():
        try:
            return list(read_header(folder / SAFETENSORS))
        except InvalidModelError:
            return []
    return []


def has_paddle_names(names: Sequence[str]) -> bool:
    """Parameter names only PaddleNLP gives (paddle.nn.TransformerEncoderLayer's, lower-case layer_norm)."""
    return any(".self_attn.q_proj." in k or "embeddings.layer_norm." in k for k in names)


def _config(folder: Path) -> dict[str, Any]:
    if not (folder / CONFIG).is_file():
        return {}
    try:
        data = json.loads((folder / CONFIG).read_text("utf-8"))
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def is_native(path: Path) -> bool:
    """Whether `path` is a folder PaddleNLP's save_pretrained wrote: config.json with
    ``paddlenlp_version`` or a PaddleNLP-only class, model_state.pdparams (or its index),
    or safetensors with Paddle parameter names. Reads headers only.

    >>> is_native(Path("bert-paddle"))   # doctest: +SKIP
    True
    """
    path = Path(path)
    if not path.is_dir() or (path / SPEC_FILE).is_file():  # a folder written by convert says what it is
        return False
    config = _config(path)
    if "paddlenlp_version" in config or any(a in NATIVE_ONLY for a in config.get("architectures") or []):
        return True
    if (path / PDPARAMS).is_file() or (path / PDPARAMS_INDEX).is_file():
        return True
    return has_paddle_names(_cheap_names(path))


def read_config(folder: Path) -> dict[str, Any]:
    """PaddleNLP's config.json, its sizes checked."""
    config = read_json(Path(folder) / CONFIG)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise InvalidModelError(f"{Path(folder) / CONFIG}: '{key}' must be a positive integer")
    return config


def _native_only(config: Mapping[str, Any]) -> dict[str, Any] | None:
    for name in config.get("architectures") or []:
        if name in NATIVE_ONLY:
            return NATIVE_ONLY[name]
    for info in NATIVE_ONLY.values():
        if config.get("model_type") == info["model_type"]:
            return info
    return None


def family_of(config: Mapping[str, Any], source: Path) -> Family:
    """The family of a PaddleNLP config.json (its architectures, else its model_type)."""
    owners = [f for f in FAMILIES.values() if f.shares_classes_of is None]  # XLM-R's classes are RoBERTa's
    for name in config.get("architectures") or []:
        for family in owners:
            if name in (family.paddle_class, family.paddle_base):
                return family
    model_type = config.get("model_type", "bert")
    for family in owners:
        if family.paddle_model_type == model_type:
            return family
    known = sorted({f.paddle_model_type for f in FAMILIES.values()} | {i["model_type"] for i in NATIVE_ONLY.values()})
    raise InvalidModelError(
        f"{source}: PaddleNLP model_type {model_type!r} / architectures {config.get('architectures')} is not "
        f"supported; supported: {', '.join(known)}"
    )


def labels_of(config: Mapping[str, Any], source: Path) -> list[str] | None:
    """The labels of id2label in index order, None when the config states none."""
    return config_labels(config, source) if config.get("id2label") is not None else None


def _tokenizer_class(folder: Path, default: str | None) -> str | None:
    path = folder / "tokenizer_config.json"
    stated = read_json(path).get("tokenizer_class") if path.is_file() else None
    return stated if isinstance(stated, str) and stated else default


def _task_class(config: Mapping[str, Any], family: Family | None) -> str | None:
    names = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    return names[0] if names else (family.paddle_class if family else None)


def describe_native(path: Path) -> dict[str, Any]:
    """What a PaddleNLP folder holds, JSON-ready (for `unified-nlp inspect` and errors):
    format, architecture (transformers model_type, None without one), paddle_class,
    labels (id2label, else None), weights (file names), tokenizer (PaddleNLP's class),
    convertible, why (the reason it cannot leave PaddleNLP, else None).

    >>> describe_native(Path("ernie-m-paddle"))["convertible"]   # doctest: +SKIP
    False
    """
    path = Path(path)
    config = read_config(path)
    weights = [f.name for f in weight_files(path)]
    only = _native_only(config)
    out: dict[str, Any] = {"format": FORMAT, "weights": weights, "labels": labels_of(config, path / CONFIG)}
    if only is not None:
        return out | {
            "architecture": None,
            "paddle_model_type": only["model_type"],
            "paddle_class": _task_class(config, None),
            "tokenizer": _tokenizer_class(path, only["tokenizer"]),
            "convertible": False,
            "why": only["why"],
        }
    family = family_of(config, path / CONFIG)
    why = family.unsupported(family.from_paddle_config(config))
    tokenizer = _tokenizer_class(path, family.tokenizer_class)
    if not any((path / n).is_file() for n in VOCABULARIES):
        why = why or "no tokenizer files (save the tokenizer next to the model: tokenizer.save_pretrained(dir))"
    return out | {
        "architecture": family.model_type,
        "paddle_model_type": config.get("model_type", family.paddle_model_type),
        "paddle_class": _task_class(config, family),
        "tokenizer": tokenizer,
        "convertible": why is None,
        "why": why,
    }


# --- run as it is, on the paddlenlp backend -------------------------------------------


def _head_outputs(path: Path) -> int | None:
    """The classifier's output count (Paddle's Linear weight is [in, out]), None without one."""
    files = weight_files(path)
    if all(f.suffix == ".safetensors" for f in files):
        for f in files:
            entry = read_header(f).get("classifier.weight")
            if entry is not None:
                return int(entry["shape"][-1])
        return None
    weight = read_weights(path).get("classifier.weight")  # a pickle has no header: read it, restricted
    return int(weight.shape[-1]) if weight is not None and weight.ndim == 2 else None


def native_spec(
    path: Path, labels: Sequence[str] | None = None, problem_type: str | None = None, seed: int = 0
) -> ModelSpec:
    """The spec the paddlenlp backend runs a PaddleNLP folder with as it is (ERNIE-M, which
    cannot be converted): the shape of folder_spec.canonical_spec's spec, format "paddlenlp-native".
    `labels` rename placeholder labels (LABEL_0, ...) or, when they differ, start a fresh head.

    >>> native_spec(Path("ernie-m-paddle")).labels   # doctest: +SKIP
    ('negative', 'positive')
    """
    path = Path(path)
    info = describe_native(path)
    config = read_config(path)
    only = _native_only(config) or {}
    saved = info["labels"]
    if saved is None:  # no id2label: the head's outputs, named as transformers names them
        outputs = _head_outputs(path)
        saved = [f"LABEL_{i}" for i in range(outputs)] if outputs else None
    fresh = False
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels) or not all(labels):
            raise InvalidInputError(f"labels must be at least two distinct non-empty names, got {labels}")
        fresh = saved is None or (labels != saved and not (is_placeholder(saved) and len(saved) == len(labels)))
        saved = labels
    if saved is None:
        raise InvalidModelError(f"{path}: no labels (id2label in config.json); pass labels=[...]")
    problem = problem_type or config.get("problem_type") or "single_label_classification"
    if problem not in PROBLEM_TYPES:
        raise InvalidModelError(f"{path / CONFIG}: problem_type {problem!r} is not supported")
    positions = int(config.get("max_position_embeddings", 512)) - int(only.get("position_offset", 0))
    tok = read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").is_file() else {}
    stated = tok.get("model_max_length")
    limit = min(positions, int(stated)) if isinstance(stated, int) and stated >= 2 else positions
    return ModelSpec(
        format=NATIVE_FORMAT,
        architecture=info["architecture"] or info.get("paddle_model_type"),
        labels=tuple(saved),
        problem_type=problem,
        head="native",
        token_types=False,
        max_length=limit,
        seed=int(seed),
        fresh_head=fresh,
        extra={
            "paddle_class": info["paddle_class"],
            "tokenizer": info["tokenizer"],
            "weights": info["weights"],
            "convertible": info["convertible"],
            "why": info["why"],
        },
    )


def save_native(source: Path, state: Mapping[str, np.ndarray], labels: Sequence[str], problem_type: str, out: Path):
    """Write a PaddleNLP folder run as it is (ERNIE-M), with the weights `state` (PaddleNLP
    names, as the paddlenlp backend's state_dict gives them) and `labels`, to `out`,
    atomically: `source`'s config.json with the labels, its tokenizer files, model.safetensors
    (safe_serialization's layout: no pickle is written). PaddleNLP's from_pretrained loads it.

    >>> save_native(Path("ernie-m-paddle"), clf.model.state_dict(), clf.labels, "single_label_classification",
    ...             Path("ernie-m-tuned"))   # doctest: +SKIP
    """
    source, out = Path(source), Path(out)
    config = read_json(source / CONFIG)
    labels = [str(x) for x in labels]
    config.update(
        id2label={str(i): x for i, x in enumerate(labels)},
        label2id={x: i for i, x in enumerate(labels)},
        num_labels=len(labels),
        problem_type=problem_type,
    )
    with atomic_dir(out) as tmp:
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for name in (*TOKENIZER_FILES, "tokenizer_config.json"):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, tmp / SAFETENSORS, metadata={"format": "np"})
