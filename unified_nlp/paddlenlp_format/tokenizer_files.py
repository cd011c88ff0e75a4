"""PaddleNLP's own tokenizer files for an export, from the canonical folder's tokenizer.

unified_nlp tokenizes every canonical folder with its tokenizer.json (see
unified_nlp.fast_tokenizer); these files are for people who load the export with
PaddleNLP's ``AutoTokenizer.from_pretrained``:

- WordPiece (BERT, DistilBERT, ELECTRA, ERNIE): vocab.txt + tokenizer_config.json for
  PaddleNLP's BertTokenizer / DistilBertTokenizer / ElectraTokenizer / ErnieTokenizer;
  refused (not written) when tokenizer.json does something that tokenizer cannot.
- byte-level BPE (RoBERTa): vocab.json + merges.txt for PaddleNLP's RobertaBPETokenizer.
- SentencePiece (ALBERT): spiece.model for PaddleNLP's AlbertEnglishTokenizer: the folder's
  own, or, for a folder with only tokenizer.json (transformers 5 writes no spiece.model),
  one written from its Unigram pieces and scores (see unigram_to_sentencepiece).
- SentencePiece (DeBERTa-v2): spm.model for PaddleNLP's DebertaV2Tokenizer where the folder
  has one (one imported from PaddleNLP keeps it); transformers 5 writes none, and none is made.
- XLM-RoBERTa: PaddleNLP 2.8 has no XLM-R tokenizer class; nothing is written.

`paddle_tokenizer_files` returns the files to write, or the reason none can be.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unified_nlp.errors import ConversionError, InvalidModelError
from unified_nlp.folder import read_json

from .families import Family, TokenizerClass

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


def _token(value: Any, default: str) -> str:
    if isinstance(value, dict):  # transformers' serialised AddedToken
        value = value.get("content")
    return value if isinstance(value, str) and value else default


def _tokenizer_config(source: Path) -> dict[str, Any]:
    path = source / "tokenizer_config.json"
    return read_json(path) if path.is_file() else {}


def paddle_tokenizer_files(source: Path, family: Family, max_length: int) -> dict[str, str | bytes]:
    """File name -> content of PaddleNLP's tokenizer for the canonical folder `source` of
    `family` (the family's tokenizer class for the folder's kind of tokenizer);
    ConversionError saying why when PaddleNLP's class cannot reproduce it."""
    tokenizer = _paddle_tokenizer(source, family)
    if tokenizer is None:
        raise ConversionError(f"PaddleNLP 2.8 has no tokenizer class for this family ({family.display})")
    if tokenizer.kind == "wordpiece":
        return _wordpiece_files(source, tokenizer.name, max_length)
    if tokenizer.kind == "bpe":
        return _bpe_files(source, tokenizer.name, max_length)
    if tokenizer.name == "DebertaV2Tokenizer":
        return _deberta_files(source, tokenizer.name, max_length)
    if tokenizer.kind == "sentencepiece":
        return _albert_files(source, tokenizer.name, max_length)
    raise ConversionError(f"no PaddleNLP tokenizer files are written for {tokenizer.name}")


def _paddle_tokenizer(source: Path, family: Family) -> TokenizerClass | None:
    """The family's first tokenizer class; its WordPiece one for a WordPiece folder of a
    family whose first is of another kind (PaddleNLP's Chinese RoBERTa)."""
    first = family.tokenizers[0] if family.tokenizers else None
    wordpiece = family.paddle_tokenizer("wordpiece")
    if first is not None and first.kind != "wordpiece" and wordpiece is not None and _wordpiece(source):
        return wordpiece
    return first


def _wordpiece(source: Path) -> bool:
    """A folder with a WordPiece tokenizer (a RoBERTa one: PaddleNLP's Chinese RoBERTa) rather than BPE."""
    if (source / "tokenizer.json").is_file():
        return (read_json(source / "tokenizer.json").get("model") or {}).get("type") == "WordPiece"
    return (source / "vocab.txt").is_file() and not (source / "merges.txt").is_file()


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- WordPiece -----------------------------------------------------------------


def _wordpiece_files(source: Path, tokenizer_class: str, max_length: int) -> dict[str, str]:
    settings = wordpiece_settings(source, max_length) | {"tokenizer_class": tokenizer_class}
    return {
        "vocab.txt": "".join(t + "\n" for t in vocabulary(source)),
        "tokenizer_config.json": _json(settings),
        "special_tokens_map.json": _json({k: settings[k] for k in SPECIAL_KEYS}),
    }


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


def _bpe_files(source: Path, tokenizer_class: str, max_length: int) -> dict[str, str]:
    path = source / "tokenizer.json"
    if not path.is_file():
        if (source / "vocab.json").is_file() and (source / "merges.txt").is_file():
            vocab_json, merges_txt = (
                (source / "vocab.json").read_text("utf-8"),
                (source / "merges.txt").read_text("utf-8"),
            )
            add_prefix_space = bool(_tokenizer_config(source).get("add_prefix_space", False))
            return _bpe_out(source, tokenizer_class, vocab_json, merges_txt, add_prefix_space, max_length)
        raise ConversionError(f"{source}: no tokenizer.json (nor vocab.json + merges.txt)")
    data = read_json(path)
    model, pre = data.get("model") or {}, data.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or pre.get("type") != "ByteLevel" or data.get("normalizer"):
        raise ConversionError(
            f"{path}: model {model.get('type')!r}, pre_tokenizer {pre.get('type')!r}; PaddleNLP's {tokenizer_class} "
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
    add_prefix_space = bool(pre.get("add_prefix_space", False))
    return _bpe_out(source, tokenizer_class, vocab_json, merges_txt, add_prefix_space, max_length)


def _bpe_out(
    source: Path, tokenizer_class: str, vocab_json: str, merges_txt: str, add_prefix_space: bool, max_length: int
) -> dict[str, str]:
    tok_config = _tokenizer_config(source)
    specials = {k: _token(tok_config.get(k), v) for k, v in BPE_SPECIALS.items()}
    settings = {
        "tokenizer_class": tokenizer_class,
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


def _albert_files(source: Path, tokenizer_class: str, max_length: int) -> dict[str, str | bytes]:
    tok_config = _tokenizer_config(source)
    defaults = {"unk_token": "<unk>", "sep_token": "[SEP]", "pad_token": "<pad>", "cls_token": "[CLS]"}
    specials = {k: _token(tok_config.get(k), v) for k, v in (defaults | {"mask_token": "[MASK]"}).items()}
    settings = {
        "tokenizer_class": tokenizer_class,
        "do_lower_case": bool(tok_config.get("do_lower_case", True)),
        "remove_space": bool(tok_config.get("remove_space", True)),
        "keep_accents": bool(tok_config.get("keep_accents", False)),
        **specials,
        "bos_token": specials["cls_token"],
        "eos_token": specials["sep_token"],
        "model_max_length": int(max_length),
        "padding_side": "right",
    }
    if (source / "spiece.model").is_file():
        model = (source / "spiece.model").read_bytes()
    elif (source / "tokenizer.json").is_file():
        model, flags = unigram_to_sentencepiece(source / "tokenizer.json", specials)
        settings.update(flags)
    else:
        raise ConversionError(f"{source}: neither spiece.model nor tokenizer.json")
    return {
        "spiece.model": model,
        "tokenizer_config.json": _json(settings),
        "special_tokens_map.json": _json(specials),
    }


def _deberta_files(source: Path, tokenizer_class: str, max_length: int) -> dict[str, str | bytes]:
    if not (source / "spm.model").is_file():
        raise ConversionError(
            f"{source}: no spm.model (transformers 5 writes none), which PaddleNLP's {tokenizer_class} reads; "
            "the canonical tokenizer.json stays beside"
        )
    tok_config = _tokenizer_config(source)
    specials = {k: _token(tok_config.get(k), v) for k, v in DEFAULT_SPECIALS.items()}
    settings = {
        "tokenizer_class": tokenizer_class,
        "do_lower_case": bool(tok_config.get("do_lower_case", False)),
        "split_by_punct": bool(tok_config.get("split_by_punct", False)),
        **specials,
        "bos_token": specials["cls_token"],
        "eos_token": specials["sep_token"],
        "model_max_length": int(max_length),
        "padding_side": "right",
    }
    return {
        "spm.model": (source / "spm.model").read_bytes(),
        "tokenizer_config.json": _json(settings),
        "special_tokens_map.json": _json(specials),
    }


def unigram_to_sentencepiece(path: Path, specials: dict[str, str]) -> tuple[bytes, dict[str, bool]]:
    """A SentencePiece model (spiece.model) for PaddleNLP's AlbertEnglishTokenizer from an
    ALBERT tokenizer.json (transformers 5 writes no spiece.model), and that tokenizer's
    flags: the same Unigram pieces and scores; the normalisation tokenizer.json does
    (quotes, NFKD + accents, lowercase) is what AlbertEnglishTokenizer does in Python, a
    Precompiled character map becomes the model's, and whitespace splitting with "▁" is
    SentencePiece's own. ConversionError for anything else."""
    import base64

    try:
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError:
        raise ConversionError("the sentencepiece package is needed to write spiece.model") from None
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback") or model.get("unk_id") is None:
        raise ConversionError(f"{path}: model {model.get('type')!r}; only a Unigram model becomes spiece.model")
    norm = data.get("normalizer") or {}
    steps = norm.get("normalizers", []) if norm.get("type") == "Sequence" else ([norm] if norm else [])
    kinds, charsmap = [], b""
    for step in steps:
        kind = step.get("type")
        if kind == "Replace":
            pattern = step.get("pattern") or {}
            kind = {
                (("String", "``"), '"'): "quotes",
                (("String", "''"), '"'): "quotes",
                (("Regex", " {2,}"), " "): "spaces",
            }.get((next(iter(pattern.items()), None), step.get("content")))
        elif kind == "Precompiled":
            charsmap = base64.b64decode(step.get("precompiled_charsmap") or "")
        if kind not in ("quotes", "spaces", "NFKD", "StripAccents", "Lowercase", "Precompiled"):
            raise ConversionError(f"{path}: normalizer step {step.get('type')!r}, which AlbertEnglishTokenizer lacks")
        kinds.append(kind)
    if ("NFKD" in kinds) != ("StripAccents" in kinds):  # AlbertEnglishTokenizer does both or neither
        raise ConversionError(f"{path}: NFKD without StripAccents (or the reverse), which AlbertEnglishTokenizer lacks")
    if kinds.count("quotes") != 2:
        raise ConversionError(f"{path}: AlbertEnglishTokenizer always turns `` and '' into \", this tokenizer does not")
    pre = data.get("pre_tokenizer") or {}
    pres = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    meta = [p for p in pres if p.get("type") == "Metaspace"]
    if (
        len(meta) != 1
        or any(p.get("type") not in ("Metaspace", "WhitespaceSplit") for p in pres)
        or meta[0].get("replacement", "▁") != "▁"
        or meta[0].get("prepend_scheme", "always" if meta[0].get("add_prefix_space", True) else "never") != "always"
    ):
        raise ConversionError(f"{path}: pre_tokenizer {pre.get('type')!r} is not SentencePiece's whitespace handling")
    unk, vocab = int(model["unk_id"]), model.get("vocab") or []
    ids = {piece: i for i, (piece, _) in enumerate(vocab)}
    added = {a.get("content") for a in data.get("added_tokens") or [] if a.get("special")}
    proto = pb.ModelProto()
    for i, (piece, score) in enumerate(vocab):
        entry = proto.pieces.add()
        entry.piece, entry.score = piece, float(score)
        if i == unk:
            entry.type = pb.ModelProto.SentencePiece.UNKNOWN
        elif piece == specials["mask_token"]:
            entry.type = pb.ModelProto.SentencePiece.USER_DEFINED
        elif piece in added:
            entry.type = pb.ModelProto.SentencePiece.CONTROL
        else:
            entry.type = pb.ModelProto.SentencePiece.NORMAL
    trainer = proto.trainer_spec
    trainer.model_type, trainer.vocab_size = pb.TrainerSpec.UNIGRAM, len(vocab)
    trainer.unk_id, trainer.unk_piece = unk, vocab[unk][0]
    for key, name in (("pad", "pad_token"), ("bos", "cls_token"), ("eos", "sep_token")):
        setattr(trainer, f"{key}_id", ids.get(specials[name], -1))
        setattr(trainer, f"{key}_piece", specials[name])
    trainer.split_by_whitespace, trainer.byte_fallback = True, False
    normalizer = proto.normalizer_spec
    normalizer.name = "nmt_nfkc" if charsmap else "identity"
    normalizer.precompiled_charsmap = charsmap
    normalizer.add_dummy_prefix, normalizer.remove_extra_whitespaces, normalizer.escape_whitespaces = True, True, True
    flags = {"do_lower_case": "Lowercase" in kinds, "keep_accents": not {"NFKD", "StripAccents"} <= set(kinds)}
    return proto.SerializeToString(), flags


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


def albert_tokenizer_json(folder: Path) -> str:
    """A tokenizer.json for a PaddleNLP AlbertEnglishTokenizer folder (spiece.model), built
    as transformers 5 builds ALBERT's tokenizer: the model's Unigram pieces, the Python
    normalisation AlbertEnglishTokenizer does (quotes, NFKD + accents, lowercase), the
    model's character map, SentencePiece's whitespace handling."""
    from tokenizers import normalizers

    settings = _tokenizer_config(folder)
    steps = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    if not settings.get("keep_accents", False):
        steps += [normalizers.NFKD(), normalizers.StripAccents()]
    if settings.get("do_lower_case", True):
        steps.append(normalizers.Lowercase())
    return _sentencepiece_json(folder / "spiece.model", settings, steps)


def deberta_tokenizer_json(folder: Path) -> str:
    """A tokenizer.json for a PaddleNLP DebertaV2Tokenizer folder (spm.model), tokenizing as
    that class does: lowercase first where do_lower_case, then SentencePiece on the text
    (its character map, whitespace handling, Unigram pieces); with split_by_punct, each
    punctuation character and each run between them is encoded apart, as transformers 5's
    DebertaV2Tokenizer does too (a character that only becomes punctuation through the
    character map, such as "⒈" -> "1.", is split by this tokenizer and not by PaddleNLP's)."""
    from tokenizers import normalizers, pre_tokenizers

    settings = _tokenizer_config(folder)
    steps = [normalizers.Lowercase()] if settings.get("do_lower_case", False) else []
    split = [pre_tokenizers.Punctuation(behavior="isolated")] if settings.get("split_by_punct", False) else []
    return _sentencepiece_json(folder / "spm.model", settings, steps, split)


def _sentencepiece_json(path: Path, settings: dict[str, Any], steps: list, split: list | None = None) -> str:
    """The tokenizer.json of a PaddleNLP tokenizer that runs the SentencePiece Unigram model
    `path` after the Python normalisation `steps` (tokenizers normalizers) and pre-splitting
    `split` (tokenizers pre-tokenizers): the model's pieces and character map, SentencePiece's
    whitespace handling (collapse, strip, "▁" before every word), [CLS] A [SEP] (B [SEP]),
    every non-normal piece matched in raw text as PaddleNLP's tokenizers match special tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    try:
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError:
        raise ConversionError(f"the sentencepiece package is needed to read {path.name}") from None
    proto = pb.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as e:  # protobuf's DecodeError
        raise InvalidModelError(f"{path}: not a SentencePiece model ({e})") from None
    if proto.trainer_spec.model_type != pb.TrainerSpec.UNIGRAM or proto.trainer_spec.byte_fallback:
        raise ConversionError(f"{path}: not a Unigram model without byte fallback")
    spec = proto.normalizer_spec
    if not (spec.add_dummy_prefix and spec.remove_extra_whitespaces and spec.escape_whitespaces):
        raise ConversionError(f"{path}: a normalizer without the dummy prefix or whitespace collapsing")
    vocab = [(p.piece, p.score) for p in proto.pieces]
    unk = next(i for i, p in enumerate(proto.pieces) if p.type == pb.ModelProto.SentencePiece.UNKNOWN)
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    if spec.precompiled_charsmap:
        steps = [*steps, normalizers.Precompiled(spec.precompiled_charsmap)]
    tok.normalizer = normalizers.Sequence([*steps, normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            *(split or []),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    cls, sep = _token(settings.get("cls_token"), "[CLS]"), _token(settings.get("sep_token"), "[SEP]")
    ids = {piece: i for i, (piece, _) in enumerate(vocab)}
    missing = [t for t in (cls, sep) if t not in ids]
    if missing:
        raise InvalidModelError(f"{path}: special token {missing[0]!r} is not a piece of the model")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])],
    )
    specials = [p.piece for p in proto.pieces if p.type != pb.ModelProto.SentencePiece.NORMAL]
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in specials])
    return tok.to_str()
