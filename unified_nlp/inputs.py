"""Validation of text input, shared by every backend so all three behave alike.

Documented behaviour: empty and whitespace-only strings are valid (they encode
to [CLS] [SEP] and get a prediction); control characters are dropped by the
tokenizer; text longer than the model's maximum is truncated to it
(Prediction.truncated tells). None, non-strings, lone surrogates and a bare
string where a list is expected raise InvalidInputError naming the index.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from .errors import InvalidInputError, InvalidInputTypeError

MAX_CHARS = 1_000_000  # per text; beyond this the model sees only the first 512 tokens anyway


def check_texts(texts: object) -> list[str]:
    """Return `texts` as a list of str, or raise InvalidInputError naming the bad item.

    >>> check_texts(["fine", ""])
    ['fine', '']
    """
    if isinstance(texts, str):
        raise InvalidInputTypeError(
            "expected a list of strings, got a single str; wrap it in a list: predict([text])"
        )
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise InvalidInputTypeError(f"expected a list of strings, got {type(texts).__name__}")
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
