"""ONNX Runtime adapter for unified_nlp (backend `onnxruntime`, aliases ort, onnx).

A canonical folder is exported once to ONNX (export.py: torch.onnx's dynamo exporter
on the torch model the huggingface backend builds, then ONNX Runtime's transformer
fusions where they keep the logits within 1e-5) into the model store
(``converted/onnxruntime/<key>``, keyed by the folder's bytes) and run from there by an
ONNX Runtime CPU session; the tokenizer is the core's (`tokenizers`). ``convert --to
onnxruntime`` writes the same folder: model.onnx, the tokenizer files and
unified_nlp.json, which plain ``onnxruntime.InferenceSession("model.onnx")`` runs.

This package registers itself through the ``unified_nlp.backends`` entry point (its
aliases through ``unified_nlp.aliases``); the core's registry lists it too, so that
``unified-nlp backends`` and the install hint know it when it is not installed.

>>> import unified_nlp as un
>>> clf = un.load_classifier("default", backend="ort")              # doctest: +SKIP
>>> un.convert("default", to="onnxruntime", out="minilm-onnx/")     # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  (a missing runtime fails here, at the adapter's import)

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    ONNX_EXPORT_FORMAT,
    SPEC_FILE,
    BackendAdapter,
    FastTokenizer,
    InvalidInputError,
    InvalidModelError,
    ModelSpec,
    atomic_dir,
    content_key,
    converted_dir,
    default_threads,
    notice,
    read_spec,
    store_dir,
)

from . import optimum_folder
from .export import EXPORT_VERSION, FORMAT, export
from .quantize import quantize
from .session import GPU_INSTALL, OrtModel, devices

__all__ = ["OnnxRuntimeBackend", "OrtModel", "export"]


def _current(folder: Path) -> dict[str, Any] | None:
    """unified_nlp.json of an export in the store made by this version, else None."""
    try:
        meta = read_spec(folder) if (folder / SPEC_FILE).is_file() else {}
    except InvalidModelError:
        return None
    ok = meta.get("format") == FORMAT and meta.get("export_version") == EXPORT_VERSION
    return meta if ok and (folder / meta.get("model_file", "model.onnx")).is_file() else None


def _variant(spec: ModelSpec) -> str:
    """What besides the folder's bytes changes the graph: a fresh head (its size and seed),
    the precision."""
    parts = []
    if spec.fresh_head:
        parts.append(f"fresh-head:{spec.num_labels}:{spec.seed}")
    if (spec.precision or "fp32") != "fp32":
        parts.append(spec.precision)
    return ":".join(parts)


def _quantized_dir(export_folder: Path, precision: str) -> Path:
    """Store folder of the `precision` form of an exported (not canonical) folder, keyed by its files' bytes."""
    from unified_nlp.backend_kit import note_use

    files = [f for f in export_folder.iterdir() if f.is_file()]
    folder = store_dir() / "converted" / "onnxruntime" / content_key(files, precision)
    note_use(folder, export_folder.absolute())
    return folder


def canonical_state(path: Path, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The weights an export of `path` computes with, under transformers' names, read in
    numpy (no torch): the folder's tensors plus what the core draws for it (a fresh head,
    a missing pooler), as the huggingface backend's state_dict gives them."""
    from unified_nlp.backend_kit import load_head, read_config, read_state

    state = {k: v for k, v in read_state(path).items() if not k.endswith("position_ids")}
    config, arch = read_config(path)
    if spec.head == "mean":
        head = load_head(path, spec, arch.dims(config)["hidden"])
        state["head.weight"], state["head.bias"] = head["weight"], head["bias"]
        return state
    state.update(arch.missing_tensors(config, list(spec.missing)))
    if spec.fresh_head:
        state.update(arch.fresh_head(config, spec.num_labels, spec.seed))
    return state


class OnnxRuntimeBackend(BackendAdapter):
    """Entry point of the `onnxruntime` backend: inference on ONNX Runtime's CPU provider."""

    name = "onnxruntime"
    precisions = ("fp32", "int8")  # int8: quantize.py
    gpu_install = GPU_INSTALL

    @property
    def devices(self) -> tuple[str, ...]:
        """The devices here: "cpu", and "cuda:N" where onnxruntime-gpu's CUDA provider is installed (session.py)."""
        return devices()

    def __init__(self) -> None:
        self.num_threads = default_threads()

    def set_threads(self, n: int) -> int:
        """Intra-op threads of the sessions this adapter opens (inter-op: one). ONNX Runtime's
        pools are per session, so the count applies to models loaded after the call."""
        self.num_threads = int(n)
        return self.num_threads

    def cached_export(self, path: Path, spec: ModelSpec) -> Path:
        """The export of the canonical folder `path` in the model store, made on first use."""
        folder = converted_dir(Path(path), self.name, _variant(spec))
        if _current(folder) is None:
            if spec.precision == "int8":
                fp32 = self.cached_export(path, spec.replace(precision="fp32"))
                notice(f"first int8 use of {path} on onnxruntime: quantising the export once ...")
                quantize(fp32, folder)
            else:
                notice(f"first use of {path} on onnxruntime: exporting it to ONNX once ...")
                started = time.perf_counter()
                export(Path(path), spec, folder, num_threads=self.num_threads)
                notice(f"exported in {time.perf_counter() - started:.1f} s; later loads reuse it")
        return folder

    def load(self, path: Path, spec: ModelSpec) -> tuple[FastTokenizer, OrtModel]:
        path = Path(path)
        fmt = spec.format
        if fmt == ONNX_EXPORT_FORMAT:  # a user's Optimum export, run as it is (optimum_folder.py)
            return optimum_folder.load(path, spec, self.num_threads, spec.device)
        if fmt == CANONICAL_FORMAT:
            folder = self.cached_export(path, spec)
            meta = {**read_spec(folder), "labels": list(spec.labels)}  # labels renamed at load count
            state = lambda: canonical_state(path, spec)  # noqa: E731
        elif fmt == FORMAT:
            if spec.fresh_head:
                raise InvalidInputError(
                    f"{path}: an ONNX export has its head in the graph; other labels need a fresh head, which "
                    "only the canonical folder can get (load that with labels=[...] and fit it on a backend "
                    "that trains)"
                )
            folder, meta, state = path, read_spec(path), None
            stored, wanted = meta.get("precision", "fp32"), spec.precision or meta.get("precision", "fp32")
            if wanted != stored:
                if stored != "fp32":
                    raise InvalidInputError(
                        f"{path}: an {stored} export cannot run at {wanted}; load the canonical folder it came from"
                    )
                folder = _quantized_dir(path, wanted)
                if _current(folder) is None:
                    notice(f"first int8 use of {path}: quantising it once ...")
                    quantize(path, folder)
                meta = read_spec(folder)
        else:
            raise InvalidModelError(
                f"{path}: a {fmt!r} folder; the onnxruntime backend loads the canonical format or its own "
                "(convert it with `unified-nlp convert --to onnxruntime`)"
            )
        model = OrtModel(folder, meta, self.num_threads, state, spec.device)
        max_length = min(int(spec.max_length or meta["max_length"]), model.max_positions)
        tokenizer = FastTokenizer.from_folder(folder, max_length, bool(meta.get("token_types", True)))
        return tokenizer, model

    def describe_native(self, path: Path, **options: Any) -> ModelSpec:
        """The spec of an ONNX classifier folder in Optimum's layout (optimum_folder.describe)."""
        return optimum_folder.describe(Path(path), **options)

    def inspect_native(self, path: Path, **options: Any) -> dict[str, Any]:
        """What an ONNX classifier folder in Optimum's layout holds (optimum_folder.inspect)."""
        return optimum_folder.inspect(Path(path))

    def convert(self, source: Path, out: Path) -> None:
        """Write the ONNX Runtime folder of the canonical folder `source` at `out`, atomically
        (copied from the model store when an earlier load exported it already)."""
        from unified_nlp.backend_kit import model_spec

        spec = model_spec(Path(source))
        cached = self.cached_export(Path(source), spec)
        with atomic_dir(out) as tmp:
            shutil.copytree(cached, tmp, dirs_exist_ok=True)
