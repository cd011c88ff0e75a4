"""The worker's side of the pipe: `python -m unified_nlp.worker_main BACKEND`.

Runs in the backend's own environment, with the adapter in-process. Protocol
frames use private copies of stdin/stdout; anything a framework prints goes to
stderr, which the parent keeps for error messages. Requests are answered one at
a time, in order, each reply carrying its request's id. Ops: load, call (a tokenizer's
or model's method, of those the contract in protocols.py declares), backend (one of
BackendAdapter.OPERATIONS: precisions, devices, set_threads, convert, ...; the parent also passes
$UNIFIED_NLP_NUM_THREADS to a worker it starts, before any framework loads), shutdown.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from .protocols import TOKENIZER_METHODS, BackendAdapter, Model
from .spec import ModelSpec
from .wire import PipeClosed, read_message, write_message

# what the parent may call, derived from the contract's declaration (protocols.py)
_METHODS = {"tokenizer": set(TOKENIZER_METHODS), "model": set(Model.METHODS)}


def _die_with_parent() -> None:
    try:  # Linux: the kernel kills us when the parent goes, even on SIGKILL
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    expected = os.environ.get("UNIFIED_NLP_PARENT_PID")
    if expected and os.getppid() != int(expected):
        sys.exit(0)  # the parent died before prctl took effect


def _error(e: BaseException) -> dict[str, Any]:
    from . import errors

    name = type(e).__name__
    known = isinstance(e, errors.UnifiedNLPError)
    message = str(e) if known else f"{e}\n{traceback.format_exc(limit=6)}"
    return {"error": {"type": name, "message": message}}


def _backend_operation(adapter: BackendAdapter, method: str, args: list, kwargs: dict) -> Any:
    """One of the adapter's declared OPERATIONS; its positional arguments are paths (set_threads': a count)."""
    from . import threads

    if method not in BackendAdapter.OPERATIONS:
        raise PermissionError(f"operation {method!r} is not callable through the worker")
    if method in ("precisions", "devices"):
        return list(getattr(adapter, method))
    if method == "gpu_install":
        return adapter.gpu_install
    if method == "set_threads":  # the framework's own count as it reports it back (None: no setting)
        return adapter.set_threads(threads.check(args[0]))
    reply = getattr(adapter, method)(*(Path(a) for a in args), **kwargs)
    return reply.to_dict() if isinstance(reply, ModelSpec) else reply  # describe_native's, rebuilt by RemoteAdapter


def serve(backend: str, fd_in: int, fd_out: int) -> None:
    from . import registry, threads

    try:
        if os.environ.get("UNIFIED_NLP_NUM_THREADS", "").isdigit():  # the parent's count, before any framework loads
            threads.request(int(os.environ["UNIFIED_NLP_NUM_THREADS"]))
        adapter = registry.load_adapter(backend)
    except BaseException as e:  # report, then exit: the parent shows it
        write_message(fd_out, _error(e))
        return
    write_message(
        fd_out,
        {"ready": True, "pid": os.getpid(), "python": sys.executable, "versions": registry.framework_versions(backend)},
    )
    objects: dict[int, tuple[str, Any]] = {}
    ids = itertools.count(1)
    while True:
        try:
            msg = read_message(fd_in)
        except PipeClosed:
            return
        op, rid = msg.get("op"), msg.get("id")
        for key in msg.get("release", []):  # objects the parent no longer holds
            objects.pop(int(key), None)
        try:
            if op == "shutdown":
                write_message(fd_out, {"id": rid, "ok": None})
                return
            if op == "load":
                tokenizer, model = adapter.load(Path(msg["path"]), ModelSpec.from_dict(msg["spec"]))
                t, m = next(ids), next(ids)
                objects[t], objects[m] = ("tokenizer", tokenizer), ("model", model)
                reply = {
                    "tokenizer": t,
                    "model": m,
                    "max_length": tokenizer.max_length,
                    "vocab_size": tokenizer.vocab_size,
                    "num_labels": model.num_labels,
                    "offers": [name for name in Model.METHODS if model.offers(name)],
                    # the model's own reason for each capability it lacks (RemoteModel.unsupported)
                    "refusals": {
                        name: str(model.unsupported(name)) for name in Model.METHODS if not model.offers(name)
                    },
                }
            elif op == "call":
                kind, obj = objects[int(msg["obj"])]
                method = msg["method"]
                if method not in _METHODS[kind]:
                    raise PermissionError(f"method {method!r} is not callable through the worker")
                target = obj if method == "__call__" else getattr(obj, method)
                reply = target(*msg.get("args", []), **msg.get("kwargs", {}))
            elif op == "backend":
                reply = _backend_operation(adapter, msg["method"], msg.get("args", []), msg.get("kwargs", {}))
            else:
                raise ValueError(f"unknown worker op {op!r}")
            write_message(fd_out, {"id": rid, "ok": reply})
        except Exception as e:
            write_message(fd_out, {"id": rid, **_error(e)})


def main() -> None:
    _die_with_parent()
    # a terminal's Ctrl-C reaches us too: the parent decides what it means, and the
    # request in progress still gets its reply (which the parent skips by id)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["UNIFIED_NLP_IN_WORKER"] = "1"
    fd_in, fd_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # frameworks print to stdout; keep the protocol stream clean
    sys.stdout = sys.stderr
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    serve(sys.argv[1], fd_in, fd_out)


if __name__ == "__main__":
    main()
