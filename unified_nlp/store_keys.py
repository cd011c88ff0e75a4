"""Keys for what the store derives from models: the bytes of the files a model is made of.

A conversion (``converted/<backend>/<key>``) or an import (``imported/<key>``) is
keyed by `content_key`, so a model saved again or copied reuses it and a changed
byte makes a new one. Keys once computed are kept in the store (``KEYS_FILE``)
under the files' stat stamps, so a large model is not hashed on every load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .atomic import atomic_file
from .folder import SPEC_FILE, canonical_files, read_json
from .store import note_use
from .store_paths import store_dir

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
