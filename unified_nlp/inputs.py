"""Validation of text input, shared by every backend so all three behave alike.

Documented behaviour: empty and whitespace-only strings are valid (they encode
to [CLS] [SEP] and get a prediction); a sentence pair is a tuple (or list) of two
strings, and a call takes either all pairs or all single texts; control characters are dropped by the
tokenizer; text longer than the model's maximum is truncated to it
(Prediction.truncated tells). None, non-strings, lone surrogates and a bare
string where a list is expected raise InvalidInputError naming the index.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from .errors import InvalidInputError, InvalidInputTypeError

MAX_CHARS = 1_000_000  # per text; beyond this the model sees only the first 512 tokens anyway


def check_texts(texts: object) -> list[str]:
    """Return `texts` as a list of str, or raise InvalidInputError naming the bad item.

    >>> check_texts(["fine", ""])
    ['fine', '']
    """
    if isinstance(texts, str):
        raise InvalidInputTypeError("expected a list of strings, got a single str; wrap it in a list: predict([text])")
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise InvalidInputTypeError(f"expected a list of strings, got {type(texts).__name__}")
    if isinstance(texts, (AbstractSet, Mapping)):  # no order: predictions could not be matched to texts
        raise InvalidInputTypeError(f"expected a list of strings, got an unordered {type(texts).__name__}; pass a list")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            hint = " (decode bytes first, e.g. text.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
            raise InvalidInputTypeError(f"text at index {i} is {type(text).__name__}, expected str{hint}")
        if len(text) > MAX_CHARS:
            raise InvalidInputError(
                f"text at index {i} has {len(text):,} characters, over the limit of {MAX_CHARS:,}; "
                "split it or cut it first"
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInputError(
                f"text at index {i} is not valid Unicode (lone surrogate {text[e.start]!r} at "
                f"position {e.start}); decode the source with errors='replace'"
            ) from None
    return out


def clean_text(text: str) -> str:
    """Drop control and format characters (Unicode category C*, NUL included; tab,
    newline and carriage return are kept), as BERT's own normaliser does, so every
    backend's tokenizer sees the same string."""
    if text.isprintable():
        return text
    return "".join(ch for ch in text if ch in "\t\n\r" or not unicodedata.category(ch).startswith("C"))


def check_pairs(texts: object, text_pair: object = None) -> tuple[list[str], list[str] | None]:
    """Split input into first texts and second texts (None for single texts), validated.

    Pairs come as items ``(text, text_pair)`` or as a separate ``text_pair`` list of the
    same length, as transformers' pipeline takes them.

    >>> check_pairs([("A man plays.", "Music.")])
    (['A man plays.'], ['Music.'])
    >>> check_pairs(["a", "b"], text_pair=["c", "d"])
    (['a', 'b'], ['c', 'd'])
    """
    if text_pair is not None:
        first, second = check_texts(texts), check_texts(text_pair)
        if len(first) != len(second):
            raise InvalidInputError(f"{len(first)} texts but {len(second)} text_pair items; they must pair up")
        return first, second
    if isinstance(texts, (str, bytes, bytearray, AbstractSet, Mapping)) or not isinstance(texts, Iterable):
        return check_texts(texts), None  # refused there with the reason
    items = list(texts)
    kinds = {isinstance(item, (tuple, list)) for item in items}
    if kinds != {True}:
        if True in kinds:
            i = next(i for i, item in enumerate(items) if not isinstance(item, (tuple, list)))
            raise InvalidInputTypeError(
                f"item at index {i} is a single {type(items[i]).__name__} among sentence pairs; "
                "pass all pairs or all single texts"
            )
        return check_texts(items), None
    for i, item in enumerate(items):
        if len(item) != 2:
            raise InvalidInputError(f"pair at index {i} has {len(item)} parts; a sentence pair is (text, text_pair)")
    try:
        first = check_texts([a for a, _ in items])
        second = check_texts([b for _, b in items])
    except InvalidInputError as e:
        raise type(e)(f"in a sentence pair: {e}") from None
    return first, second


def clean_pairs(first: Sequence[str], second: Sequence[str] | None) -> tuple[list[str], list[str] | None]:
    return [clean_text(t) for t in first], None if second is None else [clean_text(t) for t in second]
