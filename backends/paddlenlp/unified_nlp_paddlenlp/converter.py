"""Canonical Hugging Face folder <-> the PaddleNLP format, in numpy (no framework).

The PaddleNLP format of a model folder::

    unified_nlp.json          {"format": "paddlenlp", "architecture", "head", "encoder_dir": "paddlenlp", labels, ...}
    config.json, tokenizer    the canonical files, kept verbatim: `clf.save()` and
    files, head.safetensors   `export_canonical` write the canonical format back from them
    paddlenlp/                a folder PaddleNLP 2.8 itself loads, nothing downloaded (ModernBERT's names
                              the classes of this package's own port: only unified_nlp reads it):
        config.json           PaddleNLP config of the family (architectures: its XForSequenceClassification,
                              or its bare encoder for the mean-pooling head)
        model.safetensors     PaddleNLP parameter names, Linear weights [in, out]
        tokenizer files       PaddleNLP's own (see tokenizer_files.py), where PaddleNLP can reproduce the tokenizer

A native head (``head: native``) becomes the whole PaddleNLP task model, so that
``paddlenlp.transformers.AutoModelForSequenceClassification.from_pretrained("out/paddlenlp")``
runs the classifier; the mean-pooling head stays head.safetensors beside the
encoder (``BertModel.from_pretrained``). The weight maps are the literal tables in
unified_nlp.paddlenlp_format.families, applied by its tensors.py. Every write goes through unified_nlp.atomic.atomic_dir: a failed
conversion leaves nothing behind. Weights are safetensors only; pickles are never read.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    HEAD_FILE,
    SPEC_FILE,
    TOKENIZER_FILES,
    ConversionError,
    InvalidModelError,
    ModelSpec,
    atomic_dir,
    canonical_spec,
    config_labels,
    load_file,
    paddle_folder,
    paddle_folder_to_canonical,
    paddle_tensors,
    paddle_tokenizer_files,
    read_json,
    read_spec,
    read_state,
    safe_join,
    save_file,
)
from unified_nlp.backend_kit import paddle_families as families

FORMAT = "paddlenlp"
ENCODER_DIR = "paddlenlp"
WEIGHTS = "model.safetensors"  # PaddleNLP's SAFE_WEIGHTS_NAME
CONFIG = "config.json"  # PaddleNLP's CONFIG_NAME
CANONICAL_WEIGHTS = "model.safetensors"
# bumped whenever this module writes a folder differently: the adapter's cached conversions
# (unified_nlp.store_keys.converted_dir) of another version are written again
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


# --- whole folders -------------------------------------------------------------


def _labels_config(labels: list[str], problem_type: str) -> dict[str, Any]:
    return {
        "num_labels": len(labels),
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": problem_type,
    }


def convert(source: Path, out: Path, spec: ModelSpec | None = None, *, for_loading: bool = False) -> None:
    """Write the PaddleNLP format of the canonical folder `source` to `out`, atomically.

    `spec` is the core's description of the folder (folder_spec.canonical_spec, which runs
    when it is None). A classifier becomes the family's PaddleNLP task model; a folder
    without a head (an encoder, for a fresh head drawn on load) and the mean-pooling
    head's encoder become its bare PaddleNLP encoder. `for_loading`: the adapter's own
    cache, written without the export's warnings.
    """
    source, out = Path(source), Path(out)
    if read_spec(source).get("format", CANONICAL_FORMAT) != CANONICAL_FORMAT:
        raise ConversionError(
            f"{source}: a {read_spec(source)['format']!r} folder; convert expects the canonical format"
        )
    if paddle_folder.is_native(source):
        raise ConversionError(
            f"{source}: a PaddleNLP save_pretrained folder (PaddleNLP parameter names). Make a canonical folder "
            "first: unified_nlp.paddlenlp_format.to_canonical(src, out)"
        )
    spec = canonical_spec(source, require_head=False) if spec is None else spec
    config = read_json(source / "config.json")
    family = families.get(spec.architecture or config.get("model_type", "bert"), source / "config.json")
    reason = family.unsupported(config)
    if reason:
        raise ConversionError(f"{source / 'config.json'}: {reason}")
    native = spec.head != "mean"
    state = read_state(source)
    task = native and paddle_tensors.logits_name(family) in paddle_tensors.canonical_names(
        state, family, True
    )  # the folder has a head
    state = paddle_tensors.canonical_names(state, family, task)
    weights = source / CANONICAL_WEIGHTS
    num_labels = int(state[paddle_tensors.logits_name(family)].shape[0]) if task else 0
    tensors, info = paddle_tensors.to_paddle(state, family, config, task=task, num_labels=num_labels, source=weights)
    labels = list(spec.labels) if not spec.fresh_head else config_labels(config, source / "config.json")
    if not task:
        labels = list(spec.labels) if not native else []
    elif labels is None or len(labels) != num_labels:
        labels = [f"LABEL_{i}" for i in range(num_labels)]
    problem_type = spec.problem_type
    pd_config = family.to_paddle_config(config, task=task)
    if task:
        pd_config.update(_labels_config(labels, problem_type))
    max_length = int(spec.max_length)
    try:
        tokenizer_files, tokenizer_note = paddle_tokenizer_files(source, family, max_length), None
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
        "token_types": spec.token_types,
        "max_length": max_length,
        **({"pooling": "mean"} if not native else {}),
        **info,
        "paddle_tokenizer": sorted(tokenizer_files) if tokenizer_files else None,
        **({"paddle_tokenizer_missing": tokenizer_note} if tokenizer_note else {}),
        **({"plain_paddlenlp_differs": differs} if differs else {}),
        "converted_from": CANONICAL_FORMAT,
        "converter_version": VERSION,
    }
    with atomic_dir(out) as tmp:
        for name in ("config.json", HEAD_FILE, *TOKENIZER_FILES):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        enc = tmp / ENCODER_DIR
        enc.mkdir()
        save_file(tensors, enc / WEIGHTS, metadata={"format": "np"})
        # as save_pretrained writes it: tells a PaddleNLP folder from a transformers one of alike names
        write_json(enc / CONFIG, {**pd_config, "paddlenlp_version": version("paddlenlp")})
        for name, content in tokenizer_files.items():
            if isinstance(content, bytes):
                (enc / name).write_bytes(content)
            else:
                (enc / name).write_text(content, encoding="utf-8")
        write_json(tmp / SPEC_FILE, meta)


def export_canonical(source: Path, out: Path) -> None:
    """Write the canonical Hugging Face folder of a PaddleNLP-format folder `source`
    (ours, or one PaddleNLP's save_pretrained wrote: unified_nlp.paddlenlp_format.to_canonical)
    to `out`, atomically."""
    from unified_nlp.backend_kit import check

    source, out = Path(source), Path(out)
    spec = read_spec(source)
    if not spec and paddle_folder.is_native(source):  # PaddleNLP's own save_pretrained folder
        paddle_folder_to_canonical(source, out)
        return
    if spec.get("format") != FORMAT:
        raise InvalidModelError(
            f"{source}: not a PaddleNLP folder ({SPEC_FILE} with format 'paddlenlp', or PaddleNLP's own "
            f"save_pretrained folder: config.json + {WEIGHTS} or model_state.pdparams)"
        )
    enc = encoder_dir(source, spec)
    paddle_folder.read_config(enc)
    config = read_json(source / "config.json")  # the canonical config, copied below
    family = families.get(spec.get("architecture", "bert"), source / SPEC_FILE)
    task = spec.get("paddle_class", family.paddle_base) == family.paddle_class  # not a bare encoder
    tensors = paddle_tensors.from_paddle(
        load_file(weights_file(enc)), family, config, task=task, meta=spec, source=enc / WEIGHTS
    )
    with atomic_dir(out) as tmp:
        for name in ("config.json", HEAD_FILE, *TOKENIZER_FILES):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        save_file(tensors, tmp / CANONICAL_WEIGHTS, metadata={"format": "pt"})
        if spec.get("head") == "mean":
            keep = {k: spec[k] for k in ("labels", "pooling", "max_length") if k in spec}
            write_json(tmp / SPEC_FILE, {"format": CANONICAL_FORMAT, "architecture": family.model_type, **keep})
        check(tmp)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


__all__ = [
    "FORMAT",
    "ENCODER_DIR",
    "convert",
    "export_canonical",
    "encoder_dir",
    "weights_file",
]
