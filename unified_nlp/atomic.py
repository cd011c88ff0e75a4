"""Atomic writes of files and folders: a reader sees the old version or the new one,
never half of one, and a failed or killed writer leaves nothing behind.

A file is written beside its target and renamed over it; a folder is built beside
its target and swapped in (one renameat2 exchange on Linux). Temporary folders of a
writer that was killed are removed by the next writer. A write the file system
refuses (read-only, a path under a file, a full disk) is a one-line NotWritableError.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import NotWritableError
from .store_paths import store_dir


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator:
    """Open a temporary file beside `path` for binary writing; rename it over
    `path` only if the block finishes without an exception."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise not_writable(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a saved model reads like any file
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _out_of_space(e):
            raise not_writable(path, e) from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; when the block succeeds it replaces
    `path` (an existing folder there is swapped out and removed only afterwards).
    On any failure the temporary folder is removed and `path` is left as it was.

    >>> with atomic_dir("/tmp/model") as tmp:
    ...     (tmp / "config.json").write_text("{}")
    """
    path = Path(path).absolute()
    if path.is_file():
        raise NotWritableError(f"cannot write a folder at {path}: a file is there")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-{os.getpid()}-", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result should read like any folder
    except OSError as e:
        raise not_writable(path, e) from None
    try:
        yield tmp
        _fsync_tree(tmp)
        try:
            _swap_in(tmp, path)
        except OSError as e:
            raise not_writable(path, e) from None
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if _out_of_space(e):
            raise not_writable(path, e) from None
        raise


def _swap_in(tmp: Path, path: Path) -> None:
    """Move the finished folder `tmp` to `path`, replacing what is there."""
    if path.exists():
        if _exchange(tmp, path):  # one atomic swap: no instant without a model at `path`
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-{os.getpid()}-old-", dir=path.parent))
        os.replace(path, old / "previous")
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old / "previous", path)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def check_writable(path: str | os.PathLike, *, file: bool = False) -> None:
    """Raise NotWritableError now, before long work, when a folder (with `file`, a file)
    could not be written at `path` later: something else is there, its nearest existing
    ancestor is a file, or that ancestor refuses a new file (read-only, /proc). The
    last is probed for real: a file is created there and removed.

    >>> check_writable("/proc/model")  # doctest: +SKIP
    NotWritableError: cannot write /proc/model: /proc refuses new files (No such file or directory)
    """
    path = Path(path).absolute()
    kind, other = ("file", "folder") if file else ("folder", "file")
    if path.exists() and path.is_dir() == file:
        raise NotWritableError(f"cannot write a {kind} at {path}: a {other} is there")
    ancestor = next(p for p in path.parents if p.exists())
    if not ancestor.is_dir():
        raise NotWritableError(f"cannot write {path}: {ancestor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise NotWritableError(f"cannot write {path}: {ancestor} refuses new files ({e.strerror or e})") from None


def _out_of_space(e: BaseException) -> bool:
    return isinstance(e, OSError) and not isinstance(e, NotWritableError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def not_writable(path: Path, e: OSError) -> NotWritableError:
    """A one-line error for a write the file system refused (read-only, a path under a
    file, a full disk); names UNIFIED_NLP_HOME when `path` lies in the model store."""
    reason = e.strerror or str(e)
    blocker = next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), None)
    if blocker is not None and blocker != path and not blocker.is_dir():
        reason = f"{blocker} is a file, not a folder"
    elif e.filename and Path(e.filename) != path:
        reason += f" ({e.filename})"
    store = store_dir().absolute()
    hint = ""
    if path == store or store in path.parents:
        hint = f"; the model store is {store}: set UNIFIED_NLP_HOME to a writable folder"
    return NotWritableError(f"cannot write {path}: {reason}{hint}")


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _remove_stale_partials(path: Path) -> None:
    """Remove temporary folders left beside `path` by a writer that was killed
    (their names carry the writer's pid; a live writer's folder is left alone)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.partial-*"):
        pid = stale.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (the writer named in a temporary folder's name)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
