"""Fix the thread count of every framework, the same for all.

The launcher sets the environment variables before the probe starts (OpenMP,
MKL and OpenBLAS read them once, at load); `fix_threads` then applies each
framework's own setting. Like einops' backends, a framework is touched only if
it is already in sys.modules: importing one that is not needed can crash the
process (paddle after tensorflow).
"""

from __future__ import annotations

import sys
from typing import Any

INTER_OP = 1  # one graph-level thread: all parallelism goes to the kernels, the same for every framework


def environment_variables(threads: int) -> dict[str, str]:
    n = str(int(threads))
    return {
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "RAYON_NUM_THREADS": n,  # the Rust tokenizers' batch parallelism
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": str(INTER_OP),
    }


def _torch(threads: int) -> dict[str, Any]:
    torch = sys.modules["torch"]
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(INTER_OP)
    except RuntimeError:  # only allowed before the first inter-op parallel work
        pass
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}


def _tensorflow(threads: int) -> dict[str, Any]:
    tf = sys.modules["tensorflow"]
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(INTER_OP)
    except RuntimeError:
        # the runtime was already initialised (an adapter may do so at import): the thread pools were
        # then sized from TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, which the launcher set
        return {"intra_op": threads, "inter_op": INTER_OP, "via": "TF_NUM_INTRAOP_THREADS/TF_NUM_INTEROP_THREADS"}
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def _paddle(threads: int) -> dict[str, Any]:
    paddle = sys.modules["paddle"]
    core = getattr(getattr(paddle, "base", None), "core", None)
    if core is not None and hasattr(core, "set_num_threads"):
        core.set_num_threads(threads)  # the CPU math library (MKL / OpenBLAS) threads of dynamic graphs
        return {"math_threads": threads}
    return {"note": "paddle.base.core.set_num_threads not found; OMP/MKL environment variables only"}


_FRAMEWORKS = {"torch": _torch, "tensorflow": _tensorflow, "paddle": _paddle}


def fix_threads(threads: int) -> dict[str, Any]:
    """Apply `threads` to each framework already imported; returns what each reports back."""
    applied: dict[str, Any] = {}
    for module, apply in _FRAMEWORKS.items():
        if module in sys.modules:
            try:
                applied[module] = apply(int(threads))
            except Exception as e:  # a framework that refuses is recorded, not fatal
                applied[module] = {"error": f"{type(e).__name__}: {e}"}
    return applied
