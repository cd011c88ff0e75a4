"""What the CPU offers, from /proc/cpuinfo, without importing paddle."""

from __future__ import annotations

import functools


@functools.cache
def first_processor() -> frozenset[str]:
    """The words of the first processor's block of /proc/cpuinfo (vendor, flags); empty where unreadable."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return frozenset(f.read().split("\n\n", 1)[0].split())
    except OSError:
        return frozenset()


def amd_avx2() -> bool:
    """An AMD CPU with AVX2 (where Paddle's MKL needs MKL_DEBUG_CPU_TYPE=5, _framework.py)."""
    words = first_processor()
    return "AuthenticAMD" in words and "avx2" in words


def native_bf16() -> bool:
    """bf16 dot products in hardware (AVX512-BF16 or AMX), which oneDNN's bf16 kernels need to be
    faster than fp32; elsewhere oneDNN emulates them, slower than fp32."""
    words = first_processor()
    return "avx512_bf16" in words or "amx_bf16" in words
