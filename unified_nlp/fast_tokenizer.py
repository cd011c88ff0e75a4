"""A canonical folder's own tokenizer, run by the framework-free `tokenizers` package.

Every backend that loads a canonical folder tokenizes with the folder's
``tokenizer.json`` through this class (the huggingface adapter hands it the JSON
that transformers' fast tokenizer builds), so token ids are identical on every
backend for every family: WordPiece, byte-level BPE and SentencePiece (Unigram).
Exports carry their ecosystem's own tokenizer besides (a TF Hub preprocessor,
PaddleNLP tokenizer files), checked against this one.

The `tokenizers` package is imported when a tokenizer is built, never by
``import unified_nlp``.

>>> tok = FastTokenizer.from_folder(Path("my-roberta"), max_length=512)   # doctest: +SKIP
>>> tok(["A man plays."], text_pair=["Music."]).input_ids                  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BackendNotInstalledError, InvalidModelError
from .folder import read_json
from .protocols import Encoding
from .tokens import encoding_from_rows


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise BackendNotInstalledError(
            "the `tokenizers` package is needed to tokenize this model: pip install tokenizers"
        ) from None
    return tokenizers


class FastTokenizer:
    """Texts (and pairs) in, an `Encoding` out, from a tokenizer.json string.

    `token_types`: hand the model segment ids (0 for the first text, 1 for the
    second); when False they stay 0, as transformers' RoBERTa tokenizer does.
    """

    def __init__(self, tokenizer_json: str, *, pad_id: int, max_length: int, token_types: bool = True) -> None:
        tokenizers = _tokenizers()
        try:
            probe = tokenizers.Tokenizer.from_str(tokenizer_json)
        except Exception as e:  # the Rust core reports a bad file as a plain Exception
            raise InvalidModelError(f"tokenizer.json cannot be read by the tokenizers package ({e})") from None
        self._json = tokenizer_json
        self._pad_id = int(pad_id)
        self._types = bool(token_types)
        self.max_length = int(max_length)
        self.vocab_size = int(probe.get_vocab_size(with_added_tokens=True))
        self._decoder = probe
        self._by_length: dict[int | None, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, path: Path, max_length: int, token_types: bool = True) -> FastTokenizer:
        """The tokenizer of a canonical folder: its tokenizer.json, or a BERT WordPiece
        tokenizer built from vocab.txt (and tokenizer_config.json's do_lower_case)."""
        path = Path(path)
        options = read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").is_file() else {}
        if (path / "tokenizer.json").is_file():
            text = (path / "tokenizer.json").read_text(encoding="utf-8")
        elif (path / "vocab.txt").is_file():
            text = _wordpiece_json(path / "vocab.txt", bool(options.get("do_lower_case", True)))
        else:
            raise InvalidModelError(
                f"{path}: no tokenizer.json (nor a WordPiece vocab.txt); load the folder once with transformers' "
                "AutoTokenizer and save_pretrained it to write tokenizer.json"
            )
        pad = options.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        tok = cls(text, pad_id=0, max_length=max_length, token_types=token_types)
        pad_id = tok._decoder.token_to_id(pad) if isinstance(pad, str) else None
        tok._pad_id = int(pad_id if pad_id is not None else _pad_from_json(text))
        return tok

    def _rust(self, max_length: int | None):
        # one configured copy per truncation length: enable_truncation mutates, encode does not
        with self._lock:
            tok = self._by_length.get(max_length)
            if tok is None:
                tok = _tokenizers().Tokenizer.from_str(self._json)
                tok.no_padding()
                if max_length is None:
                    tok.no_truncation()
                else:
                    tok.enable_truncation(max_length)
                self._by_length[max_length] = tok
            return tok

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
        items = list(texts) if text_pair is None else list(zip(texts, text_pair, strict=True))
        encs = self._rust(limit if truncation else None).encode_batch(items)
        return encoding_from_rows(
            [e.ids for e in encs],
            pad_id=self._pad_id,
            padding=padding,
            limit=limit,
            type_rows=[e.type_ids for e in encs] if self._types else None,
            truncated=[bool(e.overflowing) for e in encs],
        )

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        return self._decoder.decode([int(i) for i in np.asarray(ids).ravel()], skip_special_tokens=skip_special_tokens)


def _pad_from_json(text: str) -> int:
    import json

    padding = json.loads(text).get("padding") or {}
    return int(padding.get("pad_id", 0)) if isinstance(padding, dict) else 0


def _wordpiece_json(vocab: Path, lowercase: bool) -> str:
    """BERT's tokenizer for a folder with only vocab.txt, as transformers builds it."""
    tokenizers = _tokenizers()
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    tokens = vocab.read_text(encoding="utf-8").splitlines()
    ids = {t: i for i, t in enumerate(tokens)}
    for special in ("[CLS]", "[SEP]", "[UNK]", "[PAD]"):
        if special not in ids:
            raise InvalidModelError(f"{vocab}: no {special} token; not a BERT WordPiece vocabulary")
    tok = tokenizers.Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    cls, sep = ids["[CLS]"], ids["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.add_special_tokens([t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t in ids])
    return tok.to_str()
