"""Run a backend in a worker process of another Python environment, with the same API.

Why: PaddleNLP cannot share an environment with transformers 5, and importing
paddle after tensorflow kills the process. The worker is a child process started
with the interpreter of the environment that has the backend; it talks over a
pipe in the format of wire.py (JSON + numpy buffers, no pickle).

Lifecycle: started lazily on first use, shared by every classifier of that
backend in this process, ended when this process exits (and it kills itself if
its parent dies). A worker that dies or hangs past the timeout raises
WorkerError, is reaped, and is started again on the next call.

Interrupts: every request carries an id that the worker echoes. A call
interrupted while it waits (Ctrl-C, or any exception raised in this process)
leaves its request running in the worker, which ignores SIGINT; the next call
waits behind it, skips the stale reply by its id and gets its own answer. An
interrupt that cuts a frame in half desynchronises the pipe, so the worker is
killed and started again on the next call (weights trained in it are lost).

Timeouts (seconds): $UNIFIED_NLP_WORKER_TIMEOUT per call (default 300),
$UNIFIED_NLP_WORKER_LOAD_TIMEOUT for start-up and loading (default 900). A call
queued behind an interrupted one waits for it within its own timeout.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NotSupportedError, WorkerError, error_class
from .protocols import BackendAdapter, Encoding, Model
from .spec import ModelSpec
from .wire import PipeClosed, PipeTimeout, encode, read_message, wait_readable, write_frame, write_message


def _timeout(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class WorkerProcess:
    """One child process serving one backend; thread-safe (one request at a time)."""

    def __init__(self, backend: str, python: str) -> None:
        self.backend, self.python = backend, python
        self.generation = 0
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._last_returncode: int | None = None
        self._pending_release: list[int] = []
        self._request_ids = itertools.count(1)
        self._unanswered: dict[int, str] = {}  # id -> op of requests sent whose reply is not read yet
        self._cut = False  # a frame is half written or half read: an exception now desynchronises the pipe
        self._lock = threading.RLock()
        self.threads: int | None = None  # the framework thread count asked for; a restarted worker starts with it

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _start(self) -> None:
        if not Path(self.python).exists():
            raise WorkerError(
                f"the environment registered for backend {self.backend!r} has no interpreter at {self.python}; "
                f"create it (see docs/backends.md, 'Worker environments') or register another with "
                f"`unified-nlp worker register {self.backend} PATH/TO/bin/python`"
            )
        self._log = tempfile.TemporaryFile(prefix=f"unified-nlp-{self.backend}-", suffix=".log")
        env = {**os.environ, "UNIFIED_NLP_IN_WORKER": "1", "UNIFIED_NLP_PARENT_PID": str(os.getpid())}
        if self.threads is not None:  # before the worker imports its framework (TensorFlow sizes its pools then)
            env["UNIFIED_NLP_NUM_THREADS"] = str(self.threads)
        env.pop("PYTHONPATH", None)  # the other environment must not see this one's packages
        self._proc = subprocess.Popen(
            [self.python, "-m", "unified_nlp.worker_main", self.backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            close_fds=True,
        )
        self.generation += 1
        try:
            hello = read_message(self._proc.stdout.fileno(), _timeout("UNIFIED_NLP_WORKER_LOAD_TIMEOUT", 900))
        except (PipeClosed, PipeTimeout, ValueError) as e:
            raise self._failure("start", e) from None
        except BaseException:  # interrupted: its greeting would later be read as a reply
            self._stop(kill=True)
            raise
        if "error" in hello:
            message = hello["error"].get("message", "")
            self._stop(kill=True)
            raise WorkerError(f"the {self.backend} worker ({self.python}) could not start: {message}")
        self.info = hello

    def _stderr_tail(self, limit: int = 2000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - limit))
            return self._log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _failure(self, what: str, cause: Exception) -> WorkerError:
        hung = isinstance(cause, PipeTimeout)
        tail = self._stderr_tail()
        self._stop(kill=True)
        code = self._last_returncode
        if hung:
            text = f"the {self.backend} worker did not answer {what!r} in time and was killed"
        else:
            text = f"the {self.backend} worker died during {what!r} (exit code {code})"
        text += "; it will be restarted on the next call"
        if tail:
            text += f"\n--- worker stderr (last lines) ---\n{tail}"
        return WorkerError(text)

    def _stop(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        kill = kill or bool(self._unanswered)  # busy with work nobody waits for: no point in waiting
        self._pending_release, self._unanswered, self._cut = [], {}, False
        if proc is not None:
            if kill or proc.poll() is None:
                try:
                    if not kill:
                        write_message(proc.stdin.fileno(), {"op": "shutdown"})
                        proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired, ValueError):
                    pass
                if proc.poll() is None:
                    proc.kill()
            try:
                proc.wait(timeout=10)  # reap: no zombies
            except subprocess.TimeoutExpired:
                pass
            self._last_returncode = proc.returncode
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def release_later(self, generation: int, ids: list[int]) -> None:
        """Called from finalizers: never talks to the pipe itself (it may run mid-request)."""
        if generation == self.generation:
            self._pending_release.extend(ids)

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except (PipeClosed, PipeTimeout, BrokenPipeError, ValueError) as e:
            raise self._failure(what, e) from None
        except BaseException:  # Ctrl-C, or a caller's own timeout
            if self._cut:  # the rest of that frame would be read as the next one
                self._stop(kill=True)
            raise

    def _read_reply(self, deadline: float) -> tuple[dict[str, Any], str]:
        """One whole reply and the op of the request it answers."""
        fd = self._proc.stdout.fileno()
        wait_readable(fd, deadline - time.monotonic())  # an interrupt while waiting consumes nothing
        self._cut = True
        reply = read_message(fd, deadline - time.monotonic())
        op = self._unanswered.pop(reply.get("id"), None) if isinstance(reply, dict) else None
        if op is None:
            raise ValueError("the worker sent a reply to no pending request")
        self._cut = False
        return reply, op

    def request(self, message: dict[str, Any], timeout: float | None = None) -> Any:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                if self._proc is not None:
                    self._stop(kill=True)
                self._start()
            if timeout is None:
                timeout = _timeout("UNIFIED_NLP_WORKER_TIMEOUT", 300)
            deadline = time.monotonic() + timeout
            what = message.get("method") or message["op"]
            if self._unanswered:
                what += " (queued behind an interrupted call)"
            with self._guard(what):
                while self._unanswered:  # requests of interrupted calls: the worker is idle once they are answered
                    stale, op = self._read_reply(deadline)
                    if op == "load" and isinstance(stale.get("ok"), dict):  # objects nobody holds
                        self._pending_release += [stale["ok"]["tokenizer"], stale["ok"]["model"]]
            rid, release = next(self._request_ids), list(self._pending_release)
            frame = encode({**message, "id": rid, "release": release})  # may refuse an argument: pipe untouched
            with self._guard(what):
                self._cut = True
                self._unanswered[rid] = message["op"]
                write_frame(self._proc.stdin.fileno(), frame)
                del self._pending_release[: len(release)]
                self._cut = False
                reply, _ = self._read_reply(deadline)  # the only one pending now: its id is rid
            if "error" in reply:
                raise _rebuild_error(reply["error"], self.backend)
            return reply.get("ok")

    def close(self) -> None:
        with self._lock:
            self._stop()


def _rebuild_error(err: dict[str, Any], backend: str) -> Exception:
    cls = error_class(str(err.get("type")))
    message = str(err.get("message", ""))
    if cls is not None:
        return cls(message)
    return WorkerError(f"{err.get('type')} in the {backend} worker: {message}")


_WORKERS: dict[tuple[str, str], WorkerProcess] = {}
_POOL_LOCK = threading.Lock()


def get_worker(backend: str, python: str) -> WorkerProcess:
    with _POOL_LOCK:
        worker = _WORKERS.get((backend, python))
        if worker is None:
            worker = _WORKERS[(backend, python)] = WorkerProcess(backend, python)
        return worker


@atexit.register
def shutdown_workers() -> None:
    """Stop every worker this process started (also runs at interpreter exit)."""
    with _POOL_LOCK:
        workers = list(_WORKERS.values())
    for worker in workers:
        worker.close()


class _RemoteHandle:
    """A tokenizer+model pair living in a worker; reloaded after a worker restart."""

    _ids = itertools.count()

    def __init__(self, worker: WorkerProcess, path: Path, spec: dict[str, Any]) -> None:
        self.worker, self.path, self.spec = worker, path, spec
        self.generation = -1
        self.trained = False
        self.refs: dict[str, int] = {}
        self.info: dict[str, Any] = {}
        self.ensure_loaded()

    def ensure_loaded(self) -> None:
        if self.generation == self.worker.generation and self.worker.pid is not None:
            return
        if self.trained:
            self.trained = False
            self.generation = -2
            raise WorkerError(
                f"the {self.worker.backend} worker restarted and the weights trained in it were lost; "
                "load the model again (save() after fit() keeps trained weights)"
            )
        reply = self.worker.request(
            {"op": "load", "path": str(self.path), "spec": self.spec},
            timeout=_timeout("UNIFIED_NLP_WORKER_LOAD_TIMEOUT", 900),
        )
        self.refs = {"tokenizer": reply["tokenizer"], "model": reply["model"]}
        self.info = reply
        self.generation = self.worker.generation
        # when this handle is garbage-collected, the worker drops its objects too
        weakref.finalize(self, self.worker.release_later, self.generation, list(self.refs.values()))

    def call(self, target: str, method: str, *args: Any, **kwargs: Any) -> Any:
        with self.worker._lock:
            self.ensure_loaded()
            return self.worker.request(
                {"op": "call", "obj": self.refs[target], "method": method, "args": list(args), "kwargs": kwargs}
            )


class RemoteTokenizer:
    """Tokenizer protocol, served by a worker."""

    def __init__(self, handle: _RemoteHandle) -> None:
        self._handle = handle
        self.max_length = int(handle.info["max_length"])
        self.vocab_size = int(handle.info["vocab_size"])

    def __call__(self, texts, text_pair=None, *, max_length=None, padding="longest", truncation=True) -> Encoding:
        pairs = None if text_pair is None else list(text_pair)
        return self._handle.call(
            "tokenizer", "__call__", list(texts), pairs, max_length=max_length, padding=padding, truncation=truncation
        )

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._handle.call("tokenizer", "decode", np.asarray(ids, dtype=np.int64), skip_special_tokens)


def _named(function, owner: str, method: str, doc: str | None):
    """`function` named as the method it becomes (in tracebacks and stack frames too)."""
    function.__code__ = function.__code__.replace(co_name=method, co_qualname=f"{owner}.{method}")
    function.__name__, function.__qualname__, function.__doc__ = method, f"{owner}.{method}", doc
    return function


def _forwarding(method: str, marks_trained: bool = False):
    """A Model method that runs in the worker (its name is one of Model.METHODS)."""

    def forward(self: RemoteModel, *args: Any, **kwargs: Any) -> Any:
        reply = self._handle.call("model", method, *args, **kwargs)
        if marks_trained:  # weights changed in the worker: a restart now loses them
            self._handle.trained = True
        return reply

    return _named(forward, "RemoteModel", method, getattr(Model, method).__doc__)


class RemoteModel(Model):
    """Model protocol, served by a worker: every method of Model.METHODS is forwarded, and
    `offers` answers as the worker's model does."""

    def __init__(self, handle: _RemoteHandle) -> None:
        self._handle = handle
        self.num_labels = int(handle.info["num_labels"])
        self._offers = frozenset(handle.info.get("offers", ()))
        self._refusals = dict(handle.info.get("refusals", {}))

    @property
    def worker_pid(self) -> int | None:
        return self._handle.worker.pid

    def offers(self, method: str) -> bool:
        super().offers(method)  # a name outside the contract is an error here too
        return method in self._offers

    def unsupported(self, method: str) -> NotSupportedError:
        """The worker's model's own reason, where it gave one."""
        if method in self._refusals:
            return NotSupportedError(self._refusals[method])
        return super().unsupported(method)


for _method in Model.METHODS:
    setattr(RemoteModel, _method, _forwarding(_method, marks_trained=_method in ("start_training", "load_state_dict")))


def _operation(method: str):
    """A BackendAdapter operation that runs in the worker (one of BackendAdapter.OPERATIONS)."""

    def forward(self: RemoteAdapter, *args: Any, **options: Any) -> Any:
        return self.worker.request(
            {"op": "backend", "method": method, "args": [str(a) for a in args], "kwargs": options},
            timeout=_timeout("UNIFIED_NLP_WORKER_LOAD_TIMEOUT", 900),  # conversions run tens of seconds
        )

    return _named(forward, "RemoteAdapter", method, getattr(BackendAdapter, method).__doc__)


class RemoteAdapter(BackendAdapter):
    """BackendAdapter whose work happens in a worker process: `load` returns proxies, and
    every operation of BackendAdapter.OPERATIONS is forwarded."""

    def __init__(self, backend: str, python: str) -> None:
        self.name = backend
        self.worker = get_worker(backend, python)

    def set_threads(self, n: int) -> int | None:
        """The worker's framework threads; what it reports back. A restarted worker starts with them."""
        self.worker.threads = int(n)
        return self.worker.request({"op": "backend", "method": "set_threads", "args": [int(n)]})

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions the worker's adapter runs."""
        return tuple(self.worker.request({"op": "backend", "method": "precisions"}))

    @property
    def devices(self) -> tuple[str, ...]:
        """The devices the worker's framework can use ("cpu", "cuda:0", ...)."""
        return tuple(self.worker.request({"op": "backend", "method": "devices"}))

    @property
    def gpu_install(self) -> str:
        """What the worker's environment needs installed to run on a GPU."""
        return str(self.worker.request({"op": "backend", "method": "gpu_install"}))

    def load(self, path: Path, spec: ModelSpec) -> tuple[RemoteTokenizer, RemoteModel]:
        handle = _RemoteHandle(self.worker, path, spec.to_dict())
        return RemoteTokenizer(handle), RemoteModel(handle)

    def describe_native(self, path: Path, **options: Any) -> ModelSpec:
        """The worker's spec of a native folder (sent as a dict), rebuilt here."""
        return ModelSpec.from_dict(_operation("describe_native")(self, path, **options))


for _method in set(BackendAdapter.OPERATIONS) - {
    "precisions",
    "devices",
    "gpu_install",
    "set_threads",
    "describe_native",
}:
    setattr(RemoteAdapter, _method, _operation(_method))
