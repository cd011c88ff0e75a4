"""TensorFlow, TensorFlow Text and TensorFlow Hub, imported once and quietly.

Every module of this package imports the frameworks from here, so the
environment is set before TensorFlow loads: hub.KerasLayer needs tf_keras
(TF_USE_LEGACY_KERAS=1), and TensorFlow's C++ start-up chatter (oneDNN notice,
"no CUDA driver") is noise for a library user on a CPU machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

from unified_nlp.backend_kit import INTER_OP, requested_threads

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF errors that matter surface as Python exceptions

# lines TensorFlow writes to stderr from C++ before absl logging is initialised,
# so TF_CPP_MIN_LOG_LEVEL cannot hide them
_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWE]\d{4} .*"
    rb"(oneDNN custom operations|cudart_stub|cuda_platform|cuInit|Could not find cuda|TF-TRT|computation placer))"
)


@contextlib.contextmanager
def _filtered_stderr():
    """Capture file descriptor 2 while TensorFlow loads; give back every line that
    is not known start-up noise (so real errors still reach the user)."""
    if "tensorflow" in sys.modules:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr (embedded interpreter): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError, OSError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True) if not _NOISE.match(line)]
            if kept:
                os.write(2, b"".join(kept))


with _filtered_stderr(), warnings.catch_warnings():
    # tensorflow_hub 0.16 imports pkg_resources, which warns about its own deprecation
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text as text

    if tf.config.threading.get_intra_op_parallelism_threads() == 0:  # not set by a caller's own code
        # the pools are sized once, when the runtime starts (next line): with the count asked for, or the default
        with contextlib.suppress(RuntimeError):  # a caller's TensorFlow already runs: its pools stay
            tf.config.threading.set_intra_op_parallelism_threads(requested_threads())
            tf.config.threading.set_inter_op_parallelism_threads(INTER_OP)
    tf.constant(0)  # initialise the runtime here, so its device probe is filtered too


class _NoRetracingNotice(logging.Filter):
    """Each model traces its own graphs once; TensorFlow counts traces by code object across
    every model in the process, so loading a sixth model reads to it as retracing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_NoRetracingNotice())

__all__ = ["hub", "text", "tf"]
