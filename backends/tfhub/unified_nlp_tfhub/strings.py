"""Texts carried through the Tokenizer protocol unchanged, for SavedModels that take strings.

A text-embedding SavedModel (NNLM, Universal Sentence Encoder) and a whole Keras
classifier tokenize inside their own graph, but the core's pipeline (see
classifier.py) always runs ``tokenizer(texts) -> Encoding -> select(rows) ->
model(encoding)``. So the tokenizer here writes each text's UTF-8 bytes into the
Encoding, seven to an int64 (positive, so no sign games), with the byte count in
the first column, and the model reads the strings back: lossless, and the
core's batching, sorting by length and row selection work as for token ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unified_nlp.backend_kit import Encoding, InvalidInputError

BYTES_PER_ID = 7  # 56 bits: an int64 that stays positive
MAX_BYTES = 16_384  # per text; bounds the arrays of a chunk (2,048 texts) at a few hundred MB worst case
_WEIGHTS = (256 ** np.arange(BYTES_PER_ID - 1, -1, -1, dtype=np.int64)).astype(np.int64)


def _cut(data: bytes, limit: int) -> bytes:
    """At most `limit` bytes, ending on a character boundary."""
    if len(data) <= limit:
        return data
    end = limit
    while end > 0 and (data[end] & 0xC0) == 0x80:  # a UTF-8 continuation byte: back off to the lead byte
        end -= 1
    return data[:end]


def encode_strings(texts: Sequence[str], limit: int = MAX_BYTES) -> Encoding:
    """Texts -> Encoding [n, 1 + ceil(bytes / 7)]: byte count, then the packed bytes."""
    raw = [t.encode("utf-8") for t in texts]
    cut = [_cut(b, limit) for b in raw]
    widths = [1 + -(-len(b) // BYTES_PER_ID) for b in cut]
    width = max(widths, default=0)
    ids = np.zeros((len(cut), width), np.int64)
    mask = np.zeros((len(cut), width), np.int64)
    for row, data in enumerate(cut):
        padded = data + b"\0" * (-len(data) % BYTES_PER_ID)
        chunks = np.frombuffer(padded, np.uint8).reshape(-1, BYTES_PER_ID).astype(np.int64)
        ids[row, 0] = len(data)
        ids[row, 1 : widths[row]] = chunks @ _WEIGHTS
        mask[row, : widths[row]] = 1
    truncated = np.array([len(c) < len(r) for c, r in zip(cut, raw)], dtype=bool)
    return Encoding(ids, mask, None, truncated=truncated)


def decode_row(ids: Sequence[int] | np.ndarray) -> str:
    """One row of encode_strings back to its text."""
    ids = np.asarray(ids, np.int64).ravel()
    if ids.size == 0:
        return ""
    n = int(ids[0])
    count = -(-n // BYTES_PER_ID)
    packed = ids[1 : 1 + count]
    data = ((packed[:, None] // _WEIGHTS[None, :]) % 256).astype(np.uint8).tobytes()[:n]
    return data.decode("utf-8", errors="replace")


def decode_strings(encoding: Encoding) -> list[str]:
    return [decode_row(row) for row in encoding["input_ids"]]


class StringsTokenizer:
    """The Tokenizer of a strings-in SavedModel: texts pass through to the model unchanged
    (up to MAX_BYTES of UTF-8 each; longer texts are cut and flagged truncated).

    >>> tok = StringsTokenizer()
    >>> tok.decode(tok(["héllo"]).input_ids[0])
    'héllo'
    """

    vocab_size = 256  # bytes
    max_length = MAX_BYTES

    def __call__(
        self,
        texts: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
        padding: bool | str = "longest",
        truncation: bool = True,
    ) -> Encoding:
        if text_pair is not None:
            raise InvalidInputError(
                "this SavedModel takes single texts (strings in); sentence pairs need a model with a tokenizer"
            )
        limit = min(max_length or MAX_BYTES, MAX_BYTES) if truncation else MAX_BYTES
        return encode_strings(list(texts), limit)

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        return decode_row(ids)
