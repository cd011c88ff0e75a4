"""Where a model runs: the device names `load_classifier(device=...)` accepts, normalised once.

A device is "cpu" or "cuda:N" (N >= 0) once parsed; "cuda" means "cuda:0", and Paddle's own
spelling ("gpu", "gpu:N") is read the same way. Each adapter maps the normalised name to its
framework's placement (a torch device, a TensorFlow device scope, a Paddle place, ONNX Runtime
execution providers) and lists in `BackendAdapter.devices` the ones usable here.

>>> parse("cuda"), parse("GPU:1"), parse(None)
('cuda:0', 'cuda:1', 'cpu')
>>> index("cuda:1")
1
"""

from __future__ import annotations

import re

from .errors import InvalidInputError

CPU = "cpu"
ACCEPTED = '"cpu", "cuda", "cuda:N" (N >= 0; Paddle\'s "gpu", "gpu:N" too)'
_FORM = re.compile(r"(cpu|cuda|gpu)(?::(\d+))?")


def parse(device: str | None) -> str:
    """The normalised name of `device` ("cpu" or "cuda:N"); None is "cpu". Anything else
    is an InvalidInputError listing the accepted forms."""
    if device is None:
        return CPU
    found = _FORM.fullmatch(device.strip().lower()) if isinstance(device, str) else None
    if found is None or (found.group(1) == CPU and found.group(2) is not None):
        raise InvalidInputError(f"device must be one of {ACCEPTED}, got {device!r}")
    if found.group(1) == CPU:
        return CPU
    return f"cuda:{int(found.group(2) or 0)}"


def index(device: str) -> int:
    """The accelerator index of a normalised "cuda:N" name."""
    return int(device.split(":", 1)[1])


def usable(count: int) -> tuple[str, ...]:
    """The devices of a machine with `count` accelerators the framework can use: "cpu", "cuda:0", ..."""
    return (CPU, *(f"cuda:{i}" for i in range(count)))
