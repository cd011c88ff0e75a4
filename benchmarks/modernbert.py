"""ModernBERT parity per backend, recorded: the two tiny checkpoints of tests/test_modernbert.py
("cls": first-token pooling, transformers' defaults, no biases but the classifier's; "mean":
mean pooling over the attention mask, every optional bias), 3 layers (global, local with a
window of 8 tokens, global), written by transformers 5's save_pretrained, on every backend,
against transformers' own ModernBertForSequenceClassification on the same folder.

    .venv/bin/python benchmarks/modernbert.py --out benchmarks/results/modernbert

Inputs and measures as benchmarks/deberta_v2.py (its `run`): all 872 SST-2 dev sentences
(padded batches of 32), the 436 pairs of consecutive dev sentences, and unpadded texts of the
first 1..79 words of the dev set (3 tokens to past the 64 positions, far past the local
window). Per backend: max |logit difference| over all of them, argmax agreement on the dev
sentences, or the error a backend refuses the family with. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deberta_v2 import run

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/ builds the fixtures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "modernbert")
    args = parser.parse_args(argv)
    from tests.test_modernbert import MEAN_STYLE

    run("modernbert", {"cls": None, "mean": MEAN_STYLE}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
