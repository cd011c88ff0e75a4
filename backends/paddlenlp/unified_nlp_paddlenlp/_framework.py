"""Import paddle and PaddleNLP once: never after TensorFlow, and without their import-time noise.

`import paddle` after `import tensorflow` kills the process with a segmentation
fault (measured with paddlepaddle 3.3.1 and tensorflow 2.21), so this module
refuses instead; the core runs the backend in a worker process in that case.
The warnings silenced below are about paddle's C++ extension build tooling and
setuptools, nothing a library user can act on; errors still propagate.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings
from pathlib import Path

from unified_nlp.backend_kit import (
    CPU_DEVICE,
    BackendNotInstalledError,
    device_index,
    requested_threads,
    usable_devices,
)

from ._cpu import amd_avx2

if "tensorflow" in sys.modules and "paddle" not in sys.modules:
    raise BackendNotInstalledError(
        "paddle cannot be imported in a process that has already imported tensorflow (it crashes with a "
        "segmentation fault). Use the paddlenlp backend through unified_nlp.load_classifier, which runs it "
        "in a worker process, or import paddle before tensorflow."
    )


# Paddle's CPU wheels ship MKL 2019.0.5, which dispatches by CPU vendor: on an AMD CPU it runs
# its SSE kernels. Measured on an AMD EPYC (AVX-512), 2 threads, a 1024x384 @ 384x1536 SGEMM:
# 45-52 GFLOP/s, 131-138 with MKL_DEBUG_CPU_TYPE=5 (its AVX2 kernels; torch: 123), and the
# default model 2.1x faster end to end. That MKL reads the variable when it loads, so it is set
# before paddle is imported, and only where the user has not set it.
if amd_avx2():
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")

# `import paddle` sets OMP_NUM_THREADS to 1 where it is unset (paddle.base.__bootstrap__), which
# unified_nlp.threads reads as the user's request: every later load then ran Paddle on one core
# (measured: fine-tuning 17.5 texts/s on 1 thread, 22.2 on 2). The user's own value is put back
# after the import, and the default count is read before it.
_omp_before = os.environ.get("OMP_NUM_THREADS")
_default_threads = requested_threads()

_QUIET = (
    "No ccache found",  # paddle.utils.cpp_extension, at import
    "Setuptools is replacing distutils",  # paddlenlp's dependencies, at import
)

with warnings.catch_warnings():
    for message in _QUIET:
        warnings.filterwarnings("ignore", message=message)
    os.environ.setdefault("GLOG_minloglevel", "2")  # paddle's C++ INFO/WARNING lines on stderr
    import paddle
    import paddlenlp.transformers as paddlenlp_transformers
    from paddlenlp.transformers import BertTokenizer
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer
    from paddlenlp.transformers.llama.modeling import rotate_half  # transformers' RoPE rotation (modernbert.py)
    from paddlenlp.transformers.model_utils import no_init_weights
    from paddlenlp.transformers.tokenizer_utils import _is_punctuation as is_punctuation
    from paddlenlp.transformers.tokenizer_utils import _is_whitespace as is_whitespace
if _omp_before is None:
    os.environ.pop("OMP_NUM_THREADS", None)
else:
    os.environ["OMP_NUM_THREADS"] = _omp_before


# Paddle's CPU math library runs single-threaded unless told otherwise (measured: no extra
# thread during a matmul); torch and TensorFlow use every core. Same default here
# (unified_nlp.threads: OMP_NUM_THREADS when set, else the CPUs this process may use).
_threads = [_default_threads]  # the count last set: a Paddle Inference predictor is given it when made
paddle.base.core.set_num_threads(_threads[0])


def set_threads(n: int) -> int:
    """Paddle's CPU math-library threads, process-wide; the count MKL reports back."""
    paddle.base.core.set_num_threads(int(n))
    _threads[0] = int(n)
    found = mkl_threads()
    return int(n) if found is None else found


def mkl_threads() -> int | None:
    """The thread count Paddle's MKL runs with now (None where the wheel ships no MKL)."""
    mkl = Path(paddle.__file__).parent / "libs" / "libmklml_intel.so"  # paddle's CPU wheels ship MKL
    if not mkl.is_file():
        return None
    return int(ctypes.CDLL(str(mkl)).MKL_Get_Max_Threads())  # the loaded library: dlopen returns its handle


def math_threads() -> int:
    """The thread count last given to Paddle's CPU math library (set_threads, else the default)."""
    return _threads[0]


def devices() -> tuple[str, ...]:
    """The devices here: "cpu", and "cuda:N" for each GPU a CUDA build of paddle (paddlepaddle-gpu) sees."""
    return usable_devices(paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0)


def use_device(device: str | None) -> str:
    """Make Paddle's place for new tensors that of a normalised device; returns Paddle's name of
    it ("cpu", "gpu:N"). paddle.set_device is process-wide, so a model calls this again before it
    runs (cheap where it is already so): models on two devices in one process each get their own."""
    name = "cpu" if device in (None, CPU_DEVICE) else f"gpu:{device_index(device)}"
    if paddle.get_device() != name:
        paddle.set_device(name)
    return name


def finite_masked_softmax(module: str) -> None:
    """Replace the `softmax_with_mask` of the PaddleNLP module `module` (Family.paddle_masked_softmax)
    by transformers' form: masked scores set to float32's lowest value, not -inf. With -inf a fully
    masked row (a padding token's query) is NaN, and Paddle Inference carries that NaN into the real
    tokens' logits (measured: DeBERTa-v2 padded batches); transformers' form gives them a finite
    value and the same logits for every real token."""
    import importlib

    import numpy as np

    target = importlib.import_module(module)
    lowest = float(np.finfo(np.float32).min)

    def softmax_with_mask(x, mask, axis):
        masked = paddle.logical_not(mask.astype("bool"))
        return paddle.nn.functional.softmax(paddle.where(masked, paddle.full_like(x, lowest), x), axis=axis)

    target.softmax_with_mask = softmax_with_mask


__all__ = [
    "paddle",
    "devices",
    "paddlenlp_transformers",
    "rotate_half",
    "finite_masked_softmax",
    "use_device",
    "math_threads",
    "set_threads",
    "BertTokenizer",
    "BasicTokenizer",
    "is_punctuation",
    "is_whitespace",
    "no_init_weights",
]
