"""Read PyTorch checkpoints (`pytorch_model.bin`) and PaddlePaddle state dicts
(`model_state.pdparams`) into numpy without running their pickle.

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

A `.pdparams` written by ``paddle.save`` (PaddleNLP's ``save_pretrained`` default)
is one plain pickle of a dict: name -> numpy array, each pickled by numpy itself
(``numpy._core.multiarray._reconstruct(numpy.ndarray, (0,), b"b")`` then a BUILD
with (version, shape, ``numpy.dtype(code)``, fortran order, raw bytes); numpy 1.x
writes ``numpy.core.multiarray``), plus an entry ``StructuredToParameterName@@``
mapping structured names to parameter names (str -> str). Measured with
paddlepaddle 3.3.1 and numpy 2: those three globals and nothing else.
`read_paddle_state` admits exactly those globals, builds each array itself from
numeric dtypes and checked byte counts (no numpy callable from the pickle runs),
and accepts only str keys and arrays (and that name map) in the result.

>>> state = read_torch_checkpoint(Path("pytorch_model.bin"))   # doctest: +SKIP
>>> state["classifier.weight"].shape                            # doctest: +SKIP
(2, 768)
>>> read_paddle_state(Path("model_state.pdparams"))["bert.pooler.dense.weight"].shape  # doctest: +SKIP
(768, 768)
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
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


# --- PaddlePaddle's paddle.save pickles (model_state.pdparams) -------------------

# dtype codes numpy pickles (dtype.str without the byte order): numbers and bools only, never objects
_PADDLE_DTYPES = {
    "f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1",
}  # fmt: skip
_NAME_MAP = "StructuredToParameterName@@"  # paddle.save's structured name -> parameter name


class _NDArrayClass:  # what "numpy.ndarray" names inside the pickle: a marker, nothing callable
    pass


class _Dtype:
    """numpy.dtype(code, align, copy) followed by BUILD (byte order): a checked np.dtype."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(code, str) or code not in _PADDLE_DTYPES:
            raise pickle.UnpicklingError(f"dtype {code!r:.40} is not a numeric dtype")
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError("malformed dtype state")
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _Array:
    """numpy's _reconstruct(ndarray, (0,), b"b") followed by BUILD (shape, dtype, order, bytes)."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise pickle.UnpicklingError("malformed array state")
        _version, shape, dtype, fortran, data = state
        if not isinstance(dtype, _Dtype) or not isinstance(data, bytes) or not isinstance(fortran, bool):
            raise pickle.UnpicklingError("an array whose data is not raw bytes of a numeric dtype")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise pickle.UnpicklingError("an array with a malformed shape")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dtype.dtype.itemsize != len(data):
            raise pickle.UnpicklingError(
                f"an array of shape {list(shape)} {dtype.dtype} needs {count * dtype.dtype.itemsize} bytes, "
                f"the pickle holds {len(data)}"
            )
        flat = np.frombuffer(data, dtype=dtype.dtype)
        array = flat.reshape(shape, order="F" if fortran else "C")
        self.array = np.array(array, dtype=dtype.dtype.newbyteorder("="), order="C", copy=True)


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
    if cls is not _NDArrayClass or shape != (0,) or typecode != b"b":
        raise pickle.UnpicklingError("_reconstruct of anything but an empty numpy.ndarray")
    return _Array()


_PADDLE_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy 1
    ("numpy", "ndarray"): _NDArrayClass,
    ("numpy", "dtype"): _Dtype,
}


class _PaddleUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _PADDLE_ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: only numpy arrays and plain containers are read"
            )
        return found


def read_paddle_state(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``paddle.save`` state dict (``model_state.pdparams``), name -> array.

    Raises InvalidModelError for a file that is not such a pickle (truncated, a
    length field past its end) or whose pickle names anything but numpy arrays of
    numeric dtypes and plain containers; nothing from the file is imported or called.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidModelError(f"{path}: missing weight file") from None
    except OSError as e:
        raise InvalidModelError(f"{path}: cannot be read ({e})") from None
    try:
        # parse every opcode first (pickletools only parses): a length field past the end of the
        # file fails here, before the unpickler would allocate what it claims
        for _ in pickletools.genops(data):
            pass
    except Exception as e:  # pickletools raises ValueError for malformed or truncated input
        raise InvalidModelError(f"{path}: not a paddle.save pickle, or a truncated one ({e})") from None
    try:
        state = _PaddleUnpickler(io.BytesIO(data)).load()
    except Exception as e:  # the pickle is untrusted: every failure means "not a plain state dict"
        raise InvalidModelError(f"{path}: refused ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise InvalidModelError(f"{path}: not a state dict of named arrays")
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if (
            key == _NAME_MAP
            and isinstance(value, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            continue
        if not isinstance(key, str) or not isinstance(value, _Array) or value.array is None:
            raise InvalidModelError(f"{path}: not a state dict of named arrays (entry {key!r:.60})")
        out[key] = value.array
    return out
