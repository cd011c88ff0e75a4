"""PaddleNLP's BertTokenizer, driven so that its ids equal transformers' fast tokenizer's.

Measured against transformers 5 / tokenizers (the reference), PaddleNLP 2.8's
BertTokenizer differs in four ways, all fixed here with the canonical BERT
vocabulary handling rather than by post-editing ids:

- its BasicTokenizer also splits *symbols* (Unicode S*: emoji, £, €, ©, °, ², ™)
  into their own words; BERT and transformers split punctuation only, so
  "hello😀world" is one [UNK] word there and "£100" is "£100" -> "£", "##100".
- its CJK ranges (characters that become words of their own) include
  U+2B820..U+2B91F, which transformers' do not.
- it drops unassigned code points (Cn) as control characters; transformers keeps
  them (each word holding one becomes [UNK]).
- its special tokens are matched after lowercasing and not inside words
  ("[PAD]x" -> "[", "pad", "]", "x"); transformers matches the special tokens in
  the raw text anywhere, before normalisation. We split them off first, the same way.

Lowercasing is per character as both PaddleNLP's `tokenize` and the Rust
normaliser do (Python's str.lower() would turn a final "Σ" into "ς").

Measured over every Unicode code point (in three contexts), the ids then differ
for 503 of 1,112,064 code points (490 after the core's clean_text): characters
whose Unicode category Python 3.11 (Unicode 14) and the Rust crates' older
tables disagree on, such as U+061D ARABIC END OF TEXT MARK.

Speed: PaddleNLP's tokenizer is pure Python, so each whitespace-separated word's
ids are memoised (the output of PaddleNLP's own BasicTokenizer + WordpieceTokenizer
for that word), and a text stops being tokenized once it is known to be truncated.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unified_nlp.backend_kit import (
    Encoding,
    InvalidInputTypeError,
    InvalidModelError,
    encoding_from_rows,
    join_wordpieces,
    read_json,
)

from ._framework import BasicTokenizer, BertTokenizer, is_punctuation, is_whitespace

_CACHE_WORD_CHARS = 64  # longer words are not memoised
_CACHE_SIZE = 500_000
_LONG_WORD = 1024  # words longer than this are tokenized in slices, so truncation can stop early


class _BertBasicTokenizer(BasicTokenizer):
    """PaddleNLP's BasicTokenizer made to normalise as transformers' BERT normaliser does:
    it splits on punctuation only (not symbols), uses transformers' CJK ranges, and keeps
    unassigned code points (Cn) rather than dropping them (they become [UNK])."""

    def _clean_text(self, text):
        return "".join(" " if is_whitespace(c) else c for c in _clean(text) if c != "\ufffd")

    def _is_chinese_char(self, cp):
        return any(lo <= cp <= hi for lo, hi in _CJK)

    def _run_split_on_punc(self, text, never_split=None):
        if never_split is not None and text in never_split:
            return [text]
        output: list[list[str]] = []
        start_new_word = True
        for char in text:
            if is_punctuation(char):
                output.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(char)
        return ["".join(x) for x in output]


# transformers' (Rust) CJK ranges; PaddleNLP's start the fifth at 0x2B820, 256 code points earlier
_CJK = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_DROP = frozenset(("Cc", "Cf", "Co", "Cs"))


def _clean(text: str) -> str:
    """Drop control, format, private-use and surrogate characters (tab, newline and carriage
    return stay), as transformers' BERT normaliser does; unlike unified_nlp.inputs.clean_text
    it keeps unassigned code points."""
    if text.isprintable():
        return text
    return "".join(c for c in text if c in "\t\n\r" or unicodedata.category(c) not in _DROP)


def _lower(text: str) -> str:
    # per character: CPython's str.lower() is context-free except for capital sigma
    return text.lower() if "Σ" not in text else "".join(c.lower() for c in text)


class PaddleTokenizer:
    """Texts in, an `Encoding` out, tokenized by PaddleNLP's BertTokenizer built from
    the local vocab.txt and tokenizer_config.json of a PaddleNLP folder.

    >>> tok = PaddleTokenizer(Path("model-paddle/paddlenlp"), 512)  # doctest: +SKIP
    >>> tok(["a great movie"]).input_ids                            # doctest: +SKIP
    array([[ 101, 1037, 2307, 3185,  102]])
    """

    def __init__(self, folder: Path, max_length: int) -> None:
        settings = read_json(folder / "tokenizer_config.json")
        if not (folder / "vocab.txt").is_file():
            raise InvalidModelError(f"{folder / 'vocab.txt'}: missing")
        specials = {
            k: settings.get(k, f"[{k.split('_')[0].upper()}]")
            for k in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
        }
        self._bert = BertTokenizer(
            vocab_file=str(folder / "vocab.txt"),
            do_lower_case=bool(settings.get("do_lower_case", True)),
            tokenize_chinese_chars=bool(settings.get("tokenize_chinese_chars", True)),
            strip_accents=settings.get("strip_accents"),
            **specials,
        )
        self._basic = self._bert.basic_tokenizer = _BertBasicTokenizer(
            do_lower_case=self._bert.do_lower_case,
            tokenize_chinese_chars=bool(settings.get("tokenize_chinese_chars", True)),
            strip_accents=settings.get("strip_accents"),
        )
        self._wordpiece = self._bert.wordpiece_tokenizer
        self._wordpiece.max_input_chars_per_word = int(settings.get("max_input_chars_per_word", 100))
        self._vocab: dict[str, int] = dict(self._bert.vocab.token_to_idx)
        self._tokens = [""] * (max(self._vocab.values()) + 1)
        for token, i in self._vocab.items():
            self._tokens[i] = token
        split = list(specials.values()) + list(settings.get("additional_special_tokens") or [])
        missing = [t for t in split if t not in self._vocab]
        if missing:
            raise InvalidModelError(f"{folder / 'vocab.txt'}: special token(s) {missing} not in the vocabulary")
        self._special_ids = {t: self._vocab[t] for t in split}
        # leftmost-longest, as transformers' added-token matcher
        self._special_re = re.compile("|".join(re.escape(t) for t in sorted(split, key=len, reverse=True)))
        self._unk = self._vocab[specials["unk_token"]]
        self._cls, self._sep = self._vocab[specials["cls_token"]], self._vocab[specials["sep_token"]]
        self._pad = self._vocab[specials["pad_token"]]
        self._lowercase = bool(self._bert.do_lower_case)
        self._cache: dict[str, tuple[int, ...]] = {}
        self.max_length = int(max_length)
        self.vocab_size = len(self._vocab)

    # --- one text ------------------------------------------------------------

    def _word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._cache.get(word)
        if ids is None:
            pieces = [p for token in self._basic.tokenize(word) for p in self._wordpiece.tokenize(token)]
            ids = tuple(self._vocab.get(p, self._unk) for p in pieces)
            if len(word) <= _CACHE_WORD_CHARS and len(self._cache) < _CACHE_SIZE:
                self._cache[word] = ids
        return ids

    def _boundary(self, char: str) -> bool:
        # the basic tokenizer always ends a word after punctuation and after a CJK character
        return is_punctuation(char) or self._basic._is_chinese_char(ord(char))

    def _long_word_ids(self, word: str, need: int | None) -> list[int]:
        out: list[int] = []
        start = 0
        while start < len(word) and (need is None or len(out) <= need):
            end = min(start + _LONG_WORD, len(word))
            while end < len(word) and not self._boundary(word[end - 1]):
                end += 1
            out.extend(self._word_ids(word[start:end]))
            start = end
        return out

    def _segment_ids(self, text: str, ids: list[int], limit: int | None) -> bool:
        """Append the ids of a text without special tokens; True once more than `limit` are known."""
        text = _clean(text)
        if self._lowercase:
            text = _lower(text)
        for word in text.split():
            if len(word) > _LONG_WORD:
                ids.extend(self._long_word_ids(word, None if limit is None else limit - len(ids)))
            else:
                ids.extend(self._word_ids(word))
            if limit is not None and len(ids) > limit:
                return True
        return False

    def encode_one(self, text: str, limit: int | None) -> tuple[list[int], bool]:
        """Token ids of `text` without [CLS]/[SEP], cut to `limit`, and whether it was cut."""
        if not isinstance(text, str):
            raise InvalidInputTypeError(f"expected str, got {type(text).__name__}")
        ids: list[int] = []
        start = 0
        for match in self._special_re.finditer(text):
            if self._segment_ids(text[start : match.start()], ids, limit):
                break
            ids.append(self._special_ids[match.group()])
            start = match.end()
        else:
            self._segment_ids(text[start:], ids, limit)
        if limit is not None and len(ids) > limit:
            return ids[:limit], True
        return ids, False

    # --- the protocol --------------------------------------------------------

    def __call__(
        self,
        texts: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
        padding: bool | str = "longest",
        truncation: bool = True,
    ) -> Encoding:
        limit = min(max_length or self.max_length, self.max_length)
        if text_pair is not None:
            return self._pairs(list(texts), list(text_pair), limit, padding, truncation)
        rows, cut = [], []
        for text in texts:
            ids, truncated = self.encode_one(text, max(limit - 2, 0) if truncation else None)
            rows.append(ids)
            cut.append(truncated)
        return encoding_from_rows(
            [[self._cls, *row, self._sep] for row in rows],
            pad_id=self._pad,
            padding=padding,
            limit=limit,
            truncated=cut,
        )

    def _pairs(self, first: list[str], second: list[str], limit: int, padding, truncation: bool) -> Encoding:
        """[CLS] a [SEP] b [SEP], segment 1 on b and its [SEP]; truncation "longest_first" as the
        tokenizers package does it: the shorter text keeps up to half the room, the longer the rest."""
        if len(first) != len(second):
            raise InvalidInputTypeError(f"{len(first)} texts but {len(second)} pair texts")
        rows, types, cut = [], [], []
        for a_text, b_text in zip(first, second):
            a, _ = self.encode_one(a_text, None)
            b, _ = self.encode_one(b_text, None)
            target = max(limit - 3, 0)
            cut.append(truncation and len(a) + len(b) > target)
            if cut[-1]:  # the shorter text keeps up to half, the longer the rest
                n_a = min(len(a), target // 2) if len(a) <= len(b) else target - min(len(b), target // 2)
                n_b = target - n_a if len(a) <= len(b) else min(len(b), target // 2)
                a, b = a[: min(n_a, len(a))], b[: min(n_b, len(b))]
            rows.append([self._cls, *a, self._sep, *b, self._sep])
            types.append([0] * (len(a) + 2) + [1] * (len(b) + 1))
        return encoding_from_rows(rows, pad_id=self._pad, padding=padding, limit=limit, type_rows=types, truncated=cut)

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        """Text of token ids, joined as transformers' WordPiece decoder does (with its
        per-token cleanup), so both backends decode alike."""
        specials = set(self._special_ids.values())
        tokens = [
            self._tokens[i] if 0 <= i < len(self._tokens) else self._tokens[self._unk]
            for i in (int(x) for x in np.asarray(ids).ravel())
            if not (skip_special_tokens and i in specials)
        ]
        return join_wordpieces(tokens)
