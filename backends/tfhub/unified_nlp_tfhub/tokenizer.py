"""The tokenizer for a TF Hub BERT pair of the user's own (no tokenizer.json): its
preprocessor SavedModel behind the unified_nlp Tokenizer protocol.

Canonical folders and this adapter's exports tokenize with tokenizer.json
(unified_nlp.fast_tokenizer), ids identical on every backend."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unified_nlp.backend_kit import Encoding, InvalidInputError, UnifiedNLPError, join_wordpieces, padded_width

from ._tf import tf
from .savedmodel import check_preprocessor, load_saved_model

NUM_SPECIAL = 2  # [CLS] text [SEP]
_NO_LIMIT = 2**40  # the token limit when truncation=False
SPECIAL_KEYS = ("padding_id", "start_of_sequence_id", "end_of_segment_id", "mask_id")


class TFHubTokenizer:
    """Texts -> Encoding through a preprocessor SavedModel's ``tokenize`` and
    ``bert_pack_inputs``, padded to the batch's longest text (not to 128 or 512).

    >>> tok = TFHubTokenizer(Path("minilm-tfhub/preprocessor"), 512)   # doctest: +SKIP
    >>> tok(["hello world"]).input_ids.tolist()                        # doctest: +SKIP
    [[101, 7592, 2088, 102]]
    """

    def __init__(self, folder: Path, max_length: int, vocab_file: Path | None = None, loaded=None) -> None:
        # `loaded`: the preprocessor object already loaded (e.g. the one inside a Keras classifier SavedModel)
        self._pre = loaded if loaded is not None else load_saved_model(folder, "preprocessor")
        check_preprocessor(self._pre, folder)
        self.max_length = int(max_length)
        if self.max_length < NUM_SPECIAL:
            raise UnifiedNLPError(f"max_length must be at least {NUM_SPECIAL}, got {self.max_length}")
        candidates = [folder / "assets" / "vocab.txt"] + ([vocab_file] if vocab_file else [])
        self._vocab_file = next((p for p in candidates if p.is_file()), None)
        self._vocab: list[str] | None = None
        self._lock = threading.Lock()
        scalar = tf.TensorSpec([], tf.int64)
        strings = tf.TensorSpec([None], tf.string)
        self._encode = tf.function(self._encode_graph, autograph=False, input_signature=[strings, scalar, scalar])
        self._encode_pair = tf.function(
            self._encode_pair_graph, autograph=False, input_signature=[strings, strings, scalar, scalar]
        )
        special = self._special_tokens()
        self._special_ids = {int(special[k]) for k in SPECIAL_KEYS if k in special}
        self.vocab_size = int(special["vocab_size"]) if "vocab_size" in special else len(self._decoding_tables()[0])

    def _special_tokens(self) -> dict[str, int]:
        get = getattr(self._pre.tokenize, "get_special_tokens_dict", None)
        if get is None:
            return {}
        return {k: int(v.numpy()) for k, v in get().items()}

    def _decoding_tables(self) -> tuple[list[str], set[int]]:
        """The vocabulary and the ids decode skips, read once from the vocab asset."""
        with self._lock:
            if self._vocab is None:
                if self._vocab_file is None:
                    raise UnifiedNLPError(
                        "this preprocessor SavedModel has no assets/vocab.txt, so ids cannot be decoded"
                    )
                self._vocab = self._vocab_file.read_text(encoding="utf-8").split("\n")
                named = {i for i, t in enumerate(self._vocab) if t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
                self._special_ids |= named
            return self._vocab, self._special_ids

    def __call__(
        self,
        texts: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
        padding: bool | str = "longest",
        truncation: bool = True,
    ) -> Encoding:
        """A pair is packed as bert_pack_inputs packs two segments: [CLS] a [SEP] b [SEP],
        token types 0 then 1, trimmed round-robin (as TF Hub's BERT preprocessors do)."""
        texts = list(texts)
        if text_pair is not None and len(list(text_pair)) != len(texts):
            raise InvalidInputError(f"{len(texts)} texts but {len(list(text_pair))} text_pair entries")
        limit = min(max_length or self.max_length, self.max_length)
        special = NUM_SPECIAL if text_pair is None else NUM_SPECIAL + 1
        if limit < special:
            raise InvalidInputError(f"max_length must be at least {special}, got {limit}")
        if not texts:
            empty = np.zeros((0, 0), dtype=np.int64)
            return Encoding(empty, empty, empty)
        options = (
            tf.constant(limit if truncation else _NO_LIMIT, tf.int64),
            tf.constant(limit if padding == "max_length" else 0, tf.int64),
        )
        if text_pair is None:
            out = self._encode(tf.constant(texts, dtype=tf.string), *options)
        else:
            out = self._encode_pair(
                tf.constant(texts, dtype=tf.string), tf.constant(list(text_pair), tf.string), *options
            )
        ids, mask, types, lengths, needed = out
        lengths, needed = lengths.numpy(), needed.numpy()
        padded_width(lengths.tolist(), padding, limit)  # raises for padding=False on rows of unequal length
        return Encoding(ids.numpy(), mask.numpy(), types.numpy(), truncated=(needed > limit) if truncation else None)

    def _segments(self, texts):
        tokens = self._pre.tokenize(texts)  # [batch, (words), (wordpieces)]
        merged = tokens.merge_dims(-2, -1) if tokens.ragged_rank > 1 else tokens
        return tokens, merged.row_lengths()

    def _pack(self, segments, needed, limit, pad_to):
        lengths = tf.minimum(needed, limit)
        width = tf.maximum(tf.reduce_max(lengths), pad_to)
        # passed as tokenize returned them: TF Hub's preprocessors trace bert_pack_inputs for that form
        packed = self._pre.bert_pack_inputs(segments, tf.cast(width, tf.int32))
        return packed["input_word_ids"], packed["input_mask"], packed["input_type_ids"], lengths, needed

    def _encode_graph(self, texts, limit, pad_to):
        """tokenize, then bert_pack_inputs to the longest (truncated) text, in one graph."""
        tokens, n = self._segments(texts)
        return self._pack([tokens], n + NUM_SPECIAL, limit, pad_to)

    def _encode_pair_graph(self, texts, pairs, limit, pad_to):
        (first, n1), (second, n2) = self._segments(texts), self._segments(pairs)
        return self._pack([first, second], n1 + n2 + NUM_SPECIAL + 1, limit, pad_to)

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        """Ids back to text, as transformers' BERT tokenizer decodes them."""
        vocab, special = self._decoding_tables()
        ids = [int(i) for i in np.asarray(ids).ravel()]
        skip = special if skip_special_tokens else set()
        tokens = [vocab[i] if 0 <= i < len(vocab) else "[UNK]" for i in ids if i not in skip]
        return join_wordpieces(tokens)
