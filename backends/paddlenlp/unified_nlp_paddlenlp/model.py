"""PaddleNLP's BertModel -> mean pooling over the attention mask -> linear head, in Paddle dygraph."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.errors import InvalidInputError, InvalidModelError
from unified_nlp.models import check_shapes, load_head
from unified_nlp.protocols import Encoding, ModelOutput
from unified_nlp.weights import load_file

from . import names
from ._framework import BertConfig, BertModel, no_init_weights, paddle
from .converter import read_paddle_config, weights_file
from .training import AdamW


def build_encoder(folder: Path) -> tuple[BertModel, dict[str, Any]]:
    """PaddleNLP's BertModel from a local PaddleNLP folder (config.json + model.safetensors), in eval mode.

    Every name and shape is checked against the file before set_state_dict, which
    would otherwise only warn about missing or mismatched tensors.
    """
    config = read_paddle_config(folder)
    path = weights_file(folder)
    tensors = load_file(path)
    try:
        with no_init_weights():  # every weight is overwritten below; skip PaddleNLP's random init
            encoder = BertModel(BertConfig(**config))
    except (TypeError, ValueError, AssertionError) as e:
        raise InvalidModelError(f"{folder / 'config.json'}: PaddleNLP cannot build a BertModel from it ({e})") from e
    # PaddleNLP's BertModel builds its LayerNorms with paddle's default epsilon (1e-5) and
    # ignores config.layer_norm_eps; BERT uses 1e-12, and parity with transformers needs it.
    eps = float(config.get("layer_norm_eps", 1e-12))
    for layer in encoder.sublayers():
        if isinstance(layer, paddle.nn.LayerNorm):
            layer._epsilon = eps
    expected = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    check_shapes({k: v.shape for k, v in tensors.items()}, expected, path)
    encoder.set_state_dict({k: v.astype(np.float32, copy=False) for k, v in tensors.items()})
    encoder.eval()
    return encoder, config


_INPUTS = ("input_ids", "token_type_ids", "attention_mask")  # the order of _Net.forward's arguments


class _Net(paddle.nn.Layer):
    """Encoder -> masked mean pooling -> linear head as one Layer, so that one graph
    serves both dygraph training and the compiled inference path."""

    def __init__(self, encoder: BertModel, head: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.encoder = encoder
        # [num_labels, hidden], the canonical (torch) layout: logits = pooled @ W^T + b
        self.head_weight = self.create_parameter(list(head["weight"].shape), dtype="float32")
        self.head_bias = self.create_parameter(list(head["bias"].shape), dtype="float32", is_bias=True)
        self.head_weight.set_value(head["weight"])
        self.head_bias.set_value(head["bias"])

    def forward(self, input_ids, token_type_ids, attention_mask):
        # A 2-D int mask: BertModel turns it into the additive [b, 1, 1, s] mask (1 - m) * -1e4,
        # whose exp underflows to exactly 0, as transformers' -inf mask does.
        states, _ = self.encoder(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        weights = attention_mask.astype(states.dtype).unsqueeze(-1)
        pooled = (states * weights).sum(axis=1) / weights.sum(axis=1).clip(min=1e-9)
        return paddle.matmul(pooled, self.head_weight, transpose_y=True) + self.head_bias, states, pooled


class PaddleModel:
    """An `Encoding` in, a `ModelOutput` out: BertModel -> masked mean pooling -> linear head.

    Inference runs the same Layers compiled once with paddle.jit.to_static (a static
    graph of the same kernels, so bit-identical outputs; it needs about two thirds of the
    CPU time of dygraph here), under paddle.no_grad() with dropout off, serialised by a
    lock (dygraph's grad mode is process-wide state). UNIFIED_NLP_PADDLE_STATIC=0 keeps
    inference in dygraph. Training (train_step) runs in dygraph: forward,
    cross-entropy, backward, global-norm clipping, and AdamW written out as
    torch.optim.AdamW computes it (see training.py).
    """

    def __init__(self, folder: Path, head_dir: Path, spec: Mapping[str, Any]) -> None:
        encoder, self.config = build_encoder(folder)
        hidden = int(self.config["hidden_size"])
        head = load_head(head_dir, dict(spec), hidden)
        if head["weight"].shape[1] != hidden:
            raise InvalidModelError(
                f"{head_dir}: head expects hidden size {head['weight'].shape[1]}, the encoder has {hidden}"
            )
        self.net = _Net(encoder, head)
        self.net.eval()
        self.encoder = encoder
        self.num_labels = int(head["weight"].shape[0])
        self.max_positions = int(self.config.get("max_position_embeddings", 512))
        self._vocab = int(self.config["vocab_size"])
        self._types = int(self.config.get("type_vocab_size", 2))
        self._canonical = names.paddle_to_canonical_names(int(self.config["num_hidden_layers"]))
        self._lock = threading.RLock()
        self._optimizer: AdamW | None = None
        self._compiled = None if os.environ.get("UNIFIED_NLP_PADDLE_STATIC") == "0" else self._compile()

    def _compile(self):
        net = self.net

        def infer(input_ids, token_type_ids, attention_mask):
            return net(input_ids, token_type_ids, attention_mask)

        spec = [paddle.static.InputSpec([None, None], "int64", name=k) for k in _INPUTS]
        return paddle.jit.to_static(infer, input_spec=spec, full_graph=True)

    # --- inference -----------------------------------------------------------

    def _check(self, enc: Encoding) -> None:
        ids, types = enc.input_ids, enc.token_type_ids
        if ids.shape[1] > self.max_positions:
            raise InvalidInputError(
                f"sequence of {ids.shape[1]} tokens exceeds the model's {self.max_positions}; tokenize with truncation=True"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self._vocab):
            raise InvalidInputError(f"token ids must lie in [0, {self._vocab}), got {ids.min()}..{ids.max()}")
        if types.size and (types.min() < 0 or types.max() >= self._types):
            raise InvalidInputError(f"token_type_ids must lie in [0, {self._types})")

    def _logits(self, enc: Encoding, compiled: bool = False):
        self._check(enc)
        inputs = [paddle.to_tensor(enc[k]) for k in _INPUTS]
        if compiled and self._compiled is not None:
            try:
                with warnings.catch_warnings():  # tracing PaddleNLP's code warns about graph-mode details
                    warnings.simplefilter("ignore", UserWarning)
                    return self._compiled(*inputs)
            except Exception:  # noqa: BLE001  the same Layers run in dygraph, with identical results
                self._compiled = None
        return self.net(*inputs)

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        n, width = encoding.input_ids.shape
        if n == 0 or width == 0:
            hidden = int(self.config["hidden_size"])
            empty = ModelOutput(np.zeros((n, self.num_labels), np.float32))
            if output_hidden_states:
                empty.last_hidden_state = np.zeros((n, width, hidden), np.float32)
                empty.pooled = np.zeros((n, hidden), np.float32)
            return empty
        with self._lock:
            training = self.net.training
            self.net.eval()  # inference never applies dropout, even mid-fit (validation)
            try:
                with paddle.no_grad():
                    logits, states, pooled = self._logits(encoding, compiled=not training)
                    if not output_hidden_states:
                        return ModelOutput(logits.numpy())
                    return ModelOutput(logits.numpy(), states.numpy(), pooled.numpy())
            finally:
                if training:
                    self.net.train()

    def state_dict(self) -> dict[str, np.ndarray]:
        """All weights under canonical Hugging Face names (Linear weights back to [out, in]),
        plus head.weight/head.bias."""
        with self._lock:
            tensors = {k: v.numpy().copy() for k, v in self.encoder.state_dict().items()}
            out = {hf: fn(tensors[pd]).copy() for hf, pd, fn in names.weight_map(int(self.config["num_hidden_layers"]))}
            out["head.weight"] = self.net.head_weight.numpy().copy()
            out["head.bias"] = self.net.head_bias.numpy().copy()
        return out

    # --- training: the core drives data order, schedule and progress ---------

    def named_parameters(self) -> list[tuple[str, Any]]:
        """(canonical name, parameter) of everything trainable: the head first, then the encoder."""
        named = [("head.weight", self.net.head_weight), ("head.bias", self.net.head_bias)]
        return named + [(self._canonical[k], p) for k, p in self.encoder.named_parameters()]

    def start_training(self, config: Mapping[str, Any]) -> None:
        with self._lock:
            paddle.seed(int(config.get("seed", 0)))
            dropout = float(config.get("dropout", 0.0))
            # transformers' BERT drops out embeddings, attention probabilities and both
            # residual branches; paddle's extra activation dropout (layer.dropout) stays 0 like it.
            self.encoder.embeddings.dropout.p = dropout
            for layer in self.encoder.encoder.layers:
                layer.self_attn.dropout = dropout
                layer.dropout1.p = layer.dropout2.p = dropout
            if dropout > 0:
                self.net.train()
            else:
                self.net.eval()
            named = self.named_parameters()
            if config.get("freeze_encoder", False):
                for _, p in named[2:]:
                    p.stop_gradient = True
                named = named[:2]
            self._optimizer = AdamW(named, weight_decay=float(config.get("weight_decay", 0.01)))
            self._clip = float(config.get("max_grad_norm", 1.0))

    def train_step(self, encoding: Encoding, label_ids: np.ndarray, learning_rate: float) -> float:
        if self._optimizer is None:
            raise RuntimeError("start_training() must come before train_step()")
        labels = np.asarray(label_ids, dtype=np.int64)
        if labels.shape != (encoding.num_texts,) or labels.min() < 0 or labels.max() >= self.num_labels:
            raise InvalidInputError(f"label_ids must be {encoding.num_texts} integers in [0, {self.num_labels})")
        with self._lock:
            logits, _, _ = self._logits(encoding)
            loss = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(labels), reduction="mean")
            loss.backward()
            self._optimizer.step(float(learning_rate), self._clip)
            return float(loss.numpy())

    def end_training(self) -> None:
        with self._lock:
            if self._optimizer is not None:
                self._optimizer.zero_grad()
            self._optimizer = None
            for _, p in self.named_parameters():
                p.stop_gradient = False
            self.net.eval()
