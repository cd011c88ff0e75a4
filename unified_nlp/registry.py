"""Backend registry: names and aliases, discovery through entry points, and where
each backend runs (in this process, or in a worker process of another environment).

Nothing here imports a framework: availability is read with importlib.util.find_spec
and package metadata, because importing a framework that is not needed can crash
the caller (paddle after tensorflow is a segmentation fault).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from .cpu import fast_precisions as hardware_precisions
from .errors import BackendNotInstalledError, UnifiedNLPError, UnknownBackendError

ENTRY_POINT_GROUP = "unified_nlp.backends"
# what load_classifier(precision=...) may ask; an adapter lists its own in `precisions`
PRECISIONS = ("fp32", "bf16", "int8")
# precision="auto": the fastest precision the backend offers here that kept >= 99.5% of the fp32 labels
# on SST-2 dev: bf16 where the CPU has bf16 dot products (99.89-100% kept), else fp32; never int8
# (97.13% kept, docs/backends.md "Precision")
AUTO_PRECISION = "auto"


def auto_precision(offered: tuple[str, ...]) -> str:
    """What precision="auto" runs on a backend that offers `offered` here."""
    return "bf16" if "bf16" in offered and "bf16" in hardware_precisions() else "fp32"


@dataclass(frozen=True)
class KnownBackend:
    name: str
    aliases: tuple[str, ...]
    distribution: str  # the adapter's distribution
    frameworks: tuple[str, ...]  # distributions whose versions we report
    modules: tuple[str, ...]  # modules that must be importable
    install: str  # the command that installs the adapter (README, "Install")
    crashes_after: tuple[str, ...] = ()  # modules after which importing this backend crashes
    title: str = ""  # how people name its ecosystem ("TF Hub"), for descriptions
    exports: bool = True  # `convert --to NAME` writes a format of its own, named NAME in its unified_nlp.json
    converts_back: bool = True  # its export turns back into the canonical folder (export_canonical)
    trains: bool = False  # its models fit (start_training, train_step)
    # a canonical folder's first load converts it into the model store (tens of seconds) without a word
    # from the adapter, so the core says so first
    converts_quietly: bool = False
    # what load(precision=...) can take where the CPU has the hardware for it (the adapter's
    # `precisions` says what it takes on this machine; `fast_precisions` what runs fast here)
    precisions: tuple[str, ...] = ("fp32",)
    # the attention kinds (architectures.ATTENTION_KINDS) its encoders compute; None: every family's
    attentions: tuple[str, ...] | None = None


KNOWN_BACKENDS: dict[str, KnownBackend] = {
    b.name: b
    for b in (
        KnownBackend(
            "huggingface",
            ("hf", "torch", "pytorch", "transformers"),
            "unified-nlp-huggingface",
            ("torch", "transformers"),
            ("torch", "transformers", "unified_nlp_huggingface"),
            "pip install 'unified-nlp[huggingface]' (on a CPU-only machine pip install torch==2.13.0 "
            "first, or pip fetches a CUDA build; see docs/getting-started.md, 'Install')",
            title="Hugging Face",
            exports=False,  # it writes the canonical format itself
            trains=True,
            precisions=("fp32", "bf16"),
        ),
        KnownBackend(
            "tfhub",
            ("tf", "tensorflow", "tensorflow_hub"),
            "unified-nlp-tfhub",
            ("tensorflow", "tensorflow-hub", "tensorflow-text"),
            ("tensorflow", "tensorflow_hub", "tensorflow_text", "unified_nlp_tfhub"),
            "pip install 'unified-nlp[tfhub]'",
            title="TF Hub",
            trains=True,
            converts_quietly=True,
            attentions=("scaled_dot_product", "rotary_local_global", "disentangled"),
        ),
        KnownBackend(
            "paddlenlp",
            ("paddle", "paddlepaddle"),
            "unified-nlp-paddlenlp",
            ("paddlepaddle", "paddlenlp"),
            ("paddle", "paddlenlp", "unified_nlp_paddlenlp"),
            "pip install 'unified-nlp[paddlenlp]' in an environment of its own (PaddleNLP 2.8 cannot import "
            "beside transformers 5), then: unified-nlp worker register paddlenlp ENV/bin/python "
            "(see docs/getting-started.md, 'Install', and docs/backends.md, 'Worker environments')",
            crashes_after=("tensorflow",),
            title="PaddleNLP",
            trains=True,
            converts_quietly=True,
            precisions=("fp32", "bf16"),
        ),
        # an adapter of its own distribution that registers itself by entry point alone (as a third
        # party's would); listed here so that `unified-nlp backends` and the install hint know it
        # when it is not installed
        KnownBackend(
            "onnxruntime",
            ("ort", "onnx"),
            "unified-nlp-onnxruntime",
            ("onnxruntime", "tokenizers"),
            ("onnxruntime", "tokenizers", "unified_nlp_onnxruntime"),
            "pip install 'unified-nlp[onnxruntime]' (runs exported folders); to export canonical folders "
            "on first use too: pip install torch==2.13.0 'unified-nlp[onnxruntime-export]' (see docs/getting-started.md, 'Install')",
            title="ONNX Runtime",
            converts_back=False,  # an export keeps only its graph
            precisions=("fp32", "int8"),
        ),
    )
}


ALIAS_GROUP = "unified_nlp.aliases"  # a third-party adapter's other names: `ort = "onnxruntime"`


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _third_party_aliases() -> dict[str, str]:
    """alias -> backend name, declared by third-party adapters in the entry-point group
    `unified_nlp.aliases` (read from package metadata: nothing is imported)."""
    names = set(_entry_points()) - set(KNOWN_BACKENDS)
    return {
        ep.name.lower(): ep.value.strip()
        for ep in importlib.metadata.entry_points(group=ALIAS_GROUP)
        if ep.value.strip() in names
    }


def aliases_of(name: str) -> tuple[str, ...]:
    """The other names of backend `name` (built in, or declared by its adapter)."""
    known = KNOWN_BACKENDS.get(name)
    if known is not None:
        return known.aliases
    return tuple(sorted(a for a, target in _third_party_aliases().items() if target == name))


def backend_names() -> list[str]:
    """Every backend this process knows of, installed or not: those the core lists
    (KNOWN_BACKENDS), then third-party adapters registered by entry point. The one list
    of backends: every other list asks it.

    Examples:
        >>> backend_names()[:4]
        ['huggingface', 'tfhub', 'paddlenlp', 'onnxruntime']
    """
    return list(KNOWN_BACKENDS) + sorted(set(_entry_points()) - set(KNOWN_BACKENDS))


def backends_help(names: list[str] | None = None) -> str:
    """The backends' names (default: every one) and their first aliases, for help texts.

    Examples:
        >>> backends_help()
        'huggingface, tfhub, paddlenlp or onnxruntime (aliases: hf, tf, paddle, ort)'
    """
    names = backend_names() if names is None else names
    aliases = [a for n in names for a in aliases_of(n)[:1]]
    text = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    return text + (f" (aliases: {', '.join(aliases)})" if aliases else "")


def title(name: str) -> str:
    """How people name backend `name`'s ecosystem ("TF Hub"); a third party's: its name."""
    known = KNOWN_BACKENDS.get(name)
    return known.title if known is not None and known.title else name


def export_backends() -> list[str]:
    """Backends whose `convert` writes a format of their own, named after the backend (the
    ``"format"`` of its unified_nlp.json); a third-party adapter is taken to write one."""
    return [n for n in backend_names() if n not in KNOWN_BACKENDS or KNOWN_BACKENDS[n].exports]


def converts_back(name: str) -> bool:
    """Whether an export of backend `name` turns back into the canonical folder (a
    third-party adapter is taken to offer it; its export_canonical says if not)."""
    known = KNOWN_BACKENDS.get(name)
    return known is None or known.converts_back


def training_backends() -> list[str]:
    """Backends whose models fit (TextClassifier.fit), as the core lists them."""
    return [n for n, known in KNOWN_BACKENDS.items() if known.trains]


def computes_attention(name: str, kind: str) -> bool:
    """Whether backend `name` has an encoder for the attention kind `kind` (a third party's: assumed)."""
    known = KNOWN_BACKENDS.get(name)
    return known is None or known.attentions is None or kind in known.attentions


def converts_quietly(name: str) -> bool:
    """Whether a canonical folder's first load on `name` converts it into the model store
    without the adapter saying so (the core then says so first)."""
    known = KNOWN_BACKENDS.get(name)
    return known is not None and known.converts_quietly


def canonical_name(name: str) -> str:
    """The backend's canonical name for a name or alias.

    Examples:
        >>> canonical_name("torch")
        'huggingface'
    """
    if not isinstance(name, str):
        raise UnknownBackendError(f"backend must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    for known in KNOWN_BACKENDS.values():
        if key == known.name or key in known.aliases:
            return known.name
    if key in _entry_points():
        return key
    third = _third_party_aliases()
    if key in third:
        return third[key]
    aliases = ", ".join(f"{b.name} ({'/'.join(b.aliases)})" for b in KNOWN_BACKENDS.values())
    extra = [
        f"{n} ({'/'.join(aliases_of(n))})" if aliases_of(n) else n
        for n in sorted(set(_entry_points()) - set(KNOWN_BACKENDS))
    ]
    raise UnknownBackendError(
        f"unknown backend {name!r}; known backends: {aliases}" + (f", {', '.join(extra)}" if extra else "")
    )


def installed_here(name: str) -> bool:
    """True when the adapter and its framework can be imported in this process."""
    known = KNOWN_BACKENDS.get(name)
    if known is None:
        return name in _entry_points()
    return name in _entry_points() and all(importlib.util.find_spec(m) is not None for m in known.modules)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def framework_distributions(name: str) -> tuple[str, ...]:
    """Distributions whose versions describe backend `name`: the built-in list, or for a
    third-party adapter its own distribution and its declared requirements (package
    metadata, nothing imported)."""
    known = KNOWN_BACKENDS.get(name)
    if known is not None:
        return known.frameworks
    ep = _entry_points().get(name)
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ()
    import re

    found = [dist.metadata["Name"]]
    for requirement in dist.requires or []:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        if match and not match.group(1).lower().replace("_", "-").startswith("unified-nlp"):
            found.append(match.group(1))
    return tuple(dict.fromkeys(found))


def framework_versions(name: str) -> dict[str, str]:
    return {d: v for d in framework_distributions(name) if (v := _version(d)) is not None}


# --- worker environments ----------------------------------------------------


def config_paths() -> list[Path]:
    """Where worker environments are registered, first match wins per backend:
    $UNIFIED_NLP_CONFIG, <this environment's prefix>/unified_nlp.json,
    ~/.config/unified_nlp/config.json."""
    paths = []
    if os.environ.get("UNIFIED_NLP_CONFIG"):
        paths.append(Path(os.environ["UNIFIED_NLP_CONFIG"]))
    paths.append(Path(sys.prefix) / "unified_nlp.json")
    paths.append(Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "unified_nlp" / "config.json")
    return paths


def worker_python(name: str) -> str | None:
    """The interpreter of the environment registered for `name`, if any.

    $UNIFIED_NLP_<NAME>_PYTHON wins over the config files, whose form is
    ``{"workers": {"paddlenlp": "/abs/path/to/.venv-paddle/bin/python"}}``.
    """
    env = os.environ.get(f"UNIFIED_NLP_{name.upper()}_PYTHON")
    if env:
        return env
    for path in config_paths():
        try:
            workers = json.loads(path.read_text(encoding="utf-8")).get("workers", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(workers, dict) and isinstance(workers.get(name), str):
            return workers[name]
    return None


def _check_interpreter(python: str) -> None:
    """`python` runs: a Python interpreter that answers within 60 s (nothing is recorded otherwise)."""
    import subprocess

    from .errors import WorkerError

    path = Path(python)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise WorkerError(f"{python}: no executable file there; give the environment's bin/python")
    try:
        done = subprocess.run(
            [str(path), "-c", "import sys; print(sys.version_info[0])"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise WorkerError(f"{python}: cannot be run as a Python interpreter ({e})") from None
    if done.returncode != 0 or done.stdout.strip() != "3":
        raise WorkerError(f"{python}: not a Python 3 interpreter (exit code {done.returncode})")


def register_worker(name: str, python: str, config: Path | None = None) -> Path:
    """Record `python` as the environment that runs backend `name` in a worker.

    Examples:
        >>> register_worker("paddlenlp", ".venv-paddle/bin/python")  # doctest: +SKIP
    """
    name = canonical_name(name)
    _check_interpreter(python)
    config = config or Path(sys.prefix) / "unified_nlp.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data.setdefault("workers", {})[name] = str(Path(python).absolute())
    config.parent.mkdir(parents=True, exist_ok=True)
    tmp = config.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, config)
    return config


@dataclass(frozen=True)
class Placement:
    """Where a backend runs: `in-process`, or `worker` with the interpreter to start."""

    mode: str
    python: str | None = None
    reason: str = ""


def placement(name: str) -> Placement:
    """Decide where backend `name` runs, without importing anything.

    Raises BackendNotInstalledError with the install command when it can run nowhere.
    """
    name = canonical_name(name)
    known = KNOWN_BACKENDS.get(name)
    if os.environ.get("UNIFIED_NLP_IN_WORKER") != "1":
        forced = os.environ.get(f"UNIFIED_NLP_{name.upper()}_WORKER") == "1"
        if installed_here(name):
            loaded = [m for m in (known.crashes_after if known else ()) if m in sys.modules]
            if loaded:
                return Placement(
                    "worker",
                    worker_python(name) or sys.executable,
                    f"importing it after {', '.join(loaded)} crashes the process",
                )
            if not forced:
                return Placement("in-process")
            return Placement("worker", worker_python(name) or sys.executable, "forced by environment")
        python = worker_python(name)
        if python:
            return Placement("worker", python, "not installed in this environment")
    elif installed_here(name):
        return Placement("in-process")
    raise BackendNotInstalledError(missing_message(name))


def missing_message(name: str) -> str:
    known = KNOWN_BACKENDS.get(name)
    missing = [m for m in (known.modules if known else ()) if importlib.util.find_spec(m) is None]
    text = f"backend {name!r} is not installed in this environment ({sys.executable})"
    if missing:
        text += f": missing module(s) {', '.join(missing)}"
    if known:
        text += f".\nInstall it with: {known.install}"
        text += (
            f"\nor run it from another environment through a worker: "
            f"unified-nlp worker register {name} /path/to/env/bin/python"
            f"  (or set UNIFIED_NLP_{name.upper()}_PYTHON)"
        )
    return text


def load_adapter(name: str):
    """Import and instantiate the in-process adapter registered for `name`."""
    eps = _entry_points()
    if name not in eps:
        raise BackendNotInstalledError(missing_message(name))
    try:
        factory = eps[name].load()
    except ImportError as e:
        raise BackendNotInstalledError(f"{missing_message(name)}\n(import failed: {e})") from e
    adapter = factory()
    from .protocols import BackendAdapter

    if not isinstance(adapter, BackendAdapter):
        raise UnifiedNLPError(
            f"entry point {name!r} returned a {type(adapter).__name__}, not a unified_nlp.protocols.BackendAdapter"
        )
    if adapter.name != name:
        raise UnifiedNLPError(f"entry point {name!r} returned an adapter named {adapter.name!r}")
    return adapter


@dataclass(frozen=True)
class BackendStatus:
    name: str
    aliases: tuple[str, ...]
    installed: bool
    versions: dict
    runs: str  # "in-process", "worker", or "unavailable"
    environment: str  # the interpreter that runs it, or the install hint
    fast_precisions: tuple[str, ...] = ("fp32",)  # those it offers that this CPU runs in hardware

    def as_dict(self) -> dict:
        return {**self.__dict__, "aliases": list(self.aliases), "fast_precisions": list(self.fast_precisions)}


def fast_precisions(name: str) -> tuple[str, ...]:
    """The precisions backend `name` offers that this CPU runs at hardware speed (unified_nlp.cpu:
    bf16 needs AVX512-BF16 or AMX, int8 VNNI or AMX), read without importing a framework."""
    known = KNOWN_BACKENDS.get(name)
    offered = known.precisions if known else ("fp32",)
    return tuple(p for p in hardware_precisions() if p in offered)


def _remote_versions(python: str, name: str) -> dict[str, str]:
    import subprocess

    dists = list(framework_distributions(name))
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        f"for d in {dists!r}:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30)
        return json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def list_backends() -> list[BackendStatus]:
    """Every known backend, installed or not, its framework versions and where it runs.

    Examples:
        >>> [b.name for b in list_backends()][:4]
        ['huggingface', 'tfhub', 'paddlenlp', 'onnxruntime']
    """
    out = []
    for name in backend_names():
        known = KNOWN_BACKENDS.get(name)
        aliases, fast = aliases_of(name), fast_precisions(name)
        try:
            where = placement(name)
        except BackendNotInstalledError:
            out.append(BackendStatus(name, aliases, False, {}, "unavailable", known.install if known else "", fast))
            continue
        if where.mode == "in-process":
            out.append(BackendStatus(name, aliases, True, framework_versions(name), "in-process", sys.executable, fast))
        else:
            versions = _remote_versions(where.python, name)
            python = shlex.quote(where.python)
            out.append(BackendStatus(name, aliases, bool(versions), versions, "worker", python, fast))
    return out
