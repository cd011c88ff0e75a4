"""Reference rows, measured in their own processes like the backends:

- `torch-raw`: the same transformers BertModel + mean pooling + head, called
  directly on the same length-sorted batches with the tokenization done the same
  way (all texts at once, then sliced per batch): the difference to the
  huggingface backend is our layer's overhead.
- `hf-pipeline`: transformers' own `pipeline("text-classification")`, what a user
  would otherwise pick, at batch 32.
- `ceiling`: the best 1024x1024 GEMM rate of every installed library (numpy, torch, ONNX Runtime's
  MLAS, TensorFlow's oneDNN), in fp32, bf16 and int8.
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


# what the report and the plots call each reference row
REFERENCE_NAMES = {
    "torch-raw": "raw torch call",
    "onnx-plain": "plain ONNX export, ONNX Runtime defaults",
    "hf-pipeline": "transformers pipeline",
}


def _labels(model_dir: Path) -> list[str]:
    import json

    return json.loads((model_dir / "unified_nlp.json").read_text(encoding="utf-8"))["labels"]


def _mean_pooled_logits(encoder, head, input_ids, attention_mask, token_type_ids, encoder_mask=None):
    """The default model's function: encoder, mean of the last hidden state over the 0/1
    `attention_mask`, head. `encoder_mask`: the mask the encoder gets, if not that one."""
    mask = attention_mask if encoder_mask is None else encoder_mask
    states = encoder(input_ids=input_ids, attention_mask=mask, token_type_ids=token_type_ids).last_hidden_state
    weights = attention_mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return head(pooled)


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

    def _logits(self, input_ids, attention_mask, token_type_ids):
        return _mean_pooled_logits(self.encoder, self.head, input_ids, attention_mask, token_type_ids)

    def predict_proba(self, texts: list[str], batch_size: int) -> np.ndarray:
        torch = self.torch
        enc = self._encode(texts)
        lengths = enc["attention_mask"].sum(dim=1)
        out = np.empty((len(texts), self.head.out_features), dtype=np.float32)
        with torch.inference_mode():
            for batch in batches_by_length(lengths.numpy(), batch_size):  # the same order as TextClassifier
                rows = torch.from_numpy(batch)
                width = int(lengths[rows].max())
                inputs = (enc[name][rows, :width] for name in ("input_ids", "attention_mask", "token_type_ids"))
                out[batch] = _softmax(np.asarray(self._logits(*inputs)))
        return out

    def tokenize(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)["attention_mask"].sum(dim=1).numpy()

    def info(self) -> dict[str, Any]:
        return {"runs": "in-process", "versions": versions(["torch", "transformers", "tokenizers"])}


class PlainOnnxSubject(RawTorchSubject):
    """The same encoder, mean pooling and head through a plain ONNX export: torch.onnx's TorchScript
    exporter (``dynamo=False``), no graph surgery and no offline fusion, run by ONNX Runtime with its
    default session options (every graph optimisation) on the benchmark's threads. What a user who
    exports the model by hand gets: the onnxruntime backend must be at least as fast (issue 28)."""

    name = "onnx-plain"

    def import_(self) -> None:
        super().import_()
        import onnxruntime  # noqa: F401

    def load(self) -> None:
        import io
        import warnings

        import onnxruntime as ort

        super().load()
        torch = self.torch
        names = ("input_ids", "attention_mask", "token_type_ids")

        class Plain(torch.nn.Module):
            def __init__(self, encoder, head) -> None:
                super().__init__()
                self.encoder, self.head = encoder, head

            def forward(self, input_ids, attention_mask, token_type_ids):
                # BERT's 4-D additive mask: traced, transformers 5's own mask code would bake the
                # example's mask into the graph (unified_nlp_onnxruntime/export.py)
                keep = attention_mask[:, None, None, :].to(torch.float32)
                additive = (1.0 - keep) * torch.finfo(torch.float32).min
                return _mean_pooled_logits(
                    self.encoder, self.head, input_ids, attention_mask, token_type_ids, encoder_mask=additive
                )

        example = self._encode(["a first example", "and a second , longer one"])
        graph = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                Plain(self.encoder, self.head).eval(),
                tuple(example[n] for n in names),
                graph,
                input_names=list(names),
                output_names=["logits"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in names},
                opset_version=17,
                dynamo=False,
            )
        options = ort.SessionOptions()  # the defaults, but for the threads every target gets
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])

    def _logits(self, input_ids, attention_mask, token_type_ids):
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.session.run(["logits"], {k: v.numpy() for k, v in feeds.items()})[0]

    def info(self) -> dict[str, Any]:
        return {"runs": "in-process", "versions": versions(["torch", "transformers", "tokenizers", "onnxruntime"])}


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


def _numpy_rates(a, b, flop: float, seconds: float, threads: int) -> dict[str, float]:
    return {"fp32": _best_gflops(lambda: a @ b, flop, seconds)[0]}


def _torch_rates(a, b, flop: float, seconds: float, threads: int) -> dict[str, Any]:
    """fp32, bf16 inputs with fp32 accumulation and int8 with int32 accumulation (GOP/s), through
    torch's own kernels (oneDNN for the reduced precisions)."""
    import torch

    from .threads import fix_threads

    fix_threads(threads)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    rates: dict[str, Any] = {}
    with torch.inference_mode():
        rates["fp32"] = _best_gflops(lambda: torch.mm(ta, tb), flop, seconds)[0]
        try:
            ha, hb = ta.bfloat16(), tb.bfloat16()
            rates["bf16"] = _best_gflops(lambda: torch.mm(ha, hb), flop, seconds)[0]
        except RuntimeError as e:
            rates["bf16_error"] = str(e)
        try:
            qa, qb = (torch.from_numpy(np.clip(m * 32, -128, 127).astype(np.int8)) for m in (a, b))
            rates["int8"] = _best_gflops(lambda: torch._int_mm(qa, qb), flop, seconds)[0]
        except (RuntimeError, AttributeError) as e:  # _int_mm: a private op, absent from some builds
            rates["int8_error"] = str(e)
    return rates


def _onnxruntime_rates(a, b, flop: float, seconds: float, threads: int) -> dict[str, Any]:
    """ONNX Runtime's MLAS: a one-node MatMul graph (fp32), and MatMulInteger (uint8 x int8, the
    pair its int8 quantisation writes), the second matrix an initializer as a model's weights are
    (MLAS packs it once)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from .threads import INTER_OP

    def session(node: str, a_type: int, weights: np.ndarray, out_type: int):
        n = a.shape[0]
        graph = helper.make_graph(
            [helper.make_node(node, ["a", "b"], ["c"])],
            "gemm",
            [helper.make_tensor_value_info("a", a_type, [n, n])],
            [helper.make_tensor_value_info("c", out_type, [n, n])],
            [numpy_helper.from_array(weights, "b")],
        )
        # IR version 10: onnx writes its newest by default, which ONNX Runtime may not read yet
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, INTER_OP
        options.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    fp32 = session("MatMul", TensorProto.FLOAT, b, TensorProto.FLOAT)
    rates = {"fp32": _best_gflops(lambda: fp32.run(None, {"a": a}), flop, seconds)[0]}
    qa = np.clip(a * 32 + 128, 0, 255).astype(np.uint8)
    int8 = session("MatMulInteger", TensorProto.UINT8, np.clip(b * 32, -128, 127).astype(np.int8), TensorProto.INT32)
    rates["int8"] = _best_gflops(lambda: int8.run(None, {"a": qa}), flop, seconds)[0]
    return rates


def _tensorflow_rates(a, b, flop: float, seconds: float, threads: int) -> dict[str, Any]:
    """TensorFlow's matmul (oneDNN on x86 unless TF_ENABLE_ONEDNN_OPTS=0), fp32 and bf16, in a
    tf.function; its threads come from TF_NUM_INTRAOP_THREADS, which the launcher sets."""
    import tensorflow as tf

    from .threads import fix_threads

    fix_threads(threads)
    rates: dict[str, Any] = {}
    for precision, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        ta, tb = tf.constant(a, dtype=dtype), tf.constant(b, dtype=dtype)
        matmul = tf.function(lambda x, y: tf.linalg.matmul(x, y))
        try:
            rates[precision] = _best_gflops(lambda x=ta, y=tb, f=matmul: f(x, y).numpy(), flop, seconds)[0]
        except (tf.errors.OpError, TypeError) as e:
            rates[f"{precision}_error"] = f"{type(e).__name__}: {e}"[:300]
    return rates


# every library whose GEMM may be the fastest here; tensorflow last, as paddle must not follow it
# in one process (threads.py), and its import is the slowest
GEMM_LIBRARIES = {
    "numpy": _numpy_rates,
    "torch": _torch_rates,
    "onnxruntime": _onnxruntime_rates,
    "tensorflow": _tensorflow_rates,
}
# the key of each precision's ceiling in the result
CEILING_KEYS = {"fp32": "gflops", "bf16": "bf16_gflops", "int8": "int8_gops"}


def matmul_ceiling(threads: int, step, size: int = 1024, seconds: float = 1.5) -> dict[str, Any]:
    """The best size x size GEMM rate on `threads` threads of every installed library
    (`GEMM_LIBRARIES`), per precision: fp32 GFLOP/s (`gflops`), bf16 (`bf16_gflops`) and int8 GOP/s
    (`int8_gops`), with the library that reached each (`<key>_library`) and every library's rates
    (`libraries`; a library not installed, or that fails, is recorded with its error).

    The ceiling must be the machine's, not one library's: torch's fp32 GEMM here ran below what
    ONNX Runtime's MLAS reaches on a whole model, so a torch-only ceiling read above 100%."""
    flop = 2.0 * size**3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out: dict[str, Any] = {"size": size, "threads": threads, "libraries": {}}
    for name, rates_of in GEMM_LIBRARIES.items():
        try:
            rates = rates_of(a, b, flop, seconds, threads)
        except ImportError as e:
            rates = {"error": f"not installed ({e})"}
        except Exception as e:  # noqa: BLE001 - one library that fails leaves the others' rates
            rates = {"error": f"{type(e).__name__}: {e}"[:300]}
        out["libraries"][name] = rates
        step(f"matmul {name}")
    for precision, key in CEILING_KEYS.items():
        measured = {n: r[precision] for n, r in out["libraries"].items() if precision in r}
        if measured:
            best = max(measured, key=measured.get)
            out[key], out[f"{key}_library"] = measured[best], best
    out["versions"] = versions([*GEMM_LIBRARIES, "onnx"])
    return out
