"""AdamW on tf.Variables, step for step as torch.optim.AdamW computes it, and
gradient clipping as torch.nn.utils.clip_grad_norm_ does.

Keras' AdamW differs in small ways (epsilon inside the bias correction, decay
scaled differently), which would make the same fit drift apart between
backends; these few lines keep the update identical to the PyTorch reference.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._tf import tf

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


class AdamW(tf.Module):
    """torch.optim.AdamW(betas=(0.9, 0.999), eps=1e-8), with a weight decay per
    parameter (0 for biases and LayerNorm), as decoupled decay before the Adam step.

    >>> opt = AdamW(params, decays=[0.01, 0.0])   # doctest: +SKIP
    >>> opt.apply(grads, learning_rate)            # inside a tf.function
    """

    def __init__(self, params: Sequence[tf.Variable], decays: Sequence[float]) -> None:
        super().__init__(name="adamw")
        self.params = list(params)
        self.decays = [float(d) for d in decays]
        self.m = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.params]
        self.v = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.params]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, grads: Sequence[tf.Tensor], learning_rate: tf.Tensor) -> None:
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float64)
        lr = tf.cast(learning_rate, tf.float64)
        # torch computes these scalars in Python floats (double precision)
        step_size = tf.cast(lr / (1.0 - BETA1**t), tf.float32)
        bias_correction2_sqrt = tf.cast(tf.sqrt(1.0 - BETA2**t), tf.float32)
        for p, g, m, v, decay in zip(self.params, grads, self.m, self.v, self.decays):
            if decay:
                p.assign(p * tf.cast(1.0 - lr * decay, tf.float32))
            m.assign(m + (g - m) * (1.0 - BETA1))  # torch: exp_avg.lerp_(grad, 1 - beta1)
            v.assign(v * BETA2 + g * g * (1.0 - BETA2))
            p.assign_sub(step_size * m / (tf.sqrt(v) / bias_correction2_sqrt + EPS))


def clip_by_global_norm(grads: Sequence[tf.Tensor], max_norm: float) -> list[tf.Tensor]:
    """torch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1."""
    if max_norm <= 0:
        return list(grads)
    norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))
    coef = tf.minimum(max_norm / (norm + 1e-6), 1.0)
    return [g * coef for g in grads]
