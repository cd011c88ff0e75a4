"""PaddleNLP (PaddlePaddle) adapter for unified_nlp.

Runs PaddleNLP's own BertModel and BertTokenizer, built from local files only
(nothing is downloaded), with weights read from safetensors (pickles are never
loaded). A canonical folder is converted once into the PaddleNLP format (see
converter.py) under unified_nlp.models.converted_dir and reused.

Importing this package imports neither paddle nor PaddleNLP; `load` does. The
converter and `export_canonical` need numpy only.

>>> import unified_nlp as un
>>> clf = un.load_classifier("default", backend="paddlenlp")  # doctest: +SKIP
>>> clf.predict(["This is a great movie!"])[0].label          # doctest: +SKIP
'POSITIVE'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unified_nlp.errors import InvalidModelError
from unified_nlp.models import converted_dir, read_spec

from . import converter

if TYPE_CHECKING:
    from .model import PaddleModel
    from .tokenizer import PaddleTokenizer

__all__ = ["PaddleNLPBackend"]


class PaddleNLPBackend:
    """Entry point of the `paddlenlp` backend (alias paddle)."""

    name = "paddlenlp"

    def load(self, path: Path, spec: Mapping[str, Any]) -> tuple[PaddleTokenizer, PaddleModel]:
        """Tokenizer and model of a canonical folder (converted once, cached) or of a
        PaddleNLP-format folder written by `convert`."""
        path = Path(path)
        fmt = spec.get("format", "huggingface")
        if fmt == "huggingface":
            if converter.is_paddle_native(path):
                raise InvalidModelError(
                    f"{path}: a folder PaddleNLP's save_pretrained wrote (PaddleNLP parameter names). Make a "
                    "canonical folder of it first: unified_nlp_paddlenlp.PaddleNLPBackend().export_canonical(src, out)"
                )
            folder = converted_dir(path, self.name)
            if not (folder / "unified_nlp.json").is_file():
                converter.convert(path, folder)
            path = folder
        elif fmt != converter.FORMAT:
            raise InvalidModelError(
                f"{path}: a {fmt!r} folder; the paddlenlp backend loads the canonical format or its own"
            )
        from .model import PaddleModel
        from .tokenizer import PaddleTokenizer

        saved = read_spec(path)
        if saved.get("format") != converter.FORMAT:
            raise InvalidModelError(f"{path / 'unified_nlp.json'}: not a PaddleNLP-format folder")
        folder = converter.encoder_dir(path, saved)
        model = PaddleModel(folder, path, spec)
        max_length = min(
            int(spec.get("max_length") or saved.get("max_length") or model.max_positions), model.max_positions
        )
        return PaddleTokenizer(folder, max_length), model

    def convert(self, source: Path, out: Path) -> None:
        """Write the PaddleNLP format of the canonical folder `source` to `out`, atomically.

        >>> PaddleNLPBackend().convert(Path("minilm"), Path("minilm-paddle"))  # doctest: +SKIP
        """
        converter.convert(Path(source), Path(out))

    def export_canonical(self, source: Path, out: Path) -> None:
        """Write the canonical Hugging Face folder of a PaddleNLP-format folder (ours, or
        PaddleNLP's own save_pretrained output with safetensors) to `out`, atomically;
        for users leaving PaddleNLP.

        >>> PaddleNLPBackend().export_canonical(Path("minilm-paddle"), Path("minilm-hf"))  # doctest: +SKIP
        """
        converter.export_canonical(Path(source), Path(out))
