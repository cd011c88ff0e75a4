"""Reference rows, measured in their own processes like the backends:

- `torch-raw`: the same transformers BertModel + mean pooling + head, called
  directly on the same length-sorted batches with the tokenization done the same
  way (all texts at once, then sliced per batch): the difference to the
  huggingface backend is our layer's overhead.
- `hf-pipeline`: transformers' own `pipeline("text-classification")`, what a user
  would otherwise pick, at batch 32.
- `ceiling`: float32 1024x1024 matmul GFLOP/s with numpy and torch, and torch's bf16 and int8 rates.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..batching import batches_by_length
from .tracker import versions


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _labels(model_dir: Path) -> list[str]:
    import json

    return json.loads((model_dir / "unified_nlp.json").read_text(encoding="utf-8"))["labels"]


class RawTorchSubject:
    """transformers + torch with no unified_nlp layer in the timed path."""

    name = "torch-raw"

    def __init__(self, model_dir: str, max_length: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.max_length = max_length
        self.labels = _labels(self.model_dir)

    def import_(self) -> None:
        import torch  # noqa: F401
        import transformers  # noqa: F401

    def load(self) -> None:
        import torch
        import transformers

        from unified_nlp.weights import load_file

        self.torch = torch
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self.encoder = transformers.AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()
        head = load_file(self.model_dir / "head.safetensors")
        self.head = torch.nn.Linear(head["weight"].shape[1], head["weight"].shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(head["weight"]))
            self.head.bias.copy_(torch.from_numpy(head["bias"]))
        self.limit = min(self.max_length or 10**9, self.tokenizer.model_max_length, 512)

    def _encode(self, texts: list[str]):
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.limit, return_tensors="pt")

    def predict_proba(self, texts: list[str], batch_size: int) -> np.ndarray:
        torch = self.torch
        enc = self._encode(texts)
        lengths = enc["attention_mask"].sum(dim=1)
        out = np.empty((len(texts), self.head.out_features), dtype=np.float32)
        with torch.inference_mode():
            for batch in batches_by_length(lengths.numpy(), batch_size):  # the same order as TextClassifier
                rows = torch.from_numpy(batch)
                width = int(lengths[rows].max())
                mask = enc["attention_mask"][rows, :width]
                states = self.encoder(
                    input_ids=enc["input_ids"][rows, :width],
                    attention_mask=mask,
                    token_type_ids=enc["token_type_ids"][rows, :width],
                ).last_hidden_state
                weights = mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                out[rows.numpy()] = torch.softmax(self.head(pooled), dim=-1).numpy()
        return out

    def tokenize(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)["attention_mask"].sum(dim=1).numpy()

    def info(self) -> dict[str, Any]:
        return {"runs": "in-process", "versions": versions(["torch", "transformers", "tokenizers"])}


class PipelineSubject(RawTorchSubject):
    """transformers.pipeline("text-classification") on the same encoder and head.

    Why a subclass of BertPreTrainedModel and not the stock BertForSequenceClassification:
    the stock class classifies the [CLS] pooler output, while our head was trained
    on the attention-masked mean of the last hidden state; loading our head into the
    stock class would compute a different (and less accurate) function. The
    subclass below keeps everything else stock (config, tokenizer, the pipeline's
    preprocess -> forward -> postprocess, its batching and padding in input order),
    so this row is what a user of `pipeline` gets for the same model.
    """

    name = "hf-pipeline"

    def load(self) -> None:
        import torch
        import transformers
        from transformers.modeling_outputs import SequenceClassifierOutput
        from transformers.utils import logging as hf_logging

        from unified_nlp.weights import load_file

        class MeanPooledBertForSequenceClassification(transformers.BertPreTrainedModel):
            def __init__(self, config):
                super().__init__(config)
                self.bert = transformers.BertModel(config, add_pooling_layer=False)
                self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
                self.post_init()

            def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
                states = self.bert(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                weights = attention_mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                return SequenceClassifierOutput(logits=self.classifier(pooled))

        labels = self.labels
        config = transformers.AutoConfig.from_pretrained(
            str(self.model_dir),
            local_files_only=True,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={x: i for i, x in enumerate(labels)},
        )
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity(hf_logging.CRITICAL)  # "not supported for text-classification": it is a subclass
        try:
            model = MeanPooledBertForSequenceClassification.from_pretrained(
                str(self.model_dir), config=config, local_files_only=True
            )
            head = load_file(self.model_dir / "head.safetensors")
            with torch.no_grad():
                model.classifier.weight.copy_(torch.from_numpy(head["weight"]))
                model.classifier.bias.copy_(torch.from_numpy(head["bias"]))
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            self.pipe = transformers.pipeline(
                "text-classification", model=model.eval(), tokenizer=self.tokenizer, device=-1
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        self.limit = min(self.max_length or 10**9, self.tokenizer.model_max_length, 512)

    def predict_proba(self, texts: list[str], batch_size: int) -> np.ndarray:
        rows = self.pipe(texts, batch_size=batch_size, top_k=None, truncation=True, max_length=self.limit)
        index = {x: i for i, x in enumerate(self.labels)}
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for i, row in enumerate(rows):
            for item in row:
                out[i, index[item["label"]]] = item["score"]
        return out


def _best_gflops(fn, flop: float, seconds: float) -> tuple[float, int]:
    """The fastest of as many calls as fit in `seconds` (at least 5), after 3 warm-up calls."""
    for _ in range(3):
        fn()
    best, n, end = float("inf"), 0, time.perf_counter() + seconds
    while time.perf_counter() < end or n < 5:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        n += 1
    return flop / best / 1e9, n


def matmul_ceiling(threads: int, step, size: int = 1024, seconds: float = 1.5) -> dict[str, Any]:
    """Float32 size x size matmul GFLOP/s with numpy and torch on `threads` threads (the
    ceiling is the faster of the two), and torch's bf16 and int8 rates of the same shape."""
    from .threads import fix_threads

    flop = 2.0 * size**3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out: dict[str, Any] = {"size": size, "dtype": "float32", "threads": threads}
    out["numpy_gflops"], out["numpy_calls"] = _best_gflops(lambda: a @ b, flop, seconds)
    step("matmul numpy")
    try:
        import torch
    except ImportError as e:
        out["torch_error"] = str(e)
    else:
        out["threads_applied"] = fix_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        with torch.inference_mode():
            out["torch_gflops"], out["torch_calls"] = _best_gflops(lambda: torch.mm(ta, tb), flop, seconds)
            step("matmul torch")
            # the reduced-precision ceilings (torch's oneDNN kernels): bf16 inputs with fp32
            # accumulation, int8 inputs with int32 accumulation (GOP/s)
            try:
                ha, hb = ta.bfloat16(), tb.bfloat16()
                out["bf16_gflops"], _ = _best_gflops(lambda: torch.mm(ha, hb), flop, seconds)
            except RuntimeError as e:
                out["bf16_error"] = str(e)
            try:
                qa, qb = (torch.from_numpy(rng.integers(-128, 128, (size, size), dtype=np.int8)) for _ in "ab")
                out["int8_gops"], _ = _best_gflops(lambda: torch._int_mm(qa, qb), flop, seconds)
            except (RuntimeError, AttributeError) as e:  # _int_mm: a private op, absent from some builds
                out["int8_error"] = str(e)
        out["versions"] = versions(["numpy", "torch"])
    step("matmul bf16/int8")
    out["gflops"] = max(out["numpy_gflops"], out.get("torch_gflops", 0.0))
    return out
