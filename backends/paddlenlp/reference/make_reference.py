"""Write the Hugging Face reference the PaddleNLP tests compare against.

The PaddleNLP environment cannot hold transformers 5 (nor, here, the `tokenizers`
package), so the reference outputs are computed once in the main environment
with the reference adapter (unified_nlp_huggingface) and committed:

    .venv/bin/python backends/paddlenlp/reference/make_reference.py

It writes hf_minilm_reference.safetensors next to this file: token ids and
truncation flags of SST-2 dev and of awkward texts (raw, and cleaned as the core
does before any tokenizer), SST-2 dev logits, and the
last hidden state of a small padded batch, decoded strings, and the losses of
three fine-tuning steps, for the default model (all-MiniLM-L6-v2 + the project's
sentiment head). The awkward texts themselves
are stored in the file's metadata, so the tests read the exact inputs used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from unified_nlp.benchdata import read_tsv, sst2_path
from unified_nlp.checkpoint import model_spec
from unified_nlp.inputs import clean_text
from unified_nlp.resolve import default_model_dir
from unified_nlp.weights import save_file

OUT = Path(__file__).with_name("hf_minilm_reference.safetensors")
LONG = 100_000  # characters in each long text

# Each item is a text, or {"repeat": s, "length": n}: s repeated and cut to n characters.
AWKWARD: list = [
    "",
    "   \t\n  ",
    "Café naïve résumé — Ångström, São Paulo, Zürich, crème brûlée",
    "ÀÉÎÕÜ ñ ç ß œ æ ø Đ ł ı İstanbul",
    "e\u0301 vs \u00e9, Z\u0324\u0354\u0367\u0311a\u0308\u0356\u032d lgo",
    "東京は日本の首都です。北京欢迎你！中文没有空格",
    "한국어 텍스트도 있습니다. カタカナとひらがな",
    "\U00020000\U0002a6d6\U0002b820\U0002b8ff\U0002b920\U0002ceaf\U0002f800 rare CJK extensions",
    "I love it 😀😂👍🏽 ❤️ 🇫🇷 👨\u200d👩\u200d👧 family",
    "hello😀world, price £100 + 5% = €105 ©2024 25°C x²+y² ½ µs ™",
    "مرحبا بالعالم، هذا نص عربي. \u200fשלום עולם\u200e and English",
    "ΟΔΟΣ ΚΑΙ ΛΟΓΟΣ ΣΊΣΥΦΟΣ Σ. ΑΣ",
    'Don\'t stop!!! ...wait?! (really) "quoted" — ‘smart’ “quotes” … «guillemets» ¿qué? ¡sí!',
    "[CLS] hello [SEP] [MASK] [cls] [UNK] [PAD]x",
    "a" * 150 + " " + "supercalifragilisticexpialidocious" * 4 + " pneumonoultramicroscopicsilicovolcanoconiosis",
    "3.14159 1,000,000 12:30pm 2024-01-31 #hashtag @user https://example.com/a?b=c&d=e mail@x.org",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝 ﬁne ﬂow Ⅻ ① ㈱ ＦＵＬＬＷＩＤＴＨ",
    "line1\nline2\tcol\r\nline3\u2028sep\u2029para\x85nel",
    "a\u00a0b\u2003c\u3000d\u202fe \ufeffbom \u00adsoft\u00adhyphen \ufffd replacement",
    "null\x00byte and \x07bell \x1b[31mansi",
    {"repeat": "The movie was great and the acting superb, ", "length": LONG},
    {"repeat": "字", "length": LONG},
    {"repeat": "x", "length": LONG},
]
CLEAR = ["This is a great movie!", "A dull, tedious and painfully unfunny film."]
# three train_step calls on SST-2 dev rows [16 * s, 16 * s + 16), this config, learning rate TRAIN_LR
TRAIN_CONFIG = {"weight_decay": 0.01, "max_grad_norm": 1.0, "dropout": 0.0, "freeze_encoder": False, "seed": 0}
TRAIN_LR, TRAIN_BATCH, TRAIN_STEPS = 1e-4, 16, 3


def expand(item) -> str:
    if isinstance(item, str):
        return item
    s = item["repeat"]
    return (s * (item["length"] // len(s) + 1))[: item["length"]]


def flat(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(x) for x in lists]).astype(np.int64)
    ids = np.concatenate([np.asarray(x, dtype=np.int32) for x in lists]) if lists else np.zeros(0, np.int32)
    return ids, offsets


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    import tokenizers
    import transformers
    from unified_nlp_huggingface import HFModel, HFTokenizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="canonical folder (default: the default model)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    folder = args.model or default_model_dir()
    spec = model_spec(folder)
    spec.update(num_labels=len(spec["labels"]), max_length=512)
    tok, model = HFTokenizer(folder, 512), HFModel(folder, spec)

    def ids_of(texts):
        enc = tok(texts)
        return [enc.input_ids[i, : enc.lengths[i]].tolist() for i in range(enc.num_texts)], enc.truncated

    sst2, sst2_labels = read_tsv(sst2_path("dev"))
    sst2_ids, _ = ids_of(sst2)
    awkward_ids, awkward_trunc = ids_of([expand(t) for t in AWKWARD])
    cleaned_ids, _ = ids_of([clean_text(expand(t)) for t in AWKWARD])  # as the core's pipeline feeds tokenizers
    enc = tok(sst2)
    logits = np.zeros((len(sst2), model.num_labels), np.float32)
    order = np.argsort(-enc.lengths, kind="stable")
    for b in range(0, len(order), 32):
        rows = order[b : b + 32]
        logits[rows] = model(enc.select(rows)).logits
    clear = tok(CLEAR)
    out = model(clear, output_hidden_states=True)
    awkward_enc = tok([expand(t) for t in AWKWARD])
    decoded = [tok.decode(awkward_enc.input_ids[i, : awkward_enc.lengths[i]]) for i in range(len(AWKWARD))]
    decoded_special = [tok.decode(enc.input_ids[i, : enc.lengths[i]], skip_special_tokens=False) for i in range(50)]

    model.start_training(TRAIN_CONFIG)
    losses = []
    for s in range(TRAIN_STEPS):
        rows = np.arange(s * TRAIN_BATCH, (s + 1) * TRAIN_BATCH)
        losses.append(model.train_step(enc.select(rows), np.asarray(sst2_labels)[rows], TRAIN_LR))
    model.end_training()
    trained = model.state_dict()

    a_ids, a_off = flat(awkward_ids)
    s_ids, s_off = flat(sst2_ids)
    c_ids, c_off = flat(cleaned_ids)
    tensors = {
        "sst2_ids": s_ids,
        "sst2_offsets": s_off,
        "sst2_logits": logits,
        "awkward_ids": a_ids,
        "awkward_offsets": a_off,
        "awkward_truncated": np.asarray(awkward_trunc, dtype=np.bool_),
        "awkward_cleaned_ids": c_ids,
        "awkward_cleaned_offsets": c_off,
        "clear_input_ids": clear.input_ids,
        "clear_attention_mask": clear.attention_mask,
        "clear_logits": out.logits,
        "clear_last_hidden_state": out.last_hidden_state,
        "clear_pooled": out.pooled,
        "train_losses": np.asarray(losses, dtype=np.float64),
        "train_head_weight": trained["head.weight"],
        "train_query_weight_rows": trained["encoder.layer.0.attention.self.query.weight"][:4],  # a sample
    }
    metadata = {
        "awkward_texts": json.dumps(AWKWARD, ensure_ascii=True),
        "clear_texts": json.dumps(CLEAR),
        "decoded_awkward": json.dumps(decoded, ensure_ascii=True),
        "decoded_sst2_with_special": json.dumps(decoded_special, ensure_ascii=True),
        "train": json.dumps(
            {"config": TRAIN_CONFIG, "learning_rate": TRAIN_LR, "batch": TRAIN_BATCH, "steps": TRAIN_STEPS}
        ),
        "vocab_sha256": sha256(folder / "vocab.txt"),
        "encoder_sha256": sha256(folder / "model.safetensors"),
        "head_sha256": sha256(folder / "head.safetensors"),
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }
    save_file(tensors, args.out, metadata=metadata)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {len(sst2)} SST-2 dev, {len(AWKWARD)} awkward texts")


if __name__ == "__main__":
    main()
