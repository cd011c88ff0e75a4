"""PaddleNLP (PaddlePaddle) adapter for unified_nlp.

Runs PaddleNLP's own classes for eight transformers families (BERT/MiniLM,
DistilBERT, RoBERTa, XLM-RoBERTa on PaddleNLP's RoBERTa, ELECTRA, ALBERT, ERNIE,
DeBERTa-v2/v3) and this package's own Paddle port of ModernBERT, which PaddleNLP 2.8
lacks (modernbert.py): the family's XForSequenceClassification with the checkpoint's
own head, or the bare encoder under the default model's mean-pooling head; and
ERNIE-M, which has no transformers class, from a PaddleNLP save_pretrained folder as
it is (as_saved.py).
Built from local files only (nothing is downloaded); weights read from safetensors,
or a PaddleNLP folder's model_state.pdparams through the core's restricted reader
(unified_nlp.safe_pickle; never paddle.load). A canonical folder is converted once into the PaddleNLP format (see
converter.py and the literal tables in unified_nlp.paddlenlp_format.families) under
unified_nlp.store_keys.converted_dir and reused. Texts are tokenized with the
folder's own tokenizer.json (unified_nlp.fast_tokenizer), so token ids equal
transformers'; exports also carry PaddleNLP's own tokenizer files.

Importing this package imports neither paddle nor PaddleNLP; `load` does. The
converter and `export_canonical` need numpy only.

>>> import unified_nlp as un
>>> clf = un.load_classifier("default", backend="paddlenlp")  # doctest: +SKIP
>>> clf.predict(["This is a great movie!"])[0].label          # doctest: +SKIP
'POSITIVE'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    PADDLE_INFERENCE_FORMAT,
    SPEC_FILE,
    BackendAdapter,
    InvalidInputError,
    InvalidModelError,
    Model,
    ModelSpec,
    Tokenizer,
    converted_dir,
    paddle_folder,
    read_spec,
)
from unified_nlp.backend_kit import PADDLE_NATIVE_FORMAT as NATIVE_FORMAT

from ._cpu import native_bf16
from .converter import FORMAT as PADDLE_FORMAT
from .converter import VERSION as CONVERTER_VERSION
from .converter import convert as write_paddle_format
from .converter import encoder_dir
from .converter import export_canonical as write_canonical

__all__ = ["PaddleNLPBackend"]


class PaddleNLPBackend(BackendAdapter):
    """Entry point of the `paddlenlp` backend (alias paddle)."""

    name = "paddlenlp"
    gpu_install = (
        "paddlepaddle-gpu in place of paddlepaddle, the wheel built for your CUDA version "
        "(paddlepaddle.org.cn/install/quick), in the paddlenlp worker's environment"
    )

    @property
    def devices(self) -> tuple[str, ...]:
        """The devices here: "cpu", and "cuda:N" for each GPU a CUDA build of paddle sees (imports paddle)."""
        from ._framework import devices

        return devices()

    @property
    def precisions(self) -> tuple[str, ...]:
        """fp32, and bf16 (Paddle Inference's oneDNN bf16 kernels) where the CPU has bf16 dot
        products: measured on an AMD EPYC with AVX512-BF16, default model, SST-2 dev, batch 32,
        2 threads (benchmarks/precision.py): 1.83x fp32, 100% of its labels, logits within 0.033."""
        return ("fp32", "bf16") if native_bf16() else ("fp32",)

    def set_threads(self, n: int) -> int:
        """Paddle's CPU math-library threads (imports paddle); returns the count MKL reports."""
        from ._framework import set_threads

        return set_threads(n)

    def load(self, path: Path, spec: ModelSpec) -> tuple[Tokenizer, Model]:
        """Tokenizer and model of a canonical folder (converted once, cached), of a
        PaddleNLP-format folder written by `convert`, or of a PaddleNLP save_pretrained
        folder run as it is (spec from unified_nlp.paddlenlp_format.native_spec: ERNIE-M)."""
        path = Path(path)
        fmt = spec.format
        if spec.precision == "bf16" and spec.device not in (None, "cpu"):
            raise InvalidInputError(
                f"precision='bf16' runs on the CPU's oneDNN kernels, not on {spec.device}; load fp32 on a GPU"
            )
        if fmt == PADDLE_INFERENCE_FORMAT:  # a Paddle Inference export, run as it is (inference_export.py)
            from .inference_export import load

            return load(path, spec)
        if fmt == NATIVE_FORMAT:
            if (spec.precision or "fp32") != "fp32":
                raise InvalidInputError(
                    f"{path}: a PaddleNLP folder run as it is (its family has no canonical form) runs fp32 only, "
                    f"not {spec.precision}"
                )
            from .as_saved import load_as_saved

            return load_as_saved(path, spec)
        if fmt == CANONICAL_FORMAT:
            if paddle_folder.is_native(path):
                raise InvalidModelError(
                    f"{path}: a folder PaddleNLP's save_pretrained wrote (PaddleNLP parameter names). Make a "
                    "canonical folder of it first: unified_nlp.paddlenlp_format.to_canonical(src, out)"
                )
            folder = converted_dir(path, self.name)
            if read_spec(folder).get("converter_version") != CONVERTER_VERSION:  # none yet, or an older one
                write_paddle_format(path, folder, spec, for_loading=True)
        elif fmt == PADDLE_FORMAT:
            folder = path
            if read_spec(path).get("format") != PADDLE_FORMAT:
                raise InvalidModelError(f"{path / SPEC_FILE}: not a PaddleNLP-format folder")
        else:
            raise InvalidModelError(
                f"{path}: a {fmt!r} folder; the paddlenlp backend loads the canonical format or its own"
            )
        from .model import PaddleModel

        model = PaddleModel(folder, spec)
        return _tokenizer(folder, spec, model.max_length), model

    def describe_native(self, path: Path, **options: Any) -> ModelSpec:
        """The spec of a Paddle Inference export (inference_export.describe; imports paddle)."""
        from .inference_export import describe

        return describe(Path(path), **options)

    def inspect_native(self, path: Path, **options: Any) -> dict[str, Any]:
        """What a Paddle Inference export holds (inference_export.inspect; imports paddle)."""
        from .inference_export import inspect

        return inspect(Path(path))

    def convert(self, source: Path, out: Path) -> None:
        """Write the PaddleNLP format of the canonical folder `source` to `out`, atomically:
        PaddleNLP's own AutoModelForSequenceClassification / AutoTokenizer load ``out/paddlenlp``.

        >>> PaddleNLPBackend().convert(Path("my-roberta"), Path("my-roberta-paddle"))  # doctest: +SKIP
        """
        write_paddle_format(Path(source), Path(out))

    def export_canonical(self, source: Path, out: Path) -> None:
        """Write the canonical Hugging Face folder of a PaddleNLP-format folder (ours, or
        PaddleNLP's own save_pretrained output, pdparams or safetensors) to `out`,
        atomically; for users leaving PaddleNLP.

        >>> PaddleNLPBackend().export_canonical(Path("minilm-paddle"), Path("minilm-hf"))  # doctest: +SKIP
        """
        write_canonical(Path(source), Path(out))


def _tokenizer(folder: Path, spec: ModelSpec, max_length: int) -> Tokenizer:
    """The canonical tokenizer (tokenizer.json, or vocab.txt) through the `tokenizers` package,
    ids identical to transformers for every family; PaddleNLP's BertTokenizer only for a
    folder that has neither at its top level."""
    if (folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file():
        from unified_nlp.backend_kit import FastTokenizer

        return FastTokenizer.from_folder(folder, max_length, spec.token_types)
    from .tokenizer import PaddleTokenizer

    return PaddleTokenizer(encoder_dir(folder), max_length)
