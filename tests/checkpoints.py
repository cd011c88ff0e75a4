"""Fixture checkpoints as users have them: written by transformers' own save_pretrained.

One tiny random classifier per architecture (2 layers, hidden 32), with a tokenizer
of the architecture's family (WordPiece, byte-level BPE, Unigram) trained here on
SST-2 text with the `tokenizers` package, so nothing is downloaded. Built once per
test session into a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

ARCHITECTURES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra", "albert", "ernie")
LABELS = ("negative", "neutral", "positive")
_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
_VOCAB = 600
# DeBERTa-v2 (not v3): absolute positions, token types, own position projections, no buckets
# (relative positions up to max_relative_positions), a factorised embedding and the convolution
DEBERTA_V2_STYLE = dict(
    position_biased_input=True,
    type_vocab_size=2,
    share_att_key=False,
    position_buckets=-1,
    norm_rel_ebd="none",
    embedding_size=16,
    conv_kernel_size=3,
    conv_act="gelu",
)
SPREAD = 100  # assert_parity: a reference must vary across inputs by this many tolerances


def _corpus() -> list[str]:
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, _ = read_tsv(sst2_path("dev"))
    return texts + ["A man plays a guitar.", "A person makes music.", "Café naïve 日本語 😀"]


def _wordpiece(corpus, cls_name: str = "BertTokenizer", lowercase: bool = True, size: int = _VOCAB):
    import transformers
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=size, special_tokens=specials))
    return getattr(transformers, cls_name)(vocab=tok.get_vocab(), do_lower_case=lowercase)


def _bpe(corpus, size: int = _VOCAB):
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(
        vocab_size=size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    model = json.loads(tok.to_str())["model"]
    return transformers.RobertaTokenizer(
        vocab=model["vocab"], merges=[tuple(m) if isinstance(m, list) else tuple(m.split()) for m in model["merges"]]
    )


def _modernbert_bpe(corpus, size: int = _VOCAB):
    """As ModernBERT ships its tokenizer: byte-level BPE in tokenizer.json, BERT's specials
    around it ([CLS] A [SEP] B [SEP]), no token types handed to the model."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=size, special_tokens=specials, initial_alphabet=alphabet)
    )
    cls, sep = ("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1", special_tokens=[cls, sep]
    )
    names = dict(unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]")
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, model_input_names=["input_ids", "attention_mask"], **names
    )


def _unigram(corpus, specials, cls, unk: str = "<unk>", size: int = _VOCAB):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(corpus, trainers.UnigramTrainer(vocab_size=size, special_tokens=specials, unk_token=unk))
    vocab = [tuple(x) for x in json.loads(tok.to_str())["model"]["vocab"]]
    return cls(vocab=vocab)


def tokenizer_for(arch: str, corpus, size: int = _VOCAB):
    """A tokenizer of `size` entries trained on `corpus`, of the kind `arch`'s checkpoints ship."""
    import transformers

    if arch in ("bert", "ernie"):  # ERNIE checkpoints on the Hub use BERT's tokenizer
        return _wordpiece(corpus, size=size)
    if arch in ("distilbert", "electra"):
        return _wordpiece(corpus, "DistilBertTokenizer" if arch == "distilbert" else "ElectraTokenizer", size=size)
    if arch == "roberta":
        return _bpe(corpus, size)
    if arch == "xlm-roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        return _unigram(corpus, specials, transformers.XLMRobertaTokenizer, size=size)
    if arch == "deberta-v2":  # DebertaV2Tokenizer: a SentencePiece Unigram model with BERT-style specials
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        return _unigram(corpus, specials, transformers.DebertaV2Tokenizer, unk="[UNK]", size=size)
    if arch == "modernbert":
        return _modernbert_bpe(corpus, size)
    return _unigram(corpus, ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], transformers.AlbertTokenizer, size=size)


def config_for(arch: str, tokenizer, num_labels: int, problem_type: str | None, overrides=None):
    import transformers

    labels = LABELS if num_labels == 3 else tuple(f"label_{i}" for i in range(num_labels))
    common = dict(
        vocab_size=len(tokenizer),
        num_labels=num_labels,
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=64,
    )
    if problem_type:
        common["problem_type"] = problem_type
    common.update(overrides or {})
    if arch == "deberta-v2":  # as DeBERTa-v3: relative attention in 2 x 16 log buckets, shared keys, no
        # absolute positions, no token types (DEBERTA_V2_STYLE: the v2 variants of all four)
        v3 = dict(relative_attention=True, position_buckets=16, pos_att_type=["p2c", "c2p"], share_att_key=True)
        v3 |= dict(norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=0, max_relative_positions=-1)
        return transformers.DebertaV2Config(**{**_SIZES, **v3, **common})
    if arch == "modernbert":  # 3 layers: global, local (a window of 8 tokens: 4 each side), global
        ids = {f"{k}_token_id": tokenizer.convert_tokens_to_ids(t) for k, t in (("cls", "[CLS]"), ("sep", "[SEP]"))}
        sizes = dict(_SIZES, num_hidden_layers=3, global_attn_every_n_layers=2, local_attention=8)
        ids |= {"bos_token_id": ids["cls_token_id"], "eos_token_id": ids["sep_token_id"]}
        return transformers.ModernBertConfig(**{**sizes, **ids, **common})
    if arch == "distilbert":
        return transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37, **common)
    if arch in ("roberta", "xlm-roberta"):
        common["max_position_embeddings"] = 64 + tokenizer.pad_token_id + 1
        cls = transformers.RobertaConfig if arch == "roberta" else transformers.XLMRobertaConfig
        return cls(**_SIZES, type_vocab_size=1, **common)
    if arch == "electra":
        return transformers.ElectraConfig(**_SIZES, embedding_size=16, **common)
    if arch == "albert":
        return transformers.AlbertConfig(**_SIZES, embedding_size=16, **common)
    if arch == "ernie":
        return transformers.ErnieConfig(**_SIZES, use_task_id=True, task_type_vocab_size=3, **common)
    return transformers.BertConfig(**_SIZES, **common)


def make_checkpoint(
    arch: str,
    out: Path,
    *,
    num_labels: int = 3,
    problem_type: str | None = None,
    seed: int = 0,
    safe_serialization: bool = True,
    corpus: list[str] | None = None,
    scale: float = 1.0,
    config: dict | None = None,
    vocab_size: int = _VOCAB,
    max_length: int = 64,
) -> Path:
    """Write a tiny random `arch` classifier with transformers' save_pretrained at `out`
    (with safe_serialization=False: a pytorch_model.bin instead, see to_pytorch_bin).
    `scale` multiplies every matrix: at N(0, 0.02) a tiny model's logits vary across
    inputs by about 1e-4, so scale=8 makes a comparison at 1e-5 see which input it got
    (assert_parity checks that it can). `config`: config keys to set (DEBERTA_V2_STYLE)."""
    import torch
    import transformers

    corpus = corpus or _corpus()
    tokenizer = tokenizer_for(arch, corpus, vocab_size)
    tokenizer.model_max_length = max_length
    config = config_for(arch, tokenizer, num_labels, problem_type, config)
    torch.manual_seed(seed)
    model = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    with torch.no_grad():  # random biases and LayerNorms too, so that a wrong map cannot hide
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    scale_matrices(model, scale)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if not safe_serialization:
        to_pytorch_bin(out)
    return out


def assert_parity(got, want, tol: float, what: str = "logits") -> None:
    """max |got - want| <= tol, where `want` (one row per input) varies across its inputs
    by at least SPREAD x tol: else a wrong input or a wrong activation fits within the
    tolerance (the checkpoint was built at scale 1, say, not make_checkpoint's scale=8)."""
    import numpy as np

    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    spread = float(np.ptp(want, axis=0).max())
    assert spread >= SPREAD * tol, (
        f"{what}: the reference varies across its {len(want)} inputs by {spread:.1e} only, under {SPREAD} x the "
        f"tolerance {tol:.0e}, so the comparison cannot tell which input it got: build the checkpoint with scale=8"
    )
    diff = float(np.abs(got - want).max())
    assert diff <= tol, f"{what}: max |diff| {diff:.1e} > {tol:.0e}"


def transformers_logits(folder: Path, texts, text_pair=None, batch_size: int | None = None):
    """transformers' own forward on `folder` (AutoTokenizer, AutoModelForSequenceClassification,
    padded and truncated as a transformers user runs them): the direct reference of a parity test.
    With `batch_size`, consecutive batches of that many (each padded to its longest), one model load.

    >>> assert_parity(clf.logits(TEXTS), transformers_logits(folder, TEXTS), 1e-5)  # doctest: +SKIP
    """
    import numpy as np
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    texts = list(texts)
    size = batch_size or max(len(texts), 1)
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), size):
            pair = None if text_pair is None else list(text_pair[i : i + size])
            batch = tok(texts[i : i + size], pair, padding=True, truncation=True, return_tensors="pt")
            out.append(model(**batch).logits.numpy())
    return np.concatenate(out)


def scale_matrices(model, factor: float) -> None:
    """Multiply every matrix of a torch model by `factor` (see make_checkpoint's `scale`)."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(factor)


def to_pytorch_bin(folder: Path) -> Path:
    """Replace model.safetensors by the pytorch_model.bin that torch.save writes, as
    transformers < 5 and most older Hub models have it (transformers 5 writes only safetensors)."""
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def minilm_classifier(out: Path, seed: int = 0) -> Path:
    """The real all-MiniLM-L6-v2 weights as a BertForSequenceClassification (its own
    pooler, a seeded random 2-label classifier), written by save_pretrained."""
    import torch
    import transformers

    from unified_nlp.resolve import minilm_dir

    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification.from_pretrained(
        minilm_dir(), num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}
    ).eval()
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(out)
    return out


_LOADED: dict = {}


def loaded(folder: Path, backend: str):
    """`un.load_classifier(folder, backend=backend)`, loaded once per test session (the
    family tests share classifiers across their parity checks)."""
    from .conftest import require

    require(backend)
    key = (str(folder), backend)
    if key not in _LOADED:
        import unified_nlp as un

        _LOADED[key] = un.load_classifier(folder, backend=backend)
    return _LOADED[key]
