"""Safetensors read/write in plain numpy.

The core reads weights without any framework, and checks every header field
before it trusts it: a corrupt or hostile file gets an InvalidModelError that
names the file, never a crash, a huge allocation or code execution. The format
is the public safetensors layout (8-byte little-endian header size, a JSON
header, then raw little-endian tensor bytes), so files written here load with
`safetensors.torch.load_file` and transformers, and the other way round.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .errors import InvalidModelError

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
