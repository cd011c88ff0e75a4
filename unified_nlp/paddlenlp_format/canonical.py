"""A PaddleNLP save_pretrained folder written out as the canonical Hugging Face folder, in numpy.

The weights go through the family's literal table (families/, tensors.py), the config
through the family's config mapping, the tokenizer files are kept and a tokenizer.json
is built from them (WordPiece as transformers' BertTokenizerFast, RoBERTa's byte-level
BPE, ALBERT's and DeBERTa-v2's SentencePiece), so every backend tokenizes as PaddleNLP did.

>>> to_canonical(Path("bert-paddle"), Path("bert-hf"))   # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..atomic import atomic_dir
from ..errors import ConversionError
from ..fast_tokenizer import _wordpiece_json
from ..folder import read_json
from ..folder_spec import check
from ..weights import save_file
from .families import TOKENIZERS, Family
from .paddle_folder import (
    CONFIG,
    TOKENIZER_FILES,
    describe_native,
    family_of,
    labels_of,
    read_config,
    read_weights,
    weight_files,
)
from .tensors import from_paddle
from .tokenizer_files import albert_tokenizer_json, bpe_tokenizer_json, deberta_tokenizer_json


def canonical_config(config: Mapping[str, Any], family: Family, source: Path) -> dict[str, Any]:
    """transformers config.json of a PaddleNLP config: the family's mapping, labels kept."""
    out = family.from_paddle_config(config)
    if family.paddle_class in (config.get("architectures") or []):
        labels = labels_of(config, source)
        if labels is not None:
            out["id2label"] = {str(i): name for i, name in enumerate(labels)}
            out["label2id"] = {name: i for i, name in enumerate(labels)}
        if config.get("problem_type"):
            out["problem_type"] = config["problem_type"]
    return out


def to_canonical(path: Path, out: Path) -> None:
    """Write the canonical Hugging Face classifier folder of the PaddleNLP folder `path`
    to `out`, atomically: model.safetensors under transformers' names, config.json with
    id2label, the tokenizer files with a tokenizer.json. ConversionError saying why for
    a folder that cannot leave PaddleNLP (ERNIE-M).

    >>> to_canonical(Path("bert-paddle"), Path("bert-hf"))   # doctest: +SKIP
    """
    path, out = Path(path), Path(out)
    info = describe_native(path)
    if not info["convertible"]:
        raise ConversionError(f"{path}: {info['why']}")
    pd_config = read_config(path)
    family = family_of(pd_config, path / CONFIG)
    task = family.paddle_class in (pd_config.get("architectures") or [])
    config = canonical_config(pd_config, family, path / CONFIG)
    state = read_weights(path)
    source = weight_files(path)[0]
    tensors = from_paddle(state, family, config, task=task, meta={}, source=source)
    tok = read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").is_file() else {}
    paddle_tokenizer = TOKENIZERS.get(info["tokenizer"] or "")  # None: read as BERT's WordPiece
    # paths of the machine that wrote the folder mean nothing elsewhere
    drop = ("special_tokens_map_file", "name_or_path", "tokenizer_file", "chat_template", "tokenizer_class")
    tok = {k: v for k, v in tok.items() if k not in drop}
    tok["tokenizer_class"] = paddle_tokenizer.transformers_class if paddle_tokenizer else "BertTokenizer"
    with atomic_dir(out) as tmp:
        (tmp / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for name in TOKENIZER_FILES:
            if (path / name).is_file():
                shutil.copy2(path / name, tmp / name)
        if not (tmp / "tokenizer.json").is_file():
            if (tmp / "vocab.json").is_file():
                text = bpe_tokenizer_json(tmp)
            elif (tmp / "spiece.model").is_file():
                text = albert_tokenizer_json(tmp)
            elif (tmp / "spm.model").is_file():
                text = deberta_tokenizer_json(tmp)
            else:  # a WordPiece vocab.txt, tokenized as transformers' BertTokenizerFast does
                text = _wordpiece_json(tmp / "vocab.txt", bool(tok.get("do_lower_case", True)))
            (tmp / "tokenizer.json").write_text(text, encoding="utf-8")
        pair_types = paddle_tokenizer.pair_types if paddle_tokenizer else True
        if pair_types and family.architecture.dims(config)["types"] > 1:
            # PaddleNLP's tokenizers give a pair's second text segment 1 (RobertaBPETokenizer: 0 throughout)
            tok["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok, indent=2, ensure_ascii=False) + "\n", "utf-8")
        save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
        check(tmp)
