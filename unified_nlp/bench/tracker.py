"""What a probe records besides time: memory, CPU time, and the environment.

Standard library only (psutil when present), so it runs in every backend's
environment, including the PaddleNLP one.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import resource
import sys
from typing import Any

from ..cpu import gemm_features, model_name


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # macOS: bytes, Linux: KiB


def rss_mb() -> float:
    """Current resident memory of this process, in MiB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_model() -> str:
    return model_name() or platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine, as seen from any process: CPU, cores, memory, OS, load."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_features": gemm_features(),
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    return info


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def versions(distributions: list[str] | tuple[str, ...]) -> dict[str, str]:
    out = {}
    for dist in distributions:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def process_environment() -> dict[str, Any]:
    """This interpreter and the thread-related environment variables it was started with."""
    keys = (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "RAYON_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
    )
    return {
        "python": sys.executable,
        "python_version": platform.python_version(),
        "numpy": versions(["numpy"]).get("numpy"),
        "env": {k: os.environ[k] for k in keys if k in os.environ},
    }


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
