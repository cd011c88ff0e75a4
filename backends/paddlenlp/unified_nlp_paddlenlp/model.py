"""PaddleNLP's own classes in Paddle dygraph: the family's XForSequenceClassification with
the checkpoint's head (native), or its bare encoder -> mean pooling -> linear head (mean)."""

from __future__ import annotations

import ctypes
import os
import tempfile
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    ConversionError,
    Encoding,
    InvalidInputError,
    InvalidModelError,
    Model,
    ModelOutput,
    ModelSpec,
    check_shapes,
    load_file,
    load_head,
    paddle_folder,
    read_json,
    read_spec,
)
from unified_nlp.backend_kit import paddle_families as families

from ._framework import finite_masked_softmax, math_threads, no_init_weights, paddle, use_device
from .classes import paddlenlp_class
from .converter import encoder_dir, weights_file
from .training import AdamW

_INPUTS = ("input_ids", "token_type_ids", "attention_mask")  # the order of the nets' forward arguments
# Input shapes whose oneDNN primitives a predictor keeps. Measured (default model, 2 threads):
# SST-2 dev at batch 32, then 300 batches of random sizes and widths: capacity 1 ran 267.5
# texts/s and peaked at 1,176 MB RSS; 4: 254.6 texts/s, 1,233 MB; 32: 250.8, 2,879 MB.
_ONEDNN_SHAPES = 1


# Every input shape makes oneDNN build new primitives and free the old ones (a cache of 1),
# and glibc's allocator keeps the freed memory: measured over 600 calls of mixed batch sizes
# after 200 of warm-up (benchmarks/soak.py), the worker's RSS grew 5-14%; with malloc_trim
# after every run 0.4% but 11% slower; after every 32nd run 1.4%, in 45.5 s against 44.9 s.
_TRIM_EVERY = 32


_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's; absent from other C libraries


# Architecture.dense_activation -> paddle's layer: "gelu" is the exact (erf) form, as transformers'
_HEAD_ACTIVATIONS = {"gelu": paddle.nn.GELU, "tanh": paddle.nn.Tanh}


def _input_spec() -> list:
    return [paddle.static.InputSpec([None, None], "int64", name=k) for k in _INPUTS]


def _same(x: np.ndarray) -> np.ndarray:
    return x


def build(
    family: families.Family, config: Mapping[str, Any], pd_config: Mapping[str, Any], *, task: bool, source: Path
):
    """A PaddleNLP model of `family` without random initialisation (every weight is set
    next), with transformers' numerics where PaddleNLP's construction differs."""
    klass = paddlenlp_class(family.paddle_class if task else family.paddle_base)
    if family.paddle_masked_softmax:
        finite_masked_softmax(family.paddle_masked_softmax)
    try:
        with no_init_weights():  # skips PaddleNLP's random init, and with it its _init_weights epsilons
            model = klass(paddlenlp_class(family.paddle_config)(**pd_config))
    except (TypeError, ValueError, AssertionError, KeyError, AttributeError) as e:
        raise InvalidModelError(f"{source}: PaddleNLP cannot build a {klass.__name__} from it ({e})") from e
    # PaddleNLP leaves some LayerNorms at paddle's 1e-5 and sets others in _init_weights (ERNIE:
    # always 1e-12); transformers uses the config's (DistilBERT: 1e-12). Parity needs its value.
    eps = family.epsilon(config)
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.LayerNorm):
            layer._epsilon = eps
    head_act, wanted = family.paddle_head_activation(config), family.architecture.dense_activation
    if task and head_act is not None and head_act != wanted:
        # PaddleNLP's head applies the config's activation, transformers' its own (ELECTRA: GELU always)
        model.classifier.act = _HEAD_ACTIVATIONS[wanted]()
    return model


def _first(out):
    # PaddleNLP's models return a tensor (DistilBERT, ELECTRA encoders; most task models) or a
    # tuple (sequence, pooled, ...). Tested as a tuple: under to_static a tensor is no paddle.Tensor.
    return out[0] if isinstance(out, (tuple, list)) else out


def set_dropout(model, p: float) -> None:
    """Every dropout rate of a PaddleNLP model (or a Layer holding one) to `p`, the model in
    train mode where p > 0, else in eval mode. Rates as transformers drops out: embeddings,
    attention probabilities, both residual branches and the classifier input. paddle's
    TransformerEncoderLayer has an extra activation dropout (layer.dropout, built with
    act_dropout=0) that stays 0, and keeps attention dropout as a float.

    Inference sets 0: paddle's dropout in eval mode is an identity that still copies its input,
    the attention probabilities among them (batch x heads x length^2 floats a layer: 16% of a
    prediction at 512 tokens, measured with Paddle Inference's profiler); at p=0 paddle leaves
    the op out, of the traced graphs too. Measured on the default model, 2 threads: fp32 +9% at
    512 tokens, +4% at 128, logits unchanged; bf16 2.08x at 512 tokens (5.46 -> 11.35 texts/s)
    and +8% on SST-2 dev."""
    skip = set()
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.TransformerEncoderLayer):
            layer.self_attn.dropout = p
            skip.add(id(layer.dropout))
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.Dropout) and id(layer) not in skip:
            layer.p = p
    if p > 0:
        model.train()
    else:
        model.eval()


def classification_loss(
    logits, labels: np.ndarray, n: int, num_labels: int, multi_label: bool, example_weights: np.ndarray | None = None
):
    """The loss every family (and a native folder) trains with, after checking the targets:
    mean binary cross-entropy over every element (multi-label), else mean cross-entropy;
    with `example_weights`, sum(weight * loss per text) (a text's multi-label loss: the mean
    over its labels)."""
    weights = None
    if example_weights is not None:
        weights = np.asarray(example_weights, dtype=np.float32)
        if weights.shape != (n,) or not np.isfinite(weights).all():
            raise InvalidInputError(f"example_weights must be {n} finite numbers")
        weights = paddle.to_tensor(weights)
    if multi_label:
        target = np.asarray(labels, dtype=np.float32)
        if target.shape != (n, num_labels) or not np.isin(target, (0.0, 1.0)).all():
            raise InvalidInputError(f"multi-label targets must be 0/1 of shape [{n}, {num_labels}]")
        target = paddle.to_tensor(target)
        if weights is None:
            return paddle.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="mean")
        losses = paddle.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(axis=1)
        return (losses * weights).sum()
    ids = np.asarray(labels)
    integral = np.issubdtype(ids.dtype, np.integer) or (ids.size and np.array_equal(ids, np.round(ids)))
    if ids.shape != (n,) or not integral or (n and (ids.min() < 0 or ids.max() >= num_labels)):
        raise InvalidInputError(f"label_ids must be {n} integers in [0, {num_labels})")
    ids = paddle.to_tensor(ids.astype(np.int64))
    if weights is None:
        return paddle.nn.functional.cross_entropy(logits, ids, reduction="mean")
    losses = paddle.nn.functional.cross_entropy(logits, ids, reduction="none").reshape([-1])
    return (losses * weights).sum()


class _Native(paddle.nn.Layer):
    """The PaddleNLP task model's own forward, as one Layer with fixed inputs (for to_static)."""

    def __init__(self, model, family: families.Family) -> None:
        super().__init__()
        self.model = model
        self.types = family.architecture.reads_token_types

    def forward(self, input_ids, token_type_ids, attention_mask):
        # a 2-D int mask: every class turns it into an additive mask ((1 - m) * -1e4, or paddle's
        # (m - 1) * 1e9 for ELECTRA), whose exp underflows to exactly 0, as transformers' -inf does
        kwargs = {"attention_mask": attention_mask}
        if self.types:
            kwargs["token_type_ids"] = token_type_ids
        return _first(self.model(input_ids=input_ids, **kwargs))


class _Mean(paddle.nn.Layer):
    """Bare encoder -> masked mean pooling -> linear head (the default model's head)."""

    def __init__(self, encoder, family: families.Family, head: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.encoder = encoder
        self.types = family.architecture.reads_token_types
        # [num_labels, hidden], the canonical (torch) layout: logits = pooled @ W^T + b
        self.head_weight = self.create_parameter(list(head["weight"].shape), dtype="float32")
        self.head_bias = self.create_parameter(list(head["bias"].shape), dtype="float32", is_bias=True)
        self.head_weight.set_value(head["weight"])
        self.head_bias.set_value(head["bias"])

    def forward(self, input_ids, token_type_ids, attention_mask):
        kwargs = {"attention_mask": attention_mask}
        if self.types:
            kwargs["token_type_ids"] = token_type_ids
        states = _first(self.encoder(input_ids, **kwargs))
        weights = attention_mask.astype(states.dtype).unsqueeze(-1)
        pooled = (states * weights).sum(axis=1) / weights.sum(axis=1).clip(min=1e-9)
        return paddle.matmul(pooled, self.head_weight, transpose_y=True) + self.head_bias, states, pooled


class PaddleModel(Model):
    """An `Encoding` in, a `ModelOutput` out, on PaddleNLP's own classes.

    A native head runs the family's PaddleNLP XForSequenceClassification (XLM-R:
    RobertaForSequenceClassification) with the checkpoint's own head; the mean head
    runs its bare encoder, masked mean pooling and a linear layer. Inference runs the
    same Layers saved once with paddle.jit.save and run by Paddle Inference with oneDNN
    and its IR passes (fused attention, matmul + bias + activation); where a predictor
    cannot be made, the paddle.jit.to_static graph of the same Layers. Measured on the
    default model, SST-2 dev, batch 32, 2 threads: oneDNN 1.2-1.8x the to_static graph,
    which needs about two thirds of the CPU time of dygraph; logits within 4e-6. Calls
    are serialised by a lock (dygraph's grad mode is process-wide state, a predictor is
    not thread-safe). UNIFIED_NLP_PADDLE_INFERENCE=0 keeps inference in to_static,
    UNIFIED_NLP_PADDLE_STATIC=0 in dygraph. precision="bf16" runs the predictor on
    oneDNN's bf16 kernels.
    Training (train_step) runs in dygraph: forward, cross-entropy (binary cross-entropy
    for multi-label), backward, global-norm clipping, and AdamW with torch.optim.AdamW's
    arithmetic on Paddle's fused kernel (see training.py).
    """

    def __init__(self, path: Path, spec: ModelSpec) -> None:
        self.device = use_device(spec.device)  # the Layers are built on it; "gpu:N" in Paddle's words
        meta = read_spec(path)
        folder = encoder_dir(path, meta)
        self.config = read_json(path / "config.json")  # the canonical (transformers) config
        self.family = families.get(meta.get("architecture", "bert"), path / "unified_nlp.json")
        self.task = spec.head != "mean"
        self.num_labels = spec.num_labels
        self.multi_label = spec.problem_type == "multi_label_classification"
        arch = self.family.architecture
        self.rows = self.family.rows(self.config, task=self.task)
        tensors = self._tensors(folder, meta, spec)
        pd_config = dict(paddle_folder.read_config(folder))
        if self.task:
            labels = list(spec.labels)
            pd_config.update(
                num_labels=self.num_labels,
                id2label=dict(enumerate(labels)),
                label2id={name: i for i, name in enumerate(labels)},
                problem_type=spec.problem_type,
            )
        model = build(self.family, self.config, pd_config, task=self.task, source=folder / "config.json")
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        check_shapes({k: v.shape for k, v in tensors.items()}, expected, weights_file(folder))
        model.set_state_dict({k: v if v.dtype == np.int64 else v.astype(np.float32) for k, v in tensors.items()})
        if self.task:
            self.net = _Native(model, self.family)
            self.encoder = getattr(model, self.family.paddle_prefix)
        else:
            hidden = arch.dims(self.config)["hidden"]
            head = load_head(path, spec, hidden)
            if head["weight"].shape[1] != hidden:
                raise InvalidModelError(
                    f"{path}: head expects hidden size {head['weight'].shape[1]}, the encoder has {hidden}"
                )
            self.num_labels = int(head["weight"].shape[0])
            self.net = _Mean(model, self.family, head)
            self.encoder = model
        self.model = model
        set_dropout(self.net, 0.0)  # eval mode, no dropout op in inference; fit sets the rate it trains with
        self._canonical = {pd: hf for hf, pd, _ in self.rows}
        self._transforms = {hf: fn for hf, _, fn in self.rows}
        self.max_positions = arch.position_limit(self.config)
        self.max_length = min(int(spec.max_length or self.max_positions), self.max_positions)
        dims = arch.dims(self.config)
        self._vocab, self._types = dims["vocab"], max(dims["types"], 1)
        self._lock = threading.RLock()
        self._optimizer: AdamW | None = None
        self._compiled = None if os.environ.get("UNIFIED_NLP_PADDLE_STATIC") == "0" else self._compile()
        # made at the first prediction, again after the weights or the thread count change
        self._use_predictor = self._compiled is not None and os.environ.get("UNIFIED_NLP_PADDLE_INFERENCE") != "0"
        # bf16: the predictor runs oneDNN's bf16 kernels (weights and activations rounded to bf16,
        # accumulation in fp32) and gives the logits; training and hidden states stay fp32
        self.bf16 = spec.precision == "bf16"
        if self.bf16 and not self._use_predictor:
            raise InvalidInputError(
                "precision='bf16' runs through Paddle Inference, which UNIFIED_NLP_PADDLE_INFERENCE=0 or "
                "UNIFIED_NLP_PADDLE_STATIC=0 turns off; unset them, or load with precision='fp32'"
            )
        self._predictor = None
        self._predictor_made_for: tuple[int, int] | None = None
        self._weights_version = 0
        self._runs = 0  # predictor runs, for _MALLOC_TRIM

    def _tensors(self, folder: Path, meta: Mapping[str, Any], spec: ModelSpec) -> dict[str, np.ndarray]:
        """The PaddleNLP tensors to set: the folder's (a bare encoder's renamed into the task
        model for a native head), with a fresh head where the spec asks for one."""
        tensors = load_file(weights_file(folder))
        if not self.task:
            return tensors
        if meta.get("paddle_class", self.family.paddle_class) != self.family.paddle_class:  # a bare encoder
            p = self.family.architecture.prefix + "."
            bare = {p + hf: pd for hf, pd, _ in self.family.rows(self.config, task=False)}
            tensors = {pd: tensors[bare[hf]] for hf, pd, _ in self.rows if hf in bare and bare[hf] in tensors}
            tensors.update(self.family.buffers(self.config))
            if not spec.fresh_head:
                raise InvalidModelError(f"{folder}: no classification head; pass labels=[...] to start a fresh one")
        if spec.fresh_head:  # drawn in numpy by the core: the same start on every backend
            fresh = self.family.architecture.fresh_head(self.config, self.num_labels, spec.seed)
            by_name = {hf: (pd, fn) for hf, pd, fn in self.rows}
            for name, value in fresh.items():
                pd, fn = by_name[name]
                tensors[pd] = fn(value)
        return tensors

    def _compile(self):
        net = self.net

        def infer(input_ids, token_type_ids, attention_mask):
            return net(input_ids, token_type_ids, attention_mask)

        return paddle.jit.to_static(infer, input_spec=_input_spec(), full_graph=True)

    def _make_predictor(self):
        """A Paddle Inference predictor (oneDNN, IR optimisations) of the inference graph with the
        weights and math-library threads in force now; None where Paddle cannot make one (the
        to_static graph then runs, and is used from then on)."""
        try:
            with tempfile.TemporaryDirectory(prefix="unified-nlp-paddle-") as tmp:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    # a family without token types (DistilBERT, ModernBERT) never reads token_type_ids, and
                    # jit.save's pruning refuses a feed no output depends on (its input_names_after_prune fails
                    # on a Layer in paddle 3.3.1): the program keeps the feed unpruned, and is fed all three
                    paddle.jit.save(
                        self.net,
                        os.path.join(tmp, "model"),
                        input_spec=_input_spec(),
                        skip_prune_program=not self.net.types,
                    )
                program = os.path.join(tmp, "model.json")
                if not os.path.isfile(program):  # the legacy program format
                    program = os.path.join(tmp, "model.pdmodel")
                config = paddle.inference.Config(program, os.path.join(tmp, "model.pdiparams"))
                config.disable_glog_info()
                config.switch_ir_optim(True)
                if self.device != "cpu":  # Paddle Inference's GPU: a 256 MB initial memory pool on that card
                    config.enable_use_gpu(256, int(self.device.split(":")[1]))
                else:
                    self._cpu_config(config)
                predictor = paddle.inference.create_predictor(config)  # reads the files here
        except Exception as e:  # noqa: BLE001  the to_static graph of the same Layers runs instead
            self._fall_back(e)
            return None
        return predictor

    def _cpu_config(self, config) -> None:
        """A predictor's CPU settings: oneDNN (bf16 where asked), its shape cache, math threads."""
        config.disable_gpu()
        config.enable_onednn()
        if self.bf16:
            config.enable_onednn_bfloat16()
        # oneDNN keeps primitives per input shape; bounded, so that a long run of batches of
        # every width does not grow memory without end
        config.set_onednn_cache_capacity(_ONEDNN_SHAPES)
        config.set_cpu_math_library_num_threads(math_threads())

    def _fall_back(self, cause: Exception) -> None:
        """From now on the to_static graph (fp32) runs instead of a predictor; a bf16 model
        cannot, so it raises instead of answering in another precision."""
        self._use_predictor = False
        self._predictor = None
        if self.bf16:
            raise ConversionError(f"Paddle Inference could not run this model in bf16: {cause}") from cause

    def _predict(self, enc: Encoding) -> np.ndarray | None:
        """Logits from the predictor (made or remade here), or None where none can be made or it
        fails (the to_static graph of the same Layers runs then, with the same results)."""
        wanted = (self._weights_version, math_threads())  # a predictor holds a copy of both
        if self._predictor is None or self._predictor_made_for != wanted:
            self._predictor = None  # the old one freed before the next is made
            self._predictor = self._make_predictor()
            if self._predictor is None:
                return None
            self._predictor_made_for = wanted
        p = self._predictor
        try:
            for name in p.get_input_names():
                p.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(enc[name]))
            p.run()
            return p.get_output_handle(p.get_output_names()[0]).copy_to_cpu()
        except Exception as e:  # noqa: BLE001
            self._fall_back(e)
            return None
        finally:
            # a predictor's run() ends by setting the process's math-library threads to 1 (Paddle
            # Inference does so for serving); dygraph ops after it, fine-tuning's among them,
            # would run on one core (measured: 18.5 texts/s instead of 23 on 2 cores)
            paddle.base.core.set_num_threads(math_threads())
            self._runs += 1
            if self._runs % _TRIM_EVERY == 0 and _MALLOC_TRIM is not None:
                _MALLOC_TRIM(0)  # hand the allocator's free memory back to the system

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

    def _run(self, enc: Encoding, compiled: bool = False):
        """(logits, last hidden state or None, pooled or None) as paddle tensors."""
        self._check(enc)
        use_device(self.device)  # training's tensors (targets, learning rate) go there too
        inputs = [paddle.to_tensor(enc[k]) for k in _INPUTS]
        if compiled and self._compiled is not None:
            try:
                with warnings.catch_warnings():  # tracing PaddleNLP's code warns about graph-mode details
                    warnings.simplefilter("ignore", UserWarning)
                    out = self._compiled(*inputs)
                return (out, None, None) if self.task else out
            except Exception:  # noqa: BLE001  the same Layers run in dygraph, with identical results
                self._compiled = None
        out = self.net(*inputs)
        return (out, None, None) if self.task else out

    def _run_with_states(self, enc: Encoding):
        """Dygraph, with the encoder's output caught on its way to the head."""
        if not self.task:
            return self._run(enc)
        caught = []
        hook = self.encoder.register_forward_post_hook(lambda layer, args, out: caught.append(_first(out)))
        try:
            logits, _, _ = self._run(enc)
        finally:
            hook.remove()
        return logits, caught[-1], None

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        n, width = encoding.input_ids.shape
        if n == 0 or width == 0:
            hidden = self.family.architecture.dims(self.config)["hidden"]
            empty = ModelOutput(np.zeros((n, self.num_labels), np.float32))
            if output_hidden_states:
                empty.last_hidden_state = np.zeros((n, width, hidden), np.float32)
                empty.pooled = None if self.task else np.zeros((n, hidden), np.float32)
            return empty
        with self._lock:
            training = self.net.training
            self.net.eval()  # inference never applies dropout, even mid-fit (validation)
            try:
                with paddle.no_grad():
                    if not output_hidden_states:
                        logits = None
                        if not training and self._use_predictor and self._optimizer is None:  # fitting: live weights
                            self._check(encoding)
                            logits = self._predict(encoding)
                        if logits is None:
                            logits = self._run(encoding, compiled=not training)[0].numpy()
                        return ModelOutput(logits)
                    logits, states, pooled = self._run_with_states(encoding)
                    logits = logits.numpy()
                    if self.bf16 and not training and self._optimizer is None:
                        # the predictor returns logits only: a bf16 model's logits come from it
                        # (what compare must see), its hidden states from the fp32 Layers
                        self._check(encoding)
                        logits = self._predict(encoding)
                    return ModelOutput(logits, states.numpy(), None if pooled is None else pooled.numpy())
            finally:
                if training:
                    self.net.train()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every weight under transformers' names (Linear weights back to [out, in]): the
        classifier class's for a native head, the bare encoder's plus head.weight/head.bias
        for the mean head. Buffers (position_ids) are left out, as transformers rebuilds them."""
        with self._lock:
            tensors = {k: v.numpy().copy() for k, v in self.model.state_dict().items()}
            out = {hf: np.ascontiguousarray(fn(tensors[pd])) for hf, pd, fn in self.rows}
            if not self.task:
                out["head.weight"] = self.net.head_weight.numpy().copy()
                out["head.bias"] = self.net.head_bias.numpy().copy()
        return out

    # --- training: the core drives data order, schedule and progress ---------

    def named_parameters(self) -> list[tuple[str, Any]]:
        """(canonical name, parameter) of everything trainable: the head first, then the encoder."""
        if self.task:
            named = [(self._canonical[k], p) for k, p in self.model.named_parameters()]
            prefix = self.family.architecture.prefix + "."
            return [x for x in named if not x[0].startswith(prefix)] + [x for x in named if x[0].startswith(prefix)]
        named = [("head.weight", self.net.head_weight), ("head.bias", self.net.head_bias)]
        return named + [(self._canonical[k], p) for k, p in self.model.named_parameters()]

    def start_training(self, config: Mapping[str, Any]) -> None:
        with self._lock:
            paddle.seed(int(config.get("seed", 0)))
            dropout = float(config.get("dropout", 0.0))
            # paddle's CPU generator state is an opaque object (no array form to checkpoint), so with
            # dropout each micro-step reseeds from (seed, its count), and a checkpoint holds the count
            self._dropout_seed = int(config.get("seed", 0)) if dropout > 0 else None
            self._micro_steps = 0
            set_dropout(self.net, dropout)
            self.multi_label = config.get("problem_type", "single_label_classification") == "multi_label_classification"
            named = self.named_parameters()
            if config.get("freeze_encoder", False):
                prefix = self.family.architecture.prefix + "."
                in_head = (lambda n: not n.startswith(prefix)) if self.task else (lambda n: n.startswith("head."))
                for name, p in named:
                    if not in_head(name):
                        p.stop_gradient = True
                named = [(n, p) for n, p in named if in_head(n)]
            self._optimizer = AdamW(named, weight_decay=float(config.get("weight_decay", 0.01)))
            self._clip = float(config.get("max_grad_norm", 1.0))

    def train_step(
        self,
        encoding: Encoding,
        label_ids: np.ndarray,
        learning_rate: float,
        example_weights: np.ndarray | None = None,
        apply: bool = True,
    ) -> float:
        """One micro-batch: backward adds into the gradients (paddle sums them until cleared);
        with `apply`, clipping of the summed gradient and the AdamW step, which clears them."""
        if self._optimizer is None:
            raise RuntimeError("start_training() must come before train_step()")
        with self._lock:
            if self._dropout_seed is not None:
                paddle.seed((self._dropout_seed * 1_000_003 + self._micro_steps) % 2**31)
            self._micro_steps += 1
            logits, _, _ = self._run(encoding)
            loss = classification_loss(
                logits, label_ids, encoding.num_texts, self.num_labels, self.multi_label, example_weights
            )
            loss.backward()
            if apply:
                self._optimizer.step(float(learning_rate), self._clip)
                self._weights_version += 1
            return float(loss.numpy())

    def _layout(self, name: str, value: np.ndarray) -> np.ndarray:
        return self._transforms.get(name, _same)(value)  # transposes: their own inverse

    def training_state(self) -> dict[str, np.ndarray]:
        """AdamW's state by canonical parameter name, in the canonical (torch) layout."""
        if self._optimizer is None:
            raise RuntimeError("training_state() needs start_training() first")
        with self._lock:
            return {**self._optimizer.state(self._layout), "rng/paddle": np.array([self._micro_steps], np.int64)}

    def set_training_state(self, state: Mapping[str, np.ndarray]) -> None:
        if self._optimizer is None:
            raise RuntimeError("set_training_state() needs start_training() first")
        with self._lock:
            use_device(self.device)
            if "rng/paddle" in state:
                self._micro_steps = int(np.ravel(state["rng/paddle"])[0])
            try:
                self._optimizer.load(state, self._layout)
            except (ValueError, KeyError) as e:
                raise InvalidInputError(f"the optimizer state does not fit this model: {e}") from None

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Set every weight from arrays named as `state_dict` gives them."""
        with self._lock:
            own = self.model.state_dict()
            targets = {hf: (own[pd], fn) for hf, pd, fn in self.rows}
            if not self.task:
                targets["head.weight"] = (self.net.head_weight, _same)
                targets["head.bias"] = (self.net.head_bias, _same)
            missing, unknown = sorted(set(targets) - set(state)), sorted(set(state) - set(targets))
            if missing or unknown:
                raise InvalidInputError(f"weights do not match the model: missing {missing[:3]}, unknown {unknown[:3]}")
            for name, (target, fn) in targets.items():
                value = np.ascontiguousarray(fn(np.asarray(state[name], np.float32)))
                if list(value.shape) != list(target.shape):
                    raise InvalidInputError(f"weight {name!r} has shape {list(np.shape(state[name]))}")
                target.set_value(value)
            self._weights_version += 1

    def end_training(self) -> None:
        with self._lock:
            if self._optimizer is not None:
                self._optimizer.zero_grad()
            self._optimizer = None
            for _, p in self.named_parameters():
                p.stop_gradient = False
            set_dropout(self.net, 0.0)
