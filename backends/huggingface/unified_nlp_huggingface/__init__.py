"""Hugging Face Transformers (PyTorch) adapter for unified_nlp.

The reference backend: every other adapter is checked against its logits.
Loads only local folders, only safetensors.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer as RustTokenizer
from transformers.utils import logging as hf_logging

from unified_nlp.errors import InvalidInputError, InvalidModelError
from unified_nlp.models import load_head
from unified_nlp.protocols import Encoding, ModelOutput
from unified_nlp.tokens import encoding_from_rows
from unified_nlp.training import no_decay

__all__ = ["HuggingFaceBackend", "HFTokenizer", "HFModel"]


class HFTokenizer:
    """transformers' fast BERT tokenizer, driven through its Rust core for speed;
    ids are identical to ``AutoTokenizer(...)(texts)``."""

    def __init__(self, path: Path, max_length: int) -> None:
        fast = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
        self._json = fast.backend_tokenizer.to_str()
        self._pad_id = int(fast.pad_token_id or 0)
        self._hf = fast
        self.max_length = int(max_length)
        self.vocab_size = int(fast.vocab_size)
        self._by_length: dict[int | None, RustTokenizer] = {}
        self._lock = threading.Lock()

    def _rust(self, max_length: int | None) -> RustTokenizer:
        # one configured copy per truncation length: enable_truncation mutates, encode does not
        with self._lock:
            tok = self._by_length.get(max_length)
            if tok is None:
                tok = RustTokenizer.from_str(self._json)
                tok.no_padding()
                if max_length is None:
                    tok.no_truncation()
                else:
                    tok.enable_truncation(max_length)
                self._by_length[max_length] = tok
            return tok

    def __call__(
        self,
        texts: Sequence[str],
        *,
        max_length: int | None = None,
        padding: bool | str = "longest",
        truncation: bool = True,
    ) -> Encoding:
        limit = min(max_length or self.max_length, self.max_length)
        encs = self._rust(limit if truncation else None).encode_batch(list(texts))
        return encoding_from_rows(
            [e.ids for e in encs],
            pad_id=self._pad_id,
            padding=padding,
            limit=limit,
            type_rows=[e.type_ids for e in encs],
            truncated=[bool(e.overflowing) for e in encs],
        )

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._hf.decode([int(i) for i in np.asarray(ids).ravel()], skip_special_tokens=skip_special_tokens)


class HFModel:
    """BertModel -> mean pooling over the attention mask -> linear head."""

    def __init__(self, path: Path, spec: Mapping[str, Any]) -> None:
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a per-load bar is noise in a library; restored below
        try:
            self.encoder = transformers.AutoModel.from_pretrained(
                str(path), local_files_only=True, use_safetensors=True
            )
        except (OSError, ValueError, RuntimeError) as e:
            raise InvalidModelError(f"{path}: transformers could not load the encoder: {e}") from e
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        hidden = self.encoder.config.hidden_size
        head = load_head(path, dict(spec), hidden)
        self.head = torch.nn.Linear(hidden, head["weight"].shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(head["weight"]))
            self.head.bias.copy_(torch.from_numpy(head["bias"]))
        self.max_positions = int(self.encoder.config.max_position_embeddings)
        self.num_labels = int(head["weight"].shape[0])
        self.encoder.eval()
        self._optimizer: torch.optim.Optimizer | None = None

    def _logits(self, enc: Encoding, hidden: bool = False):
        if enc.input_ids.shape[1] > self.max_positions:
            raise InvalidInputError(
                f"sequence of {enc.input_ids.shape[1]} tokens exceeds the model's {self.max_positions}; "
                "tokenize with truncation=True"
            )
        ids, mask, types = (torch.from_numpy(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
        states = self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return self.head(pooled), states, pooled

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        training = self.encoder.training
        if training:  # inference never applies dropout, even mid-fit (validation)
            self.encoder.eval()
        try:
            with torch.inference_mode():
                logits, states, pooled = self._logits(encoding)
        finally:
            if training:
                self.encoder.train(True)
        if not output_hidden_states:
            return ModelOutput(logits.numpy())
        return ModelOutput(logits.numpy(), states.numpy(), pooled.numpy())

    def state_dict(self) -> dict[str, np.ndarray]:
        out = {k: v.detach().cpu().numpy().copy() for k, v in self.encoder.state_dict().items()}
        out["head.weight"] = self.head.weight.detach().cpu().numpy().copy()
        out["head.bias"] = self.head.bias.detach().cpu().numpy().copy()
        return out

    # --- training: the core drives data order, schedule and progress -------

    def start_training(self, config: Mapping[str, Any]) -> None:
        torch.manual_seed(int(config.get("seed", 0)))
        dropout = float(config.get("dropout", 0.0))
        for module in self.encoder.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = dropout
        self.encoder.train(dropout > 0)
        named = [("head." + k, p) for k, p in self.head.named_parameters()]
        if not config.get("freeze_encoder", False):
            named += list(self.encoder.named_parameters())
        else:
            self.encoder.requires_grad_(False)
        decay = float(config.get("weight_decay", 0.01))
        groups = [
            {"params": [p for n, p in named if not no_decay(n)], "weight_decay": decay},
            {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
        ]
        self._optimizer = torch.optim.AdamW(groups, lr=0.0, betas=(0.9, 0.999), eps=1e-8)
        self._clip = float(config.get("max_grad_norm", 1.0))

    def train_step(self, encoding: Encoding, label_ids: np.ndarray, learning_rate: float) -> float:
        if self._optimizer is None:
            raise RuntimeError("start_training() must come before train_step()")
        with torch.enable_grad():
            logits, _, _ = self._logits(encoding)
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(np.asarray(label_ids, np.int64)))
            self._optimizer.zero_grad(set_to_none=False)  # reuse grad buffers: fresh 47 MB embedding grads each step cost page faults
            loss.backward()
            if self._clip > 0:
                torch.nn.utils.clip_grad_norm_([p for g in self._optimizer.param_groups for p in g["params"]], self._clip)
            for group in self._optimizer.param_groups:
                group["lr"] = float(learning_rate)
            self._optimizer.step()
        return float(loss.detach())

    def end_training(self) -> None:
        if self._optimizer is not None:
            self._optimizer.zero_grad(set_to_none=True)  # free the gradient buffers
        self._optimizer = None
        self.encoder.requires_grad_(True)
        self.encoder.eval()


class HuggingFaceBackend:
    """Entry point of the `huggingface` backend (aliases hf, torch, pytorch)."""

    name = "huggingface"

    def load(self, path: Path, spec: Mapping[str, Any]) -> tuple[HFTokenizer, HFModel]:
        if spec.get("format", "huggingface") != "huggingface":
            raise InvalidModelError(
                f"{path}: a {spec.get('format')!r} folder; the huggingface backend loads the canonical "
                "format (convert it back with `unified-nlp convert --to huggingface`)"
            )
        return HFTokenizer(path, int(spec["max_length"])), HFModel(path, spec)

    def convert(self, source: Path, out: Path) -> None:
        from unified_nlp.models import copy_canonical

        copy_canonical(source, out)
