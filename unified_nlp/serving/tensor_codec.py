"""Tensors of the Open Inference Protocol v2 over REST: JSON ``data`` and Triton's binary
tensor data extension, in requests and responses.

Written by hand: client libraries (tritonclient) only build requests and read responses,
and no maintained library offers the server side of the binary extension. The format:
the body is a JSON header of ``Inference-Header-Content-Length`` bytes, then each tensor
that says ``parameters.binary_data_size`` as raw bytes, in order; a BYTES element is a
4-byte little-endian length and its bytes; numbers are little-endian, row-major.

>>> encode_bytes([b"ab", b""]).hex()
'02000000616200000000'
"""

from __future__ import annotations

import json
import struct

import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"
NUMERIC = {"FP32": np.dtype("<f4")}


class TensorError(ValueError):
    """A request whose tensors break the protocol (answered 400 with its message)."""


def encode_bytes(items: list[bytes]) -> bytes:
    """BYTES elements, each as a 4-byte little-endian length and its bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def decode_bytes(raw: bytes, name: str) -> list[bytes]:
    items, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise TensorError(f"input '{name}': binary BYTES data ends inside an element's length")
        (size,) = struct.unpack_from("<I", raw, at)
        if at + 4 + size > len(raw):
            raise TensorError(f"input '{name}': binary BYTES element of {size} bytes runs past the data")
        items.append(raw[at + 4 : at + 4 + size])
        at += 4 + size
    return items


def split_body(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """The JSON header of a request and the binary data after it."""
    if header_length is None:
        head, rest = body, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise TensorError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 <= size <= len(body):
            raise TensorError(f"{HEADER_LENGTH} {size} is outside the body's {len(body)} bytes")
        head, rest = body[:size], body[size:]
    try:
        header = json.loads(head)
    except (ValueError, UnicodeDecodeError) as e:
        raise TensorError(f"the request is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise TensorError("the request must be a JSON object")
    return header, rest


def _flat(data, name: str) -> list:
    out = []
    for item in data if isinstance(data, list) else [data]:
        out.extend(_flat(item, name) if isinstance(item, list) else [item])
    return out


def read_bytes_inputs(header: dict, binary: bytes) -> dict[str, list[bytes]]:
    """Every input of a request as its BYTES elements, binary data taken in order."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise TensorError("the request has no 'inputs' list")
    out, at = {}, 0
    for tensor in inputs:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise TensorError("every input needs a 'name'")
        name = tensor["name"]
        if tensor.get("datatype") != "BYTES":
            raise TensorError(f"input '{name}': datatype must be BYTES (texts), got {tensor.get('datatype')!r}")
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or at + size > len(binary):
                raise TensorError(f"input '{name}': binary_data_size {size!r} runs past the request body")
            items, at = decode_bytes(binary[at : at + size], name), at + size
        elif "data" in tensor:
            items = [_as_bytes(item, name) for item in _flat(tensor["data"], name)]
        else:
            raise TensorError(f"input '{name}' has neither 'data' nor binary_data_size")
        check_shape(tensor.get("shape"), len(items), name)
        out[name] = items
    return out


def _as_bytes(item, name: str) -> bytes:
    if not isinstance(item, str):
        raise TensorError(f"input '{name}': BYTES data must be strings, got {type(item).__name__}")
    return item.encode("utf-8")


def check_shape(shape, count: int, name: str) -> None:
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise TensorError(f"input '{name}': shape must be a list of non-negative integers, got {shape!r}")
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise TensorError(f"input '{name}': shape must be [N] or [N, 1] (one text per row), got {shape}")
    if shape[0] != count:
        raise TensorError(f"input '{name}': shape {shape} holds {shape[0]} texts, the data {count}")


def output_tensor(name: str, value: np.ndarray | list[bytes], binary: bool) -> tuple[dict, bytes]:
    """An output's JSON entry and its binary data (empty when sent as JSON ``data``)."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value, dtype=NUMERIC["FP32"])
        entry = {"name": name, "datatype": "FP32", "shape": list(array.shape)}
        raw, data = array.tobytes(), array.ravel().tolist()
    else:
        entry = {"name": name, "datatype": "BYTES", "shape": [len(value)]}
        raw, data = encode_bytes(value), [item.decode("utf-8") for item in value]
    if binary:
        entry["parameters"] = {"binary_data_size": len(raw)}
        return entry, raw
    entry["data"] = data
    return entry, b""


def response_body(header: dict, blobs: list[bytes]) -> tuple[bytes, dict[str, str]]:
    """The body of a response and its extra headers (the JSON length when binary data follows)."""
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if not any(blobs):
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
