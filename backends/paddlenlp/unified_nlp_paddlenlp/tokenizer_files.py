"""The canonical tokenizer files (tokenizer.json, tokenizer_config.json, vocab.txt)
read into what PaddleNLP's BertTokenizer needs: a vocabulary in id order and its
settings. tokenizer.json wins when present, since it is what transformers' fast
tokenizer (the reference) runs; anything it does that PaddleNLP's BertTokenizer
cannot reproduce is refused with ConversionError instead of tokenizing differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unified_nlp.errors import ConversionError, InvalidModelError
from unified_nlp.models import read_json

SPECIAL_KEYS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
DEFAULT_SPECIALS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}


def _token(value: Any, default: str) -> str:
    if isinstance(value, dict):  # transformers' serialised AddedToken
        value = value.get("content")
    return value if isinstance(value, str) and value else default


def vocabulary(source: Path) -> list[str]:
    """Tokens in id order: tokenizer.json's WordPiece vocabulary, else vocab.txt."""
    vocab_txt = None
    if (source / "vocab.txt").is_file():
        with open(source / "vocab.txt", encoding="utf-8") as f:
            vocab_txt = [line.rstrip("\n") for line in f]
    if not (source / "tokenizer.json").is_file():
        if vocab_txt is None:
            raise InvalidModelError(f"{source}: no tokenizer files (vocab.txt or tokenizer.json)")
        return vocab_txt
    model = read_json(source / "tokenizer.json").get("model") or {}
    table = model.get("vocab")
    if not isinstance(table, dict) or sorted(table.values()) != list(range(len(table))):
        raise ConversionError(f"{source / 'tokenizer.json'}: model.vocab is not a WordPiece vocabulary with ids 0..n-1")
    tokens = [""] * len(table)
    for token, i in table.items():
        if "\n" in token or "\r" in token:
            raise ConversionError(f"{source / 'tokenizer.json'}: token {token!r} cannot be written to vocab.txt")
        tokens[i] = token
    if vocab_txt is not None and vocab_txt != tokens:
        raise ConversionError(
            f"{source}: vocab.txt and tokenizer.json disagree; the fast tokenizer uses tokenizer.json"
        )
    return tokens


def paddle_tokenizer_config(source: Path, max_length: int) -> dict[str, Any]:
    """PaddleNLP BertTokenizer settings (its tokenizer_config.json) equivalent to the canonical tokenizer."""
    tok_config = read_json(source / "tokenizer_config.json") if (source / "tokenizer_config.json").is_file() else {}
    settings: dict[str, Any] = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": bool(tok_config.get("do_lower_case", True)),
        "tokenize_chinese_chars": bool(tok_config.get("tokenize_chinese_chars", True)),
        "strip_accents": tok_config.get("strip_accents"),
        **{k: _token(tok_config.get(k), v) for k, v in DEFAULT_SPECIALS.items()},
        "max_input_chars_per_word": 100,
        "model_max_length": int(max_length),
        "padding_side": "right",
    }
    if (source / "tokenizer.json").is_file():
        settings.update(_from_tokenizer_json(source / "tokenizer.json", settings))
    return settings


def _from_tokenizer_json(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    data = read_json(path)
    norm, pre, model = data.get("normalizer") or {}, data.get("pre_tokenizer") or {}, data.get("model") or {}

    def refuse(what: str) -> ConversionError:
        return ConversionError(f"{path}: {what}; PaddleNLP's BertTokenizer reproduces BERT WordPiece tokenization only")

    if norm.get("type") != "BertNormalizer" or not norm.get("clean_text", True):
        raise refuse(f"normalizer {norm.get('type')!r}")
    if pre.get("type") != "BertPreTokenizer":
        raise refuse(f"pre_tokenizer {pre.get('type')!r}")
    if model.get("type") != "WordPiece" or model.get("continuing_subword_prefix", "##") != "##":
        raise refuse(f"model {model.get('type')!r}")
    out = {
        "do_lower_case": bool(norm.get("lowercase", True)),
        "tokenize_chinese_chars": bool(norm.get("handle_chinese_chars", True)),
        "strip_accents": norm.get("strip_accents"),
        "unk_token": model.get("unk_token", settings["unk_token"]),
        "max_input_chars_per_word": int(model.get("max_input_chars_per_word", 100)),
    }
    vocab = model.get("vocab", {})
    extra = []
    for added in data.get("added_tokens") or []:
        content = added.get("content")
        if vocab.get(content) != added.get("id"):
            raise refuse(f"added token {content!r} outside the vocabulary")
        if added.get("lstrip") or added.get("rstrip") or added.get("single_word") or added.get("normalized"):
            raise refuse(f"added token {content!r} with lstrip/rstrip/single_word/normalized")
        if content not in {settings[k] for k in SPECIAL_KEYS}:
            extra.append(content)
    if extra:  # matched in raw text like the five BERT specials
        out["additional_special_tokens"] = extra
    post = data.get("post_processor") or {}
    if post.get("type") == "TemplateProcessing":
        single = [next(iter(x.values())).get("id") for x in post.get("single", [])]
        expected = [settings["cls_token"], "A", settings["sep_token"]]
        if single != expected:
            raise refuse(f"post_processor template {single}")
    elif post.get("type") != "BertProcessing":
        raise refuse(f"post_processor {post.get('type')!r}")
    return out
