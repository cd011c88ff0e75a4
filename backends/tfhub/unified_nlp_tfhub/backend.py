"""TFHubBackend: the entry point of the `tfhub` backend (aliases tf, tensorflow)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unified_nlp.errors import InvalidModelError
from unified_nlp.models import SPEC_FILE, converted_dir, safe_join

from .converter import ENCODER_DIR, EXPORT_VERSION, PREPROCESSOR_DIR, export, export_canonical
from .model import TFHubModel
from .tokenizer import TFHubTokenizer

DEFAULT_MAX_LENGTH = 512  # BERT's position limit, for a user's own export that does not state one


def _is_current_export(folder: Path) -> bool:
    try:
        meta = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("export_version") == EXPORT_VERSION


class TFHubBackend:
    """TensorFlow Hub backend: BERT encoder and preprocessor SavedModels, run in TensorFlow.

    Loads three kinds of folder: a canonical (Hugging Face style) folder, which
    is converted once into the model store and reused; a folder written by
    ``convert`` (``unified_nlp.json`` says ``"format": "tfhub"``); and a user's
    own TF Hub BERT pair laid out the same way (``encoder/``, ``preprocessor/``,
    ``unified_nlp.json`` with ``"format": "tfhub"`` and ``"labels"``, optional
    ``head.safetensors``).

    >>> import unified_nlp as un
    >>> clf = un.load_classifier("default", backend="tfhub")   # doctest: +SKIP
    >>> un.convert("default", to="tfhub", out="minilm-tfhub")  # doctest: +SKIP
    """

    name = "tfhub"

    def load(self, path: Path, spec: Mapping[str, Any]) -> tuple[TFHubTokenizer, TFHubModel]:
        path = Path(path)
        fmt = spec.get("format", "huggingface")
        if fmt == "huggingface":
            folder = converted_dir(path, self.name)
            if not _is_current_export(folder):
                export(path, folder)
        elif fmt == "tfhub":
            folder = path
        else:
            raise InvalidModelError(
                f"{path}: a {fmt!r} folder; the tfhub backend loads the canonical format or its own "
                "(convert it with `unified-nlp convert --to tfhub`)"
            )
        encoder_dir = safe_join(folder, spec.get("encoder_dir", ENCODER_DIR), folder / SPEC_FILE)
        preprocessor_dir = safe_join(folder, spec.get("preprocessor_dir", PREPROCESSOR_DIR), folder / SPEC_FILE)
        model = TFHubModel(folder, spec, encoder_dir)
        max_length = int(spec.get("max_length") or DEFAULT_MAX_LENGTH)
        if model.max_positions is not None:
            max_length = min(max_length, model.max_positions)
        vocab = folder / "vocab.txt"
        tokenizer = TFHubTokenizer(preprocessor_dir, max_length, vocab if vocab.is_file() else None)
        return tokenizer, model

    def convert(self, source: Path, out: Path) -> None:
        """Write the TF Hub form of the canonical folder `source` to `out`, atomically."""
        export(Path(source), Path(out))

    def export_canonical(self, source: Path, out: Path) -> None:
        """Write the canonical folder of the TF Hub-format folder `source` to `out`, atomically."""
        export_canonical(Path(source), Path(out))
