"""The tokenizer files of a BERT preprocessor SavedModel: vocab.txt, tokenizer.json,
tokenizer_config.json, special_tokens_map.json, for the canonical folder.

The vocabulary is the preprocessor's asset; its normalisation (lower-casing,
accent stripping, CJK splitting) is read off what its ``tokenize`` does with
probe strings, since a SavedModel does not state it; tokenizer.json is then
built with the `tokenizers` package as transformers builds BERT's, and refused
when it does not give the preprocessor's ids on sample texts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from unified_nlp.backend_kit import ConversionError

from ._tf import tf

PROBE_TEXTS = [
    "Hello world!",
    "A man plays a guitar.",
    "The movie was not good, but the actors were GREAT.",
    "Café naïve résumé Ångström",
    "日本語のテキスト and 中文",
    "numbers 12,345.67 and [brackets] (parens) #tags",
    "",
]
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _pieces(pre, texts: list[str]) -> list[list[int]]:
    tokens = pre.tokenize(tf.constant(texts))
    merged = tokens.merge_dims(-2, -1) if tokens.ragged_rank > 1 else tokens
    return [list(map(int, row)) for row in merged.to_list()]


def _words(pre, text: str) -> int:
    tokens = pre.tokenize(tf.constant([text]))
    return int(tokens.row_lengths()[0]) if tokens.ragged_rank > 1 else -1


def _vocab_file(asset_dirs: list[Path]) -> Path:
    for folder in asset_dirs:
        if (folder / "vocab.txt").is_file():
            return folder / "vocab.txt"
        texts = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if len(texts) == 1:
            return texts[0]
    raise ConversionError(
        f"no vocabulary file (assets/vocab.txt) in {', '.join(map(str, asset_dirs))}: the tokenizer cannot be written"
    )


def tokenizer_options(pre, vocab: list[str]) -> dict[str, bool]:
    """lower_case, strip_accents and split_cjk, read off what the preprocessor's tokenize does
    with a word of its own vocabulary: upper-cased, with a combining accent, around a CJK ideograph."""
    words = [t for t in vocab if t.isascii() and t.isalpha() and t.islower() and len(t) >= 3]
    if not words:  # no plain lower-case word to probe with: read the case from what the vocabulary holds
        lower = not any(t.isupper() for t in vocab if t not in SPECIALS)
        return {"lower_case": lower, "strip_accents": lower, "split_cjk": _words(pre, "a一a") == 3}
    w = words[len(words) // 2]
    plain, upper, accented = _pieces(pre, [w, w.upper(), w[0] + "\u0301" + w[1:]])
    return {
        "lower_case": upper == plain,
        "strip_accents": accented == plain,
        "split_cjk": _words(pre, f"{w}一{w}") == 3,
    }


def tokenizer_json(vocab: list[str], options: Mapping[str, bool]) -> str:
    """BERT's WordPiece tokenizer.json with the preprocessor's normalisation (as transformers builds it)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=bool(options["split_cjk"]),
        strip_accents=bool(options["strip_accents"]),
        lowercase=bool(options["lower_case"]),
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tok.add_special_tokens([t for t in SPECIALS if t in ids])
    return tok.to_str()


def write_tokenizer(pre, asset_dirs: list[Path], max_length: int, out: Path) -> None:
    """vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json for `pre`;
    ConversionError when tokenizer.json does not give the preprocessor's ids on PROBE_TEXTS."""
    from tokenizers import Tokenizer

    source = _vocab_file(asset_dirs)
    vocab = source.read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    missing = [t for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]") if t not in vocab]
    if missing:
        raise ConversionError(f"{source}: no {', '.join(missing)}; not a BERT WordPiece vocabulary")
    options = tokenizer_options(pre, vocab)
    text = tokenizer_json(vocab, options)
    tok = Tokenizer.from_str(text)
    for sample, expected in zip(PROBE_TEXTS, _pieces(pre, PROBE_TEXTS)):
        got = tok.encode(sample, add_special_tokens=False).ids
        if got != expected:
            raise ConversionError(
                f"{source}: a BERT WordPiece tokenizer.json with this vocabulary ({options}) does not reproduce "
                f"the preprocessor's ids on {sample!r} ({got[:8]} vs {expected[:8]})"
            )
    (out / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    (out / "tokenizer.json").write_text(text, encoding="utf-8")
    config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": options["lower_case"],
        "strip_accents": options["strip_accents"],
        "tokenize_chinese_chars": options["split_cjk"],
        "model_max_length": int(max_length),
        **{f"{t.strip('[]').lower()}_token": t for t in SPECIALS if t in vocab},
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    specials = {k: v for k, v in config.items() if k.endswith("_token")}
    (out / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n", encoding="utf-8")
