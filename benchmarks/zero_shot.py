"""Zero-shot classification per family and backend against transformers' own pipeline, recorded.

    .venv/bin/python benchmarks/zero_shot.py --out benchmarks/results/zero-shot

For each family of --families: a tiny NLI classifier (2 layers, hidden 32, labels in MNLI's
order contradiction / neutral / entailment, matrices scaled by 8 so that scores vary),
written by transformers 5's save_pretrained (tests/checkpoints.py). The first --texts SST-2
dev sentences against four candidate labels, hypothesis "This review is {}.", single-label
(softmax of the entailment logit over the candidates) and multi-label (entailment against
contradiction per candidate): `un.zero_shot` on every backend against transformers'
ZeroShotClassificationPipeline on the same folder. Per row: max |score difference| and the
decisions agreeing (the top label; multi-label: each label's score above 0.5), or the error a
backend refuses the family with. Writes results.json
and results.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from recorded import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/checkpoints.py builds the NLI folders

BACKENDS = ("huggingface", "tfhub", "paddlenlp", "onnxruntime")
MNLI = {0: "contradiction", 1: "neutral", 2: "entailment"}
CANDIDATES = ["positive", "negative", "boring", "funny"]
TEMPLATE = "This review is {}."


def scores(results: list[dict]) -> np.ndarray:
    """[texts, candidates] in CANDIDATES' order, from the pipeline's or zero_shot's best-first dicts."""
    return np.array([[dict(zip(r["labels"], r["scores"]))[c] for c in CANDIDATES] for r in results])


def measure(family: str, folder: Path, texts: list[str]) -> list[dict]:
    import transformers

    import unified_nlp as un

    pipe = transformers.pipeline("zero-shot-classification", model=str(folder), device="cpu")
    want = {
        multi: scores(pipe(texts, candidate_labels=CANDIDATES, hypothesis_template=TEMPLATE, multi_label=multi))
        for multi in (False, True)
    }
    rows = []
    for backend in BACKENDS:
        row = {"family": family, "backend": backend}
        try:
            clf = un.load_classifier(folder, backend=backend)
        except un.UnifiedNLPError as exc:
            rows.append(row | {"refused": str(exc).splitlines()[0][:160]})
            continue
        for multi, name in ((False, "single_label"), (True, "multi_label")):
            got = scores(un.zero_shot(texts, CANDIDATES, TEMPLATE, multi, model=clf))
            row[f"{name}_max_abs_score_diff"] = float(np.abs(got - want[multi]).max())
            # the decision: the top label of each text; multi-label: each (text, label) above 0.5
            # (a saturated model ties several labels at 1.0, where a top label means nothing)
            same = (got > 0.5) == (want[multi] > 0.5) if multi else got.argmax(1) == want[multi].argmax(1)
            row[f"{name}_decisions_agree"] = round(float(same.mean()), 4)
        rows.append(row)
    return rows


def table(rows: list[dict], texts: int) -> list[str]:
    lines = [
        f"{texts} SST-2 dev sentences x {len(CANDIDATES)} candidate labels; max |score difference| against "
        "transformers' ZeroShotClassificationPipeline (decisions agreeing: the top label; multi-label, each "
        "label's score above 0.5)",
        "",
        "| family | backend | single-label | multi-label |",
        "| --- | --- | ---: | ---: |",
    ]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['family']} | {r['backend']} | refused: {r['refused']} | |")
            continue
        cells = [
            f"{r[f'{k}_max_abs_score_diff']:.1e} ({100 * r[f'{k}_decisions_agree']:.0f}%)"
            for k in ("single_label", "multi_label")
        ]
        lines.append(f"| {r['family']} | {r['backend']} | {cells[0]} | {cells[1]} |")
    return lines


def main() -> None:
    from tests.checkpoints import make_checkpoint
    from unified_nlp.benchdata import read_tsv, sst2_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/zero-shot")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--families", default="bert,roberta,deberta-v2,modernbert")
    args = parser.parse_args()
    texts = read_tsv(sst2_path("dev"))[0][: args.texts]
    names = {"id2label": MNLI, "label2id": {v: k for k, v in MNLI.items()}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="zero-shot-") as work:
        for family in args.families.split(","):
            folder = make_checkpoint(family, Path(work) / family, scale=8.0, config=names)
            rows += measure(family, folder, texts)
    write_results(args.out, rows, table(rows, len(texts)), candidates=CANDIDATES, template=TEMPLATE)


if __name__ == "__main__":
    main()
