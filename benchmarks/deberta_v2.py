"""DeBERTa-v2/v3 parity per backend, recorded: the two tiny checkpoints of tests/checkpoints.py
("v3": 2 x 16 log buckets, shared keys, no absolute positions, no token types; "v2":
absolute positions, token types, own position projections, factorised embedding, the
convolution), written by transformers 5's save_pretrained, on every backend, against
transformers' own DebertaV2ForSequenceClassification on the same folder.

    .venv/bin/python benchmarks/deberta_v2.py --out benchmarks/results/deberta-v2

Inputs: all 872 SST-2 dev sentences (padded batches of 32), the 436 pairs of consecutive
dev sentences, and unpadded texts of the first 1..79 words of the dev set (3 tokens to past
the 64 positions, truncated). Per backend: max
|logit difference| over all of them, argmax agreement on the dev sentences, or the error a
backend refuses the family with. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from recorded import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/checkpoints.py builds the fixtures

BACKENDS = ("huggingface", "onnxruntime", "paddlenlp", "tfhub")


def _batched(function, items, size=32):
    return np.concatenate([function(items[i : i + size]) for i in range(0, len(items), size)])


def measure(variant: str, folder: Path, texts: list[str], ladder: list[str]) -> list[dict]:
    import unified_nlp as un
    from tests.checkpoints import transformers_logits

    first, second = texts[0:-1:2], texts[1::2]
    want = transformers_logits(folder, texts, batch_size=32)
    want_pairs = transformers_logits(folder, first, second, batch_size=32)
    want_ladder = [transformers_logits(folder, [t]) for t in ladder]
    rows = []
    for backend in BACKENDS:
        row = {"variant": variant, "backend": backend}
        try:
            clf = un.load_classifier(folder, backend=backend)
        except un.UnifiedNLPError as e:
            rows.append({**row, "refused": str(e).splitlines()[0]})
            continue
        got = _batched(clf.logits, texts)
        got_pairs = np.concatenate(
            [
                clf.model(clf.tokenizer(first[i : i + 32], text_pair=second[i : i + 32])).logits
                for i in range(0, len(first), 32)
            ]
        )
        ladder_diff = max(float(np.abs(clf.logits([t]) - w).max()) for t, w in zip(ladder, want_ladder))
        row.update(
            texts=float(np.abs(got - want).max()),
            pairs=float(np.abs(got_pairs - want_pairs).max()),
            lengths=ladder_diff,
            max_abs_diff=max(float(np.abs(got - want).max()), float(np.abs(got_pairs - want_pairs).max()), ladder_diff),
            argmax_agreement=float((got.argmax(1) == want.argmax(1)).mean()),
        )
        rows.append(row)
        print(row, flush=True)
    return rows


def markdown(rows: list[dict], variants) -> list[str]:
    lines = ["| checkpoint | " + " | ".join(BACKENDS) + " |", "| --- |" + " --- |" * len(BACKENDS)]
    for variant in variants:
        cells = []
        for backend in BACKENDS:
            row = next(r for r in rows if r["variant"] == variant and r["backend"] == backend)
            cells.append("refused" if "refused" in row else f"{row['max_abs_diff']:.1e}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def run(family: str, variants: dict, out: Path) -> None:
    """Each variant (name -> config keys for make_checkpoint, None for the defaults) of a
    family, built tiny, measured on every backend; results.json and results.md in `out`.
    benchmarks/modernbert.py runs its family through this too."""
    from tests.checkpoints import make_checkpoint
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, _ = read_tsv(sst2_path("dev"))
    words = " ".join(texts).split()
    ladder = [" ".join(words[:n]) for n in range(1, 80)]  # 3 tokens to past the 64 positions
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant, config in variants.items():
            folder = make_checkpoint(family, Path(tmp) / variant, scale=8.0, config=config)
            rows += measure(variant, folder, texts, ladder)
    write_results(out, rows, markdown(rows, variants), texts=len(texts), pairs=len(texts) // 2, lengths=79)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "deberta-v2")
    args = parser.parse_args(argv)
    from tests.checkpoints import DEBERTA_V2_STYLE

    run("deberta-v2", {"v3": None, "v2": DEBERTA_V2_STYLE}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
