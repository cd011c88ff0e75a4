"""ONNX Runtime sessions and the Model of the onnxruntime backend."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from unified_nlp.backend_kit import (
    CPU_DEVICE,
    INTER_OP,
    BackendNotInstalledError,
    Encoding,
    InvalidInputError,
    InvalidModelError,
    Model,
    ModelOutput,
    NotSupportedError,
    UnifiedNLPError,
    device_index,
    training_backends,
    usable_devices,
)

GPU_INSTALL = "onnxruntime-gpu in place of onnxruntime: pip uninstall onnxruntime && pip install onnxruntime-gpu"
CUDA = "CUDAExecutionProvider"
AUTO_INSTANCES_BYTES = 1 << 30  # a model file up to 1 GiB gets side-by-side instances by default (OrtModel.instances)


def devices() -> tuple[str, ...]:
    """The devices here: "cpu", and "cuda:N" where this onnxruntime has its CUDA provider (onnxruntime-gpu): one per
    GPU that ONNX Runtime's device discovery lists (get_ep_devices, 1.22+), at least cuda:0; an
    index the provider cannot open is refused when the session starts (open_session)."""
    if CUDA not in ort.get_available_providers():
        return usable_devices(0)
    listed = getattr(ort, "get_ep_devices", list)()
    gpus = {d.device.device_id for d in listed if d.device.type == ort.OrtHardwareDeviceType.GPU}
    return usable_devices(max(1, len(gpus)))


def _providers(device: str | None) -> list:
    """ONNX Runtime's execution providers for a normalised device, first choice first."""
    if device in (None, CPU_DEVICE):
        return ["CPUExecutionProvider"]
    return [(CUDA, {"device_id": device_index(device)}), "CPUExecutionProvider"]


def open_session(path: Path, num_threads: int, device: str | None = None, arena: bool = True) -> ort.InferenceSession:
    """A session of the .onnx file at `path` on `device` (None: the CPU): `num_threads` intra-op
    threads, one inter-op (all parallelism in the kernels), every graph optimisation of ONNX Runtime,
    its CPU memory arena unless `arena` is False."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(num_threads)
    options.inter_op_num_threads = INTER_OP
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = arena
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are noise here
    try:
        session = ort.InferenceSession(str(path), options, providers=_providers(device))
    except Exception as e:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
        raise InvalidModelError(f"{path}: ONNX Runtime cannot load this model file ({type(e).__name__}: {e})") from None
    if device not in (None, CPU_DEVICE) and session.get_providers()[0] != CUDA:
        # ONNX Runtime falls back to the CPU provider where CUDA's cannot start (no such device,
        # CUDA or cuDNN libraries missing) and only logs it: a GPU asked for is refused instead
        raise BackendNotInstalledError(
            f"ONNX Runtime could not start its CUDA provider on {device} (no such GPU, or the CUDA and "
            "cuDNN libraries that onnxruntime-gpu needs are missing: onnxruntime.ai, 'CUDA Execution Provider')"
        )
    return session


class OrtModel(Model):
    """An exported classifier run by ONNX Runtime: an Encoding in, numpy logits (and on
    request the last hidden state, and the pooled embedding of a mean-pooling head) out.

    `state` gives the weights under transformers' names (`state_dict`) where the model was
    loaded from a canonical folder; an exported folder keeps only its graph."""

    def __init__(
        self, folder: Path, meta: Mapping[str, Any], num_threads: int, state=None, device: str | None = None
    ) -> None:
        self.file = folder / meta.get("model_file", "model.onnx")
        if not self.file.is_file():
            raise InvalidModelError(f"{self.file}: missing (an ONNX Runtime folder holds model.onnx)")
        self.session = open_session(self.file, num_threads, device)
        self.num_threads, self.device = int(num_threads), device
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        wanted = list(meta.get("inputs", ["input_ids", "attention_mask"]))
        if sorted(self.inputs) != sorted(wanted) or "logits" not in self.outputs:
            raise InvalidModelError(
                f"{self.file}: the graph's inputs {self.inputs} and outputs {self.outputs} are not those of "
                f"{folder / 'unified_nlp.json'} ({wanted}, with logits)"
            )
        self.num_labels = int(len(meta["labels"]))
        self.max_positions = int(meta.get("max_positions", meta.get("max_length", 512)))
        self._state = state

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        if encoding.input_ids.shape[1] == 0:  # an empty batch: nothing for the runtime to run
            return ModelOutput(np.zeros((encoding.num_texts, self.num_labels), np.float32))
        if encoding.input_ids.shape[1] > self.max_positions:
            raise InvalidInputError(
                f"sequence of {encoding.input_ids.shape[1]} tokens exceeds the model's {self.max_positions}; "
                "tokenize with truncation=True"
            )
        names = self.outputs if output_hidden_states else ["logits"]
        try:
            got = dict(zip(names, self.session.run(names, {k: encoding[k] for k in self.inputs})))
        except Exception as e:  # onnxruntime's pybind errors
            raise UnifiedNLPError(f"{self.file}: ONNX Runtime failed on this batch ({type(e).__name__}: {e})") from None
        return ModelOutput(got["logits"], got.get("last_hidden_state"), got.get("pooled"))

    def instances(self, count: int | None = None) -> list[Model]:
        """`count` sessions of the same file that run side by side, the threads shared among them
        (at least one each): each session's calls on its own threads, not two calls competing
        for one pool. On 2 cores, two one-thread sessions ran 295 rows/s at batch 16 where one
        two-thread session ran 283 (two calls at once on it: 236), and a server's other
        threads then stall one session's thread, not both halves of every operator.
        Each session holds its own copy of the weights, and allocates without ONNX Runtime's memory
        arena (which kept each instance's largest batch: the default model's server grew from 1.2 GB
        to 3.4 GB of RSS with two arenas more, and to 1.5 GB without them, at the same throughput).
        None gives two on a CPU with 2 threads or more for a model file under AUTO_INSTANCES_BYTES,
        else this model alone (as on a GPU)."""
        if count is None:
            small = self.file.stat().st_size <= AUTO_INSTANCES_BYTES
            count = 2 if small and self.num_threads >= 2 else 1
        if count <= 1 or self.device not in (None, CPU_DEVICE):
            return [self]
        models = []
        for _ in range(count):
            model = copy.copy(self)
            model.num_threads = max(1, self.num_threads // count)
            model.session = open_session(self.file, model.num_threads, self.device, arena=False)
            models.append(model)
        return models

    def state_dict(self) -> dict[str, np.ndarray]:
        if self._state is None:
            raise UnifiedNLPError(
                f"{self.file.parent}: an ONNX Runtime export keeps only its graph, no canonical weights; "
                "save the canonical folder it was converted from instead"
            )
        return self._state()

    def unsupported(self, method: str) -> NotSupportedError:
        if method == "state_dict":
            return super().unsupported(method)
        return NotSupportedError(
            f"the onnxruntime backend runs inference only, it has no {method}: fine-tune on a backend that trains "
            f"({', '.join(training_backends())}), save, then load the saved folder with backend='onnxruntime'"
        )
