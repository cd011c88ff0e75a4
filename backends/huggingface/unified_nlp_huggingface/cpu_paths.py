"""The huggingface backend's fast CPU paths: fp32 linears on oneDNN, and a bf16 copy of the model.

fp32: torch's CPU wheel runs `nn.Linear` through MKL, which on AMD CPUs takes far slower
kernels than the hardware allows (1024x384 @ 384x1536 on 2 threads: 78 GFLOP/s against 252 for
oneDNN, same process; ../DESIGN.md). `OneDNNLinear` runs the same product through oneDNN on a
weight packed once (`torch.ops.mkldnn._linear_pointwise`, the op torch.compile's freezing
pass emits for a linear): fp32 throughout, logits within 1e-5 of eager. It was chosen over a
whole-graph path by measurement (one thread, docs/benchmarks.md; `benchmarks/hf_precision.py
--graphs` repeats it): `torch.jit.trace` + `freeze` +
`optimize_for_inference` converted activations to and from oneDNN's layout around every
linear and gained nothing; `torch.compile` with inductor freezing was slightly faster still
but took minutes to compile here, against a cold start that must stay within 1.3x of bare
transformers; swapping the class of each `nn.Linear` keeps every shape, pair and family
working and costs milliseconds at load. Training, autocast, gradients and GPUs take
`nn.Linear`'s own forward, and a weight changed in place (fit, load_state_dict) is packed again.

bf16: a copy of the model in bf16 (`BF16Copy`: every weight and activation in bf16, products on
oneDNN's AVX512-BF16 / AMX kernels), offered only where the CPU has bf16 dot products
(`unified_nlp.cpu`); the logits come back as fp32. Against `torch.autocast` (benchmarks/hf_precision.py,
default model, SST-2 dev) the speed was a tie: the same CPU time on one thread (2.0x fp32 eager
both), and on 2 threads of a busy shared machine each was faster in two of four runs; the copy
keeps 99.77% of the fp32 labels (autocast 99.89%) at the same accuracy, 0.8119, and casts no
weight per call. To be settled on a quiet machine. The fp32 model stays the one that trains and
saves; the copy is made again when its weights change.
"""

from __future__ import annotations

import copy
import os

import torch

# UNIFIED_NLP_TORCH_ONEDNN=1 runs fp32 inference through oneDNN's packed linears; off by default:
# its primitive cache grew the process by 13% over 600 mixed-length calls of the default model
# (843 MB against 608 MB, benchmarks/soak.py), for 1.10x torch's own nn.Linear on a quiet
# machine (benchmarks/hf_precision.py, 2026-12-07 15:43 UTC)
ENV_SWITCH = "UNIFIED_NLP_TORCH_ONEDNN"


def onednn_linear_available() -> bool:
    """Whether this torch build has oneDNN's packed linear (every x86 CPU wheel does)."""
    ops = torch.ops.mkldnn
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_linear_pointwise")
        and hasattr(ops, "_reorder_linear_weight")
    )


def onednn_wanted() -> bool:
    return os.environ.get(ENV_SWITCH, "0") == "1" and onednn_linear_available()


class OneDNNLinear(torch.nn.Linear):
    """`nn.Linear` (same parameters and names) whose fp32 inference on the CPU runs oneDNN's
    GEMM on a packed copy of the weight; anything else goes through `nn.Linear.forward`."""

    _packed: torch.Tensor | None = None
    _packed_of: tuple[int, int] | None = None  # (id, version) of the weight it was packed from

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        eager = (
            torch.is_grad_enabled()
            or torch.is_autocast_enabled("cpu")
            or x.dtype != torch.float32
            or w.dtype != torch.float32
            or x.device.type != "cpu"
            or w.device.type != "cpu"
        )
        if eager:
            return super().forward(x)
        key = (id(w), w._version)
        if self._packed_of != key:  # first use, or the weight changed (fit, load_state_dict)
            self._packed = torch.ops.mkldnn._reorder_linear_weight(w.detach(), None)
            self._packed_of = key
        return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")

    def __getstate__(self) -> dict:
        # oneDNN's packed tensor has no storage to copy: deepcopy and pickle drop it; it is packed again on use
        state = dict(super().__getstate__())
        state.pop("_packed", None)
        state.pop("_packed_of", None)
        return state


def use_onednn(net: torch.nn.Module, on: bool = True) -> int:
    """Turn every plain `nn.Linear` of `net` into a OneDNNLinear (or back, `on=False`), in
    place: parameters, names and state_dict stay as they are. Returns how many changed."""
    source, target = (torch.nn.Linear, OneDNNLinear) if on else (OneDNNLinear, torch.nn.Linear)
    changed = 0
    for module in net.modules():
        if type(module) is source:
            module.__class__ = target
            module.__dict__.pop("_packed", None)
            module.__dict__.pop("_packed_of", None)
            changed += 1
    return changed


class BF16Copy:
    """A bf16 copy of `net` for inference, made at first use and again after any of `net`'s
    parameters changed (fit, load_state_dict): `net` itself stays fp32."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net
        self._copy: torch.nn.Module | None = None
        self._of: tuple | None = None

    def get(self) -> torch.nn.Module:
        key = tuple((id(p), p._version) for p in self.net.parameters())
        if key != self._of:
            self._copy = None  # free the stale copy before making the next
            self._copy = copy.deepcopy(self.net).to(torch.bfloat16).eval().requires_grad_(False)
            self._of = key
        return self._copy
