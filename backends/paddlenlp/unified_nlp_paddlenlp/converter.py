"""Canonical Hugging Face folder <-> the PaddleNLP format, in numpy (no framework).

The PaddleNLP format of a model folder::

    unified_nlp.json          {"format": "paddlenlp", "architecture", "head", "encoder_dir": "paddlenlp", labels, ...}
    config.json, tokenizer    the canonical files, kept verbatim: `clf.save()` and
    files, head.safetensors   `export_canonical` write the canonical format back from them
    paddlenlp/                a folder PaddleNLP 2.8 itself loads, nothing downloaded:
        config.json           PaddleNLP config of the family (architectures: its XForSequenceClassification,
                              or its bare encoder for the mean-pooling head)
        model.safetensors     PaddleNLP parameter names, Linear weights [in, out]
        tokenizer files       PaddleNLP's own (see tokenizer_files.py), where PaddleNLP can reproduce the tokenizer

A native head (``head: native``) becomes the whole PaddleNLP task model, so that
``paddlenlp.transformers.AutoModelForSequenceClassification.from_pretrained("out/paddlenlp")``
runs the classifier; the mean-pooling head stays head.safetensors beside the
encoder (``BertModel.from_pretrained``). The weight maps are the literal tables in
families/, applied by tensors.py. Every write goes through unified_nlp.weights.atomic_dir: a failed
conversion leaves nothing behind. Weights are safetensors only; pickles are never read.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unified_nlp.checkpoint import config_labels, describe, read_state
from unified_nlp.errors import ConversionError, InvalidModelError
from unified_nlp.models import HEAD_FILE, SPEC_FILE, TOKENIZER_FILES, read_json, read_spec, safe_join
from unified_nlp.weights import atomic_dir, load_file, read_header, save_file

from . import families
from .families import Family
from .tensors import canonical_names, logits_name, to_canonical, to_paddle
from .tokenizer_files import albert_tokenizer_json, bpe_tokenizer_json, paddle_tokenizer_files

FORMAT = "paddlenlp"
ENCODER_DIR = "paddlenlp"
WEIGHTS = "model.safetensors"  # PaddleNLP's SAFE_WEIGHTS_NAME
CONFIG = "config.json"  # PaddleNLP's CONFIG_NAME
CANONICAL_WEIGHTS = "model.safetensors"
# bumped whenever this module writes a folder differently: the adapter's cached conversions
# (unified_nlp.models.converted_dir) of another version are written again
VERSION = 3
_PICKLES = (".pdparams", ".pdopt", ".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
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


def encoder_dir(path: Path, spec: Mapping[str, Any] | None = None) -> Path:
    """The PaddleNLP subfolder of a PaddleNLP-format folder."""
    spec = read_spec(path) if spec is None else spec
    return safe_join(path, spec.get("encoder_dir", ENCODER_DIR), path / SPEC_FILE)


def read_paddle_config(folder: Path) -> dict[str, Any]:
    config = read_json(folder / CONFIG)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size"):
        if not isinstance(config.get(key), int) or isinstance(config.get(key), bool) or config[key] <= 0:
            raise InvalidModelError(f"{folder / CONFIG}: '{key}' must be a positive integer")
    return config


def is_paddle_native(path: Path) -> bool:
    """A folder PaddleNLP wrote itself (save_pretrained): PaddleNLP names in model.safetensors."""
    if not (path / WEIGHTS).is_file():
        return False
    return any(
        ".self_attn.q_proj." in k or k.startswith(("transformer.embeddings.", "embeddings.layer_norm."))
        for k in read_header(path / WEIGHTS)
    )


def paddle_family(config: Mapping[str, Any], source: Path) -> Family:
    """The family of a PaddleNLP config.json (its architectures, else its model_type)."""
    for name in config.get("architectures") or []:
        for family in families.FAMILIES.values():
            if name in (family.paddle_class, family.paddle_base) and family.model_type != "xlm-roberta":
                return family
    return families.get(config.get("model_type", "bert"), source)


# --- whole folders -------------------------------------------------------------


def _labels_config(labels: list[str], problem_type: str) -> dict[str, Any]:
    return {
        "num_labels": len(labels),
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": problem_type,
    }


def convert(source: Path, out: Path, spec: Mapping[str, Any] | None = None, *, for_loading: bool = False) -> None:
    """Write the PaddleNLP format of the canonical folder `source` to `out`, atomically.

    `spec` is the core's description of the folder (checkpoint.describe, which runs
    when it is None). A classifier becomes the family's PaddleNLP task model; a folder
    without a head (an encoder, for a fresh head drawn on load) and the mean-pooling
    head's encoder become its bare PaddleNLP encoder. `for_loading`: the adapter's own
    cache, written without the export's warnings.
    """
    source, out = Path(source), Path(out)
    if read_spec(source).get("format", "huggingface") != "huggingface":
        raise ConversionError(
            f"{source}: a {read_spec(source)['format']!r} folder; convert expects the canonical format"
        )
    if is_paddle_native(source):
        raise ConversionError(
            f"{source / CANONICAL_WEIGHTS}: has PaddleNLP parameter names (a PaddleNLP save_pretrained folder). "
            "Make a canonical folder first: unified_nlp_paddlenlp.PaddleNLPBackend().export_canonical(src, out)"
        )
    spec = dict(describe(source, require_head=False) if spec is None else spec)
    config = read_json(source / "config.json")
    family = families.get(spec.get("architecture", config.get("model_type", "bert")), source / "config.json")
    reason = family.unsupported(config)
    if reason:
        raise ConversionError(f"{source / 'config.json'}: {reason}")
    native = spec.get("head") != "mean"
    state = read_state(source)
    task = native and logits_name(family) in canonical_names(state, family, True)  # the folder has a head
    state = canonical_names(state, family, task)
    weights = source / CANONICAL_WEIGHTS
    num_labels = int(state[logits_name(family)].shape[0]) if task else 0
    tensors, info = to_paddle(state, family, config, task=task, num_labels=num_labels, source=weights)
    labels = list(spec["labels"]) if not spec.get("fresh_head") else config_labels(config, source / "config.json")
    if not task:
        labels = list(spec["labels"]) if not native else []
    elif labels is None or len(labels) != num_labels:
        labels = [f"LABEL_{i}" for i in range(num_labels)]
    problem_type = spec.get("problem_type", "single_label_classification")
    pd_config = family.to_paddle_config(config, task=task)
    if task:
        pd_config.update(_labels_config(labels, problem_type))
    max_length = int(spec["max_length"])
    try:
        tokenizer_files, tokenizer_note = paddle_tokenizer_files(source, family.tokenizer_class, max_length), None
    except (ConversionError, InvalidModelError) as e:
        tokenizer_files, tokenizer_note = {}, str(e)
    differs = family.plain_paddlenlp_differences(config)
    if differs and not for_loading:
        warnings.warn(
            f"{source}: plain PaddleNLP will not reproduce transformers exactly on this export "
            f"({'; '.join(differs)}); unified_nlp's paddlenlp backend corrects it on load",
            stacklevel=2,
        )
    meta = {
        "format": FORMAT,
        "architecture": family.model_type,
        "head": "native" if native else "mean",
        "encoder_dir": ENCODER_DIR,
        "paddle_class": pd_config["architectures"][0],  # the task model, or the bare encoder
        **({"labels": labels} if labels else {}),  # none for an encoder without a head
        "problem_type": problem_type,
        "token_types": bool(spec.get("token_types", family.architecture.token_types)),
        "max_length": max_length,
        **({"pooling": "mean"} if not native else {}),
        **info,
        "paddle_tokenizer": sorted(tokenizer_files) if tokenizer_files else None,
        **({"paddle_tokenizer_missing": tokenizer_note} if tokenizer_note else {}),
        **({"plain_paddlenlp_differs": differs} if differs else {}),
        "converted_from": "huggingface",
        "converter_version": VERSION,
    }
    with atomic_dir(out) as tmp:
        for name in ("config.json", HEAD_FILE, *TOKENIZER_FILES):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        enc = tmp / ENCODER_DIR
        enc.mkdir()
        save_file(tensors, enc / WEIGHTS, metadata={"format": "np"})
        write_json(enc / CONFIG, pd_config)
        for name, content in tokenizer_files.items():
            if isinstance(content, bytes):
                (enc / name).write_bytes(content)
            else:
                (enc / name).write_text(content, encoding="utf-8")
        write_json(tmp / SPEC_FILE, meta)


def export_canonical(source: Path, out: Path) -> None:
    """Write the canonical Hugging Face folder of a PaddleNLP-format folder `source`
    (ours, or one PaddleNLP's save_pretrained wrote with safetensors) to `out`, atomically."""
    from unified_nlp.checkpoint import check

    source, out = Path(source), Path(out)
    spec = read_spec(source)
    if spec.get("format") == FORMAT:
        enc = encoder_dir(source, spec)
        read_paddle_config(enc)
        config = read_json(source / "config.json")  # the canonical config, copied below
        family = families.get(spec.get("architecture", "bert"), source / SPEC_FILE)
        task = spec.get("paddle_class", family.paddle_base) == family.paddle_class  # not a bare encoder
        copy_from, meta = source, spec
    elif not spec and is_paddle_native(source):  # PaddleNLP's own save_pretrained folder
        enc, copy_from, meta = source, None, {}
        pd_config = read_paddle_config(source)
        family = paddle_family(pd_config, source / CONFIG)
        task = family.paddle_class in (pd_config.get("architectures") or [])
        config = family.from_paddle_config(pd_config)
        if task:
            config.update({k: pd_config[k] for k in ("id2label", "label2id", "problem_type") if pd_config.get(k)})
        if not any((enc / n).is_file() for n in ("vocab.txt", "vocab.json", "spiece.model", "tokenizer.json")):
            raise InvalidModelError(f"{enc}: no tokenizer files (save the tokenizer next to the model)")
    else:
        raise InvalidModelError(
            f"{source}: not a PaddleNLP folder ({SPEC_FILE} with format 'paddlenlp', or PaddleNLP's own "
            f"config.json + {WEIGHTS} with PaddleNLP parameter names)"
        )
    tensors = to_canonical(load_file(weights_file(enc)), family, config, task=task, meta=meta, source=enc / WEIGHTS)
    with atomic_dir(out) as tmp:
        if copy_from is not None:
            for name in ("config.json", HEAD_FILE, *TOKENIZER_FILES):
                if (copy_from / name).is_file():
                    shutil.copy2(copy_from / name, tmp / name)
        else:
            write_json(tmp / "config.json", config)
            for name in (
                "vocab.txt",
                "vocab.json",
                "merges.txt",
                "spiece.model",
                "tokenizer.json",
                "special_tokens_map.json",
            ):
                if (enc / name).is_file():
                    shutil.copy2(enc / name, tmp / name)
            tok = read_json(enc / "tokenizer_config.json") if (enc / "tokenizer_config.json").is_file() else {}
            # paths of the machine that wrote the folder mean nothing elsewhere
            drop = ("special_tokens_map_file", "name_or_path", "tokenizer_file", "chat_template", "tokenizer_class")
            tok = {k: v for k, v in tok.items() if k not in drop}
            tok["tokenizer_class"] = _TRANSFORMERS_TOKENIZERS.get(family.tokenizer_class or "", "BertTokenizer")
            write_json(tmp / "tokenizer_config.json", tok)
            if not (tmp / "tokenizer.json").is_file() and (tmp / "vocab.json").is_file():
                (tmp / "tokenizer.json").write_text(bpe_tokenizer_json(tmp), encoding="utf-8")
            elif not (tmp / "tokenizer.json").is_file() and (tmp / "spiece.model").is_file():
                (tmp / "tokenizer.json").write_text(albert_tokenizer_json(tmp), encoding="utf-8")
        save_file(tensors, tmp / CANONICAL_WEIGHTS, metadata={"format": "pt"})
        if spec and spec.get("head") == "mean":
            keep = {k: spec[k] for k in ("labels", "pooling", "max_length") if k in spec}
            write_json(tmp / SPEC_FILE, {"format": "huggingface", "architecture": family.model_type, **keep})
        check(tmp)


# PaddleNLP tokenizer class -> the transformers tokenizer class that reads the same files
_TRANSFORMERS_TOKENIZERS = {
    "BertTokenizer": "BertTokenizer",
    "DistilBertTokenizer": "DistilBertTokenizer",
    "ElectraTokenizer": "ElectraTokenizer",
    "ErnieTokenizer": "BertTokenizer",
    "RobertaBPETokenizer": "RobertaTokenizer",
    "AlbertEnglishTokenizer": "AlbertTokenizer",
}


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


__all__ = [
    "FORMAT",
    "ENCODER_DIR",
    "convert",
    "export_canonical",
    "to_paddle",
    "to_canonical",
    "is_paddle_native",
    "encoder_dir",
    "read_paddle_config",
    "weights_file",
]
