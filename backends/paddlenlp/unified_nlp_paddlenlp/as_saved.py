"""PaddleNLP folders that run here as they are: ERNIE-M, which has no transformers class
(unified_nlp.paddlenlp_format.native_spec, format "paddlenlp-native").

The model is PaddleNLP's own task class built from the folder's config.json, as
``from_pretrained`` builds it, with the weights read by the core (model_state.pdparams
through the restricted reader, never paddle.load); the tokenizer is PaddleNLP's own
class for the folder's tokenizer files (ERNIE-M: ErnieMTokenizer, SentencePiece),
so token ids and logits are PaddleNLP's. A fresh head (labels that differ from the
folder's) is drawn in numpy from the seed. Inference only: `fit` says so.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    Encoding,
    InvalidInputError,
    InvalidModelError,
    Model,
    ModelOutput,
    ModelSpec,
    check_shapes,
    encoding_from_rows,
    paddle_folder,
)

from ._framework import paddle, use_device
from .classes import paddlenlp_class
from .model import classification_loss, set_dropout
from .training import AdamW


class AsSavedTokenizer:
    """PaddleNLP's tokenizer class of the folder, one text (or pair) at a time, padded into an Encoding."""

    def __init__(self, folder: Path, tokenizer_class: str, max_length: int) -> None:
        try:
            klass = paddlenlp_class(tokenizer_class)
        except AttributeError:
            raise InvalidModelError(f"{folder}: PaddleNLP has no tokenizer class {tokenizer_class!r}") from None
        try:
            self._tok = klass.from_pretrained(str(folder))  # a local folder: nothing is downloaded
        except Exception as e:  # PaddleNLP raises OSError/ValueError/KeyError for broken files
            raise InvalidModelError(f"{folder}: PaddleNLP's {tokenizer_class} cannot read it ({e})") from None
        self.max_length = int(max_length)
        self.vocab_size = len(self._tok)
        self._lock = threading.Lock()  # PaddleNLP's Python tokenizers keep per-call state

    def __call__(
        self,
        texts: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
        padding: bool | str = "longest",
        truncation: bool = True,
    ) -> Encoding:
        limit = min(max_length or self.max_length, self.max_length)
        pairs = [None] * len(texts) if text_pair is None else list(text_pair)
        if len(pairs) != len(texts):
            raise InvalidInputError(f"{len(texts)} texts but {len(pairs)} second texts")
        rows, cut = [], []
        with self._lock:
            for text, pair in zip(texts, pairs):
                row = self._tok(text, text_pair=pair)["input_ids"]
                cut.append(len(row) > limit)
                if cut[-1] and truncation:
                    row = self._tok(text, text_pair=pair, max_length=limit, truncation=True)["input_ids"]
                rows.append(row)
        return encoding_from_rows(rows, pad_id=int(self._tok.pad_token_id), padding=padding, limit=limit, truncated=cut)

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        with self._lock:
            return self._tok.decode([int(i) for i in np.asarray(ids).ravel()], skip_special_tokens=skip_special_tokens)


class AsSavedModel(Model):
    """PaddleNLP's task class of the folder (ErnieMForSequenceClassification), in dygraph."""

    def __init__(self, folder: Path, spec: ModelSpec) -> None:
        self.device = use_device(spec.device)  # built on it; set again before each run (process-wide)
        config = dict(paddle_folder.read_config(folder))
        name = str(spec.extra.get("paddle_class") or (config.get("architectures") or [""])[0])
        try:
            klass = paddlenlp_class(name)
        except AttributeError:
            raise InvalidModelError(f"{folder / 'config.json'}: PaddleNLP has no class {name!r}") from None
        self.num_labels = spec.num_labels
        labels = list(spec.labels)
        config.update(
            num_labels=self.num_labels,
            id2label=dict(enumerate(labels)),
            label2id={x: i for i, x in enumerate(labels)},
        )
        try:
            # built as from_pretrained builds it (its _init_weights sets what PaddleNLP computes with);
            # every weight is set next
            model = klass(klass.config_class(**config))
        except (TypeError, ValueError, AssertionError, KeyError, AttributeError) as e:
            raise InvalidModelError(f"{folder}: PaddleNLP cannot build a {name} from it ({e})") from e
        tensors = paddle_folder.read_weights(folder)
        if spec.fresh_head:  # drawn in numpy: the same start wherever it is drawn
            rng = np.random.default_rng(spec.seed)
            hidden = int(config["hidden_size"])
            std = float(config.get("initializer_range", 0.02))
            tensors["classifier.weight"] = rng.normal(0.0, std, (hidden, self.num_labels)).astype(np.float32)
            tensors["classifier.bias"] = np.zeros((self.num_labels,), np.float32)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        check_shapes({k: v.shape for k, v in tensors.items()}, expected, paddle_folder.weight_files(folder)[0])
        model.set_state_dict({k: tensors[k] for k in expected})
        set_dropout(model, 0.0)  # eval mode, no dropout op in inference (see set_dropout)
        self.model = model
        self.encoder = getattr(model, klass.base_model_prefix, None)
        self.max_length = int(spec.max_length)
        self._vocab = int(config["vocab_size"])
        self.multi_label = spec.problem_type == "multi_label_classification"
        self._optimizer: AdamW | None = None
        self._lock = threading.RLock()

    def __call__(self, encoding: Encoding, *, output_hidden_states: bool = False) -> ModelOutput:
        ids = encoding.input_ids
        n, width = ids.shape
        if n == 0 or width == 0:
            return ModelOutput(np.zeros((n, self.num_labels), np.float32))
        if ids.min() < 0 or ids.max() >= self._vocab:
            raise InvalidInputError(f"token ids must lie in [0, {self._vocab}), got {ids.min()}..{ids.max()}")
        caught: list[Any] = []
        with self._lock, paddle.no_grad():
            use_device(self.device)
            hook = None
            if output_hidden_states and self.encoder is not None:
                hook = self.encoder.register_forward_post_hook(
                    lambda layer, args, out: caught.append(out[0] if isinstance(out, (tuple, list)) else out)
                )
            try:
                out = self.model(
                    input_ids=paddle.to_tensor(ids), attention_mask=paddle.to_tensor(encoding.attention_mask)
                )
            finally:
                if hook is not None:
                    hook.remove()
        logits = (out[0] if isinstance(out, (tuple, list)) else out).numpy()
        states = caught[-1].numpy() if caught else None
        return ModelOutput(logits, states, None)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every weight under PaddleNLP's names (there are no transformers names for ERNIE-M)."""
        with self._lock:
            return {k: v.numpy().copy() for k, v in self.model.state_dict().items()}

    # --- training: the core drives data order, schedule and progress ---------

    def start_training(self, config: Mapping[str, Any]) -> None:
        with self._lock:
            paddle.seed(int(config.get("seed", 0)))
            dropout = float(config.get("dropout", 0.0))
            set_dropout(self.model, dropout)
            self.multi_label = config.get("problem_type") == "multi_label_classification"
            named = list(self.model.named_parameters())
            if config.get("freeze_encoder", False):
                for name, p in named:
                    p.stop_gradient = not name.startswith("classifier.")
                named = [(n, p) for n, p in named if n.startswith("classifier.")]
            # no_decay reads transformers' names: PaddleNLP's LayerNorms are norm1/norm2/layer_norm
            decay_names = [(n.replace("norm", "LayerNorm") if "norm" in n else n, p) for n, p in named]
            self._optimizer = AdamW(decay_names, weight_decay=float(config.get("weight_decay", 0.01)))
            self._clip = float(config.get("max_grad_norm", 1.0))

    def train_step(
        self,
        encoding: Encoding,
        label_ids: np.ndarray,
        learning_rate: float,
        example_weights: np.ndarray | None = None,
        apply: bool = True,
    ) -> float:
        """One micro-batch, as PaddleModel.train_step."""
        if self._optimizer is None:
            raise RuntimeError("start_training() must come before train_step()")
        with self._lock:
            use_device(self.device)
            out = self.model(
                input_ids=paddle.to_tensor(encoding.input_ids), attention_mask=paddle.to_tensor(encoding.attention_mask)
            )
            logits = out[0] if isinstance(out, (tuple, list)) else out
            loss = classification_loss(
                logits, label_ids, encoding.num_texts, self.num_labels, self.multi_label, example_weights
            )
            loss.backward()
            if apply:
                self._optimizer.step(float(learning_rate), self._clip)
            return float(loss.numpy())

    def training_state(self) -> dict[str, np.ndarray]:
        """AdamW's state by PaddleNLP parameter name (ERNIE-M has no transformers names)."""
        if self._optimizer is None:
            raise RuntimeError("training_state() needs start_training() first")
        with self._lock:
            return self._optimizer.state(lambda name, value: value)

    def set_training_state(self, state: Mapping[str, np.ndarray]) -> None:
        if self._optimizer is None:
            raise RuntimeError("set_training_state() needs start_training() first")
        with self._lock:
            use_device(self.device)
            try:
                self._optimizer.load(state, lambda name, value: value)
            except (ValueError, KeyError) as e:
                raise InvalidInputError(f"the optimizer state does not fit this model: {e}") from None

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Set every weight from arrays named as `state_dict` gives them."""
        with self._lock:
            own = self.model.state_dict()
            missing, unknown = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            if missing or unknown:
                raise InvalidInputError(f"weights do not match the model: missing {missing[:3]}, unknown {unknown[:3]}")
            for name, target in own.items():
                value = np.asarray(state[name], dtype=target.numpy().dtype)
                if list(value.shape) != list(target.shape):
                    raise InvalidInputError(f"weight {name!r} has shape {list(value.shape)}")
                target.set_value(value)

    def end_training(self) -> None:
        with self._lock:
            if self._optimizer is not None:
                self._optimizer.zero_grad()
            self._optimizer = None
            for _, p in self.model.named_parameters():
                p.stop_gradient = False
            set_dropout(self.model, 0.0)


def load_as_saved(path: Path, spec: ModelSpec) -> tuple[AsSavedTokenizer, AsSavedModel]:
    """Tokenizer and model of a PaddleNLP folder described by paddlenlp_format.native_spec."""
    model = AsSavedModel(path, spec)
    tokenizer = AsSavedTokenizer(path, str(spec.extra.get("tokenizer") or "AutoTokenizer"), model.max_length)
    return tokenizer, model
