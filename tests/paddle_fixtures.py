"""PaddleNLP folders as PaddleNLP users have them, written by PaddleNLP's own save_pretrained.

Runs in the Paddle environment (.venv-paddle), once per test session:

    .venv-paddle/bin/python tests/paddle_fixtures.py OUT_DIR

One tiny classifier per family PaddleNLP 2.8 has (hidden 32, 2 layers, 3 labels in
config.json, every matrix scaled up so the logits depend on the input, a random
non-zero head), with PaddleNLP's own tokenizer over a vocabulary trained here on
SST-2 text (nothing is downloaded). Both file kinds: model_state.pdparams (the
default) and model.safetensors (safe_serialization=True), one sharded of each.
A bfloat16 copy of the BERT one (bert-bf16, weights only). Beside the folders, reference.npz holds PaddleNLP's own token ids and logits
(its tokenizer, its forward) on TEXTS, the reference every backend is checked against.

DeBERTa-v2 is DeBERTa-v3-shaped (DEBERTA_V3, spm.model with [PAD] [CLS] [SEP] [UNK] first) and
kept unscaled: scaled, float32 alone moves its logits by 4e-5. PaddleNLP's softmax_with_mask
masks with -inf, so a padded batch's logits are NaN; its reference is PaddleNLP's plain forward
of each item alone, unpadded (no mask replaced).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
LABELS = ["negative", "neutral", "positive"]
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
VOCAB = 400
SHARPEN = 8.0
PAIRS = [("A man plays a guitar.", "A person makes music."), ("a great movie", "it was bad"), ("", "only the second")]
# name -> (PaddleNLP model class, config class, tokenizer kind, how save_pretrained writes the weights)
FIXTURES = {
    "bert": ("BertForSequenceClassification", "BertConfig", "BertTokenizer", "pdparams"),
    "ernie": ("ErnieForSequenceClassification", "ErnieConfig", "ErnieTokenizer", "safetensors"),
    "roberta-wordpiece": ("RobertaForSequenceClassification", "RobertaConfig", "RobertaChineseTokenizer", "pdparams"),
    "roberta-bpe": ("RobertaForSequenceClassification", "RobertaConfig", "RobertaBPETokenizer", "safetensors"),
    "electra": ("ElectraForSequenceClassification", "ElectraConfig", "ElectraTokenizer", "pdparams-sharded"),
    "albert": ("AlbertForSequenceClassification", "AlbertConfig", "AlbertEnglishTokenizer", "pdparams"),
    "distilbert": ("DistilBertForSequenceClassification", "DistilBertConfig", "DistilBertTokenizer", "safetensors-sharded"),
    "ernie-m": ("ErnieMForSequenceClassification", "ErnieMConfig", "ErnieMTokenizer", "pdparams"),
    "deberta-v2": ("DebertaV2ForSequenceClassification", "DebertaV2Config", "DebertaV2Tokenizer", "safetensors"),
}  # fmt: skip
# DeBERTa-v3's layout: log-bucket relative positions, shared keys, no absolute positions, no token types
DEBERTA_V3 = dict(
    relative_attention=True, position_buckets=16, max_relative_positions=-1, pos_att_type=["p2c", "c2p"],
    share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=0, hidden_act="gelu",
)  # fmt: skip


def texts() -> list[str]:
    sys.path.insert(0, str(REPO))
    from unified_nlp.benchdata import read_tsv, sst2_path

    dev, _ = read_tsv(sst2_path("dev"))
    return dev


def _wordpiece(corpus: list[str], out: Path) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=VOCAB, special_tokens=specials))
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    path = out / "vocab.txt"
    path.write_text("".join(t + "\n" for t, _ in vocab), encoding="utf-8")
    return path


def _bpe(corpus: list[str], out: Path) -> tuple[Path, Path]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    model = json.loads(tok.to_str())["model"]
    (out / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")
    return out / "vocab.json", out / "merges.txt"


def _sentencepiece(corpus: list[str], out: Path, name: str, specials: dict[str, tuple[int, str]], **extra) -> Path:
    import sentencepiece as spm

    text = out / "corpus.txt"
    text.write_text("\n".join(corpus), encoding="utf-8")
    options = {f"{k}_id": i for k, (i, _) in specials.items()} | {f"{k}_piece": p for k, (_, p) in specials.items()}
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(out / "spm"), vocab_size=VOCAB, model_type="unigram",
        character_coverage=1.0, num_threads=1, minloglevel=2, **options, **extra,
    )  # fmt: skip
    text.unlink()
    (out / "spm.vocab").unlink()
    path = out / name
    (out / "spm.model").rename(path)
    return path


def tokenizer_for(kind: str, corpus: list[str], work: Path):
    import paddlenlp.transformers as pt

    if kind in (
        "BertTokenizer",
        "ErnieTokenizer",
        "ElectraTokenizer",
        "DistilBertTokenizer",
        "RobertaChineseTokenizer",
    ):
        return getattr(pt, kind)(str(_wordpiece(corpus, work)), do_lower_case=True)
    if kind == "RobertaBPETokenizer":
        vocab, merges = _bpe(corpus, work)
        return pt.RobertaBPETokenizer(str(vocab), str(merges))
    if kind == "AlbertEnglishTokenizer":
        specials = {"pad": (0, "<pad>"), "unk": (1, "<unk>"), "bos": (2, "[CLS]"), "eos": (3, "[SEP]")}
        model = _sentencepiece(corpus, work, "spiece.model", specials, user_defined_symbols="[MASK]")
        from paddlenlp.transformers.albert.tokenizer import AlbertEnglishTokenizer

        return AlbertEnglishTokenizer(str(model))
    if kind == "DebertaV2Tokenizer":  # DeBERTa-v3's spm.model: [PAD] [CLS] [SEP] [UNK] first
        specials = {"pad": (0, "[PAD]"), "bos": (1, "[CLS]"), "eos": (2, "[SEP]"), "unk": (3, "[UNK]")}
        model = _sentencepiece(corpus, work, "spm.model", specials, user_defined_symbols="[MASK]")
        return pt.DebertaV2Tokenizer(str(model))
    if kind == "ErnieMTokenizer":  # sentencepiece.bpe.model + vocab.txt (its pieces in id order)
        specials = {"pad": (1, "[PAD]"), "unk": (0, "[UNK]"), "bos": (-1, "<s>"), "eos": (-1, "</s>")}
        model = _sentencepiece(corpus, work, "sentencepiece.bpe.model", specials, control_symbols="[CLS],[SEP],[MASK]")
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(model))
        (work / "vocab.txt").write_text("".join(sp.id_to_piece(i) + "\n" for i in range(sp.get_piece_size())), "utf-8")
        return pt.ErnieMTokenizer(vocab_file=str(work / "vocab.txt"), sentencepiece_model_file=str(model))
    raise ValueError(kind)


def _logits(model, arrays: dict[str, np.ndarray]) -> np.ndarray:
    import paddle

    with paddle.no_grad():
        out = model(**{k: paddle.to_tensor(v) for k, v in arrays.items()})
    return (out[0] if isinstance(out, (tuple, list)) else out).numpy()


def build(name: str, out: Path, corpus: list[str], sample: list[str], seed: int) -> dict[str, np.ndarray]:
    import paddle
    import paddlenlp.transformers as pt

    model_class, config_class, kind, weights = FIXTURES[name]
    work = Path(tempfile.mkdtemp(prefix=f"{name}-tok-"))
    tok = tokenizer_for(kind, corpus, work)
    options = dict(SIZES, vocab_size=len(tok), num_labels=len(LABELS), max_position_embeddings=256)
    options["id2label"] = dict(enumerate(LABELS))
    options["label2id"] = {label: i for i, label in enumerate(LABELS)}
    if kind in ("RobertaBPETokenizer", "ErnieMTokenizer"):
        options["pad_token_id"] = tok.pad_token_id
    if name == "ernie-m":
        options["max_position_embeddings"] = 258  # ERNIE-M numbers positions from 2
    if name == "albert":
        options["embedding_size"] = 16
    if name == "electra":
        options["embedding_size"] = 16
    if name == "roberta-wordpiece":
        options["type_vocab_size"] = 2
    if name == "deberta-v2":
        options |= DEBERTA_V3
    paddle.seed(seed)
    config = getattr(pt, config_class)(**options)
    model = getattr(pt, model_class)(config)
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for key, value in state.items():
        if value.dtype != paddle.float32:
            continue
        array = value.numpy()
        if key.startswith("classifier") or ".classifier" in key:
            array = rng.normal(0.0, 0.5, array.shape)  # a trained-looking head: nothing like its init
        elif array.ndim == 2 and name != "deberta-v2":  # sharpened, DeBERTa's logits move 4e-5 in float32
            array = array * SHARPEN
        value.set_value(array.astype(np.float32))
    model.eval()
    folder = out / name
    kwargs = {}
    if weights.startswith("safetensors"):
        kwargs["safe_serialization"] = True
    if weights.endswith("sharded"):
        kwargs["max_shard_size"] = "20KB"
    model.save_pretrained(str(folder), **kwargs)
    tok.save_pretrained(str(folder))
    tok = type(tok).from_pretrained(str(folder))  # as users have it: special tokens matched in text only then
    ref = {}
    for kind, items in (("single", [(t, None) for t in sample]), ("pair", PAIRS)):
        # one item at a time (PaddleNLP's tokenizers differ in their batch options), padded here
        encoded = [tok(a) if b is None else tok(a, text_pair=b) for a, b in items]
        width = max(len(e["input_ids"]) for e in encoded)
        ids = np.full((len(encoded), width), tok.pad_token_id, np.int64)
        mask, types = np.zeros_like(ids), np.zeros_like(ids)
        for i, e in enumerate(encoded):
            n = len(e["input_ids"])
            ids[i, :n], mask[i, :n] = e["input_ids"], 1
            types[i, :n] = e.get("token_type_ids") or [0] * n
        arrays = {"input_ids": ids, "attention_mask": mask}
        if name not in ("distilbert", "ernie-m"):  # the classes without token types
            arrays["token_type_ids"] = types
        if name == "deberta-v2":  # its softmax_with_mask masks with -inf: padding makes the logits NaN
            lengths = mask.sum(1)
            logits = np.concatenate(
                [_logits(model, {k: v[i : i + 1, :n] for k, v in arrays.items()}) for i, n in enumerate(lengths)]
            )
        else:
            logits = _logits(model, arrays)
        assert np.isfinite(logits).all(), (name, kind)
        ref |= {f"{name}/{kind}/input_ids": ids, f"{name}/{kind}/attention_mask": mask, f"{name}/{kind}/logits": logits}
        ref[f"{name}/{kind}/token_type_ids"] = types
    if name == "bert":  # a bfloat16 copy: its pdparams hold the weights as uint16
        model.to(dtype="bfloat16")
        model.save_pretrained(str(out / "bert-bf16"))
        ref |= {f"bert-bf16/{k}": v.astype("float32").numpy() for k, v in model.state_dict().items()}
    return ref


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    dev = texts()
    corpus, sample = dev, dev[:8]
    ref: dict[str, np.ndarray] = {}
    for seed, name in enumerate(FIXTURES):
        ref.update(build(name, out, corpus, sample, seed))
    np.savez(out / "reference.npz", **ref)
    (out / "texts.json").write_text(json.dumps({"texts": sample, "pairs": PAIRS, "labels": LABELS}), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
