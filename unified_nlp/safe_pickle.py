"""Read PyTorch checkpoints (`pytorch_model.bin`) into numpy without running their pickle.

A `.bin` written by ``torch.save`` is a zip archive: ``<name>/data.pkl`` (a pickle
describing the tensors) and ``<name>/data/<key>`` (each storage's raw bytes). A
pickle can name any importable callable and call it, so a plain ``pickle.load``
of a downloaded checkpoint runs whatever its author wanted. torch's own
``weights_only=True`` loader admits only tensor rebuilding and plain containers;
this reader applies the same rule, but builds numpy arrays, so the core (which
imports no framework) and every backend read the same weights. Written here
because no maintained library reads torch's format without torch.

Anything else in the pickle (a global outside the allow-list, a storage that
points past its data) raises InvalidModelError naming the file; nothing from the
file is ever imported or called.

>>> state = read_torch_checkpoint(Path("pytorch_model.bin"))   # doctest: +SKIP
>>> state["classifier.weight"].shape                            # doctest: +SKIP
(2, 768)
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidModelError

# torch storage class -> numpy dtype of its bytes (little-endian, as torch writes on every platform we meet)
_STORAGES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # widened to float32 below
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_MAX_PICKLE = 64 * 1024 * 1024  # a state dict's description, not its data: real ones are well under 1 MB


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGES[name]


class _Storage:
    __slots__ = ("array", "bfloat16")

    def __init__(self, array: np.ndarray, bfloat16: bool) -> None:
        self.array = array
        self.bfloat16 = bfloat16


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    flat = storage.array
    if any(s < 0 for s in size + stride) or offset < 0:
        raise pickle.UnpicklingError("a tensor with a negative size, stride or offset")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if all(size) and last >= len(flat):
        raise pickle.UnpicklingError(f"a tensor of size {list(size)} reaches past its storage of {len(flat)} elements")
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=size, strides=tuple(s * flat.itemsize for s in stride), writeable=False
    )
    array = np.array(view, copy=True)
    if storage.bfloat16:  # bfloat16 is the top half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _rebuild_parameter(data: np.ndarray, requires_grad: bool = False, hooks: Any = None, *_: Any) -> np.ndarray:
    return data


# (module, name) -> what the pickle gets instead; nothing else can be named
_ALLOWED: dict[tuple[str, str], Callable[..., Any] | _StorageType] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGES},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive, self._root = archive, root
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only tensors and plain containers are read")
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise pickle.UnpicklingError("malformed storage reference")
        if key not in self._storages:
            member = f"{self._root}/data/{key}"
            try:
                info = self._archive.getinfo(member)
            except KeyError:
                raise pickle.UnpicklingError(f"storage {key!r} is missing from the archive") from None
            if info.file_size != numel * kind.dtype.itemsize:
                raise pickle.UnpicklingError(
                    f"storage {key!r} holds {info.file_size} bytes, the pickle says {numel} x {kind.dtype.itemsize}"
                )
            raw = self._archive.read(member)
            self._storages[key] = _Storage(np.frombuffer(raw, dtype=kind.dtype), kind.name == "BFloat16Storage")
        return self._storages[key]


def read_torch_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save`` zip checkpoint as numpy arrays, name -> array.

    Raises InvalidModelError for a file that is not such an archive, or whose pickle
    names anything but tensors, storages and plain containers.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise InvalidModelError(f"{path}: missing weight file") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise InvalidModelError(
            f"{path}: not a PyTorch zip checkpoint ({e}); files from torch < 1.6 or plain pickles are never "
            "loaded: re-save the model with a current torch or as safetensors"
        ) from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise InvalidModelError(f"{path}: expected one <name>/data.pkl in the archive, found {len(pickles)}")
        info = archive.getinfo(pickles[0])
        if info.file_size > _MAX_PICKLE:
            raise InvalidModelError(f"{path}: its pickle is {info.file_size} bytes, over {_MAX_PICKLE}")
        root = pickles[0].split("/")[0]
        try:
            state = _Unpickler(archive.read(pickles[0]), archive, root).load()
        except InvalidModelError:
            raise
        except Exception as e:  # the pickle is untrusted: every failure means "not a plain state dict"
            raise InvalidModelError(f"{path}: refused ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()
    ):
        raise InvalidModelError(f"{path}: not a state dict of named tensors")
    return dict(state)
