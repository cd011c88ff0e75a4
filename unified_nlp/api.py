"""The public entry points: load_classifier and convert."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import formats, progress, registry, store, threads
from .checkpoint import check, describe
from .classifier import TextClassifier
from .errors import ConversionError, InvalidInputError, InvalidModelError, UnifiedNLPError
from .formats import Detected
from .models import SPEC_FILE, read_json, read_spec, resolve


def _adapter(backend: str):
    where = registry.placement(backend)
    if where.mode == "in-process":
        adapter = registry.load_adapter(backend)
    else:
        from .worker import RemoteAdapter

        adapter = RemoteAdapter(backend, where.python)
    threads.apply(adapter, backend)
    return adapter, where


def _folder(path: str | os.PathLike | None) -> Path | None:
    return None if path is None else Path(path).expanduser().absolute()


def _tfhub_native():
    """The tfhub adapter's reader of native SavedModels (TensorFlow reads them; nothing else can)."""
    if not registry.installed_here("tfhub"):
        raise InvalidModelError(
            "a TensorFlow SavedModel is read by the tfhub backend, which cannot be imported here: "
            + registry.missing_message("tfhub")
        )
    registry.load_adapter("tfhub")
    from unified_nlp_tfhub import native

    return native


def _paddle_info(found: Detected) -> dict[str, Any]:
    from . import paddlenlp_format

    return paddlenlp_format.describe_native(found.path)


def canonical_folder(found: Detected, *, for_backend: str | None = None, pooling: str | None = None) -> Path:
    """The canonical folder a detected model runs from on another stack: itself, or the
    native folder imported once into the store. A model that cannot leave its stack
    gets an error saying why (a ConversionError for `convert`, `for_backend=None`)."""
    error = InvalidModelError if for_backend else ConversionError
    if found.format == formats.PADDLE_NATIVE:
        from . import paddlenlp_format

        info = _paddle_info(found)
        if not info["convertible"]:
            runs = (
                "" if for_backend else " (it runs on the paddlenlp backend: load_classifier(path, backend='paddlenlp'))"
            )
            raise error(f"{found.path}: {info['why']}{runs}")
        return formats.imported(found, lambda out: paddlenlp_format.to_canonical(found.path, out))
    if found.format == formats.SAVEDMODEL:
        native = _tfhub_native()
        try:
            return formats.imported(
                found,
                lambda out: native.to_canonical(found.path, out, preprocessor=found.preprocessor, pooling=pooling),
                f"pooling={pooling or 'pooled'}",
            )
        except ConversionError as e:
            raise error(f"{e} (it runs on the tfhub backend: load_classifier(path, backend='tfhub'))") from None
    return found.path


def model_spec(
    path: Path, labels: Sequence[str] | None = None, problem_type: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """What an adapter needs to know about a model folder, validated by the core."""
    spec = read_spec(path)
    fmt = spec.get("format", "huggingface")
    if fmt == "huggingface":
        return describe(path, labels, problem_type=problem_type, seed=seed)
    # a backend's own format written by convert: its unified_nlp.json says what it holds
    spec["format"] = fmt
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise InvalidInputError(f"labels must be at least two distinct names, got {labels}")
        if labels != spec.get("labels"):
            spec["fresh_head"] = True
        spec["labels"] = labels
    elif not spec.get("labels"):
        raise InvalidModelError(
            f"{path}: no classification head ({SPEC_FILE} with labels, and head.safetensors); "
            "pass labels=[...] to start a fresh head, then fit it"
        )
    spec["num_labels"] = len(spec["labels"])
    spec.setdefault("architecture", "bert")
    spec.setdefault("head", "mean" if spec.get("pooling", "mean") == "mean" else "native")
    spec.setdefault("problem_type", "single_label_classification")
    spec.setdefault("token_types", True)
    spec.setdefault("pooling", "mean")
    spec.setdefault("seed", seed)
    return spec


@store.holding
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
    `precisions`; int8: onnxruntime; bf16: paddlenlp on a CPU with AVX512-BF16 or AMX;
    README "Precision"); None runs the model as it is stored (fp32, or int8 for an int8
    export). ``clf.precision`` reports it.

    >>> clf = load_classifier("default", backend="tfhub")   # doctest: +SKIP
    >>> clf.predict(["This is a great movie!"])[0].label    # doctest: +SKIP
    'POSITIVE'
    """
    name = registry.canonical_name(backend)
    where = registry.placement(name)  # fails early, before any file work, if it can run nowhere
    if precision is not None and precision not in registry.PRECISIONS:
        raise InvalidInputError(f"precision must be one of {', '.join(registry.PRECISIONS)}, got {precision!r}")
    threads.request(num_threads)  # before any framework starts: TensorFlow sizes its pools then
    found = formats.detect(resolve(model).absolute(), _folder(preprocessor))
    if pooling not in (None, "pooled", "mean"):
        raise InvalidInputError(f"pooling must be 'pooled' or 'mean', got {pooling!r}")
    source = None  # the canonical folder `save` starts from, when the model runs from one
    if found.format == formats.SAVEDMODEL and name == "tfhub":
        path = found.path
        spec = _tfhub_native().describe(
            path, preprocessor=found.preprocessor, labels=labels, problem_type=problem_type, seed=seed, pooling=pooling
        )
    elif found.format == formats.PADDLE_NATIVE and name == "paddlenlp" and not _paddle_info(found)["convertible"]:
        from . import paddlenlp_format

        path = source = found.path  # save writes a PaddleNLP folder again (paddlenlp_format.save_native)
        spec = paddlenlp_format.native_spec(path, labels, problem_type=problem_type, seed=seed)
    else:
        if pooling is not None and found.format != formats.SAVEDMODEL:
            raise InvalidInputError(f"pooling= is for a TF Hub encoder SavedModel; this is a {found.format} folder")
        path = canonical_folder(found, for_backend=name, pooling=pooling)
        spec = model_spec(path, labels, problem_type, seed)
        source = path if (path / "config.json").is_file() else None
    adapter, where = _adapter(name)
    if precision is not None:
        offered = tuple(getattr(adapter, "precisions", ("fp32",)))
        if precision not in offered:
            raise InvalidInputError(
                f"the {name} backend runs {', '.join(offered)} only here, not {precision}; int8 runs on onnxruntime "
                "(pip install 'unified-nlp[onnxruntime]'), bf16 on paddlenlp where the CPU has AVX512-BF16 or AMX"
            )
        spec = {**spec, "precision": precision}
    converting = progress.conversion_notice(path, spec, name)
    started = time.perf_counter()
    tokenizer, net = adapter.load(path, spec)
    if converting:
        progress.notice(f"converted in {time.perf_counter() - started:.0f} s; later loads reuse it")
    return TextClassifier(tokenizer, net, spec["labels"], name, source, spec, where.mode)


@store.holding
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

    >>> convert("default", to="tfhub", out="minilm-tfhub/")           # doctest: +SKIP
    >>> convert("minilm-paddle/", to="huggingface", out="minilm-hf/")  # doctest: +SKIP
    """
    import tempfile

    from .errors import ConversionError

    threads.request(num_threads)

    name = registry.canonical_name(to)
    path = resolve(model).absolute()
    out = Path(out).absolute()
    if out == path or path in out.parents:
        raise ConversionError(f"the output {out} must not be the source folder or inside it")
    found = formats.detect(path, _folder(preprocessor))
    if found.format in (formats.PADDLE_NATIVE, formats.SAVEDMODEL):
        path = canonical_folder(found)
    fmt = read_spec(path).get("format", "huggingface")
    if fmt == "huggingface":
        check(path)  # validate before any framework sees it
    else:
        source_backend = registry.canonical_name(fmt)
        exporter, _ = _adapter(source_backend)
        if not hasattr(exporter, "export_canonical"):
            raise ConversionError(f"the {source_backend} backend cannot convert its format back to the canonical one")
        if name == "huggingface":
            exporter.export_canonical(path, out)
            return out
        with tempfile.TemporaryDirectory(prefix="unified-nlp-convert-") as tmp:
            canonical = Path(tmp) / "canonical"
            exporter.export_canonical(path, canonical)
            return convert(canonical, to=name, out=out)
    if name == "huggingface":
        from .models import copy_canonical

        copy_canonical(path, out)
        return out
    adapter, _ = _adapter(name)
    if name in progress.CONVERTS:  # tens of seconds for a MiniLM-sized model: say so first
        progress.notice(f"writing the {name} format of {path} to {out} ...")
    adapter.convert(path, out)
    return out


BACKENDS = ("huggingface", "tfhub", "paddlenlp")


def inspect_model(model: str | os.PathLike, *, preprocessor: str | os.PathLike | None = None) -> dict[str, Any]:
    """What a model folder is and where it can go, without running it (JSON-ready):
    format, architecture, labels, head, tokenizer, max_length, `runs_on` (backends
    that can run it) and `converts_to` (formats `convert` can write), and `why` when
    it cannot leave its stack. `installed` says which backends can run here.

    >>> inspect_model("default")["runs_on"]
    ['huggingface', 'tfhub', 'paddlenlp']
    """
    found = formats.detect(resolve(model).absolute(), _folder(preprocessor))
    out: dict[str, Any] = {"path": str(found.path), "format": found.format, "description": found.description}
    if found.preprocessor is not None:
        out["preprocessor"] = str(found.preprocessor)
    native: dict[str, Any] = {}
    if found.format == formats.PADDLE_NATIVE:
        native = _paddle_info(found)
    elif found.format == formats.SAVEDMODEL:
        native = _tfhub_native().inspect(found.path, preprocessor=found.preprocessor)
    if native and not native.get("convertible"):
        own = "paddlenlp" if found.format == formats.PADDLE_NATIVE else "tfhub"
        out.update({k: v for k, v in native.items() if k not in ("format", "convertible")})
        out.update(runs_on=[own], converts_to=[], why=native.get("why"))
    else:
        canonical = canonical_folder(found) if native else found.path
        spec = (
            model_spec(canonical, None, None, 0)
            if read_spec(canonical).get("format") in formats.export_formats()
            else None
        )
        spec = spec or describe(canonical, require_head=False)
        config = read_json(canonical / "config.json") if (canonical / "config.json").is_file() else {}
        from . import architectures

        arch = architectures.get(spec.get("architecture", "bert"))
        out.update({k: v for k, v in native.items() if k not in ("format", "convertible", "why")})
        out.update(
            architecture=arch.model_type,
            model_class=arch.encoder_class if spec.get("head") == "mean" else arch.classifier_class,
            labels=spec.get("labels") or None,
            head=("mean pooling + linear (unified_nlp extension)" if spec.get("head") == "mean" else "native")
            if spec.get("labels")
            else "none (pass labels=[...] for a fresh head)",
            problem_type=spec.get("problem_type"),
            tokenizer=arch.tokenizer + (f" (the folder's {native['tokenizer']})" if native.get("tokenizer") else ""),
            max_length=spec.get("max_length"),
            runs_on=list(BACKENDS),
            converts_to=list(BACKENDS),
        )
        if native:
            out["imported_to"] = str(canonical)
        if config and arch.model_type in _paddle_families():
            reason = _paddle_families()[arch.model_type].unsupported(config)
            if reason:
                out["runs_on"].remove("paddlenlp")
                out["converts_to"].remove("paddlenlp")
                out["why"] = f"paddlenlp: {reason}"
    out["installed"] = [b for b in BACKENDS if _runs_here(b)]
    return out


def _paddle_families():
    from .paddlenlp_format.families import FAMILIES

    return FAMILIES


def _runs_here(backend: str) -> bool:
    try:
        registry.placement(backend)
    except UnifiedNLPError:
        return False
    return True
