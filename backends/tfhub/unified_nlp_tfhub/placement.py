"""load_classifier(device=...) on the tfhub backend: TensorFlow device scopes.

TensorFlow places a variable on the device of the scope it is made in, and an op on the
scope's device where one is given, else on its first GPU where it sees one
(tensorflow.org/guide/gpu, "Manual device placement"). So a model is built inside
``tf.device(scope)`` and every call to it runs inside the same scope: "cuda:N" is
"/GPU:N", "cpu" is "/CPU:0" (which keeps a CPU model off a GPU that TensorFlow sees).
"""

from __future__ import annotations

from typing import Any

from unified_nlp.backend_kit import CPU_DEVICE, Model, NotSupportedError, device_index, usable_devices

from ._tf import tf

GPU_INSTALL = (
    "TensorFlow with its CUDA libraries: pip install 'tensorflow[and-cuda]' in place of tensorflow-cpu "
    "(tensorflow.org/install/pip; Linux only)"
)


def devices() -> tuple[str, ...]:
    """The devices here: "cpu", and "cuda:N" for each GPU TensorFlow sees (none with a CPU-only TensorFlow)."""
    return usable_devices(len(tf.config.list_physical_devices("GPU")))


def scope(device: str | None) -> str:
    """TensorFlow's name of a normalised device: "/CPU:0" or "/GPU:N"."""
    return "/CPU:0" if device in (None, CPU_DEVICE) else f"/GPU:{device_index(device)}"


def pinned(device: str | None) -> bool:
    """Whether a model must run inside a scope: a GPU was asked for, or TensorFlow sees one
    (where it would place a CPU model's ops on it by itself)."""
    return device not in (None, CPU_DEVICE) or len(devices()) > 1


class Placed(Model):
    """A tfhub model whose every call (Model.METHODS) runs inside ``tf.device(scope)``; its
    other attributes are the model's own."""

    def __init__(self, model: Model, where: str) -> None:
        self._model, self.scope = model, where
        self.num_labels = model.num_labels

    def __getattr__(self, name: str) -> Any:  # what the adapter reads of its own model (max_positions, ...)
        if name == "_model":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self._model, name)

    def offers(self, method: str) -> bool:
        return self._model.offers(method)

    def unsupported(self, method: str) -> NotSupportedError:
        return self._model.unsupported(method)


def _scoped(method: str):
    def run(self: Placed, *args: Any, **kwargs: Any) -> Any:
        with tf.device(self.scope):
            return getattr(self._model, method)(*args, **kwargs)

    run.__name__ = run.__qualname__ = method
    return run


for _method in Model.METHODS:
    setattr(Placed, _method, _scoped(_method))
