"""The BERT preprocessor SavedModel: strings in, the encoder's input dict out.

It follows TF Hub's preprocessor contract for text: ``preprocessor(strings)``
returns ``input_word_ids``, ``input_mask`` and ``input_type_ids`` (int32
[batch, seq_length], seq_length 128 by default), and two sub-objects split that
in two steps, ``tokenize`` (strings -> int32 RaggedTensor [batch, (words),
(wordpieces)]) and ``bert_pack_inputs`` (a list of tokenized segments and a
seq_length -> the encoder's input dict).

Built on tensorflow_text ops, but not on ``text.BertTokenizer``'s own
normaliser: that one case-folds with NFKC_Casefold (full-width letters and
ligatures become ASCII) and splits only on ASCII whitespace, so it disagrees
with Hugging Face's BertNormalizer/BertPreTokenizer on such text. The steps
below reproduce those exactly, one regex or op per rule, so token ids equal
transformers' for any input.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unified_nlp.backend_kit import InvalidModelError, read_json

from ._tf import text, tf

DEFAULT_SEQ_LENGTH = 128  # what TF Hub's BERT preprocessors pad to
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS_PER_WORD = 100  # longer words become [UNK], as in transformers' WordPiece

# Rust's char::is_whitespace, which transformers' BertNormalizer maps to " "
_WHITESPACE = r"[\t\n\x{0B}\x{0C}\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
# removed by BertNormalizer.clean_text: NUL, U+FFFD, and "other" characters except \t\n\r
# (those three are turned into spaces first, so removing all of Cc is then safe)
_CONTROL = r"[\p{Cc}\p{Cf}\p{Co}\p{Cs}\x{FFFD}]"
# BertNormalizer.handle_chinese_chars: CJK ideographs become words of their own
_CJK = (
    r"([\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}])"
)
# BertPreTokenizer: ASCII punctuation or Unicode category P*, each a word of its own
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"


def read_tokenizer_options(folder: Path) -> dict:
    """The preprocessor's options for a canonical folder (lower_case, strip_accents,
    split_cjk, special_tokens), from tokenizer_config.json and tokenizer.json;
    defaults are BERT uncased. A tokenizer.json that is not BERT WordPiece is an
    InvalidModelError: its ids could not be reproduced."""
    options = {"lower_case": True, "strip_accents": None, "split_cjk": True, "special_tokens": list(SPECIAL_TOKENS)}
    if (folder / "tokenizer_config.json").is_file():
        config = read_json(folder / "tokenizer_config.json")
        options["lower_case"] = bool(config.get("do_lower_case", True))
        options["strip_accents"] = config.get("strip_accents")
        options["split_cjk"] = bool(config.get("tokenize_chinese_chars", True))
    if (folder / "tokenizer.json").is_file():  # what transformers actually runs, so it wins
        tok = read_json(folder / "tokenizer.json")
        parts = {
            "normalizer": ((tok.get("normalizer") or {}).get("type"), "BertNormalizer"),
            "pre_tokenizer": ((tok.get("pre_tokenizer") or {}).get("type"), "BertPreTokenizer"),
            "model": ((tok.get("model") or {}).get("type"), "WordPiece"),
        }
        for part, (found, expected) in parts.items():
            if found != expected:
                raise InvalidModelError(
                    f"{folder / 'tokenizer.json'}: {part} is {found!r}; the TF Hub preprocessor reproduces "
                    f"BERT's {expected} only"
                )
        normalizer = tok["normalizer"]
        options["lower_case"] = bool(normalizer.get("lowercase", options["lower_case"]))
        options["strip_accents"] = normalizer.get("strip_accents")
        options["split_cjk"] = bool(normalizer.get("handle_chinese_chars", True))
        # added tokens that are matched in raw text before normalisation, as transformers does
        added = [
            t["content"] for t in tok.get("added_tokens", []) if t.get("content") and not t.get("normalized", True)
        ]
        if added:
            options["special_tokens"] = added
    return options


def _pattern_of(tokens: Sequence[str]) -> str:
    # longest first: RE2 alternation is leftmost-first, transformers matches leftmost-longest
    escaped = [_re2_escape(t) for t in sorted(set(tokens), key=len, reverse=True)]
    return "|".join(escaped)


def _re2_escape(s: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "\\" + c if ord(c) < 128 else c for c in s)


class Tokenize(tf.Module):
    """``tokenize(strings)`` -> int32 RaggedTensor [batch, (words), (wordpieces)]."""

    def __init__(self, table, *, lower_case, strip_accents, split_cjk, special_tokens, special_ids, vocab_size, ids):
        super().__init__(name="tokenize")
        self._table = table
        self._lower_case = bool(lower_case)
        self._strip_accents = bool(lower_case if strip_accents is None else strip_accents)
        self._split_cjk = bool(split_cjk)
        self._special_pattern = _pattern_of(special_tokens)
        self._special_tokens = tf.constant(list(special_tokens))
        self._special_ids = tf.constant(list(special_ids), tf.int64)
        self._ids = dict(ids, vocab_size=vocab_size)
        self._wordpiece = text.WordpieceTokenizer(
            table,
            suffix_indicator="##",
            max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
            token_out_type=tf.int64,
            unknown_token="[UNK]",
        )

    def _normalize(self, strings):
        s = tf.strings.regex_replace(strings, r"[\t\n\r]", " ")
        s = tf.strings.regex_replace(s, _CONTROL, "")
        s = tf.strings.regex_replace(s, _WHITESPACE, " ")
        if self._split_cjk:
            s = tf.strings.regex_replace(s, _CJK, r" \1 ")
        if self._strip_accents:
            s = tf.strings.regex_replace(text.normalize_utf8(s, "NFD"), r"\p{Mn}", "")
        if self._lower_case:
            # transformers lowercases char by char; ICU would make a final sigma "ς"
            s = tf.strings.lower(tf.strings.regex_replace(s, "Σ", "σ"), encoding="utf-8")
        return s

    def _wordpieces(self, pieces):
        """Plain-text pieces [n] -> int64 [n, (words), (wordpieces)]."""
        words = text.regex_split(self._normalize(pieces), f"{_WHITESPACE}|{_PUNCTUATION}", _PUNCTUATION)
        tokens = self._wordpiece.tokenize(words)
        # transformers' WordPiece limit counts characters, tensorflow_text's counts bytes
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        per_word = tokens.values  # [n_words, (wordpieces)]
        keep = per_word.with_values(tf.gather(tf.logical_not(too_long), per_word.value_rowids()))
        unk_id = tf.constant(self._ids["unknown_id"], tf.int64)
        unk = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.math.count_nonzero(too_long)], unk_id), tf.cast(too_long, tf.int64)
        )
        merged = tf.concat([tf.ragged.boolean_mask(per_word, keep), unk], axis=1)
        return tokens.with_values(merged)

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, strings):
        # special tokens written in the text keep their id, as transformers' added tokens do
        strings = tf.strings.regex_replace(strings, r"\x00", "")  # regex_split stops at NUL
        pieces = text.regex_split(strings, self._special_pattern, self._special_pattern)
        flat = pieces.flat_values
        hits = tf.equal(flat[:, None], self._special_tokens[None, :])
        is_special = tf.reduce_any(hits, axis=1)
        plain = self._wordpieces(tf.where(is_special, tf.constant(""), flat))  # [n_pieces, (words), (wp)]
        special_id = tf.boolean_mask(
            tf.gather(self._special_ids, tf.argmax(tf.cast(hits, tf.int32), axis=1)), is_special
        )
        special = tf.RaggedTensor.from_row_lengths(  # [n_pieces, (0 or 1 word), (1 wordpiece)]
            tf.RaggedTensor.from_row_lengths(special_id, tf.ones_like(special_id)), tf.cast(is_special, tf.int64)
        )
        per_piece = tf.concat([plain, special], axis=1)  # a piece is either plain text or one special token
        words = pieces.with_flat_values(per_piece).merge_dims(1, 2)
        return tf.cast(words, tf.int32)

    @tf.function(autograph=False, input_signature=[])
    def get_special_tokens_dict(self):
        return {k: tf.constant(v, tf.int32) for k, v in self._ids.items() if k != "unknown_id"}


def _round_robin(lengths, budget):
    """How many tokens of each of one or two segments text.RoundRobinTrimmer keeps: one at a
    time, the first segment first, skipping a segment that has run out."""
    if len(lengths) == 1:
        return [tf.minimum(lengths[0], budget)]
    first, second = lengths
    kept = tf.minimum(first, tf.maximum((budget + 1) // 2, budget - second))
    return [kept, tf.minimum(second, budget - kept)]


class BertPackInputs(tf.Module):
    """``bert_pack_inputs([segment, ...], seq_length)`` -> the encoder's input dict.

    Segments are int RaggedTensors [batch, (tokens)] or [batch, (words),
    (wordpieces)]; they are trimmed round-robin to fit seq_length with [CLS]
    and one [SEP] per segment, then padded to exactly seq_length.
    """

    def __init__(self, *, cls_id: int, sep_id: int, pad_id: int, default_seq_length: int):
        super().__init__(name="bert_pack_inputs")
        self._cls, self._sep, self._pad = int(cls_id), int(sep_id), int(pad_id)
        self._default = int(default_seq_length)

    @tf.function(autograph=False)
    def __call__(self, inputs, seq_length=DEFAULT_SEQ_LENGTH):
        segments = [s.merge_dims(-2, -1) if s.ragged_rank > 1 else s for s in inputs]
        segments = [tf.cast(s, tf.int32) for s in segments]
        seq_length = tf.cast(seq_length, tf.int32)
        if len(segments) > 2:  # not traced when saved; TF Hub's own trimmer and packer
            trimmed = text.RoundRobinTrimmer(max_seq_length=seq_length - len(segments) - 1).trim(segments)
            ids, type_ids = text.combine_segments(trimmed, start_of_sequence_id=self._cls, end_of_segment_id=self._sep)
            word_ids, mask = text.pad_model_inputs(ids, max_seq_length=seq_length, pad_value=self._pad)
            type_ids, _ = text.pad_model_inputs(type_ids, max_seq_length=seq_length, pad_value=0)
            return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}
        return self._pack(segments, seq_length)

    def _pack(self, segments, seq_length):
        """What RoundRobinTrimmer, combine_segments and pad_model_inputs give for one or two
        segments, as one scatter into [batch, seq_length]: their graphs take seconds to trace,
        and every signature is traced twice when saved."""
        batch = tf.cast(segments[0].nrows(), tf.int32)
        budget = tf.maximum(seq_length - len(segments) - 1, 0)
        kept = _round_robin([tf.cast(s.row_lengths(), tf.int32) for s in segments], budget)
        rows, cols, values = [tf.range(batch)], [tf.zeros([batch], tf.int32)], [tf.fill([batch], self._cls)]
        start = tf.ones([batch], tf.int32)  # where each row's current segment begins
        starts = []
        for segment, n in zip(segments, kept):
            row = tf.cast(segment.value_rowids(), tf.int32)
            place = tf.range(tf.size(row)) - tf.gather(tf.cast(segment.row_splits, tf.int32), row)
            keep = place < tf.gather(n, row)
            rows += [tf.boolean_mask(row, keep), tf.range(batch)]
            cols += [tf.boolean_mask(place + tf.gather(start, row), keep), start + n]
            values += [tf.boolean_mask(segment.flat_values, keep), tf.fill([batch], self._sep)]
            starts.append(start)
            start = start + n + 1
        rows, cols, values = tf.concat(rows, 0), tf.concat(cols, 0), tf.concat(values, 0)
        inside = cols < seq_length
        indices = tf.stack([tf.boolean_mask(rows, inside), tf.boolean_mask(cols, inside)], axis=1)
        word_ids = tf.tensor_scatter_nd_update(
            tf.fill([batch, seq_length], self._pad), indices, tf.boolean_mask(values, inside)
        )
        mask = tf.sequence_mask(start, seq_length, tf.int32)
        type_ids = tf.zeros_like(mask)
        if len(segments) == 2:  # the second segment and its [SEP]
            type_ids = mask * (1 - tf.sequence_mask(starts[1], seq_length, tf.int32))
        return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}

    def trace(self) -> None:
        """Trace the signatures that are saved: 1 or 2 segments, merged or by word."""
        length = tf.TensorSpec([], tf.int32)
        for n in (1, 2):
            for rank in (2, 3):
                spec = tf.RaggedTensorSpec([None] * rank, tf.int32, ragged_rank=rank - 1, row_splits_dtype=tf.int64)
                self.__call__.get_concrete_function([spec] * n, length)


class BertPreprocessor(tf.Module):
    """TF Hub-style BERT preprocessor built from a WordPiece vocabulary.

    >>> pre = BertPreprocessor(Path("model/vocab.txt"), lower_case=True)   # doctest: +SKIP
    >>> pre(tf.constant(["hello world"]))["input_word_ids"][0, :4].numpy() # doctest: +SKIP
    array([ 101, 7592, 2088,  102], dtype=int32)
    """

    def __init__(
        self,
        vocab_file: Path,
        *,
        lower_case: bool = True,
        strip_accents: bool | None = None,
        split_cjk: bool = True,
        special_tokens: Sequence[str] = SPECIAL_TOKENS,
        default_seq_length: int = DEFAULT_SEQ_LENGTH,
    ) -> None:
        super().__init__(name="bert_preprocessor")
        vocab = Path(vocab_file).read_text(encoding="utf-8").split("\n")
        if vocab and vocab[-1] == "":
            vocab.pop()
        index = {}
        for i, token in enumerate(vocab):
            index[token] = i  # of duplicate lines the last wins, as in transformers' load_vocab
        missing = [t for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]") if t not in index]
        if missing:
            raise ValueError(f"{vocab_file}: the vocabulary has no {', '.join(missing)}")
        self.vocab_file = tf.saved_model.Asset(str(vocab_file))
        initializer = tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(index)), tf.constant(list(index.values()), tf.int64)
        )
        self._table = tf.lookup.StaticHashTable(initializer, default_value=index["[UNK]"])
        specials = [t for t in special_tokens if t in index]
        ids = {
            "padding_id": index["[PAD]"],
            "start_of_sequence_id": index["[CLS]"],
            "end_of_segment_id": index["[SEP]"],
            "mask_id": index.get("[MASK]", index["[UNK]"]),
            "unknown_id": index["[UNK]"],
        }
        self.tokenize = Tokenize(
            self._table,
            lower_case=lower_case,
            strip_accents=strip_accents,
            split_cjk=split_cjk,
            special_tokens=specials,
            special_ids=[index[t] for t in specials],
            vocab_size=len(vocab),
            ids=ids,
        )
        self.bert_pack_inputs = BertPackInputs(
            cls_id=ids["start_of_sequence_id"],
            sep_id=ids["end_of_segment_id"],
            pad_id=ids["padding_id"],
            default_seq_length=default_seq_length,
        )
        self._default_seq_length = int(default_seq_length)

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, strings):
        return self.bert_pack_inputs([self.tokenize(strings)], self._default_seq_length)

    def save(self, out: Path) -> None:
        """Write the SavedModel with the default call as its serving signature."""
        self.bert_pack_inputs.trace()
        self.tokenize.get_special_tokens_dict.get_concrete_function()
        tf.saved_model.save(self, str(out), signatures={"serving_default": self.__call__.get_concrete_function()})
