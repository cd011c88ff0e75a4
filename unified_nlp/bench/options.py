"""Command-line options of `unified-nlp bench` (also used by benchmarks/run.py)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backends", default=None, help="comma-separated backend names (default: every known one)")
    p.add_argument("--model", default="default", help="'default' or a model folder")
    p.add_argument(
        "--batch-sizes",
        default=None,
        help="comma-separated batch sizes for throughput (default 1,8,32,128; --quick: 1,32)",
    )
    p.add_argument("--max-length", type=int, default=None, help="truncate texts to this many tokens")
    p.add_argument(
        "--data", default=None, help="TSV (sentence<TAB>label, gives accuracy) or one text per line; default SST-2 dev"
    )
    p.add_argument("--repeat", type=int, default=None, help="timed passes per measurement (default 3; --quick: 1)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads for every framework (default: $OMP_NUM_THREADS, else the cores this process may use)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="folder for JSON, CSV, Markdown and PNGs (default: a new bench-results/YYYYmmdd-HHMMSS/ "
        "in the current folder; an existing folder's files of the same names are replaced)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a short run (about a minute on 2 cores): 64 texts spread over the data, batch sizes 1,32, one "
        "timed pass, a short matmul ceiling, no transformers-pipeline row; for a check, not for figures",
    )
    p.add_argument("--no-reference", action="store_true", help="skip the ceiling, raw-torch and pipeline rows")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.add_argument("--texts", type=int, default=None, help="use only the first N texts")
    p.add_argument(
        "--pairs",
        action="store_true",
        help="--data holds sentence pairs (sentence1<TAB>sentence2<TAB>label, or text<TAB>text_pair lines)",
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds per target process (default 900)")
