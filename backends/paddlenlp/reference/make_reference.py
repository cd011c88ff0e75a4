"""Write the Hugging Face reference the PaddleNLP in-process tests compare against.

The PaddleNLP environment cannot hold transformers 5 (nor, here, the `tokenizers`
package), so the reference outputs are computed once in the main environment
with transformers and torch themselves (AutoTokenizer, AutoModel, a torch Linear
head, torch's AdamW; no unified_nlp backend) and committed:

    .venv/bin/python backends/paddlenlp/reference/make_reference.py

It writes hf_minilm_reference.safetensors next to this file: token ids and
truncation flags of SST-2 dev and of awkward texts (raw, and cleaned as the core
does before any tokenizer), SST-2 dev logits, and the
last hidden state of a small padded batch, decoded strings, and the losses of
three fine-tuning steps, for the default model (all-MiniLM-L6-v2 + the project's
sentiment head: mean pooling over the attention mask, then a linear layer). The
awkward texts themselves are stored in the file's metadata, so the tests read the
exact inputs used, and the sha256 of the model's files, which
tests/test_paddlenlp_inprocess.py checks before it compares anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from unified_nlp.benchdata import read_tsv, sst2_path
from unified_nlp.inputs import clean_text
from unified_nlp.resolve import default_model_dir
from unified_nlp.weights import save_file

OUT = Path(__file__).with_name("hf_minilm_reference.safetensors")
LONG = 100_000  # characters in each long text
MAX_LENGTH = 512  # the default model's

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


def _default_model(folder: Path):
    """The default model in plain torch: transformers' encoder, the mean of its last hidden
    state over the attention mask, head.safetensors as a torch Linear layer."""
    import torch
    import transformers
    from safetensors.torch import load_file as load_torch

    encoder = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    tensors = load_torch(folder / "head.safetensors")
    head = torch.nn.Linear(encoder.config.hidden_size, tensors["weight"].shape[0])
    head.load_state_dict({"weight": tensors["weight"].float(), "bias": tensors["bias"].float()})

    def forward(batch):
        states = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1)
        return head(pooled), states, pooled

    return encoder, head, forward


def _train(encoder, head, forward, batches, labels) -> list[float]:
    """TRAIN_STEPS of fine-tuning as fit defines it, in plain torch: AdamW, decay on all but
    biases and LayerNorm, gradients clipped to TRAIN_CONFIG's norm, no dropout (eval mode)."""
    import torch

    named = [("head." + n, p) for n, p in head.named_parameters()] + list(encoder.named_parameters())
    exempt = [n.endswith("bias") or "LayerNorm" in n for n, _ in named]
    groups = [
        {"params": [p for (_, p), e in zip(named, exempt) if not e], "weight_decay": TRAIN_CONFIG["weight_decay"]},
        {"params": [p for (_, p), e in zip(named, exempt) if e], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=TRAIN_LR, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for batch, target in zip(batches, labels):
        loss = torch.nn.functional.cross_entropy(forward(batch)[0], torch.as_tensor(target, dtype=torch.int64))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], TRAIN_CONFIG["max_grad_norm"])
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _metadata(folder: Path, decoded: list[str], decoded_special: list[str]) -> dict[str, str]:
    """The inputs and settings the tests read back, and what the reference was made from."""
    import tokenizers
    import torch
    import transformers

    return {
        "made_with": "transformers AutoTokenizer + AutoModel, mean pooling and head in torch, torch AdamW",
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
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    import torch
    import transformers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="canonical folder (default: the default model)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    folder = args.model or default_model_dir()
    tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    encoder, head, forward = _default_model(folder)

    def batch_of(texts):
        return tok(list(texts), padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")

    def ids_of(texts):  # truncated: the text has more tokens than MAX_LENGTH
        full = tok(texts, truncation=False, verbose=False)["input_ids"]
        return tok(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"], [len(f) > MAX_LENGTH for f in full]

    sst2, sst2_labels = read_tsv(sst2_path("dev"))
    sst2_ids, _ = ids_of(sst2)
    awkward = [expand(t) for t in AWKWARD]
    awkward_ids, awkward_trunc = ids_of(awkward)
    cleaned_ids, _ = ids_of([clean_text(t) for t in awkward])  # as the core's pipeline feeds tokenizers
    logits = np.zeros((len(sst2), head.out_features), np.float32)
    order = np.argsort(-np.asarray([len(r) for r in sst2_ids]), kind="stable")
    with torch.no_grad():
        for b in range(0, len(order), 32):
            rows = order[b : b + 32]
            logits[rows] = forward(batch_of(sst2[i] for i in rows))[0].numpy()
        clear = batch_of(CLEAR)
        clear_logits, clear_states, clear_pooled = (t.numpy() for t in forward(clear))
    decoded = [tok.decode(ids, skip_special_tokens=True) for ids in awkward_ids]
    decoded_special = [tok.decode(ids, skip_special_tokens=False) for ids in sst2_ids[:50]]

    steps = [range(s * TRAIN_BATCH, (s + 1) * TRAIN_BATCH) for s in range(TRAIN_STEPS)]
    losses = _train(
        encoder,
        head,
        forward,
        [batch_of(sst2[i] for i in r) for r in steps],
        [[sst2_labels[i] for i in r] for r in steps],
    )

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
        "clear_input_ids": clear["input_ids"].numpy(),
        "clear_attention_mask": clear["attention_mask"].numpy(),
        "clear_logits": clear_logits,
        "clear_last_hidden_state": clear_states,
        "clear_pooled": clear_pooled,
        "train_losses": np.asarray(losses, dtype=np.float64),
        "train_head_weight": head.weight.detach().numpy().copy(),
        "train_query_weight_rows": encoder.encoder.layer[0].attention.self.query.weight.detach().numpy()[:4].copy(),
    }
    metadata = _metadata(folder, decoded, decoded_special)
    save_file(tensors, args.out, metadata=metadata)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {len(sst2)} SST-2 dev, {len(AWKWARD)} awkward texts")


if __name__ == "__main__":
    main()
