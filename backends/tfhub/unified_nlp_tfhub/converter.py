"""Canonical folder -> TF Hub export, written atomically.

The export::

    encoder/            SavedModel, TF Hub BERT encoder contract (see encoder.py)
    preprocessor/       SavedModel, TF Hub BERT preprocessor contract (see preprocessor.py)
    head.safetensors    the classification head, copied
    unified_nlp.json    {"format": "tfhub", labels, max_length, pooling, ...}
    config.json, vocab.txt, tokenizer*.json, special_tokens_map.json
                        copied, so a classifier loaded from here saves back to the canonical format

A user's own TF Hub BERT pair loads the same way: a folder with ``encoder/`` and
``preprocessor/`` following the contracts and a unified_nlp.json with
``"format": "tfhub"`` and ``"labels"``; without head.safetensors the head starts
fresh (fit it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.errors import ConversionError, InvalidModelError, UnifiedNLPError
from unified_nlp.models import (
    ENCODER_FILE,
    HEAD_FILE,
    SPEC_FILE,
    TOKENIZER_FILES,
    bert_shapes,
    check_canonical,
    load_config,
    read_json,
    read_spec,
    safe_join,
    token_limit,
)
from unified_nlp.weights import atomic_dir, load_file, save_file

from .encoder import BertEncoder, check_config
from .preprocessor import BertPreprocessor, read_tokenizer_options
from .weight_map import hf_to_tf, layout, strip_prefix, tf_to_hf, weight_rows

EXPORT_VERSION = 1  # bump when the export layout changes; cached conversions are then redone
ENCODER_DIR, PREPROCESSOR_DIR = "encoder", "preprocessor"


def read_weights(source: Path, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """The encoder tensors of a canonical folder, checked against config.json.
    Tensors BERT does not use (a task head) are ignored, as transformers' AutoModel does."""
    path = source / ENCODER_FILE
    state = strip_prefix(load_file(path))
    h = config["hidden_size"]
    for name, shape in {**bert_shapes(config), "pooler.dense.weight": [h, h], "pooler.dense.bias": [h]}.items():
        if name not in state and name.startswith("pooler."):
            # some checkpoints have no pooler (transformers then draws one at random); pooled_output
            # is not what the classifier reads, so a zero pooler is as good and is reproducible
            state[name] = np.zeros(shape, np.float32)
        if name not in state:
            raise InvalidModelError(f"{path}: missing tensor {name!r}")
        if list(state[name].shape) != shape:
            raise InvalidModelError(
                f"{path}: tensor {name!r} has shape {list(state[name].shape)}, config.json implies {list(shape)}"
            )
    return state


def _vocab_file(source: Path, scratch: Path) -> Path:
    """vocab.txt, or one written from tokenizer.json's WordPiece vocabulary."""
    if (source / "vocab.txt").is_file():
        return source / "vocab.txt"
    model = read_json(source / "tokenizer.json").get("model") or {}
    if not isinstance(model, dict) or model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        kind = model.get("type") if isinstance(model, dict) else None
        raise InvalidModelError(f"{source / 'tokenizer.json'}: a {kind!r} tokenizer; BERT WordPiece only")
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    out = scratch / "vocab.txt"
    out.write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    return out


def export(source: Path, out: Path) -> None:
    """Write the TF Hub form of the canonical folder `source` at `out`, atomically:
    on any failure nothing is left at `out` (or the previous folder there is kept).

    >>> export(Path("models/default"), Path("minilm-tfhub"))   # doctest: +SKIP
    """
    source, out = Path(source), Path(out)
    config = check_canonical(source)
    try:
        check_config(config)
    except ValueError as e:
        raise InvalidModelError(f"{source / 'config.json'}: {e}") from None
    spec = read_spec(source)
    options = read_tokenizer_options(source)  # fails early on a tokenizer we cannot reproduce
    state = read_weights(source, config)
    values = hf_to_tf(state, config["num_hidden_layers"], config["num_attention_heads"])
    del state
    try:
        with atomic_dir(out) as tmp:
            BertEncoder(config, values).save(tmp / ENCODER_DIR)
            vocab = _vocab_file(source, tmp)
            BertPreprocessor(vocab, **options).save(tmp / PREPROCESSOR_DIR)
            for name in ("config.json", HEAD_FILE, *TOKENIZER_FILES):
                if (source / name).is_file():
                    shutil.copy2(source / name, tmp / name)
            meta = {
                "format": "tfhub",
                "architecture": "bert",
                "labels": spec.get("labels"),
                "pooling": spec.get("pooling", "mean"),
                "max_length": token_limit(source, config, spec),
                "encoder_dir": ENCODER_DIR,
                "preprocessor_dir": PREPROCESSOR_DIR,
                "export_version": EXPORT_VERSION,
                "converted_from": spec.get("format", "huggingface"),
            }
            if not meta["labels"]:
                del meta["labels"]
            (tmp / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    except UnifiedNLPError:
        raise
    except Exception as e:  # TensorFlow's own errors while tracing or saving
        raise ConversionError(
            f"converting {source} to TF Hub failed: {type(e).__name__}: {str(e).strip()[:500]}"
        ) from None


def export_canonical(source: Path, out: Path) -> None:
    """Write the canonical Hugging Face folder of a TF Hub-format folder (ours, or a
    user's own BERT pair named as TF Hub's BERT, with config.json) to `out`,
    atomically; for users leaving TensorFlow.

    >>> export_canonical(Path("minilm-tfhub"), Path("minilm-hf"))   # doctest: +SKIP
    """
    from .savedmodel import EncoderCall, load_saved_model

    source, out = Path(source), Path(out)
    spec = read_spec(source)
    if spec.get("format") != "tfhub":
        raise InvalidModelError(f"{source / SPEC_FILE}: not a TF Hub-format folder (format {spec.get('format')!r})")
    if not (source / "config.json").is_file():
        raise ConversionError(
            f"{source}: no config.json, which the canonical format needs (activation, LayerNorm epsilon); "
            "add the Hugging Face config.json of this BERT to the folder"
        )
    config = load_config(source)
    encoder_dir = safe_join(source, spec.get("encoder_dir", ENCODER_DIR), source / SPEC_FILE)
    variables = {
        v.name.split(":")[0]: v
        for v in EncoderCall(load_saved_model(encoder_dir, "encoder"), encoder_dir).trainable_variables()
    }
    found = layout({name: tuple(v.shape) for name, v in variables.items()})
    if found is None:
        missing = next(t for _, t, _ in weight_rows(max(1, config["num_hidden_layers"])) if t not in variables)
        raise InvalidModelError(f"{encoder_dir}: no variable {missing!r}; not named as TF Hub's BERT encoder")
    state = tf_to_hf({name: v.numpy() for name, v in variables.items()}, *found)
    for name, shape in bert_shapes(config).items():
        if list(state[name].shape) != shape:
            raise InvalidModelError(
                f"{encoder_dir}: {name} has shape {list(state[name].shape)}, config.json implies {shape}"
            )
    vocab = source / "vocab.txt"
    if not vocab.is_file():
        vocab = (
            safe_join(source, spec.get("preprocessor_dir", PREPROCESSOR_DIR), source / SPEC_FILE)
            / "assets"
            / "vocab.txt"
        )
    with atomic_dir(out) as tmp:
        save_file(state, tmp / ENCODER_FILE, metadata={"format": "pt"})
        for name in ("config.json", HEAD_FILE, *TOKENIZER_FILES):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        if not (tmp / "vocab.txt").is_file() and vocab.is_file():
            shutil.copy2(vocab, tmp / "vocab.txt")
        meta = {
            "format": "huggingface",
            "architecture": "bert",
            "pooling": spec.get("pooling", "mean"),
            "converted_from": "tfhub",
        }
        for key in ("labels", "max_length"):
            if spec.get(key):
                meta[key] = spec[key]
        (tmp / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
