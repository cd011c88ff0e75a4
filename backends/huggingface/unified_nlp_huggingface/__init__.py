"""Hugging Face Transformers (PyTorch) adapter for unified_nlp.

The reference backend: every other adapter is checked against its logits.
Loads only local folders, only safetensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from transformers.utils import logging as hf_logging

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    BackendAdapter,
    Encoding,
    FastTokenizer,
    InvalidInputError,
    InvalidModelError,
    Model,
    ModelOutput,
    ModelSpec,
    cpu,
    get_architecture,
    load_head,
    no_decay,
    usable_devices,
)

from .cpu_paths import BF16Copy, onednn_wanted, use_onednn

__all__ = ["HuggingFaceBackend", "HFTokenizer", "HFModel"]


class HFTokenizer(FastTokenizer):
    """transformers' fast tokenizer of the folder (WordPiece, byte-level BPE or
    SentencePiece), driven through its Rust core for speed; ids are identical to
    ``AutoTokenizer(...)(texts)`` and ``AutoTokenizer(...)(texts, text_pair)``."""

    def __init__(self, path: Path, max_length: int, token_types: bool = True) -> None:
        fast = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
        super().__init__(
            fast.backend_tokenizer.to_str(),
            pad_id=int(fast.pad_token_id or 0),
            max_length=max_length,
            token_types=token_types,  # RoBERTa's hands the model none: they stay 0, as in transformers
        )
        self._hf = fast
        self.vocab_size = int(fast.vocab_size)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._hf.decode([int(i) for i in np.asarray(ids).ravel()], skip_special_tokens=skip_special_tokens)


def load_tokenizer(path: Path, max_length: int, token_types: bool = True) -> FastTokenizer:
    """transformers' tokenizer of the folder (HFTokenizer); where transformers refuses a folder
    whose files the core reads (tokenizer_config.json naming `TokenizersBackend`, transformers
    5's class for a tokenizer.json, without that file beside a WordPiece vocab.txt), the core's
    reader of those files, which the tfhub and onnxruntime backends use: the same ids on every
    backend rather than a load that fails on one of them."""
    try:
        return HFTokenizer(path, max_length, token_types)
    except ValueError as refused:
        try:
            return FastTokenizer.from_folder(path, max_length, token_types)
        except InvalidModelError:
            raise InvalidModelError(f"{path}: transformers could not load the tokenizer: {refused}") from refused


def _quiet_load(load, path: Path, what: str):
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # a per-load bar is noise in a library; restored below
    hf_logging.set_verbosity_error()  # the load report of a fresh head: the core draws that head itself
    try:
        return load()
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise InvalidModelError(f"{path}: transformers could not load the {what}: {e}") from e
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy (the bf16 copy gives bf16 tensors, which numpy has no type for)."""
    return t.detach().float().cpu().numpy()


class HFModel(Model):
    """The folder's own transformers classifier (``AutoModelForSequenceClassification``:
    each architecture's head as transformers defines it), or, for the mean-pooling
    extension, ``AutoModel`` -> mean pooling over the attention mask -> linear head.
    On the CPU, fp32 inference runs the linears on oneDNN and precision="bf16" under torch's
    a bf16 copy of the model (cpu_paths.py); training always runs torch's eager fp32."""

    def __init__(self, path: Path, spec: ModelSpec) -> None:
        self.device = torch.device(spec.device or "cpu")  # "cuda:N" names the same device in torch
        self.mean = spec.head == "mean"
        self.num_labels = spec.num_labels
        labels = list(spec.labels)
        if self.mean:
            self.encoder = _quiet_load(
                lambda: transformers.AutoModel.from_pretrained(str(path), local_files_only=True), path, "encoder"
            )
            hidden = self.encoder.config.hidden_size
            head = load_head(path, spec, hidden)
            self.head = torch.nn.Linear(hidden, head["weight"].shape[0])
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(head["weight"]))
                self.head.bias.copy_(torch.from_numpy(head["bias"]))
            self.net = torch.nn.ModuleDict({"encoder": self.encoder, "head": self.head})
        else:
            config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
            config.num_labels = self.num_labels
            config.id2label = dict(enumerate(labels))
            config.label2id = {name: i for i, name in enumerate(labels)}
            config.problem_type = spec.problem_type
            self.encoder = _quiet_load(
                lambda: transformers.AutoModelForSequenceClassification.from_pretrained(
                    str(path),
                    config=config,
                    local_files_only=True,
                    ignore_mismatched_sizes=spec.fresh_head,
                ),
                path,
                "classifier",
            )
            # drawn in numpy by the core, the same on every backend: a fresh head, and tensors the
            # checkpoint lacks (a pooler), which transformers would otherwise draw at random
            arch = get_architecture(spec.architecture)
            fresh = arch.missing_tensors(config.to_dict(), list(spec.missing))
            if spec.fresh_head:
                fresh |= arch.fresh_head(config.to_dict(), self.num_labels, spec.seed)
            if fresh:
                own = self.encoder.state_dict()
                with torch.no_grad():
                    for name, value in fresh.items():
                        own[name].copy_(torch.from_numpy(value))
            self.head = None
            self.net = self.encoder
        self.max_positions = get_architecture(spec.architecture).position_limit(self.encoder.config.to_dict())
        self.token_types = get_architecture(spec.architecture).reads_token_types
        self.net.to(self.device)  # loaded and completed on the CPU, then moved whole
        self.net.eval()
        self.bf16 = BF16Copy(self.net) if spec.precision == "bf16" else None
        if self.device.type == "cpu" and onednn_wanted():
            use_onednn(self.net)
        self._optimizer: torch.optim.Optimizer | None = None

    def _logits(self, enc: Encoding, hidden: bool = False, net: torch.nn.Module | None = None):
        """Logits, last hidden states and pooled states of `net` (self.net, or its bf16 copy)."""
        net = self.net if net is None else net
        encoder, head = (net["encoder"], net["head"]) if self.mean else (net, None)
        if enc.input_ids.shape[1] == 0:  # an empty batch: nothing for the framework to run
            return torch.zeros((enc.num_texts, self.num_labels)), None, None
        if enc.input_ids.shape[1] > self.max_positions:
            raise InvalidInputError(
                f"sequence of {enc.input_ids.shape[1]} tokens exceeds the model's {self.max_positions}; "
                "tokenize with truncation=True"
            )
        inputs = {k: torch.from_numpy(enc[k]).to(self.device) for k in ("input_ids", "attention_mask")}
        if self.token_types:
            inputs["token_type_ids"] = torch.from_numpy(enc["token_type_ids"]).to(self.device)
        if not self.mean:
            out = encoder(**inputs, output_hidden_states=hidden)
            return out.logits, out.hidden_states[-1] if hidden else None, None
        states = encoder(**inputs).last_hidden_state
        weights = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return head(pooled), states, pooled

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        training = self.net.training
        if training:  # inference never applies dropout, even mid-fit (validation)
            self.net.eval()
        try:
            with torch.no_grad():  # the bf16 copy, made (again) outside inference mode: it keeps parameters
                net = self.net if self.bf16 is None else self.bf16.get()
            with torch.inference_mode():
                logits, states, pooled = self._logits(encoding, output_hidden_states, net)
        finally:
            if training:
                self.net.train(True)
        if not output_hidden_states:
            return ModelOutput(_numpy(logits))
        return ModelOutput(_numpy(logits), _numpy(states), None if pooled is None else _numpy(pooled))

    def state_dict(self) -> dict[str, np.ndarray]:
        # position_ids and similar buffers are rebuilt by transformers; saving them is noise
        out = {
            k: v.detach().cpu().numpy().copy()
            for k, v in self.encoder.state_dict().items()
            if not k.endswith("position_ids")
        }
        if self.mean:
            out["head.weight"] = self.head.weight.detach().cpu().numpy().copy()
            out["head.bias"] = self.head.bias.detach().cpu().numpy().copy()
        return out

    def _weight_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors `state_dict` reads, by the same names (the live ones, not copies)."""
        out = {k: v for k, v in self.encoder.state_dict().items() if not k.endswith("position_ids")}
        if self.mean:
            out["head.weight"], out["head.bias"] = self.head.weight, self.head.bias
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Set every weight from arrays named as `state_dict` gives them (all of them, same shapes)."""
        own = self._weight_tensors()
        missing, unknown = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unknown:
            raise InvalidInputError(f"weights do not match the model: missing {missing[:3]}, unknown {unknown[:3]}")
        with torch.no_grad():
            for name, target in own.items():
                value = np.asarray(state[name])
                if tuple(value.shape) != tuple(target.shape):
                    raise InvalidInputError(
                        f"weight {name!r} has shape {list(value.shape)}, expected {list(target.shape)}"
                    )
                target.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

    # --- training: the core drives data order, schedule and progress -------

    def start_training(self, config: Mapping[str, Any]) -> None:
        torch.manual_seed(int(config.get("seed", 0)))
        dropout = float(config.get("dropout", 0.0))
        for module in self.net.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = dropout
        self.net.train(dropout > 0)
        self._multi_label = config.get("problem_type") == "multi_label_classification"
        if self.mean:
            head = [("head." + k, p) for k, p in self.head.named_parameters()]
            body = list(self.encoder.named_parameters())
        else:
            prefix = get_architecture(self.encoder.config.model_type).prefix + "."
            named_all = list(self.encoder.named_parameters())
            head = [(k, p) for k, p in named_all if not k.startswith(prefix)]
            body = [(k, p) for k, p in named_all if k.startswith(prefix)]
        named = head
        if not config.get("freeze_encoder", False):
            named = head + body
        else:
            for _, p in body:
                p.requires_grad_(False)
        decay = float(config.get("weight_decay", 0.01))
        groups = [
            {"params": [p for n, p in named if not no_decay(n)], "weight_decay": decay},
            {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
        ]
        self._optimizer = torch.optim.AdamW(groups, lr=0.0, betas=(0.9, 0.999), eps=1e-8)
        self._named = named  # canonical names of the optimizer's parameters (its state is keyed by tensor)
        self._clip = float(config.get("max_grad_norm", 1.0))
        self._pending = False  # gradients of micro-batches wait for their optimizer step

    def _loss(self, logits, label_ids: np.ndarray, example_weights: np.ndarray | None):
        if self._multi_label:
            target = torch.from_numpy(np.asarray(label_ids, np.float32)).to(self.device)
            if example_weights is None:
                return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=1)
        else:
            ids = torch.from_numpy(np.asarray(label_ids, np.int64)).to(self.device)
            if example_weights is None:
                return torch.nn.functional.cross_entropy(logits, ids)
            losses = torch.nn.functional.cross_entropy(logits, ids, reduction="none")
        return (losses * torch.from_numpy(np.asarray(example_weights, np.float32)).to(self.device)).sum()

    def train_step(
        self,
        encoding: Encoding,
        label_ids: np.ndarray,
        learning_rate: float,
        example_weights: np.ndarray | None = None,
        apply: bool = True,
    ) -> float:
        """One micro-batch: the mean loss (or sum(example_weights * loss per text)), backward into
        the summed gradients; with `apply`, the accumulated gradient is clipped and AdamW steps."""
        if self._optimizer is None:
            raise RuntimeError("start_training() must come before train_step()")
        with torch.enable_grad():
            logits, _, _ = self._logits(encoding)
            loss = self._loss(logits, label_ids, example_weights)
            if not self._pending:  # reuse grad buffers: fresh 47 MB embedding grads each step cost page faults
                self._optimizer.zero_grad(set_to_none=False)
            loss.backward()
            self._pending = not apply
            if apply:
                if self._clip > 0:
                    torch.nn.utils.clip_grad_norm_(
                        [p for g in self._optimizer.param_groups for p in g["params"]], self._clip
                    )
                for group in self._optimizer.param_groups:
                    group["lr"] = float(learning_rate)
                self._optimizer.step()
        return float(loss.detach())

    def training_state(self) -> dict[str, np.ndarray]:
        """AdamW's state by canonical parameter name (``exp_avg/NAME``, ``exp_avg_sq/NAME``,
        ``step/NAME``) and torch's RNG (``rng/torch``, for dropout), as numpy."""
        if self._optimizer is None:
            raise RuntimeError("training_state() needs start_training() first")
        # the CPU generator's: on a GPU dropout draws from CUDA's, which is not kept (a resumed run with
        # dropout on a GPU differs from one run through; without dropout, the default, it is the same)
        out = {"rng/torch": torch.get_rng_state().numpy().copy()}
        for name, p in self._named:
            state = self._optimizer.state.get(p)
            if state:
                out[f"exp_avg/{name}"] = state["exp_avg"].detach().cpu().numpy().copy()
                out[f"exp_avg_sq/{name}"] = state["exp_avg_sq"].detach().cpu().numpy().copy()
                out[f"step/{name}"] = np.array([int(state["step"])], np.int64)  # [1]: safetensors keeps no 0-d
        return out

    def set_training_state(self, state: Mapping[str, np.ndarray]) -> None:
        """The inverse of `training_state`, after start_training()."""
        if self._optimizer is None:
            raise RuntimeError("set_training_state() needs start_training() first")
        if "rng/torch" in state:
            torch.set_rng_state(torch.from_numpy(np.asarray(state["rng/torch"], np.uint8).copy()))
        for name, p in self._named:
            if f"step/{name}" not in state:
                self._optimizer.state.pop(p, None)
                continue
            self._optimizer.state[p] = {
                "step": torch.tensor(float(np.ravel(state[f"step/{name}"])[0]), dtype=torch.float32),
                "exp_avg": torch.from_numpy(np.array(state[f"exp_avg/{name}"], np.float32))
                .reshape(p.shape)
                .to(p.device),
                "exp_avg_sq": torch.from_numpy(np.array(state[f"exp_avg_sq/{name}"], np.float32))
                .reshape(p.shape)
                .to(p.device),
            }

    def end_training(self) -> None:
        if self._optimizer is not None:
            self._optimizer.zero_grad(set_to_none=True)  # free the gradient buffers
        self._optimizer = None
        self._pending = False
        self.net.requires_grad_(True)
        self.net.eval()


class HuggingFaceBackend(BackendAdapter):
    """Entry point of the `huggingface` backend (aliases hf, torch, pytorch)."""

    name = "huggingface"
    gpu_install = (
        "a CUDA build of torch, from PyTorch's CUDA wheel index, e.g. "
        "pip install torch --index-url https://download.pytorch.org/whl/cu126 (pytorch.org, 'Get Started')"
    )

    @property
    def devices(self) -> tuple[str, ...]:
        """The devices here: "cpu", and "cuda:N" for each CUDA device torch sees (none with a CPU-only build of torch)."""
        return usable_devices(torch.cuda.device_count() if torch.cuda.is_available() else 0)

    @property
    def precisions(self) -> tuple[str, ...]:
        """fp32, and bf16 (a bf16 copy of the model, on oneDNN) where the CPU has bf16 dot products
        (AVX512-BF16 or AMX; elsewhere bf16 is emulated, slower than fp32). Measured on an AMD EPYC
        with AVX512-BF16 (benchmarks/hf_precision.py, docs/benchmarks.md)."""
        return ("fp32", "bf16") if cpu.native_bf16() else ("fp32",)

    def set_threads(self, n: int) -> int:
        """torch's intra-op threads, process-wide; its inter-op pool is left alone (only
        torch.jit.fork uses it, and it can be sized once, before any parallel work)."""
        torch.set_num_threads(int(n))
        return torch.get_num_threads()

    def load(self, path: Path, spec: ModelSpec) -> tuple[FastTokenizer, HFModel]:
        if spec.format != CANONICAL_FORMAT:
            raise InvalidModelError(
                f"{path}: a {spec.format!r} folder; the huggingface backend loads the canonical "
                "format (convert it back with `unified-nlp convert --to huggingface`)"
            )
        _check_precision(spec)
        tokenizer = load_tokenizer(path, spec.max_length, spec.token_types)
        return tokenizer, HFModel(path, spec)

    def convert(self, source: Path, out: Path) -> None:
        from unified_nlp.backend_kit import copy_canonical

        copy_canonical(source, out)


def _check_precision(spec: ModelSpec) -> None:
    """Refuse what this backend does not run, saying why, before any file is read."""
    precision = spec.precision or "fp32"
    if precision not in ("fp32", "bf16"):
        raise InvalidInputError(f"the huggingface backend runs fp32 and bf16, not {precision}")
    if precision == "bf16" and spec.device not in (None, "cpu"):
        raise InvalidInputError(f"precision='bf16' is this backend's CPU path, not for {spec.device}; load fp32 there")
    if precision == "bf16" and not cpu.native_bf16():
        raise InvalidInputError(f"precision='bf16' is not offered here: {cpu.why_not_bf16()}; load with fp32")
