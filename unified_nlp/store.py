"""The model store: what unified_nlp derives from models and keeps for reuse.

It lives at $UNIFIED_NLP_HOME, else ~/.cache/unified_nlp (`store_paths.store_dir`). Each
subfolder holds one kind of entry, keyed by the bytes of what it was made from
(`store_keys.content_key`): ``models/`` (the default model's canonical folder),
``converted/<backend>/`` (a canonical folder in a backend's native form),
``imported/`` (native PaddleNLP / TF Hub folders made canonical). Listing and
clearing treat every subfolder alike: an entry is a folder that holds files.

Each use of an entry refreshes its folder's modification time (its last use), and a
hidden ``.<key>.origin`` file beside it names what it was made from. Clearing
renames an entry out of the way in one step before it removes the files, so no
process ever finds half an entry, and it leaves alone the temporary folders of
writers still running. Loads hold a shared lock on the store (`in_use`), and
clearing waits for them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .atomic import atomic_file, process_alive
from .errors import InvalidInputError, NotWritableError, UnifiedNLPError
from .store_paths import store_dir

KNOWN_KINDS = ("models", "converted", "imported")
MARKER = ".unified_nlp_store"  # says that a folder is a store, so `clear` may delete in it
LOCK = ".lock"
_MAX_DEPTH = 3  # converted/<backend>/<key> is the deepest entry
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One folder of the store: kind (its parent, relative to the store), key (its
    name), size in bytes, last use (seconds since the epoch) and its origin."""

    path: Path
    kind: str
    key: str
    size: int
    last_used: float
    source: str | None
    model: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "key": self.key,
            "size": self.size,
            "last_used": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_used)),
            "source": self.source,
            "model": self.model,
            "path": str(self.path),
        }


def _origin_file(entry: Path) -> Path:
    return entry.parent / f".{entry.name}.origin"


def note_use(entry: Path, source: str | os.PathLike | None = None) -> None:
    """Record that `entry` (a store folder, made or not yet) is used now, made from
    `source`. Never fails: a read-only store is still usable."""
    with contextlib.suppress(OSError, UnifiedNLPError):
        if entry.is_dir():
            os.utime(entry)
        if source is None:
            return
        origin = _origin_file(entry)
        record = {"source": str(source)}
        if origin.is_file() and _read_origin(origin) == record["source"]:
            return
        entry.parent.mkdir(parents=True, exist_ok=True)
        _mark(store_dir())
        with atomic_file(origin) as f:
            f.write((json.dumps(record) + "\n").encode("utf-8"))


def _mark(root: Path) -> None:
    marker = root / MARKER
    if not marker.exists():
        marker.write_text("A unified_nlp model store (see `unified-nlp cache list`).\n", encoding="utf-8")


def _read_origin(origin: Path) -> str | None:
    try:
        value = json.loads(origin.read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _is_entry(folder: Path) -> bool:
    return any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir())


def _walk(folder: Path, depth: int) -> Iterator[Path]:
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        if child.name.startswith("."):  # partial folders of writers, sidecars
            continue
        if _is_entry(child) or depth >= _MAX_DEPTH:
            yield child
        else:
            yield from _walk(child, depth + 1)


def _describe(folder: Path) -> str | None:
    """'bert, 2 labels' from an entry's unified_nlp.json or config.json, when it has them."""
    spec, config = {}, {}
    for name, into in (("unified_nlp.json", spec), ("config.json", config)):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            data = json.loads((folder / name).read_text(encoding="utf-8"))
            into.update(data if isinstance(data, dict) else {})
    arch = spec.get("architecture") or config.get("model_type")
    labels = spec.get("labels") or list((config.get("id2label") or {}).values())
    if not arch:
        return None
    return f"{arch}, {len(labels)} labels" if labels else str(arch)


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry of the store, in every subfolder, sorted by kind and key.

    >>> [e.kind for e in entries()]  # doctest: +SKIP
    ['converted/tfhub', 'models']
    """
    root = (root or store_dir()).absolute()
    if not root.is_dir():
        return []
    found = []
    for path in _walk(root, 1):
        if path.parent == root:  # a folder of files at the top: its own kind
            kind = path.name
        else:
            kind = path.parent.relative_to(root).as_posix()
        origin = _read_origin(_origin_file(path))
        found.append(Entry(path, kind, path.name, _size(path), path.stat().st_mtime, origin, _describe(path)))
    return sorted(found, key=lambda e: (e.kind, e.key))


@contextlib.contextmanager
def in_use(shared: bool = True, timeout: float = 60.0) -> Iterator[None]:
    """Hold the store's lock: shared while a model loads or converts from the store,
    exclusive while entries are removed. A store that cannot hold a lock file (read
    only) is not locked: nothing can be removed from it either."""
    import fcntl

    root = store_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise NotWritableError(
                        f"the model store {root} is in use by another process (a model is loading); try again"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


def holding(function: Callable[..., T]) -> Callable[..., T]:
    """Decorator: `function` runs under the store's shared lock (`in_use`), so that
    `clear` never removes an entry that a load or a conversion is reading or writing."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> T:
        with in_use():
            return function(*args, **kwargs)

    return run


def _select(found: list[Entry], root: Path, keys: Iterable[str]) -> list[Entry]:
    chosen: dict[Path, Entry] = {}
    for key in keys:
        candidate = Path(key).expanduser()
        if "/" in key or candidate.is_absolute():  # kind/key or a path: it must lie in the store
            target = (candidate if candidate.is_absolute() else root / candidate).resolve()
            if root.resolve() not in target.parents:
                raise InvalidInputError(f"{key}: not an entry of the model store {root}; nothing was removed")
            matches = [e for e in found if e.path.resolve() == target]
        else:  # a key (the same key in several kinds names them all), or a unique prefix of one
            matches = [e for e in found if e.key == key] or [e for e in found if key and e.key.startswith(key)]
        if not matches:
            raise InvalidInputError(
                f"{key}: no such entry in the model store {root} (see `unified-nlp cache list`); nothing was removed"
            )
        if len({e.key for e in matches}) > 1:
            raise InvalidInputError(f"{key}: the start of {len(matches)} keys; give more of it. Nothing was removed")
        chosen.update((e.path, e) for e in matches)
    return list(chosen.values())


def _is_store(root: Path) -> bool:
    if (root / MARKER).is_file():
        return True
    tops = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return all(name in KNOWN_KINDS for name in tops)


def clear(keys: Iterable[str] = (), older_than_days: float | None = None, root: Path | None = None) -> list[Entry]:
    """Remove entries of the store (all, those named by `keys` — a key, a unique key
    prefix, or kind/key — or those last used more than `older_than_days` ago) and
    return them. Each entry is first renamed aside in one step, then deleted.

    >>> clear(older_than_days=30)  # doctest: +SKIP
    [Entry(kind='converted/tfhub', key='60e54b7ec03f7905', ...)]
    """
    root = (root or store_dir()).absolute()
    keys = list(keys)
    if older_than_days is not None and older_than_days < 0:
        raise InvalidInputError(f"--older-than must be >= 0 days, got {older_than_days}")
    if not root.is_dir():
        if keys:
            raise InvalidInputError(f"the model store {root} does not exist; nothing was removed")
        return []
    if not _is_store(root):
        raise InvalidInputError(
            f"{root} does not look like a unified_nlp model store (no {MARKER} file, and folders other than "
            f"{', '.join(KNOWN_KINDS)}); nothing was removed"
        )
    with in_use(shared=False):
        found = entries(root)
        chosen = _select(found, root, keys) if keys else found
        if older_than_days is not None:
            limit = time.time() - older_than_days * 86400
            chosen = [e for e in chosen if e.last_used < limit]
        removed = []
        for e in chosen:
            aside = e.path.parent / f".{e.key}.partial-{os.getpid()}-removing"
            try:
                os.rename(e.path, aside)
            except OSError as err:
                raise NotWritableError(f"cannot remove {e.path}: {err.strerror or err}") from None
            shutil.rmtree(aside, ignore_errors=True)
            with contextlib.suppress(OSError):
                _origin_file(e.path).unlink()
            removed.append(e)
        _remove_leftovers(root)
    return removed


def _remove_leftovers(root: Path) -> None:
    """Partial folders of writers that died, and origin files without their entry."""
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        for name in list(dirnames):
            if name.startswith(".") and ".partial-" in name:
                dirnames.remove(name)
                pid = name.rsplit(".partial-", 1)[1].split("-", 1)[0]
                if pid.isdigit() and not process_alive(int(pid)):
                    shutil.rmtree(here / name, ignore_errors=True)
        for origin in here.glob(".*.origin"):
            if not (here / origin.name[1 : -len(".origin")]).is_dir():
                with contextlib.suppress(OSError):
                    origin.unlink()


def human_size(n: int) -> str:
    """Bytes as a short figure: 90.9 MB."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
