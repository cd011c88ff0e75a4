"""What the CPU offers, read from /proc/cpuinfo (standard library only, no framework import),
so that any backend can ask whether a reduced precision runs in hardware here.

Whether bf16 or int8 pays depends on the CPU, not on the framework alone: torch's bf16 autocast
was 5x slower than fp32 on a CPU without bf16 dot products and 3.1x faster on an AMD EPYC with
AVX512-BF16 (docs/backends.md, "Precision"). `CPUINFO` is the file read; tests point it at
another machine's copy.

>>> "fp32" in fast_precisions()
True
"""

from __future__ import annotations

import functools
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# the flags (as Linux names them) that make each reduced precision a hardware dot product
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# the flags that decide which GEMM kernels the frameworks pick: recorded with every benchmark result
GEMM_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")


@functools.cache
def _read(path: Path) -> tuple[frozenset[str], str]:
    try:
        block = path.read_text(encoding="ascii", errors="replace").split("\n\n", 1)[0]
    except OSError:
        return frozenset(), ""
    fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return frozenset(fields.get("flags", "").split()), fields.get("model name", "")


def flags() -> frozenset[str]:
    """The first processor's feature flags (``avx512f``, ``avx512_bf16``, ...); empty where
    /proc/cpuinfo cannot be read (not Linux)."""
    return _read(CPUINFO)[0]


def model_name() -> str:
    """The CPU's model name ("AMD EPYC 9R14"), or "" where unknown."""
    return _read(CPUINFO)[1]


def gemm_features() -> list[str]:
    """Which of `GEMM_FLAGS` this CPU has, in that order."""
    return [f for f in GEMM_FLAGS if f in flags()]


def native_bf16() -> bool:
    """bf16 dot products in hardware (AVX512-BF16 or AMX). Without them oneDNN and torch
    emulate bf16 with fp32 instructions plus conversions: slower than fp32."""
    return any(f in flags() for f in BF16_FLAGS)


def native_int8() -> bool:
    """int8 dot products in hardware (AVX512-VNNI, AVX-VNNI or AMX)."""
    return any(f in flags() for f in INT8_FLAGS)


def fast_precisions() -> tuple[str, ...]:
    """The precisions this CPU runs at hardware speed: fp32, then bf16 and int8 where it has
    their dot products (whether a backend offers them is the backend's `precisions`)."""
    return ("fp32",) + (("bf16",) if native_bf16() else ()) + (("int8",) if native_int8() else ())


def why_not_bf16() -> str:
    """Why bf16 is not offered here: the sentence an error shows (empty where it is native)."""
    if native_bf16():
        return ""
    name = model_name() or "this CPU"
    seen = f"{CPUINFO} lists neither {' nor '.join(BF16_FLAGS)}" if flags() else f"{CPUINFO} could not be read"
    return f"{name} has no bf16 dot products (AVX512-BF16 or AMX: {seen}), so bf16 would be emulated, slower than fp32"
