"""ModernBERT parity per backend, recorded: the two tiny checkpoints of tests/test_modernbert.py
("cls": first-token pooling, transformers' defaults, no biases but the classifier's; "mean":
mean pooling over the attention mask, every optional bias), 3 layers (global, local with a
window of 8 tokens, global), written by transformers 5's save_pretrained, on every backend,
against transformers' own ModernBertForSequenceClassification on the same folder.

    .venv/bin/python benchmarks/modernbert.py --out benchmarks/results/modernbert

Inputs and measures as benchmarks/deberta_v2.py (its `measure`): all 872 SST-2 dev sentences
(padded batches of 32), the 436 pairs of consecutive dev sentences, and unpadded texts of the
first 1..79 words of the dev set (3 tokens to past the 64 positions, far past the local
window). Per backend: max |logit difference| over all of them, argmax agreement on the dev
sentences, or the error a backend refuses the family with. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from deberta_v2 import BACKENDS, measure
from recorded import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/ builds the fixtures

VARIANTS = ("cls", "mean")


def markdown(rows: list[dict]) -> list[str]:
    lines = ["| checkpoint | " + " | ".join(BACKENDS) + " |", "| --- |" + " --- |" * len(BACKENDS)]
    for variant in VARIANTS:
        cells = []
        for backend in BACKENDS:
            row = next(r for r in rows if r["variant"] == variant and r["backend"] == backend)
            cells.append("refused" if "refused" in row else f"{row['max_abs_diff']:.1e}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "modernbert")
    args = parser.parse_args(argv)
    from tests.checkpoints import make_checkpoint
    from tests.test_modernbert import MEAN_STYLE
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, _ = read_tsv(sst2_path("dev"))
    words = " ".join(texts).split()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            config = MEAN_STYLE if variant == "mean" else None
            folder = make_checkpoint("modernbert", Path(tmp) / variant, scale=8.0, config=config)
            ladder = [" ".join(words[:n]) for n in range(1, 80)]  # 3 tokens to past the 64 positions
            rows += measure(variant, folder, texts, ladder)
    write_results(args.out, rows, markdown(rows), texts=len(texts), pairs=len(texts) // 2, lengths=79)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
