"""PaddleNLP's own tokenizer files for an export, from the canonical folder's tokenizer.

unified_nlp tokenizes every canonical folder with its tokenizer.json (see
unified_nlp.fast_tokenizer); these files are for people who load the export with
PaddleNLP's ``AutoTokenizer.from_pretrained``:

- WordPiece (BERT, DistilBERT, ELECTRA, ERNIE): vocab.txt + tokenizer_config.json for
  PaddleNLP's BertTokenizer / DistilBertTokenizer / ElectraTokenizer / ErnieTokenizer;
  refused (not written) when tokenizer.json does something that tokenizer cannot.
- byte-level BPE (RoBERTa): vocab.json + merges.txt for PaddleNLP's RobertaBPETokenizer.
- SentencePiece (ALBERT): the folder's spiece.model for PaddleNLP's AlbertEnglishTokenizer,
  only when the folder has one; a tokenizer.json alone holds no SentencePiece model.
- XLM-RoBERTa: PaddleNLP 2.8 has no XLM-R tokenizer class; nothing is written.

`paddle_tokenizer_files` returns the files to write, or the reason none can be.
"""

from __future__ import annotations

import json
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
BPE_SPECIALS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "mask_token": "<mask>",
}
WORDPIECE_CLASSES = ("BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "ErnieTokenizer")


def _token(value: Any, default: str) -> str:
    if isinstance(value, dict):  # transformers' serialised AddedToken
        value = value.get("content")
    return value if isinstance(value, str) and value else default


def _tokenizer_config(source: Path) -> dict[str, Any]:
    path = source / "tokenizer_config.json"
    return read_json(path) if path.is_file() else {}


def paddle_tokenizer_files(source: Path, tokenizer_class: str | None, max_length: int) -> dict[str, str | bytes]:
    """File name -> content of PaddleNLP's tokenizer for the canonical folder `source`;
    ConversionError saying why when PaddleNLP's `tokenizer_class` cannot reproduce it."""
    if tokenizer_class is None:
        raise ConversionError("PaddleNLP 2.8 has no tokenizer class for this family (XLM-RoBERTa)")
    if tokenizer_class in WORDPIECE_CLASSES:
        settings = wordpiece_settings(source, max_length) | {"tokenizer_class": tokenizer_class}
        return {
            "vocab.txt": "".join(t + "\n" for t in vocabulary(source)),
            "tokenizer_config.json": _json(settings),
            "special_tokens_map.json": _json({k: settings[k] for k in SPECIAL_KEYS}),
        }
    if tokenizer_class == "RobertaBPETokenizer":
        return _bpe_files(source, max_length)
    if tokenizer_class == "AlbertEnglishTokenizer":
        return _albert_files(source, max_length)
    raise ConversionError(f"no PaddleNLP tokenizer files are written for {tokenizer_class}")


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- WordPiece -----------------------------------------------------------------


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
    if model.get("type") != "WordPiece" or not isinstance(table, dict):
        raise ConversionError(f"{source / 'tokenizer.json'}: model {model.get('type')!r} is not WordPiece")
    if sorted(table.values()) != list(range(len(table))):
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


def wordpiece_settings(source: Path, max_length: int) -> dict[str, Any]:
    """PaddleNLP BertTokenizer settings (its tokenizer_config.json) equivalent to the canonical tokenizer."""
    tok_config = _tokenizer_config(source)
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


# --- byte-level BPE (RoBERTa) ------------------------------------------------------


def _bpe_files(source: Path, max_length: int) -> dict[str, str]:
    path = source / "tokenizer.json"
    if not path.is_file():
        if (source / "vocab.json").is_file() and (source / "merges.txt").is_file():
            vocab_json, merges_txt = (
                (source / "vocab.json").read_text("utf-8"),
                (source / "merges.txt").read_text("utf-8"),
            )
            add_prefix_space = bool(_tokenizer_config(source).get("add_prefix_space", False))
            return _bpe_out(source, vocab_json, merges_txt, add_prefix_space, max_length)
        raise ConversionError(f"{source}: no tokenizer.json (nor vocab.json + merges.txt)")
    data = read_json(path)
    model, pre = data.get("model") or {}, data.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or pre.get("type") != "ByteLevel" or data.get("normalizer"):
        raise ConversionError(
            f"{path}: model {model.get('type')!r}, pre_tokenizer {pre.get('type')!r}; PaddleNLP's RobertaBPETokenizer "
            "reproduces byte-level BPE without a normalizer only"
        )
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix") or model.get("dropout"):
        raise ConversionError(f"{path}: BPE with subword prefixes/suffixes or dropout")
    vocab = dict(model.get("vocab") or {})
    for added in data.get("added_tokens") or []:
        vocab.setdefault(added["content"], added["id"])
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    vocab_json = json.dumps(dict(sorted(vocab.items(), key=lambda kv: kv[1])), ensure_ascii=False)
    merges_txt = "#version: 0.2\n" + "".join(m + "\n" for m in merges)
    return _bpe_out(source, vocab_json, merges_txt, bool(pre.get("add_prefix_space", False)), max_length)


def _bpe_out(source: Path, vocab_json: str, merges_txt: str, add_prefix_space: bool, max_length: int) -> dict[str, str]:
    tok_config = _tokenizer_config(source)
    specials = {k: _token(tok_config.get(k), v) for k, v in BPE_SPECIALS.items()}
    settings = {
        "tokenizer_class": "RobertaBPETokenizer",
        "add_prefix_space": add_prefix_space,
        "errors": "replace",
        **specials,
        "model_max_length": int(max_length),
        "padding_side": "right",
    }
    return {
        "vocab.json": vocab_json,
        "merges.txt": merges_txt,
        "tokenizer_config.json": _json(settings),
        "special_tokens_map.json": _json(specials),
    }


# --- SentencePiece (ALBERT) ---------------------------------------------------------


def _albert_files(source: Path, max_length: int) -> dict[str, str | bytes]:
    model = source / "spiece.model"
    if not model.is_file():
        raise ConversionError(
            f"{source}: no spiece.model; a tokenizer.json holds no SentencePiece model, so PaddleNLP's "
            "AlbertEnglishTokenizer cannot be written"
        )
    tok_config = _tokenizer_config(source)
    specials = {
        k: _token(tok_config.get(k), v)
        for k, v in {
            "unk_token": "<unk>",
            "sep_token": "[SEP]",
            "pad_token": "<pad>",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        }.items()
    }
    settings = {
        "tokenizer_class": "AlbertEnglishTokenizer",
        "do_lower_case": bool(tok_config.get("do_lower_case", True)),
        "remove_space": bool(tok_config.get("remove_space", True)),
        "keep_accents": bool(tok_config.get("keep_accents", False)),
        **specials,
        "model_max_length": int(max_length),
        "padding_side": "right",
    }
    return {
        "spiece.model": model.read_bytes(),
        "tokenizer_config.json": _json(settings),
        "special_tokens_map.json": _json(specials),
    }


def bpe_tokenizer_json(folder: Path) -> str:
    """A tokenizer.json for a PaddleNLP RobertaBPETokenizer folder (vocab.json + merges.txt),
    built as transformers builds RoBERTa's fast tokenizer, so the canonical export tokenizes
    like the PaddleNLP folder did (the core reads tokenizer.json, not vocab.json)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    settings = _tokenizer_config(folder)
    specials = {k: _token(settings.get(k), v) for k, v in BPE_SPECIALS.items()}
    vocab = read_json(folder / "vocab.json")
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    for token in specials.values():
        if token not in vocab:
            raise InvalidModelError(f"{folder / 'vocab.json'}: special token {token!r} not in the vocabulary")
    add_prefix_space = bool(settings.get("add_prefix_space", False))
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=None, continuing_subword_prefix="", end_of_word_suffix=""))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(
        (specials["sep_token"], vocab[specials["sep_token"]]),
        (specials["cls_token"], vocab[specials["cls_token"]]),
        add_prefix_space=add_prefix_space,
        trim_offsets=True,
    )
    tok.add_special_tokens([AddedToken(t, lstrip=(k == "mask_token")) for k, t in specials.items()])
    return tok.to_str()
