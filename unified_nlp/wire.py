"""The worker pipe's message format: a JSON header plus raw numpy buffers.

No pickle crosses the pipe: only JSON values, numpy arrays of plain dtypes,
Encodings and ModelOutputs, so neither side can be made to run code by the other.

Frame: 4-byte big-endian header length, UTF-8 JSON header, then the arrays'
bytes back to back (their dtype, shape and byte size are in the header).
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

import numpy as np

from .protocols import Encoding, ModelOutput

_ALLOWED = {"bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64"}
MAX_HEADER = 64 * 1024 * 1024
MAX_ARRAY = 8 * 1024**3


class PipeClosed(EOFError):
    """The other side closed the pipe (or died)."""


class PipeTimeout(TimeoutError):
    """Nothing arrived before the deadline."""


def encode(obj: Any) -> bytes:
    """Serialise `obj` to one frame."""
    buffers: list[bytes] = []

    def walk(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            if x.dtype.name not in _ALLOWED:
                raise TypeError(f"arrays of dtype {x.dtype} cannot cross the worker pipe")
            data = np.ascontiguousarray(x).tobytes()
            buffers.append(data)
            return {"__nd__": [x.dtype.name, list(x.shape), len(data)]}
        if isinstance(x, Encoding):
            return {"__encoding__": walk(x.to_dict())}
        if isinstance(x, ModelOutput):
            return {"__output__": walk(x.to_dict())}
        if isinstance(x, dict):
            return {str(k): walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if isinstance(x, (np.integer, np.floating, np.bool_)):
            return x.item()
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, os.PathLike):
            return os.fspath(x)
        raise TypeError(f"{type(x).__name__} cannot cross the worker pipe")

    header = json.dumps(walk(obj), allow_nan=True).encode("utf-8")
    return b"".join([struct.pack(">I", len(header)), header, *buffers])


def decode(header: Any, payload: memoryview) -> Any:
    offset = 0

    def walk(x: Any) -> Any:
        nonlocal offset
        if isinstance(x, dict):
            if "__nd__" in x:
                dtype, shape, size = x["__nd__"]
                if dtype not in _ALLOWED or not 0 <= size <= MAX_ARRAY:
                    raise ValueError(f"refusing array of dtype {dtype!r}, {size} bytes")
                array = np.frombuffer(payload[offset : offset + size], dtype=dtype).reshape(shape).copy()
                offset += size
                return array
            if "__encoding__" in x:
                return Encoding.from_dict(walk(x["__encoding__"]))
            if "__output__" in x:
                return ModelOutput(**walk(x["__output__"]))
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(header)


def _payload_size(x: Any) -> int:
    if isinstance(x, dict):
        if "__nd__" in x:
            return int(x["__nd__"][2])
        return sum(_payload_size(v) for v in x.values())
    if isinstance(x, list):
        return sum(_payload_size(v) for v in x)
    return 0


def wait_readable(fd: int, timeout: float | None = None) -> None:
    """Block until `fd` has data or is closed; PipeTimeout after `timeout` seconds.

    Nothing is consumed, so an exception raised while waiting here (Ctrl-C)
    leaves the stream at a frame boundary.
    """
    if not select.select([fd], [], [], None if timeout is None else max(0.0, timeout))[0]:
        raise PipeTimeout()


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait_readable(fd, deadline - time.monotonic())  # bytes already there are read even past it
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise PipeClosed()
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int, timeout: float | None = None) -> Any:
    """Read one frame from file descriptor `fd`; PipeTimeout after `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    (n,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if n > MAX_HEADER:
        raise ValueError(f"worker message header of {n} bytes is too large")
    header = json.loads(_read_exact(fd, n, deadline).decode("utf-8"))
    payload = memoryview(_read_exact(fd, _payload_size(header), deadline))
    return decode(header, payload)


def write_message(fd: int, obj: Any) -> None:
    write_frame(fd, encode(obj))


def write_frame(fd: int, frame: bytes) -> None:
    """Write one frame made by `encode`."""
    data = memoryview(frame)
    while data:
        written = os.write(fd, data)
        data = data[written:]
