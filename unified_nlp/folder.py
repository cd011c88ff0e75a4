"""The canonical model folder: its file names, and reading and copying its files.

The canonical on-disk format is a Hugging Face style folder (config.json,
tokenizer files, model.safetensors with the encoder, sharded or not, or an older
pytorch_model.bin read by the restricted reader in safe_pickle) plus, for the
default model's mean-pooling head, head.safetensors (`weight` [num_labels, hidden],
`bias` [num_labels]) and unified_nlp.json (labels, pooling, max_length).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_dir
from .errors import InvalidModelError
from .safe_pickle import read_torch_checkpoint
from .spec import ModelSpec
from .weights import load_file, save_file

SPEC_FILE = "unified_nlp.json"
HEAD_FILE = "head.safetensors"
ENCODER_FILE = "model.safetensors"
TOKENIZER_FILES = (  # every family's: WordPiece, byte-level BPE, SentencePiece
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
)
SAFETENSORS = ENCODER_FILE
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"
PICKLE_SUFFIXES = (".bin", ".pdparams", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".h5")  # never unpickled


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a model folder, or an InvalidModelError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidModelError(f"{path}: missing") from None
    except OSError as e:
        raise InvalidModelError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidModelError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InvalidModelError(f"{path}: expected a JSON object")
    return data


def read_spec(path: Path) -> dict[str, Any]:
    """unified_nlp.json of a model folder; {} for a plain Hugging Face encoder folder."""
    spec_path = path / SPEC_FILE
    if not spec_path.exists():
        return {}
    spec = read_json(spec_path)
    labels = spec.get("labels")
    if labels is not None and not (
        isinstance(labels, list)
        and labels
        and all(isinstance(x, str) and x for x in labels)
        and len(set(labels)) == len(labels)
    ):
        raise InvalidModelError(f"{spec_path}: 'labels' must be a non-empty list of distinct strings")
    for key, value in spec.items():  # file names from metadata never leave the folder
        if key.endswith(("_file", "_dir", "_path")):
            safe_join(path, value, spec_path)
    return spec


def safe_join(root: Path, name: object, source: Path) -> Path:
    """root/name, refusing names from metadata that would leave `root`."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidModelError(f"{source}: invalid file name {name!r}")
    candidate = (root / name).resolve()
    if candidate != root.resolve() and root.resolve() not in candidate.parents:
        raise InvalidModelError(f"{source}: file name {name!r} points outside the model folder")
    return candidate


def token_limit(path: Path, config: dict[str, Any], spec: dict[str, Any], positions: int | None = None) -> int:
    """The longest input in tokens for a canonical folder: the least of the position
    embeddings (`positions`, else config.json's), tokenizer_config.json's
    model_max_length and the spec's max_length."""
    limit = int(positions if positions is not None else config.get("max_position_embeddings", 512))
    if (path / "tokenizer_config.json").is_file():
        stated = read_json(path / "tokenizer_config.json").get("model_max_length")
        if isinstance(stated, (int, float)) and not isinstance(stated, bool) and stated >= 2:
            limit = int(min(stated, limit))
    wanted = spec.get("max_length", limit)
    if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 2:
        raise InvalidModelError(f"{path / SPEC_FILE}: 'max_length' must be an integer >= 2, got {wanted!r}")
    return min(wanted, limit)


def check_shapes(
    found: Mapping[str, Sequence[int]],
    expected: Mapping[str, Sequence[int]],
    source: Path,
    *,
    error: type[Exception] = InvalidModelError,
    allow_extra: Callable[[str], bool] | None = None,
) -> None:
    """Every expected tensor is in `found` (name -> shape) with the shape config.json
    implies; a tensor beyond `expected` is refused unless allow_extra(name)."""
    missing = sorted(set(expected) - set(found))
    if missing:
        raise error(f"{source}: missing {len(missing)} tensor(s), e.g. {', '.join(missing[:3])}")
    unknown = sorted(k for k in found if k not in expected and not (allow_extra and allow_extra(k)))
    if unknown:
        raise error(f"{source}: tensor(s) outside the BERT architecture, e.g. {', '.join(unknown[:3])}")
    for name, shape in expected.items():
        if tuple(found[name]) != tuple(shape):
            raise error(f"{source}: tensor {name!r} has shape {list(found[name])}, config.json implies {list(shape)}")


def initial_head(num_labels: int, hidden: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A fresh classification head, drawn in numpy so every backend starts from the
    same weights for the same seed: N(0, 0.02) as BERT initialises, zero bias."""
    rng = np.random.default_rng(seed)
    return {
        "weight": (rng.standard_normal((num_labels, hidden)) * 0.02).astype(np.float32),
        "bias": np.zeros(num_labels, dtype=np.float32),
    }


def load_head(path: Path, spec: ModelSpec, hidden: int) -> dict[str, np.ndarray]:
    """The head to put on the encoder: head.safetensors, or a fresh one when the
    labels changed (spec.fresh_head) or the folder has none."""
    if spec.fresh_head or not (path / HEAD_FILE).is_file():
        return initial_head(spec.num_labels, hidden, spec.seed)
    head = load_file(path / HEAD_FILE)
    return {"weight": head["weight"].astype(np.float32), "bias": head["bias"].astype(np.float32)}


def weight_files(path: Path) -> list[Path]:
    """The weight files of a folder, safetensors first (single or sharded), then
    pytorch_model.bin; InvalidModelError when there are none."""
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (TORCH_BIN, TORCH_INDEX)):
        if (path / single).is_file():
            return [path / single]
        if (path / index).is_file():
            weight_map = read_json(path / index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise InvalidModelError(f"{path / index}: no 'weight_map'")
            return [safe_join(path, name, path / index) for name in sorted(set(weight_map.values()))]
    others = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    extra = f" (found {', '.join(others)}, which is not read)" if others else ""
    raise InvalidModelError(f"{path}: no weights: expected {SAFETENSORS} or {TORCH_BIN}{extra}")


def read_state_file(file: Path) -> dict[str, np.ndarray]:
    """The tensors of one weight file: safetensors, or a pytorch_model.bin through the restricted reader."""
    if file.suffix == ".safetensors":
        return load_file(file)
    return read_torch_checkpoint(file)


def read_state(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the folder's weights as numpy, under the names in the files."""
    out: dict[str, np.ndarray] = {}
    for file in weight_files(path):
        out.update(read_state_file(file))
    return out


def canonical_files(source: Path) -> list[Path]:
    """The files of a canonical folder that make the model: config, weights, head, tokenizer."""
    names = ("config.json", HEAD_FILE, SPEC_FILE, SAFETENSORS_INDEX, TORCH_INDEX, *TOKENIZER_FILES)
    return [source / n for n in names if (source / n).is_file()] + weight_files(source)


def copy_canonical(source: Path, out: Path) -> None:
    """Copy a canonical folder's files (and only those) to `out`, atomically; a
    pytorch_model.bin (through the restricted reader) becomes model.safetensors."""
    pickled = weight_files(source)[0].suffix == ".bin"
    with atomic_dir(out) as tmp:
        for file in canonical_files(source):
            if not (pickled and (file.suffix == ".bin" or file.name == TORCH_INDEX)):
                shutil.copy2(file, tmp / file.name)
        if pickled:
            save_file(read_state(source), tmp / ENCODER_FILE, metadata={"format": "pt"})
