"""The models one server serves (Triton's model repository, in small): each named by the user,
on its own backend and precision, given on the command line (``--model NAME=PATH@BACKEND:PRECISION``)
or in a repository file (TOML)::

    # models.toml: paths are relative to this file; "default" is the embedded model
    [models.sentiment]
    model = "models/sst2"
    backend = "onnxruntime"
    precision = "fp32"        # optional

    [models.nli]
    model = "models/nli"
    backend = "paddlenlp"

A model version is replaced without dropping a request: the new version loads and warms
beside the old one, traffic switches to it, the old one answers what it had accepted, then
it is released. `load` (POST /v2/repository/models/NAME/load, or SIGHUP for every model)
re-reads the repository file, so editing an entry and loading it is how a model moves to
another folder, backend or precision; the request itself names only the model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from ..registry import backend_names
from .metrics import Metrics
from .served import Limits, Served, ServingError
from .shadow import NICE as SHADOW_NICE
from .shadow import QUEUE as SHADOW_QUEUE
from .shadow import TOLERANCE as SHADOW_TOLERANCE
from .shadow import Shadow, parse_shadow

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library (the serve extra requires it there)
    import tomli as tomllib

log = logging.getLogger("unified_nlp.serving")

_KEYS = {"model", "backend", "precision", "shadow", "shadow_fraction"}  # of a repository file's entry


@dataclass(frozen=True)
class ModelEntry:
    """One served model: its name in URLs, the model (a folder, "default", or a loaded
    TextClassifier), and how to load it."""

    name: str
    model: object
    backend: str = "huggingface"
    precision: str | None = None
    options: dict = field(default_factory=dict, compare=False)  # load_classifier's other options
    shadow: str | None = None  # "BACKEND[:PRECISION]": a candidate run beside it (shadow.Shadow)
    shadow_fraction: float = 0.1  # of the requests offered to the candidate

    def load_options(self) -> dict:
        return {"backend": self.backend, "precision": self.precision, **self.options}


def parse_model(text: str, backend: str = "huggingface", precision: str | None = None) -> ModelEntry:
    """``NAME=PATH[@BACKEND[:PRECISION]]`` (backend and precision default to the arguments).

    >>> parse_model("nli=models/nli@onnxruntime:int8")
    ModelEntry(name='nli', model='models/nli', backend='onnxruntime', precision='int8', options={})
    """
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest:
        raise InvalidInputError(f"--model {text!r}: expected NAME=PATH[@BACKEND[:PRECISION]]")
    path, at, tail = rest.rpartition("@")
    if at:
        chosen, _, given = tail.partition(":")
        if chosen in backend_names():
            return ModelEntry(_checked_name(name), path, chosen, given or precision)
        if ":" in tail or "/" not in tail:  # a backend was meant: say which exist
            raise InvalidInputError(
                f"--model {text!r}: unknown backend {chosen!r}; known: {', '.join(backend_names())}"
            )
    return ModelEntry(_checked_name(name), rest, backend, precision)


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or "/" in name or name.startswith(".") or any(c.isspace() for c in name):
        raise InvalidInputError(f"model name {name!r}: use letters, digits, '-', '_' or '.' (no '/' or spaces)")
    return name


def read_repository(path: Path, backend: str = "huggingface", precision: str | None = None) -> list[ModelEntry]:
    """The entries of a repository file (TOML, see the module's docstring), in file order."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidInputError(f"repository file {path}: {e}") from None
    models = data.get("models")
    unknown = sorted(set(data) - {"models"})
    if unknown or not isinstance(models, dict) or not models:
        raise InvalidInputError(
            f"repository file {path}: expected [models.NAME] tables only (found {unknown or 'none'})"
        )
    entries = []
    for name, table in models.items():
        where = f"repository file {path}, [models.{name}]"
        if not isinstance(table, dict) or not isinstance(table.get("model"), str):
            raise InvalidInputError(f'{where}: needs model = "FOLDER" (or "default")')
        extra = sorted(set(table) - _KEYS)
        if extra:
            raise InvalidInputError(f"{where}: unknown key {extra[0]!r}; known: {', '.join(sorted(_KEYS))}")
        chosen = table.get("backend", backend)
        if chosen not in backend_names():
            raise InvalidInputError(f"{where}: unknown backend {chosen!r}; known: {', '.join(backend_names())}")
        model = table["model"]
        if model != "default" and not Path(model).is_absolute():
            model = str(Path(path).parent / model)
        entry = ModelEntry(_checked_name(name), model, chosen, table.get("precision", precision))
        entries.append(with_shadow(entry, table.get("shadow"), table.get("shadow_fraction", 0.1), where))
    return entries


def with_shadow(entry: ModelEntry, shadow: str | None, fraction, where: str) -> ModelEntry:
    """`entry` with a shadow candidate ("BACKEND[:PRECISION]") on `fraction` of its requests."""
    if shadow is None:
        return entry
    backend = parse_shadow(str(shadow))[0]
    if backend not in backend_names():
        raise InvalidInputError(
            f"{where}: shadow {shadow!r}: unknown backend {backend!r}; known: {', '.join(backend_names())}"
        )
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise InvalidInputError(f"{where}: shadow_fraction must be a number in (0, 1], got {fraction!r}")
    return dataclasses.replace(entry, shadow=str(shadow), shadow_fraction=float(fraction))


def model_entries(model, name, backend, precision, models, repository, load_options) -> list[ModelEntry]:
    """The served models, in order: `model`, then `models`, then the repository file's."""
    entries = []
    if model is not None:
        entries.append(ModelEntry(name or Served.default_name(model), model, backend, precision, load_options))
    for item in models or []:
        entry = item if isinstance(item, ModelEntry) else parse_model(str(item), backend, precision)
        entries.append(dataclasses.replace(entry, options={**load_options, **entry.options}))
    if repository is not None:
        read = read_repository(Path(repository), backend, precision)
        entries += [dataclasses.replace(e, options=dict(load_options)) for e in read]
    if not entries:
        entries.append(ModelEntry(name or "default", "default", backend, precision, load_options))
    return entries


def add_shadows(entries: list[ModelEntry], shadows: list[str] | None, fraction: float) -> list[ModelEntry]:
    """`entries` with the candidates of `shadows` ("NAME@BACKEND[:PRECISION]", NAME a served model)."""
    names = [e.name for e in entries]
    for text in shadows or []:
        name, at, candidate = text.rpartition("@")
        if not at or name not in names:
            raise InvalidInputError(
                f"--shadow {text!r}: expected NAME@BACKEND[:PRECISION], NAME one of {', '.join(map(repr, names))}"
            )
        where = f"--shadow {text!r}"
        entries = [with_shadow(e, candidate, fraction, where) if e.name == name else e for e in entries]
    return entries


class Repository:
    """The served models by name, each a `Served` (its current version); what every
    protocol's routes share. The first model also answers TEI's routes (/predict, /rerank,
    /info), which address no model by name."""

    def __init__(
        self,
        entries: list[ModelEntry],
        *,
        limits: Limits,
        metrics: Metrics,
        source: Path | None = None,
        defaults: tuple[str, str | None] = ("huggingface", None),
        drain_timeout: float = 30.0,
    ) -> None:
        names = [e.name for e in entries]
        if not entries or len(set(names)) != len(names):
            raise InvalidInputError(f"the served models need distinct names, got {names}")
        self.limits, self.metrics, self.source, self.drain_timeout = limits, metrics, source, drain_timeout
        self._defaults = defaults  # backend and precision of a repository file's entry that names none
        self._entries = {e.name: e for e in entries}
        self._models = {e.name: self._served(e, "1") for e in entries}
        self._versions = {e.name: 1 for e in entries}
        self._locks: dict[str, asyncio.Lock] = {}
        self._states: dict[str, tuple[str, str]] = {}  # name -> (state, reason) while loading, unloading, failed
        self._retiring: set[asyncio.Task] = set()

    def adopt(self, entries: list[ModelEntry], source: Path | None) -> None:
        """The entries a `load` starts from and the repository file they came from, for models
        first served from classifiers loaded beforehand (`serve` loads them before it binds):
        a load reads their folders again, SIGHUP the file."""
        self._entries.update({e.name: e for e in entries if e.name in self._entries})
        self.source = source

    def _served(self, entry: ModelEntry, version: str) -> Served:
        served = Served(
            entry.model,
            name=entry.name,
            limits=self.limits,
            load_options=entry.load_options(),
            metrics=self.metrics,
            version=version,
        )
        if entry.shadow is not None:
            served.shadow = self._shadow(entry, served)
        return served

    def _shadow(self, entry: ModelEntry, primary: Served) -> Shadow:
        """The candidate of `entry.shadow`: the same model folder on its backend and precision,
        one thread (one instance), a short queue of its own."""
        folder = entry.model if isinstance(entry.model, str | Path) else getattr(entry.model, "source", None)
        if folder is None:
            raise InvalidInputError(f"model {entry.name!r}: a shadow loads the model's folder, and this one has none")
        backend, precision = parse_shadow(entry.shadow)
        candidate = Served(
            folder,
            name=f"{entry.name} (shadow)",
            limits=dataclasses.replace(self.limits, max_queue=SHADOW_QUEUE, instances=1),
            load_options={**entry.options, "num_threads": 1, "backend": backend, "precision": precision},
            metrics=self.metrics,
            nice=SHADOW_NICE,
        )
        return Shadow(primary, candidate, entry.shadow_fraction, SHADOW_TOLERANCE, self.metrics)

    @property
    def default(self) -> Served:
        """The first model still served (TEI's routes)."""
        if not self._models:
            raise ServingError(503, "no model is served: every model was unloaded", "Unhealthy")
        return next(iter(self._models.values()))

    def served(self) -> list[Served]:
        return list(self._models.values())

    def find(self, name: str | None) -> Served | None:
        return self._models.get(name) if name is not None else None

    def get(self, name: str, version: str | None = None) -> Served:
        """The current version of model `name` (404 for another version or an unknown name)."""
        served = self._models.get(name)
        if served is None:
            raise ServingError(404, f"unknown model {name!r}; served: {', '.join(map(repr, self._models)) or 'none'}")
        if version is not None and version != served.version:
            raise ServingError(404, f"unknown version {version!r} of model {name!r}; served: {served.version!r}")
        return served

    def start(self) -> None:
        for served in self._models.values():
            served.start()

    def ready(self) -> bool:
        """Every model loaded, warmed and not draining (Triton's server readiness)."""
        self.start()
        return bool(self._models) and all(s.ready and not s.draining for s in self._models.values())

    def live(self) -> bool:
        """False once a model cannot recover in this process: an orchestrator restarts it."""
        return not any(s.broken for s in self._models.values())

    def error(self) -> str | None:
        return next((s.error or "loading" for s in self._models.values() if not s.ready), None)

    def index(self, ready_only: bool = False) -> list[dict]:
        """Triton's repository index: every model served or known from the repository, with its state."""
        rows = []
        for name in dict.fromkeys([*self._entries, *self._models]):
            served = self._models.get(name)
            state, reason = self._states.get(name, ("", ""))
            if not state:
                if served is None:
                    state, reason = "UNAVAILABLE", "unloaded"
                elif served.ready:
                    state = "READY"
                else:
                    state, reason = ("UNAVAILABLE" if served.broken else "LOADING"), served.error or ""
            version = served.version if served is not None else str(self._versions.get(name, 1))
            if not ready_only or state == "READY":
                rows.append({"name": name, "version": version, "state": state, "reason": reason})
        return rows

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _reread(self) -> dict[str, ModelEntry]:
        """The entries, from the repository file again when there is one."""
        if self.source is None:
            return self._entries
        return {e.name: e for e in read_repository(self.source, *self._defaults)}

    async def load(self, name: str) -> Served:
        """Load model `name` (re-read from the repository file) as a new version beside the
        current one, switch traffic to it once warmed, then retire the old one. A version that
        fails to load leaves the current one serving (400, as Triton answers)."""
        entries = self._reread()
        if name not in entries:
            raise ServingError(
                404, f"no model {name!r} in the repository{f' file {self.source}' if self.source else ''}"
            )
        async with self._lock(name):
            entry, version = entries[name], self._versions.get(name, 0) + 1
            self._entries[name], self._versions[name] = entry, version
            new = self._served(entry, str(version))
            self._states[name] = ("LOADING", f"version {version}")
            log.info("model %r: loading version %d (%s, backend %s)", name, version, entry.model, entry.backend)
            try:
                if not await new.loaded():
                    await new.stop()
                    raise ServingError(400, f"failed to load model {name!r} version {version}: {new.error}")
            finally:
                self._states.pop(name, None)
            old, self._models[name] = self._models.get(name), new  # traffic switches here
            log.info("model %r: version %d serves", name, version)
        if old is not None:
            self._retire(old)
        return new

    async def unload(self, name: str) -> None:
        """Stop serving model `name`: it answers what it had accepted, then is released."""
        async with self._lock(name):
            old = self._models.pop(name, None)
            if old is None:
                raise ServingError(
                    404, f"unknown model {name!r}; served: {', '.join(map(repr, self._models)) or 'none'}"
                )
        log.info("model %r: unloading version %s", name, old.version)
        await self._retire(old)

    def _retire(self, old: Served) -> asyncio.Task:
        """Answer what `old` has accepted (within the drain timeout), then stop it; in the background."""

        async def retire() -> None:
            self._states[old.name] = self._states.get(old.name) or ("UNLOADING", f"version {old.version}")
            try:
                deadline = time.monotonic() + self.drain_timeout
                while old.inflight and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                await old.stop()
            finally:
                if self._states.get(old.name, ("",))[0] == "UNLOADING":
                    self._states.pop(old.name, None)
            log.info("model %r: version %s released", old.name, old.version)

        task = asyncio.get_running_loop().create_task(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return task

    async def reload_all(self) -> None:
        """SIGHUP: re-read the repository file; load new and changed entries, unload removed ones.
        An entry whose load fails is logged and the model keeps its current version."""
        try:
            entries = self._reread()
        except InvalidInputError as e:
            log.error("SIGHUP: the repository file was not re-read: %s", e)
            return
        for name in [n for n in self._models if n not in entries]:
            await self.unload(name)
        for name, entry in entries.items():
            if name in self._models and self._entries.get(name) == entry:
                continue
            try:
                await self.load(name)
            except ServingError as e:
                log.error("SIGHUP: %s", e.message)

    async def stop(self) -> None:
        for served in self._models.values():
            served.draining = True
        await asyncio.gather(*(s.stop() for s in self._models.values()), *self._retiring)
