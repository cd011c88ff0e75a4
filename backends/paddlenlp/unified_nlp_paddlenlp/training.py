"""Gradient clipping and AdamW in Paddle dygraph, written out as torch computes them, so a
fine-tuning step on this backend is the same arithmetic as on the Hugging Face reference.

torch.optim.AdamW (betas 0.9/0.999, eps 1e-8), per parameter with a gradient:
decoupled weight decay ``p *= 1 - lr * wd`` first, then
``m = lerp(m, g, 1 - b1)``, ``v = b2 * v + (1 - b2) * g * g``,
``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``, with ``t`` counted per
parameter. Parameters without a gradient (the pooler, which mean pooling does not use)
are skipped entirely, as torch skips them. Weight decay is off for the names
unified_nlp.training.no_decay picks (biases, LayerNorm).

torch.nn.utils.clip_grad_norm_: the global 2-norm of all gradients, then every
gradient times ``min(1, max_norm / (norm + 1e-6))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from unified_nlp.training import no_decay

from ._framework import paddle

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


class AdamW:
    """AdamW over (canonical name, parameter) pairs; the caller runs backward() first."""

    def __init__(self, named: list[tuple[str, Any]], weight_decay: float) -> None:
        self.names = [name for name, _ in named]
        self.params = [p for _, p in named]
        self.decay = [0.0 if no_decay(name) else float(weight_decay) for name, _ in named]
        self.exp_avg: list[Any] = [None] * len(named)
        self.exp_avg_sq: list[Any] = [None] * len(named)
        self.steps = [0] * len(named)

    def zero_grad(self) -> None:
        for p in self.params:
            p.clear_gradient(False)  # None, not zeros: a parameter off the loss path gets no update

    @paddle.no_grad()
    def step(self, lr: float, max_grad_norm: float) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        grads = {i: self.params[i].grad for i in live}
        if max_grad_norm > 0 and live:
            norms = paddle.stack([paddle.linalg.norm(grads[i].flatten()) for i in live])
            total = float(paddle.linalg.norm(norms))
            coef = min(1.0, max_grad_norm / (total + 1e-6))
            grads = {i: g * coef for i, g in grads.items()}
        for i in live:
            p, g = self.params[i], grads[i]
            if self.exp_avg[i] is None:
                self.exp_avg[i], self.exp_avg_sq[i] = paddle.zeros_like(p), paddle.zeros_like(p)
            self.steps[i] += 1
            t = self.steps[i]
            m = self.exp_avg[i] + (g - self.exp_avg[i]) * (1 - BETA1)
            v = self.exp_avg_sq[i] * BETA2 + g * g * (1 - BETA2)
            self.exp_avg[i], self.exp_avg_sq[i] = m, v
            value = p * (1 - lr * self.decay[i]) if self.decay[i] else p
            denom = v.sqrt() / math.sqrt(1 - BETA2**t) + EPS
            p.set_value(value - (lr / (1 - BETA1**t)) * m / denom)
        self.zero_grad()

    def state(self, to_canonical: Callable[[str, np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
        """Moments and step counts by name (``exp_avg/NAME``, ``exp_avg_sq/NAME``, ``step/NAME``),
        each moment passed through `to_canonical` (paddle's [in, out] Linear layout back to torch's)."""
        out: dict[str, np.ndarray] = {}
        for name, m, v, t in zip(self.names, self.exp_avg, self.exp_avg_sq, self.steps):
            if m is not None:
                out[f"exp_avg/{name}"] = np.ascontiguousarray(to_canonical(name, m.numpy()))
                out[f"exp_avg_sq/{name}"] = np.ascontiguousarray(to_canonical(name, v.numpy()))
                out[f"step/{name}"] = np.array([t], np.int64)  # [1]: safetensors keeps no 0-d
        return out

    def load(self, state: Mapping[str, np.ndarray], to_paddle: Callable[[str, np.ndarray], np.ndarray]) -> None:
        """The inverse of `state`."""
        for i, (name, p) in enumerate(zip(self.names, self.params)):
            if f"step/{name}" not in state:
                self.exp_avg[i] = self.exp_avg_sq[i] = None
                self.steps[i] = 0
                continue
            m, v = (np.asarray(to_paddle(name, state[f"{k}/{name}"]), np.float32) for k in ("exp_avg", "exp_avg_sq"))
            if list(m.shape) != list(p.shape) or list(v.shape) != list(p.shape):
                raise ValueError(f"optimizer state of {name!r} has shape {list(m.shape)}, expected {list(p.shape)}")
            self.exp_avg[i], self.exp_avg_sq[i] = paddle.to_tensor(m), paddle.to_tensor(v)
            self.steps[i] = int(np.ravel(state[f"step/{name}"])[0])
