"""The public entry points: load_classifier and convert."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .architectures import ATTENTION_KINDS
from .architectures import get as get_architecture
from .classifier import TextClassifier
from .cpu import native_bf16, why_not_bf16
from .devices import CPU
from .devices import parse as parse_device
from .errors import (
    BackendNotInstalledError,
    ConversionError,
    InvalidInputError,
    InvalidModelError,
    NotSupportedError,
    UnifiedNLPError,
)
from .folder import HEAD_FILE, copy_canonical, read_json, read_spec
from .folder_spec import canonical_spec, check, model_spec
from .format_names import HUGGINGFACE, PADDLE_NATIVE, SAVEDMODEL, TF_H5
from .formats import BLACK_BOXES, READ_BY, Detected, detect, export_formats
from .formats import imported as imported_once
from .paddlenlp_format import describe_native as describe_paddle_native
from .paddlenlp_format import native_spec as paddle_native_spec
from .paddlenlp_format import to_canonical as paddle_to_canonical
from .progress import conversion_notice, notice
from .protocols import BackendAdapter
from .registry import (
    AUTO_PRECISION,
    PRECISIONS,
    Placement,
    auto_precision,
    backend_names,
    canonical_name,
    computes_attention,
    converts_back,
    converts_quietly,
    fast_precisions,
    load_adapter,
    placement,
)
from .resolve import resolve
from .spec import ModelSpec
from .store import holding
from .tf_h5 import describe as describe_tf_h5
from .tf_h5 import to_canonical as tf_h5_to_canonical
from .threads import apply as apply_threads
from .threads import request as request_threads
from .worker import RemoteAdapter


def _adapter(backend: str) -> tuple[BackendAdapter, Placement]:
    where = placement(backend)
    if where.mode == "in-process":
        adapter = load_adapter(backend)
    else:
        adapter = RemoteAdapter(backend, where.python)
    apply_threads(adapter, backend)
    return adapter, where


def _folder(path: str | os.PathLike | None) -> Path | None:
    return None if path is None else Path(path).expanduser().absolute()


def _savedmodel_reader() -> BackendAdapter:
    """The backend that reads native TF Hub SavedModels (TensorFlow reads them; nothing else can)."""
    reader = READ_BY[SAVEDMODEL]
    try:
        return _adapter(reader)[0]
    except BackendNotInstalledError as e:
        raise InvalidModelError(
            f"a TensorFlow SavedModel is read by the {reader} backend, which cannot run here: {e}"
        ) from None


def _paddle_info(found: Detected) -> dict[str, Any]:
    return describe_paddle_native(found.path)


def _from_metadata(found: Detected, labels=None, problem_type=None, pooling=None) -> dict[str, Any]:
    """labels, problem_type and pooling where the caller gave none: what our own unified_nlp.json
    beside a native TF Hub pair says (earlier versions described a user's pair so)."""
    meta = found.metadata or {}
    # a head file beside it was trained by earlier versions on their default, mean pooling; without one
    # (a fresh head) the folder reads as the native pair does (pooled_output) unless its json says otherwise
    trained = found.metadata is not None and ((found.root or found.path) / HEAD_FILE).is_file()
    said = meta.get("pooling", "mean" if trained else None)
    mean = meta.get("head") == "mean" or (meta.get("head") is None and said == "mean")
    return {
        "labels": labels if labels is not None else meta.get("labels") or None,
        "problem_type": problem_type or meta.get("problem_type"),
        "pooling": pooling or ("mean" if mean else None),
    }


def canonical_folder(found: Detected, *, for_backend: str | None = None, pooling: str | None = None) -> Path:
    """The canonical folder a detected model runs from on another stack: itself, or the
    native folder imported once into the store. A model that cannot leave its stack
    gets an error saying why (a ConversionError for `convert`, `for_backend=None`)."""
    error = InvalidModelError if for_backend else ConversionError
    if found.format in BLACK_BOXES:
        reader = READ_BY[found.format]
        raise error(
            f"{found.path}: {BLACK_BOXES[found.format]} (it runs on the {reader} backend: "
            f"load_classifier(path, backend='{reader}'))"
        )
    if found.format == PADDLE_NATIVE:
        info = _paddle_info(found)
        if not info["convertible"]:
            runs = (
                "" if for_backend else " (it runs on the paddlenlp backend: load_classifier(path, backend='paddlenlp'))"
            )
            raise error(f"{found.path}: {info['why']}{runs}")
        return imported_once(found, lambda out: paddle_to_canonical(found.path, out))
    if found.format == TF_H5:
        describe_tf_h5(found.path)  # refuses weight files outside the folder before the store hashes the folder
        return imported_once(found, lambda out: tf_h5_to_canonical(found.path, out))
    if found.format == SAVEDMODEL:
        reader = _savedmodel_reader()
        pooling = pooling or _from_metadata(found)["pooling"]
        try:
            return imported_once(
                found,
                lambda out: reader.import_native(found.path, out, preprocessor=found.preprocessor, pooling=pooling),
                f"pooling={pooling or 'pooled'}",
            )
        except ConversionError as e:
            raise error(f"{e} (it runs on the tfhub backend: load_classifier(path, backend='tfhub'))") from None
    return found.path


@holding
def load_classifier(
    model: str | os.PathLike = "default",
    backend: str = "huggingface",
    *,
    labels: Sequence[str] | None = None,
    problem_type: str | None = None,
    seed: int = 0,
    preprocessor: str | os.PathLike | None = None,
    pooling: str | None = None,
    num_threads: int | None = None,
    precision: str | None = None,
    device: str | None = None,
) -> TextClassifier:
    """Load a text classifier on one backend, offline.

    `model` is "default" (the embedded MiniLM sentiment model), a local folder
    in the canonical format or in a backend's own format (written by `convert`),
    or a Hugging Face id already in the local cache. A Hugging Face classifier
    folder (any supported architecture, see `unified_nlp.architectures`) loads with
    its own head and its id2label labels. `labels` different from the saved ones
    start a fresh, untrained head drawn from `seed` (see `fit`); placeholder labels
    (LABEL_0, ...) are only renamed. `problem_type="multi_label_classification"`
    makes a fresh head multi-label (sigmoid per label).

    Native folders of the other ecosystems load too (see `unified_nlp.formats`): a
    PaddleNLP ``save_pretrained`` folder, a TF Hub encoder SavedModel (with its
    `preprocessor` folder, or a folder holding ``encoder/`` and ``preprocessor/``),
    a text-embedding SavedModel or a Keras classifier SavedModel. Those whose
    architecture maps to a transformers class run on every backend (imported once
    into the model store); the others on their own backend. `pooling` ("pooled",
    TF Hub's pooled_output, or "mean") chooses how a TF Hub encoder's fresh head
    reads it on the tfhub backend.

    `num_threads` sets the backend's framework threads, process-wide (each framework
    has one pool per process; see `unified_nlp.threads`): None keeps an earlier
    request, else $OMP_NUM_THREADS or the cores this process may use. On a busy
    machine fewer threads than cores is faster. ``clf.num_threads`` reports the count.

    `precision` is "fp32", "bf16" or "int8", on a backend that offers it (the adapter's
    `precisions`; int8: onnxruntime; bf16: huggingface and paddlenlp on a CPU with AVX512-BF16 or AMX;
    docs/backends.md, "Precision"); None runs the model as it is stored (fp32, or int8 for an int8
    export); "auto" runs bf16 where the backend offers it on this CPU, else fp32 (never int8,
    which keeps fewer labels). ``clf.precision`` reports it.

    `device` is "cpu" (None: the default), "cuda" or "cuda:N" (Paddle's "gpu", "gpu:N"
    too), on every backend: a torch device, a TensorFlow device scope, a Paddle place, ONNX
    Runtime's CUDA execution provider (docs/backends.md, "Devices"). A GPU the framework cannot use here
    (no accelerator, or its CPU-only build) is a BackendNotInstalledError that names the build
    to install, raised before the model loads; an index beyond the GPUs it sees, an
    InvalidInputError. ``clf.device`` reports it.

    Examples:
        >>> clf = load_classifier("default", backend="tfhub")   # doctest: +SKIP
        >>> clf.predict(["This is a great movie!"])[0].label    # doctest: +SKIP
        'POSITIVE'
    """
    name = canonical_name(backend)
    where = placement(name)  # fails early, before any file work, if it can run nowhere
    if precision is not None and precision != AUTO_PRECISION and precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = parse_device(device)
    request_threads(num_threads)  # before any framework starts: TensorFlow sizes its pools then
    found = detect(resolve(model).absolute(), _folder(preprocessor))
    if pooling not in (None, "pooled", "mean"):
        raise InvalidInputError(f"pooling must be 'pooled' or 'mean', got {pooling!r}")
    if found.metadata:
        labels, problem_type, pooling = _from_metadata(found, labels, problem_type, pooling).values()
    source = None  # the canonical folder `save` starts from, when the model runs from one
    if found.format == SAVEDMODEL and name == READ_BY[SAVEDMODEL]:
        path = found.path
        spec = _savedmodel_reader().describe_native(
            path, preprocessor=found.preprocessor, labels=labels, problem_type=problem_type, seed=seed, pooling=pooling
        )
    elif found.format == PADDLE_NATIVE and name == READ_BY[PADDLE_NATIVE] and not _paddle_info(found)["convertible"]:
        path = source = found.path  # save writes a PaddleNLP folder again (paddlenlp_format.save_native)
        spec = paddle_native_spec(path, labels, problem_type=problem_type, seed=seed)
    elif found.format in BLACK_BOXES and name == READ_BY[found.format]:  # a deployment export, as it is
        if pooling is not None:
            raise InvalidInputError(f"pooling= is for a TF Hub encoder SavedModel; this is a {found.format} export")
        path = found.path
        spec = _adapter(name)[0].describe_native(path, labels=labels, problem_type=problem_type, seed=seed)
    else:
        if pooling is not None and found.format != SAVEDMODEL:
            raise InvalidInputError(f"pooling= is for a TF Hub encoder SavedModel; this is a {found.format} folder")
        path = canonical_folder(found, for_backend=name, pooling=pooling)
        spec = model_spec(path, labels, problem_type, seed)
        source = path if (path / "config.json").is_file() else None
    adapter, where = _adapter(name)
    spec = _run_options(adapter, spec, precision, device)
    converting = conversion_notice(path, spec, name)
    started = time.perf_counter()
    tokenizer, net = adapter.load(path, spec)
    if converting:
        notice(f"converted in {time.perf_counter() - started:.1f} s; later loads reuse it")
    return TextClassifier(tokenizer, net, spec.labels, name, source, spec, where.mode)


def _run_options(adapter: BackendAdapter, spec: ModelSpec, precision: str | None, device: str) -> ModelSpec:
    """`spec` with the precision and device asked for, once the adapter says it can run them here."""
    name = adapter.name
    if precision is not None:
        offered = tuple(adapter.precisions)
        if precision == AUTO_PRECISION:
            precision = auto_precision(offered)
        if precision not in offered:
            why = f" ({why_not_bf16()})" if precision == "bf16" and not native_bf16() else ""
            raise InvalidInputError(
                f"the {name} backend runs {', '.join(offered)} only here, not {precision}{why}; int8 runs on "
                "onnxruntime (pip install 'unified-nlp[onnxruntime]'), bf16 on huggingface and paddlenlp where the "
                "CPU has AVX512-BF16 or AMX"
            )
        spec = spec.replace(precision=precision)
    if device == CPU:  # every framework runs on the CPU: nothing to ask
        return spec
    usable = tuple(adapter.devices)
    gpus = [d for d in usable if d != CPU]
    if not gpus:
        raise BackendNotInstalledError(
            f"the {name} backend cannot run on {device} here: its framework sees no GPU (no CUDA device, or a "
            f"CPU-only build). For a GPU: {adapter.gpu_install}; or load with device='cpu'"
        )
    if device not in usable:
        raise InvalidInputError(f"the {name} backend sees {', '.join(gpus)} here, not {device}")
    return spec.replace(device=device)


@holding
def convert(
    model: str | os.PathLike,
    to: str,
    out: str | os.PathLike,
    *,
    preprocessor: str | os.PathLike | None = None,
    num_threads: int | None = None,
) -> Path:
    """Write `model` in backend `to`'s native format at `out`, atomically; returns `out`.

    `model` is a name, a canonical folder, or a backend's native folder written by
    an earlier convert: ``to="huggingface"`` turns a TF Hub or Paddle folder back
    into the canonical format (for users leaving a stack). A native PaddleNLP or TF Hub
    folder (with its `preprocessor`) converts when its architecture maps to a
    transformers class; otherwise a ConversionError says why. `num_threads` as in
    `load_classifier`.

    Examples:
        >>> convert("default", to="tfhub", out="minilm-tfhub/")           # doctest: +SKIP
        >>> convert("minilm-paddle/", to="huggingface", out="minilm-hf/")  # doctest: +SKIP
    """
    import tempfile

    request_threads(num_threads)

    name = canonical_name(to)
    path = resolve(model).absolute()
    out = Path(out).absolute()
    if out == path or path in out.parents:
        raise ConversionError(f"the output {out} must not be the source folder or inside it")
    found = detect(path, _folder(preprocessor))
    if found.format in (PADDLE_NATIVE, SAVEDMODEL, TF_H5, *BLACK_BOXES):
        path = canonical_folder(found)
    fmt = read_spec(path).get("format", HUGGINGFACE)
    if fmt == HUGGINGFACE:
        check(path)  # validate before any framework sees it
    else:
        source_backend = canonical_name(fmt)
        exporter, _ = _adapter(source_backend)
        try:
            if name == HUGGINGFACE:
                exporter.export_canonical(path, out)
                return out
            with tempfile.TemporaryDirectory(prefix="unified-nlp-convert-") as tmp:
                canonical = Path(tmp) / "canonical"
                exporter.export_canonical(path, canonical)
                return convert(canonical, to=name, out=out)
        except NotSupportedError as e:
            raise ConversionError(str(e)) from None
    if name == HUGGINGFACE:
        copy_canonical(path, out)
        return out
    adapter, _ = _adapter(name)
    if converts_quietly(name):  # tens of seconds for a MiniLM-sized model: say so first
        notice(f"writing the {name} format of {path} to {out} ...")
    adapter.convert(path, out)
    return out


def inspect_model(model: str | os.PathLike, *, preprocessor: str | os.PathLike | None = None) -> dict[str, Any]:
    """What a model folder is and where it can go, without running it (JSON-ready):
    format, architecture, labels, head, tokenizer, max_length, `runs_on` (backends
    that can run it) and `converts_to` (formats `convert` can write), and `why` when
    it cannot leave its stack. `installed` says which backends can run here.

    Examples:
        >>> inspect_model("default")["runs_on"]
        ['huggingface', 'tfhub', 'paddlenlp', 'onnxruntime']
    """
    found = detect(resolve(model).absolute(), _folder(preprocessor))
    out: dict[str, Any] = {"path": str(found.path), "format": found.format, "description": found.description}
    if found.preprocessor is not None:
        out["preprocessor"] = str(found.preprocessor)
    native: dict[str, Any] = {}
    if found.format == PADDLE_NATIVE:
        native = _paddle_info(found)
    elif found.format == TF_H5:
        native = describe_tf_h5(found.path)
    elif found.format == SAVEDMODEL:
        native = _savedmodel_reader().inspect_native(found.path, preprocessor=found.preprocessor)
    elif found.format in BLACK_BOXES:
        native = _adapter(READ_BY[found.format])[0].inspect_native(found.path)
    if native and not native.get("convertible"):
        out.update({k: v for k, v in native.items() if k not in ("format", "convertible")})
        out.update(runs_on=[READ_BY[found.format]], converts_to=[], why=native.get("why"))
    else:
        _inspect_canonical(found, native, out)
    out["installed"] = [b for b in backend_names() if _runs_here(b)]
    # what each backend that runs it offers that this CPU runs in hardware (bf16, int8: unified_nlp.cpu)
    out["fast_precisions_here"] = [f"{b}: {'/'.join(fast_precisions(b))}" for b in out["runs_on"]]
    return out


def _inspect_canonical(found: Detected, native: dict[str, Any], out: dict[str, Any]) -> None:
    """inspect_model's fields for a canonical folder, a native folder imported into one, or
    an export: what its spec says, and where it runs (a canonical folder: every backend, but
    paddlenlp where Paddle lacks what the config asks; an export: its own backend only)."""
    canonical = canonical_folder(found, pooling=_from_metadata(found)["pooling"]) if native else found.path
    export = found.format in export_formats()
    spec = model_spec(canonical, None, None, 0) if export else canonical_spec(canonical, require_head=False)
    stated = _from_metadata(found) if found.metadata else {}
    labels = list(stated.get("labels") or spec.labels) or None
    config = read_json(canonical / "config.json") if (canonical / "config.json").is_file() else {}
    arch = get_architecture(spec.architecture or "bert")
    out.update({k: v for k, v in native.items() if k not in ("format", "convertible", "why")})
    out.update(
        architecture=arch.model_type,
        model_class=arch.encoder_class if spec.head == "mean" else arch.classifier_class,
        labels=labels,
        head=("mean pooling + linear (unified_nlp extension)" if spec.head == "mean" else "native")
        if labels
        else "none (pass labels=[...] for a fresh head)",
        problem_type=stated.get("problem_type") or spec.problem_type,
        tokenizer=arch.tokenizer + (f" (the folder's {native['tokenizer']})" if native.get("tokenizer") else ""),
        max_length=spec.max_length,
        runs_on=[found.format] if export else backend_names(),
        converts_to=backend_names(),
    )
    if export and not converts_back(found.format):
        why = f"the {found.format} backend cannot turn its export back into the canonical folder"
        out.update(converts_to=[], why=why + "; convert the canonical folder it was written from")
    if native:
        out["imported_to"] = str(canonical)
    lacking = [b for b in out["runs_on"] if not computes_attention(b, arch.attention)]
    if lacking:
        out["runs_on"] = [b for b in out["runs_on"] if b not in lacking]
        out["converts_to"] = [b for b in out["converts_to"] if b not in lacking]
        out["why"] = f"{', '.join(lacking)}: no encoder for {ATTENTION_KINDS[arch.attention]}"
    family = _paddle_families().get(arch.model_type)
    reason = family.unsupported(config) if family is not None and config else _paddle_missing(arch.model_type)
    if reason:
        paddle = READ_BY[PADDLE_NATIVE]
        out["runs_on"] = [b for b in out["runs_on"] if b != paddle]
        out["converts_to"] = [b for b in out["converts_to"] if b != paddle]
        out.setdefault("why", f"{paddle}: {reason}")


def _paddle_families():
    from .paddlenlp_format.families import FAMILIES

    return FAMILIES


def _paddle_missing(model_type: str) -> str | None:
    from .paddlenlp_format.families import missing

    return missing(model_type)


def _runs_here(backend: str) -> bool:
    try:
        placement(backend)
    except UnifiedNLPError:
        return False
    return True
