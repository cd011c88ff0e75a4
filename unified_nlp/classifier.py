"""TextClassifier: one pipeline, preprocess -> _forward -> postprocess, for every backend.

Only `_forward` touches a framework (through the adapter's Model); validation,
batching by length, softmax and labels are shared numpy code here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_dir
from .batching import batches_by_length
from .errors import InvalidInputError, UnifiedNLPError
from .folder import ENCODER_FILE, HEAD_FILE, SPEC_FILE, TOKENIZER_FILES, read_json
from .folder_spec import classifier_config, write_config
from .format_names import HUGGINGFACE, PADDLE_NATIVE, SAVEDMODEL
from .inputs import check_pairs, check_texts, clean_pairs, clean_text
from .metrics import classification_report, label_ids, multi_hot, multi_label_report
from .paddlenlp_format import save_native
from .postprocess import multi_label as multi_label_predictions
from .postprocess import predictions, sigmoid, softmax
from .postprocess import top_k as top_k_predictions
from .progress import bar, notice
from .protocols import Encoding, Model, ModelOutput, Tokenizer
from .spec import ModelSpec
from .threads import applied
from .training import fit as fit_classifier
from .weights import save_file

TOKENIZE_CHUNK = 2048  # texts tokenized at once; bounds memory on huge inputs


class TextClassifier:
    """A tokenizer, a model and a label set, on one backend.

    Examples:
        >>> clf = load_classifier("default", backend="huggingface")  # doctest: +SKIP
        >>> clf.predict(["This is a great movie!"])                 # doctest: +SKIP
        [Prediction(label='POSITIVE', score=0.97)]

    Thread safety: predict, predict_proba and evaluate may be called from many
    threads at once on one classifier (adapters run inference without shared
    mutable state, and the worker proxy serialises its pipe). fit and save must
    not run concurrently with other calls on the same classifier.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        model: Model,
        labels: Sequence[str],
        backend: str,
        source: Path | None = None,
        spec: ModelSpec | Mapping[str, Any] | None = None,
        runs: str = "in-process",
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.labels: tuple[str, ...] = tuple(labels)
        self.backend = backend
        self.source = source
        # a dict (as earlier versions took) is read as ModelSpec.from_dict, with these labels by default
        self.spec = (
            spec if isinstance(spec, ModelSpec) else ModelSpec.from_dict({"labels": self.labels, **(spec or {})})
        )
        self.runs = runs

    @property
    def precision(self) -> str:
        """The numeric precision the model runs at: "fp32", or "int8" (load_classifier's precision)."""
        return self.spec.precision or "fp32"

    @property
    def device(self) -> str:
        """Where the model runs: "cpu", or "cuda:N" (load_classifier's device)."""
        return self.spec.device or "cpu"

    def __repr__(self) -> str:
        return f"TextClassifier(backend={self.backend!r}, labels={list(self.labels)}, runs={self.runs!r})"

    # --- inference -------------------------------------------------------

    @property
    def num_threads(self) -> int | None:
        """Threads this classifier's framework computes with (process-wide, see
        `unified_nlp.threads`); 0 means the framework's own default."""
        return applied(self.backend)

    @property
    def multi_label(self) -> bool:
        """True for a multi-label head (problem_type multi_label_classification): one sigmoid per label."""
        return self.spec.problem_type == "multi_label_classification"

    def predict(
        self,
        texts: Sequence[str] | Sequence[tuple[str, str]],
        *,
        text_pair: Sequence[str] | None = None,
        batch_size: int = 32,
        top_k: int | str | None = "best",
        threshold: float = 0.5,
        max_length: int | None = None,
        progress: bool | None = False,
    ):
        """Label and score of the most likely class per text.

        A sentence pair is a tuple ``(text, text_pair)``, or pass ``text_pair=[...]``.
        With ``top_k=k`` each item is a list of the k best Predictions instead, and
        with ``top_k=None`` a list of every label's, best first (as transformers'
        pipeline); this holds for a multi-label classifier too (its scores are
        per-label sigmoids). By default a multi-label classifier returns, per text, the
        list of every label whose score reaches `threshold`, best first. Text longer
        than the model's maximum (or than `max_length` tokens, for this call) is
        truncated; ``Prediction.truncated`` says so. ``progress=None`` shows a bar on a
        terminal for long inputs, True always (see `unified_nlp.progress`).
        ``clf(texts, ...)`` is the same call, as a transformers pipeline is called.

        Examples:
            >>> clf.predict([("A man plays a guitar.", "A person makes music.")])  # doctest: +SKIP
            [Prediction(label='entailment', score=0.91)]
        """
        if (
            top_k != "best"
            and top_k is not None
            and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1)
        ):
            raise InvalidInputError(f"top_k must be a positive integer or None (every label), got {top_k!r}")
        probs, truncated = self._probabilities(texts, text_pair, batch_size, progress, max_length)
        if self.multi_label and top_k == "best":
            return multi_label_predictions(probs, self.labels, float(threshold), truncated)
        if top_k != "best":
            return top_k_predictions(probs, self.labels, len(self.labels) if top_k is None else top_k, truncated)
        return predictions(probs, self.labels, truncated)

    __call__ = predict

    def predict_proba(
        self,
        texts,
        *,
        text_pair: Sequence[str] | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        progress: bool | None = False,
    ) -> np.ndarray:
        """Scores, numpy float32 [n_texts, num_labels], columns in `labels` order: softmax
        probabilities (rows sum to 1), or per-label sigmoids for a multi-label classifier."""
        return self._probabilities(texts, text_pair, batch_size, progress, max_length)[0]

    def logits(
        self,
        texts,
        *,
        text_pair: Sequence[str] | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        progress: bool | None = False,
    ) -> np.ndarray:
        """Raw logits [n_texts, num_labels], in input order."""
        return self._run(texts, text_pair, batch_size, progress, max_length)[0]

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Logits to scores as this head defines them (softmax, or sigmoid for multi-label)."""
        return sigmoid(logits) if self.multi_label else softmax(logits)

    def _probabilities(self, texts, text_pair, batch_size, progress=False, max_length=None):
        logits, truncated = self._run(texts, text_pair, batch_size, progress, max_length)
        return self.scores(logits), truncated

    def preprocess(self, texts: Sequence[str]) -> list[str]:
        """Validated, cleaned single texts (see `prepare` for input that may hold pairs)."""
        return [clean_text(t) for t in check_texts(texts)]

    def prepare(self, texts, text_pair=None) -> tuple[list[str], list[str] | None]:
        """Validated, cleaned first texts and second texts (None unless sentence pairs)."""
        return clean_pairs(*check_pairs(texts, text_pair))

    def encode(
        self, first: Sequence[str], second: Sequence[str] | None = None, max_length: int | None = None
    ) -> Encoding:
        """Tokenize cleaned texts (and pairs) with this classifier's tokenizer (to at most
        `max_length` tokens, else the model's maximum)."""
        limit = {} if max_length is None else {"max_length": max_length}
        if second is None:
            return self.tokenizer(first, **limit)
        return self.tokenizer(first, text_pair=second, **limit)

    def _check_max_length(self, max_length: object) -> None:
        if max_length is None:
            return
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise InvalidInputError(f"max_length must be an integer of at least 2 tokens, got {max_length!r}")
        if max_length > self.tokenizer.max_length:
            raise InvalidInputError(f"max_length {max_length} exceeds the model's {self.tokenizer.max_length} tokens")

    def _run(
        self, texts, text_pair, batch_size: int, progress: bool | None = False, max_length: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        first, second = self.prepare(texts, text_pair)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._check_max_length(max_length)
        logits = np.zeros((len(first), len(self.labels)), dtype=np.float32)
        truncated = np.zeros(len(first), dtype=bool)
        with bar(len(first), self.backend, progress) as shown:
            for start in range(0, len(first), TOKENIZE_CHUNK):
                stop = start + TOKENIZE_CHUNK
                enc = self.encode(first[start:stop], None if second is None else second[start:stop], max_length)
                truncated[start : start + enc.num_texts] = enc.truncated
                for rows in batches_by_length(enc.lengths, batch_size):
                    logits[start + rows] = self._forward(enc.select(rows)).logits
                    shown.update(len(rows))
        return logits, truncated

    def _forward(self, enc: Encoding) -> ModelOutput:
        return self.model(enc)

    # --- training and evaluation ------------------------------------------

    def label_ids(self, labels) -> np.ndarray:
        """Label names or integer indices to indices into `labels` (int64 [n]); for a
        multi-label classifier, each item is a list of names or indices (or a 0/1 row),
        giving a float32 multi-hot matrix [n, num_labels]."""
        return multi_hot(labels, self.labels) if self.multi_label else label_ids(labels, self.labels)

    def evaluate(
        self,
        texts,
        labels,
        *,
        text_pair: Sequence[str] | None = None,
        batch_size: int = 32,
        progress: bool | None = None,
    ) -> dict[str, Any]:
        """Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix;
        for a multi-label classifier: subset accuracy, micro and macro F1 and per-label
        figures at the 0.5 threshold. A bar shows on a terminal for long inputs
        (``progress=None``; True always, False never).

        Examples:
            >>> clf.evaluate(["great", "awful"], ["POSITIVE", "NEGATIVE"])["accuracy"]  # doctest: +SKIP
            1.0
        """
        y_true = self.label_ids(labels)
        logits = self.logits(texts, text_pair=text_pair, batch_size=batch_size, progress=progress)
        if len(y_true) != len(logits):
            raise InvalidInputError(f"{len(logits)} texts but {len(y_true)} labels")
        if self.multi_label:
            return multi_label_report(y_true > 0.5, self.scores(logits) >= 0.5, self.labels)
        return classification_report(y_true, np.argmax(logits, axis=-1), self.labels)

    def fit(
        self,
        texts: Sequence[str] | Sequence[tuple[str, str]],
        labels: Sequence,
        *,
        validation: tuple[Sequence, Sequence] | None = None,
        epochs: int = 1,
        batch_size: int = 32,
        learning_rate: float = 5e-5,
        schedule: str = "linear",
        warmup_ratio: float = 0.1,
        weight_decay: float = 0.01,
        max_grad_norm: float = 1.0,
        dropout: float = 0.0,
        freeze_encoder: bool = False,
        seed: int = 0,
        max_length: int | None = None,
        gradient_accumulation: int = 1,
        class_weight: str | dict | None = None,
        eval_every: int | str = "epoch",
        early_stopping: dict | None = None,
        keep_best: bool = False,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
        progress: bool | None = None,
    ) -> dict[str, Any]:
        """Fine-tune this classifier in place on its backend's framework; returns the history.

        The same call trains on every backend, from the same start to the same losses
        (shared data order, schedule, validation and head initialisation; only the step
        runs in the framework): AdamW, cross-entropy (binary cross-entropy per label for a
        multi-label classifier), gradients clipped. Every option is checked before any
        training starts (InvalidInputError; TypeError for an unknown option).

        Args:
            texts: the training texts, or sentence pairs ``(text, text_pair)``.
            labels: per text a label name from ``labels`` or its integer index; for a
                multi-label classifier a list of names (or a 0/1 row) per text.
            validation: ``(texts, labels)`` evaluated every `eval_every`: the loss as
                trained (unweighted), accuracy, macro F1 (and micro F1 for multi-label).
            epochs: passes over the training set, each in a new seeded random order.
            batch_size: texts per forward/backward pass (a micro-batch).
            learning_rate: the peak learning rate of AdamW.
            schedule: after a linear warm-up, "linear" decay to 0, "cosine" decay to 0,
                or "constant" (see fit_options.learning_rate_at).
            warmup_ratio: the share of all optimizer steps spent warming up to the peak.
            weight_decay: AdamW's decoupled weight decay (not on biases and LayerNorm).
            max_grad_norm: the accumulated gradient is clipped to this global norm (0: off).
            dropout: dropout while training; 0 keeps every framework identical (0.1 is BERT's own).
            freeze_encoder: train the head only.
            seed: data order (and a fresh head's weights were drawn from the load's seed).
            max_length: tokens per training text (truncated); None: the model's maximum.
            gradient_accumulation: k micro-batches per optimizer step; the step's loss is
                the mean over its k * batch_size texts and its gradient that of one batch
                of them all (a last short group of an epoch averages over what it holds).
            class_weight: "balanced" (w_c = n / (classes * n_c)) or ``{label: weight}``
                (others 1): the loss of a step is sum_i w[y_i] * CE_i / sum_i w[y_i], as
                torch's ``cross_entropy(weight=w)``. Single-label only (a multi-label
                classifier refuses it). Validation loss stays unweighted.
            eval_every: "epoch", or N to evaluate every N optimizer steps (then not per epoch).
            early_stopping: ``{"metric": "loss", "patience": 1, "min_delta": 0.0}`` (any
                key may be left out): stop when the validation metric ("loss", lowered;
                "accuracy", "macro_f1", "micro_f1", raised; a "val_" prefix is allowed)
                has not improved by more than min_delta for `patience` evaluations in a
                row (0 and 1: the first).
            keep_best: at the end, restore the weights of the best evaluation (by the
                early-stopping metric, else the validation loss).
            checkpoint_dir: folder for checkpoints (weights, optimizer state, schedule
                position, data order, RNG); see unified_nlp.training_snapshots.
            checkpoint_every: write a checkpoint every N optimizer steps (the newest is kept).
            resume: continue from the newest checkpoint in `checkpoint_dir` (the same
                options and data are required), to the same weights as a run that was
                never interrupted; with none there, start from the beginning.
            progress: a progress bar on stderr (loss, texts/s, the last validation metric):
                None (the default) when stderr is a terminal, True always, False never.

        Returns:
            A dict: ``loss`` and ``learning_rate`` per optimizer step, ``epoch_loss``,
            ``eval`` (per evaluation: step, epoch, loss, accuracy, macro_f1, ...),
            ``val_accuracy``, ``best`` (metric, value, step), ``stopped_early``,
            ``restored_best`` (the step whose weights keep_best restored), ``resumed_from``,
            ``steps``, ``seconds``, ``texts_per_second``, ``config``.

        Examples:
            >>> history = clf.fit(["a fine film", "dull"], ["POSITIVE", "NEGATIVE"], epochs=1, seed=0)  # doctest: +SKIP
            >>> history["steps"]                                                                     # doctest: +SKIP
            1
        """
        options = {
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "schedule": schedule,
            "warmup_ratio": warmup_ratio,
            "weight_decay": weight_decay,
            "max_grad_norm": max_grad_norm,
            "dropout": dropout,
            "freeze_encoder": freeze_encoder,
            "seed": seed,
            "max_length": max_length,
            "gradient_accumulation": gradient_accumulation,
            "class_weight": class_weight,
            "eval_every": eval_every,
            "early_stopping": early_stopping,
            "keep_best": keep_best,
            "checkpoint_dir": checkpoint_dir,
            "checkpoint_every": checkpoint_every,
            "resume": resume,
        }
        return fit_classifier(self, texts, labels, validation=validation, progress=progress, **options)

    # --- persistence ------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the canonical format, atomically: a failure leaves any previous model
        at `path` intact.

        A native head gives a plain Hugging Face classifier folder (config.json with
        architectures, id2label/label2id and problem_type; model.safetensors with the
        encoder and head under transformers' names; the tokenizer files), which
        ``transformers.AutoModelForSequenceClassification.from_pretrained`` loads as it
        is. A mean-pooling head (the default model's) is the documented extension:
        the encoder folder plus head.safetensors and unified_nlp.json; plain
        transformers has no class for it (it would load the encoder with a random
        classifier), so saving one says so on stderr (`mean_head_notice`). Either loads
        on every backend of unified_nlp: ``un.load_classifier(path, backend="tfhub")``.
        """
        if self.spec.format == PADDLE_NATIVE and self.source is not None:
            save_native(self.source, self.model.state_dict(), self.labels, self.spec.problem_type, Path(path))
            return Path(path)
        if self.spec.format == SAVEDMODEL:
            raise UnifiedNLPError(
                "a SavedModel run as it is on tfhub has no canonical folder to save; convert it "
                "(un.convert(path, to='huggingface', out=...)) where its architecture allows, then load and save that"
            )
        if self.source is None or not (self.source / "config.json").is_file():
            raise UnifiedNLPError("this classifier was not loaded from a folder with config.json; it cannot be saved")
        state = self.model.state_dict()
        config = classifier_config(read_json(self.source / "config.json"), self.spec.replace(labels=self.labels))
        target = Path(path)
        with atomic_dir(target) as tmp:
            write_config(config, tmp / "config.json")
            for name in TOKENIZER_FILES:
                if (self.source / name).is_file():
                    shutil.copy2(self.source / name, tmp / name)
            if self.spec.head == "mean":
                head = {"weight": state.pop("head.weight"), "bias": state.pop("head.bias")}
                save_file(head, tmp / HEAD_FILE)
                spec = {
                    "format": HUGGINGFACE,
                    "architecture": config["model_type"],
                    "head": "mean",
                    "labels": list(self.labels),
                    "pooling": "mean",
                    "problem_type": config["problem_type"],
                    "max_length": int(self.tokenizer.max_length),
                    "saved_from": self.backend,
                }
                (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
            save_file(state, tmp / ENCODER_FILE, metadata={"format": "pt"})
        if self.spec.head == "mean":
            notice(mean_head_notice(target))
        return target


def mean_head_notice(path: str | os.PathLike) -> str:
    """What a saved mean-pooling head means outside unified_nlp, and the ways to a folder plain tools read."""
    return (
        f"{path} has a mean-pooling head, a unified_nlp extension: unified_nlp loads it on every backend, "
        "plain transformers loads it with a random classifier. For plain tools: "
        f"`unified-nlp convert --to onnxruntime {path} OUT` (plain ONNX Runtime runs OUT), or fit a native "
        "transformers head (--model minilm --labels A,B; un.load_classifier('minilm', labels=[...]))"
    )
