"""Token-list helpers the adapters share: padding rows into an `Encoding`, and
joining WordPiece tokens back into text the way transformers' decoder does.

>>> enc = encoding_from_rows([[101, 7592, 102], [101, 102]], pad_id=0, padding="longest", limit=512)
>>> enc.input_ids.tolist(), enc.attention_mask.tolist()
([[101, 7592, 102], [101, 102, 0]], [[1, 1, 1], [1, 1, 0]])
>>> join_wordpieces(["un", "##real", "world", "##s", "!"])
'unreal worlds!'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InvalidInputError
from .protocols import Encoding

# transformers' WordPiece decoder tidies the spacing of each token this way
_CLEANUP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


def padded_width(lengths: Sequence[int], padding: bool | str, limit: int) -> int:
    """The column count of a batch: its longest row, at least `limit` for
    padding='max_length'; padding=False accepts only rows of one length."""
    if padding == "max_length":
        return max([limit, *lengths])
    if padding in (True, "longest") or len(set(lengths)) <= 1:
        return max(lengths, default=0)
    raise InvalidInputError("padding=False needs texts of equal token length; use padding='longest'")


def encoding_from_rows(
    rows: Sequence[Sequence[int]],
    *,
    pad_id: int,
    padding: bool | str,
    limit: int,
    type_rows: Sequence[Sequence[int]] | None = None,
    truncated: Sequence[bool] | np.ndarray | None = None,
) -> Encoding:
    """Token-id rows (special tokens included) padded with `pad_id` into an Encoding."""
    lengths = [len(row) for row in rows]
    width = padded_width(lengths, padding, limit)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        k = lengths[i]
        ids[i, :k] = row
        mask[i, :k] = 1
        if type_rows is not None:
            types[i, :k] = type_rows[i]
    return Encoding(ids, mask, types, None if truncated is None else np.asarray(truncated, dtype=bool))


def join_wordpieces(tokens: Sequence[str]) -> str:
    """WordPiece tokens as text: "##" pieces glued to the previous token, spaces
    elsewhere, then transformers' per-token cleanup (" ." -> ".", " n't" -> "n't")."""
    pieces = []
    for i, token in enumerate(tokens):
        if i:
            token = token[2:] if token.startswith("##") else " " + token
        for dirty, clean in _CLEANUP:
            token = token.replace(dirty, clean)
        pieces.append(token)
    return "".join(pieces)
