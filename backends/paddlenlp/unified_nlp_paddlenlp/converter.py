"""Canonical Hugging Face folder <-> the PaddleNLP format, in numpy (no framework).

The PaddleNLP format of a model folder::

    unified_nlp.json          {"format": "paddlenlp", "encoder_dir": "paddlenlp", labels, pooling, max_length, ...}
    head.safetensors          the classification head, as in the canonical format
    config.json, vocab.txt,   the canonical files, kept verbatim: `clf.save()` and
    tokenizer.json, ...       `export_canonical` write the canonical format back from them
    paddlenlp/                a folder PaddleNLP 2.8 itself loads (BertModel/BertTokenizer.from_pretrained):
        config.json           PaddleNLP BertConfig
        model.safetensors     PaddleNLP parameter names, Linear weights [in, out]
        vocab.txt, tokenizer_config.json, special_tokens_map.json

Every write goes through unified_nlp.weights.atomic_dir: a failed conversion
leaves nothing behind. Weights are safetensors only; pickles are never read.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.errors import ConversionError, InvalidModelError
from unified_nlp.models import (
    ENCODER_FILE,
    HEAD_FILE,
    SPEC_FILE,
    TOKENIZER_FILES,
    check_canonical,
    check_shapes,
    read_json,
    read_spec,
    safe_join,
    token_limit,
)
from unified_nlp.weights import atomic_dir, load_file, read_header, save_file

from . import names
from .tokenizer_files import paddle_tokenizer_config, vocabulary

FORMAT = "paddlenlp"
ENCODER_DIR = "paddlenlp"
WEIGHTS = "model.safetensors"  # PaddleNLP's SAFE_WEIGHTS_NAME
CONFIG = "config.json"  # PaddleNLP's CONFIG_NAME
TOKENIZER_CONFIG = "tokenizer_config.json"
_PICKLES = (".pdparams", ".pdopt", ".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


# --- tensors and config ------------------------------------------------------


def to_paddle(tensors: dict[str, np.ndarray], config: dict, source: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Canonical tensors -> PaddleNLP tensors, plus the names of the buffers the source held.

    Checks every name and shape against config.json first; errors name `source`.
    """
    if tensors and all(k.startswith("bert.") for k in tensors if "embeddings." in k or "encoder." in k):
        tensors = {k.removeprefix("bert."): v for k, v in tensors.items()}  # a BertFor... checkpoint
    check_shapes(
        {k: v.shape for k, v in tensors.items()},
        names.canonical_shapes(config),
        source,
        error=ConversionError,
        allow_extra=lambda name: name in names.BUFFERS or not name.startswith(("embeddings.", "encoder.", "pooler.")),
    )
    buffers = []
    for name, build in names.BUFFERS.items():
        if name in tensors:
            if not np.array_equal(tensors[name], build(config)) or tensors[name].dtype != build(config).dtype:
                raise ConversionError(f"{source}: buffer {name!r} is not the standard arange; it cannot be converted")
            buffers.append(name)
    out = {pd: fn(tensors[hf]) for hf, pd, fn in names.weight_map(config["num_hidden_layers"])}
    return out, buffers


def to_canonical(
    tensors: dict[str, np.ndarray], config: dict, buffers: list[str], source: Path
) -> dict[str, np.ndarray]:
    """PaddleNLP tensors -> canonical tensors (the inverse of to_paddle)."""
    rows = names.weight_map(config["num_hidden_layers"])
    missing = sorted({pd for _, pd, _ in rows} - set(tensors))
    if missing:
        raise InvalidModelError(f"{source}: missing {len(missing)} PaddleNLP tensor(s), e.g. {missing[:3]}")
    out = {hf: fn(tensors[pd]) for hf, pd, fn in rows}
    for name, shape in names.canonical_shapes(config).items():
        if tuple(out[name].shape) != shape:
            raise InvalidModelError(f"{source}: tensor for {name!r} has the wrong shape {list(out[name].shape)}")
    for name in buffers:
        out[name] = names.BUFFERS[name](config)
    return out


def paddle_config(config: dict, source: Path) -> dict[str, Any]:
    """canonical config.json -> PaddleNLP BertConfig dict, refusing what PaddleNLP's BertModel cannot compute."""
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(
            f"{source}: position_embedding_type {config['position_embedding_type']!r}; PaddleNLP's BertModel has absolute positions only"
        )
    if config.get("hidden_act", "gelu") not in names.ACTIVATIONS:
        raise ConversionError(
            f"{source}: hidden_act {config['hidden_act']!r} has no identical paddle activation ({', '.join(names.ACTIVATIONS)})"
        )
    out: dict[str, Any] = dict(names.PADDLE_ONLY_CONFIG)
    for hf, pd, default in names.CONFIG:
        out[pd] = config.get(hf, default)
    return out


def canonical_config(config: dict) -> dict[str, Any]:
    """PaddleNLP BertConfig dict -> a canonical (transformers) config.json."""
    out: dict[str, Any] = {"architectures": ["BertModel"], "model_type": "bert", "position_embedding_type": "absolute"}
    for hf, pd, default in names.CONFIG:
        out[hf] = config.get(pd, default)
    return out


# --- reading folders ---------------------------------------------------------


def weights_file(folder: Path) -> Path:
    """The safetensors weights of a PaddleNLP folder; a clear error for pickles, never unpickled."""
    path = folder / WEIGHTS
    if not path.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLES) if folder.is_dir() else []
        hint = (
            (
                f"; found {', '.join(pickles)}, a pickle format that is never loaded. Re-save it as safetensors in "
                "your PaddleNLP environment: model.save_pretrained(dir, safe_serialization=True)"
            )
            if pickles
            else ""
        )
        raise InvalidModelError(f"{path}: missing (weights must be safetensors){hint}")
    return path


def encoder_dir(path: Path, spec: dict | None = None) -> Path:
    """The PaddleNLP subfolder of a PaddleNLP-format folder."""
    spec = read_spec(path) if spec is None else spec
    return safe_join(path, spec.get("encoder_dir", ENCODER_DIR), path / SPEC_FILE)


def read_paddle_config(folder: Path) -> dict[str, Any]:
    config = read_json(folder / CONFIG)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size"):
        if not isinstance(config.get(key), int) or config[key] <= 0:
            raise InvalidModelError(f"{folder / CONFIG}: '{key}' must be a positive integer")
    return config


def is_paddle_native(path: Path) -> bool:
    """A folder PaddleNLP wrote itself (save_pretrained): PaddleNLP names in model.safetensors."""
    if not (path / WEIGHTS).is_file():
        return False
    return any(".self_attn.q_proj." in k for k in read_header(path / WEIGHTS))


# --- whole folders -------------------------------------------------------------


def convert(source: Path, out: Path) -> None:
    """Write the PaddleNLP format of the canonical folder `source` to `out`, atomically."""
    source, out = Path(source), Path(out)
    config = check_canonical(source)
    spec = read_spec(source)
    if spec.get("format", "huggingface") != "huggingface":
        raise ConversionError(f"{source}: a {spec['format']!r} folder; convert expects the canonical format")
    if is_paddle_native(source):
        raise ConversionError(
            f"{source / ENCODER_FILE}: has PaddleNLP parameter names (a PaddleNLP save_pretrained folder). "
            "Make a canonical folder first: unified_nlp_paddlenlp.PaddleNLPBackend().export_canonical(src, out)"
        )
    pd_config = paddle_config(config, source)
    tensors, buffers = to_paddle(load_file(source / ENCODER_FILE), config, source / ENCODER_FILE)
    max_length = token_limit(source, config, spec)
    tok_config = paddle_tokenizer_config(source, max_length)
    vocab = vocabulary(source)
    meta = {
        "format": FORMAT,
        "architecture": "bert",
        "encoder_dir": ENCODER_DIR,
        **{k: spec[k] for k in ("labels",) if k in spec},
        "pooling": spec.get("pooling", "mean"),
        "max_length": max_length,
        "canonical_buffers": buffers,
        "converted_from": "huggingface",
    }
    with atomic_dir(out) as tmp:
        for name in ("config.json", HEAD_FILE, *TOKENIZER_FILES):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        enc = tmp / ENCODER_DIR
        enc.mkdir()
        save_file(tensors, enc / WEIGHTS, metadata={"format": "np"})
        write_json(enc / CONFIG, pd_config)
        write_json(enc / TOKENIZER_CONFIG, tok_config)
        write_json(
            enc / "special_tokens_map.json",
            {k: tok_config[k] for k in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")},
        )
        (enc / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
        write_json(tmp / SPEC_FILE, meta)


def export_canonical(source: Path, out: Path) -> None:
    """Write the canonical Hugging Face folder of a PaddleNLP-format folder `source`
    (ours, or one PaddleNLP's save_pretrained wrote with safetensors) to `out`, atomically."""
    source, out = Path(source), Path(out)
    spec = read_spec(source)
    if spec.get("format") == FORMAT:
        enc = encoder_dir(source, spec)
        config = read_paddle_config(enc)
        read_json(source / "config.json")  # the canonical config, copied below, must be there
        buffers = [b for b in spec.get("canonical_buffers", []) if b in names.BUFFERS]
        copy_from = source
    elif not spec and is_paddle_native(source):  # PaddleNLP's own save_pretrained folder
        enc, config, buffers, copy_from = source, read_paddle_config(source), [], None
        if not (enc / "vocab.txt").is_file():
            raise InvalidModelError(f"{enc / 'vocab.txt'}: missing (save the tokenizer next to the model)")
    else:
        raise InvalidModelError(
            f"{source}: not a PaddleNLP folder ({SPEC_FILE} with format 'paddlenlp', or PaddleNLP's own "
            f"config.json + {WEIGHTS} with PaddleNLP parameter names)"
        )
    tensors = to_canonical(load_file(weights_file(enc)), config, buffers, enc / WEIGHTS)
    with atomic_dir(out) as tmp:
        if copy_from is not None:
            for name in ("config.json", HEAD_FILE, *TOKENIZER_FILES):
                if (copy_from / name).is_file():
                    shutil.copy2(copy_from / name, tmp / name)
        else:
            write_json(tmp / "config.json", canonical_config(config))
            shutil.copy2(enc / "vocab.txt", tmp / "vocab.txt")
            if (enc / "special_tokens_map.json").is_file():
                shutil.copy2(enc / "special_tokens_map.json", tmp / "special_tokens_map.json")
            tok = read_json(enc / TOKENIZER_CONFIG) if (enc / TOKENIZER_CONFIG).is_file() else {}
            # paths of the machine that wrote the folder mean nothing elsewhere
            drop = ("special_tokens_map_file", "name_or_path", "tokenizer_file", "chat_template")
            tok = {k: v for k, v in tok.items() if k not in drop} | {"tokenizer_class": "BertTokenizer"}
            write_json(tmp / "tokenizer_config.json", tok)
        save_file(tensors, tmp / ENCODER_FILE, metadata={"format": "pt"})
        if spec:
            keep = {k: spec[k] for k in ("labels", "pooling", "max_length") if k in spec}
            write_json(tmp / SPEC_FILE, {"format": "huggingface", "architecture": "bert", **keep})
        check_canonical(tmp)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
