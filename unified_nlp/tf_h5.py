"""A Hugging Face folder whose weights are ``tf_model.h5``: what transformers 4's TF classes
(``TFBertForSequenceClassification.save_pretrained`` ...) wrote, read in numpy with h5py and
written out once as the canonical folder (model.safetensors under transformers' torch names).

transformers 5 has no TensorFlow classes, so no current transformers reads these files. Two
layouts exist, both read here:

- one file, Keras ``save_weights``: the root attribute ``layer_names`` lists the model's
  layers; each layer's group has the attribute ``weight_names`` (the TF variable names, e.g.
  ``tf_bert_for_sequence_classification/bert/encoder/layer_._0/attention/self/query/kernel:0``),
  and each weight is the dataset at that path inside the layer's group;
- shards, transformers' own writer (``tf_model-00001-of-00002.h5`` ... and
  ``tf_model.h5.index.json``): the root attribute ``layer_names`` lists dataset paths, the
  variable names without the model's own name scope (``bert/embeddings/...``).

A TF name becomes transformers' torch name by transformers' own rule
(``modeling_tf_pytorch_utils.convert_tf_weight_name_to_pt_weight_name`` in 4.x, rewritten in
`torch_name` because transformers 5 dropped it): ``layer_._0`` is ``layer.0``, a Dense
``kernel`` is the transposed ``weight``, ``embeddings``/``gamma`` are ``weight``, ``beta`` is
``bias``. The names are then those of the family's rows (unified_nlp/architectures), which
fix every shape. h5py is the maintained HDF5 reader; only its plain-file features are used:
links, external storage and virtual datasets, which could read outside the folder, are refused.

>>> torch_name("tf_bert_for_sequence_classification/bert/encoder/layer_._0/output/dense/kernel:0")
('bert.encoder.layer.0.output.dense.weight', True)
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .architectures import Architecture
from .atomic import atomic_dir
from .errors import BackendNotInstalledError, InvalidModelError
from .folder import TOKENIZER_FILES, read_json, safe_join
from .folder_spec import check, read_config
from .weights import save_file

TF_WEIGHTS = "tf_model.h5"
TF_INDEX = "tf_model.h5.index.json"
# TF's names for what torch calls weight and bias (Dense kernels are stored [in, out]: transposed)
_LAST = {"kernel": "weight", "embeddings": "weight", "gamma": "weight", "beta": "bias"}


def is_tf_h5(path: Path) -> bool:
    """A folder with config.json and TF weights (tf_model.h5, or its shards' index)."""
    return (path / "config.json").is_file() and ((path / TF_WEIGHTS).is_file() or (path / TF_INDEX).is_file())


def weight_files(path: Path) -> list[Path]:
    """tf_model.h5, or the shards its index names (never outside the folder)."""
    if (path / TF_WEIGHTS).is_file():
        return [safe_join(path, TF_WEIGHTS, path / TF_WEIGHTS)]
    weight_map = read_json(path / TF_INDEX).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise InvalidModelError(f"{path / TF_INDEX}: no 'weight_map'")
    files = [safe_join(path, name, path / TF_INDEX) for name in sorted(set(weight_map.values()))]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InvalidModelError(f"{path / TF_INDEX}: shard(s) missing: {', '.join(missing)}")
    return files


def torch_name(tf_name: str, scoped: bool = True) -> tuple[str, bool]:
    """transformers' torch name of a TF variable and whether its matrix is transposed.
    `scoped`: the name starts with the Keras model's own scope (one-file layout), dropped."""
    name = tf_name.removesuffix(":0")
    name = re.sub(r"/[^/]*___([^/]*)/", r"/\1/", name)  # '$1___$2' is $2, as transformers has it
    parts = [p for p in name.replace("_._", "/").split("/") if p]
    if scoped and len(parts) > 1:
        parts = parts[1:]
    if not parts:
        raise InvalidModelError(f"a weight without a name ({tf_name!r})")
    last = parts[-1]
    parts[-1] = _LAST.get(last, last)
    return ".".join(parts), last == "kernel"


def describe(path: Path) -> dict[str, Any]:
    """What inspect reports of the folder's weights (read from file names only)."""
    files = weight_files(path)
    weights = TF_WEIGHTS if len(files) == 1 and files[0].name == TF_WEIGHTS else f"{TF_INDEX} ({len(files)} shards)"
    return {"convertible": True, "weights": weights}


def to_canonical(path: Path, out: Path) -> None:
    """Write the canonical classifier folder of the tf_model.h5 folder `path` at `out`,
    atomically: model.safetensors under transformers' torch names, config.json, the tokenizer files.

    >>> to_canonical(Path("bert-tf"), Path("bert-hf"))   # doctest: +SKIP
    """
    path, out = Path(path), Path(out)
    config, arch = read_config(path)
    tensors = read_weights(path, config, arch)
    tokenizer = read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").is_file() else None
    with atomic_dir(out) as tmp:
        for name in TOKENIZER_FILES:
            if (path / name).is_file():
                shutil.copy2(path / name, tmp / name)
        if tokenizer is not None and "model_input_names" not in tokenizer and arch.dims(config)["types"] > 1:
            # transformers 4's tokenizers, which this model ran with, gave a pair's second text segment 1
            # in every family with token types; transformers 5's AlbertTokenizer stopped (no token_type_ids)
            tokenizer["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
            (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer, indent=2) + "\n", encoding="utf-8")
        (tmp / "config.json").write_text(json.dumps(_torch_config(config), indent=2) + "\n", encoding="utf-8")
        save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
        check(tmp)


def _torch_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """config.json as transformers' torch classes read it: older TF writers named the TF class."""
    out = dict(config)
    names = out.get("architectures")
    if isinstance(names, list):
        out["architectures"] = [n[2:] if isinstance(n, str) and n.startswith("TF") else n for n in names]
    return out


def read_weights(path: Path, config: Mapping[str, Any], arch: Architecture) -> dict[str, np.ndarray]:
    """The family's tensors from the folder's h5 file(s), under transformers' torch names,
    each checked against the shape config.json implies before it is read (a weight the
    family does not have is left unread, as transformers leaves it)."""
    h5py = _h5py()
    with ExitStack() as files:
        found: dict[str, tuple[Any, bool, Path]] = {}
        for file in weight_files(path):
            with _guard(file):
                f = files.enter_context(h5py.File(file, "r"))
                for name, (dataset, transpose) in _datasets(f, file).items():
                    if name in found:
                        raise InvalidModelError(f"{file}: two weights map to {name!r}")
                    found[name] = (dataset, transpose, file)
        expected = _expected(found, config, arch, path)
        missing = sorted(n for n in expected if n not in found and not arch.is_optional(n))
        if missing:
            raise InvalidModelError(
                f"{path}: missing {len(missing)} tensor(s) in the TF weights, e.g. {', '.join(missing[:3])}"
            )
        out = {}
        for name, (dataset, transpose, file) in found.items():
            if name in expected:
                with _guard(file):
                    out[name] = _read(dataset, transpose, expected[name], file, name)
        return out


@contextmanager
def _guard(file: Path) -> Iterator[None]:
    """h5py's OSError (a truncated file, not HDF5 at all, a block that cannot be read) as a clear error."""
    try:
        yield
    except OSError as e:
        raise InvalidModelError(f"{file}: not a readable HDF5 file, truncated or corrupt ({e})") from None


def _torch_shape(dataset, transpose: bool) -> tuple[int, ...]:
    return tuple(dataset.shape)[::-1] if transpose else tuple(dataset.shape)


def _expected(found: Mapping[str, tuple], config, arch: Architecture, path: Path) -> dict[str, tuple[int, ...]]:
    """The torch shapes of the encoder and, when the weights have a classifier, of the head
    (its output count read from the classifier's own shape)."""
    try:
        expected = dict(arch.encoder_shapes(config))
        head = arch.head_shapes(config, 1)
    except ValueError as e:
        raise InvalidModelError(f"{path / 'config.json'}: {e}") from None
    classifier = [n for n in head if n.endswith("weight")][-1]  # the layer that gives the logits
    if classifier in found:
        dataset, transpose = found[classifier][:2]
        shape = _torch_shape(dataset, transpose)
        expected.update(arch.head_shapes(config, shape[0] if len(shape) == 2 else 0))
    return expected


def _h5py():
    if importlib.util.find_spec("h5py") is None:
        raise BackendNotInstalledError("reading tf_model.h5 needs h5py: pip install h5py")
    import h5py

    return h5py


def _attribute(node, name: str, file: Path) -> list[str]:
    """A list of names from an attribute; Keras splits a long one into name0, name1, ..."""
    if name in node.attrs:
        values = list(node.attrs[name])
    else:
        values, k = [], 0
        while f"{name}{k}" in node.attrs:
            values += list(node.attrs[f"{name}{k}"])
            k += 1
        if not k:
            raise InvalidModelError(f"{file}: no {name!r} attribute: not a Keras or transformers TF weights file")
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _datasets(f, file: Path) -> dict[str, tuple[Any, bool]]:
    """torch name -> (h5py dataset, transpose) of every weight the file lists."""
    h5py = _h5py()
    out = {}
    for layer in _attribute(f, "layer_names", file):
        node = _get(f, layer, file)
        if isinstance(node, h5py.Dataset):  # transformers' shards: the name without the model's scope
            names = [(layer, node, False)]
        else:
            names = [(w, _get(node, w, file), True) for w in _attribute(node, "weight_names", file)]
        for tf_name, dataset, scoped in names:
            if not isinstance(dataset, h5py.Dataset):
                raise InvalidModelError(f"{file}: {tf_name!r} is not a dataset")
            name, transpose = torch_name(tf_name, scoped)
            if name in out:
                raise InvalidModelError(f"{file}: two weights map to {name!r}")
            out[name] = (dataset, transpose)
    return out


def _get(group, path: str, file: Path):
    """group[path], one level at a time, refusing links (external ones open other files;
    no transformers writer makes any) and external or virtual storage (bytes of other files)."""
    h5py = _h5py()
    node = group
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, h5py.Group) or part not in node:
            raise InvalidModelError(f"{file}: no weight {path!r} in the file")
        link = node.get(part, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise InvalidModelError(
                f"{file}: {path!r} is a {type(link).__name__}; links are refused (they can leave the file)"
            )
        node = node[part]
    if isinstance(node, h5py.Dataset) and (node.external or node.is_virtual):
        raise InvalidModelError(
            f"{file}: {path!r} keeps its data in other files (external or virtual storage): refused"
        )
    return node


def _read(dataset, transpose: bool, shape: tuple[int, ...], file: Path, name: str) -> np.ndarray:
    """A dataset as numpy (torch's orientation), its dtype and shape checked before any byte is read."""
    got = _torch_shape(dataset, transpose)
    if got != tuple(shape):
        raise InvalidModelError(f"{file}: {name!r} has shape {list(got)}, config.json implies {list(shape)}")
    if dataset.dtype.kind != "f":
        raise InvalidModelError(f"{file}: {name!r} has dtype {dataset.dtype}, expected floating point")
    array = np.asarray(dataset[()])
    return np.ascontiguousarray(array.T) if transpose else array
