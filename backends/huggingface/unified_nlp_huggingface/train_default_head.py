"""Reproduce the default model's sentiment head (unified_nlp/assets/default_head.safetensors).

Frozen all-MiniLM-L6-v2 encoder -> mean pooling over the attention mask ->
multinomial logistic regression (L2, full-batch L-BFGS) on SST-2 train rows.

    python -m unified_nlp_huggingface.train_default_head --rows 67349 --l2 1e-4

Deterministic: the rows are the first --rows of a fixed permutation (seed 0).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    DEFAULT_HEAD,
    DEFAULT_SPEC,
    ModelSpec,
    batches_by_length,
    minilm_dir,
    read_tsv,
    save_file,
    sst2_path,
)

from . import HFModel, HFTokenizer

LABELS = ["NEGATIVE", "POSITIVE"]


def embed(texts: list[str], tokenizer: HFTokenizer, model: HFModel, batch_size: int = 128) -> np.ndarray:
    enc = tokenizer(texts)
    out = np.zeros((len(texts), model.head.in_features), dtype=np.float32)
    for rows in tqdm(list(batches_by_length(enc.lengths, batch_size)), desc="embedding", unit="batch"):
        out[rows] = model(enc.select(rows), output_hidden_states=True).pooled
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    xt, yt = torch.from_numpy(x).double(), torch.from_numpy(y)
    w = torch.zeros((len(LABELS), x.shape[1]), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(LABELS), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=500, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w.T + b, yt) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().float().numpy(), b.detach().float().numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=67349, help="SST-2 train rows to use (max 67,349)")
    parser.add_argument("--l2", type=float, default=1e-4, help="L2 penalty on the head's weights")
    parser.add_argument("--out", type=Path, default=DEFAULT_HEAD)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    encoder = minilm_dir()
    spec = ModelSpec(labels=tuple(LABELS), fresh_head=True, max_length=512, head="mean", architecture="bert")
    tokenizer, model = HFTokenizer(encoder, 512), HFModel(encoder, spec)
    train_texts, train_y = read_tsv(sst2_path("train"))
    pick = np.random.default_rng(0).permutation(len(train_texts))[: args.rows]
    x = embed([train_texts[i] for i in pick], tokenizer, model)
    w, b = fit_logistic(x, np.asarray(train_y)[pick], args.l2)

    dev_texts, dev_y = read_tsv(sst2_path("dev"))
    dev_x = embed(dev_texts, tokenizer, model)
    accuracy = float(((dev_x @ w.T + b).argmax(1) == np.asarray(dev_y)).mean())
    save_file({"weight": w, "bias": b}, args.out, metadata={"rows": str(args.rows), "l2": str(args.l2)})
    if args.out == DEFAULT_HEAD:
        DEFAULT_SPEC.write_text(
            json.dumps(
                {
                    "format": CANONICAL_FORMAT,
                    "architecture": "bert",
                    "labels": LABELS,
                    "pooling": "mean",
                    "max_length": 512,
                },
                indent=2,
            )
            + "\n"
        )
    print(f"rows={args.rows} l2={args.l2} SST-2 dev accuracy={accuracy:.4f} ({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
