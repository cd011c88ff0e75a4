"""Safetensors read/write in plain numpy, and atomic writes of files and folders.

The core reads weights without any framework, and checks every header field
before it trusts it: a corrupt or hostile file gets an InvalidModelError that
names the file, never a crash, a huge allocation or code execution. The format
is the public safetensors layout (8-byte little-endian header size, a JSON
header, then raw little-endian tensor bytes), so files written here load with
`safetensors.torch.load_file` and transformers, and the other way round.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from .errors import InvalidModelError, NotWritableError

_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's own limit


def read_header(path: str | os.PathLike) -> dict[str, dict]:
    """The tensor table of a safetensors file (name -> dtype, shape, data_offsets),
    validated against the file's size. Reads only the header."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise InvalidModelError(f"{path}: not a safetensors file (only {size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > min(_MAX_HEADER, size - 8):
                raise InvalidModelError(
                    f"{path}: safetensors header claims {n} bytes but the file has {size}; "
                    "the file is truncated or not safetensors"
                )
            raw = f.read(n)
    except FileNotFoundError:
        raise InvalidModelError(f"{path}: missing weight file") from None
    except IsADirectoryError:
        raise InvalidModelError(f"{path}: expected a safetensors file, found a folder") from None
    try:
        table = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidModelError(f"{path}: safetensors header is not valid JSON ({e})") from None
    if not isinstance(table, dict):
        raise InvalidModelError(f"{path}: safetensors header is not a JSON object")
    table.pop("__metadata__", None)
    data_size = size - 8 - n
    for name, entry in table.items():
        _check_entry(path, name, entry, data_size)
    return table


def _check_entry(path: Path, name: str, entry: object, data_size: int) -> None:
    if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES:
        raise InvalidModelError(f"{path}: tensor {name!r} has an unsupported or missing dtype")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise InvalidModelError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data_size
    ):
        raise InvalidModelError(
            f"{path}: tensor {name!r} points outside the file (offsets {offsets!r}, "
            f"{data_size} data bytes); the file is truncated or corrupt"
        )
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(_DTYPES[entry["dtype"]]).itemsize
    if offsets[1] - offsets[0] != expected:
        raise InvalidModelError(
            f"{path}: tensor {name!r} of shape {shape} needs {expected} bytes, "
            f"the file gives it {offsets[1] - offsets[0]}"
        )


def load_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as numpy arrays (copies, native byte order).

    >>> save_file({"w": np.ones((2, 2), np.float32)}, "/tmp/w.safetensors")
    >>> load_file("/tmp/w.safetensors")["w"].shape
    (2, 2)
    """
    path = Path(path)
    table = read_header(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        base = 8 + n
        out = {}
        for name, entry in table.items():
            start, end = entry["data_offsets"]
            f.seek(base + start)
            buf = f.read(end - start)
            dtype = np.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
            out[name] = np.frombuffer(buf, dtype=dtype).reshape(entry["shape"]).astype(dtype.newbyteorder("="))
    return out


def save_file(
    tensors: Mapping[str, np.ndarray], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write tensors as a safetensors file, atomically (temporary file, then rename)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        if array.dtype not in _NAMES:
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} cannot be stored in safetensors")
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": _NAMES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # align the data section, as the reference writer does
    with atomic_file(path) as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


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


def check_writable(path: str | os.PathLike) -> None:
    """Raise NotWritableError now, before long work, when a folder could not be
    written at `path` later (its nearest existing ancestor is a file or read-only)."""
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise NotWritableError(f"cannot write a folder at {path}: a file is there")
    ancestor = next(p for p in path.parents if p.exists())
    if not ancestor.is_dir():
        raise NotWritableError(f"cannot write {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise NotWritableError(f"cannot write {path}: {ancestor} is not writable")


def _out_of_space(e: BaseException) -> bool:
    return isinstance(e, OSError) and not isinstance(e, NotWritableError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def not_writable(path: Path, e: OSError) -> NotWritableError:
    """A one-line error for a write the file system refused (read-only, a path under a
    file, a full disk); names UNIFIED_NLP_HOME when `path` lies in the model store."""
    from .models import store_dir  # models imports this module

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
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
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
