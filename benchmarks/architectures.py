"""Parity per architecture x backend, recorded: every supported family, as a user's
transformers `save_pretrained` folder, on every backend, against transformers' own forward.

    .venv/bin/python benchmarks/architectures.py --out benchmarks/results/architectures

For each family: a classifier written by transformers (2 layers, hidden 32, matrices
scaled x8 so that logits depend on the input; a tokenizer of the family trained on
SST-2 text; see tests/checkpoints.py), plus the real all-MiniLM-L6-v2 weights as a
BertForSequenceClassification. Texts: all 872 SST-2 dev sentences; pairs: the 436
pairs of consecutive dev sentences. Reference: transformers' AutoTokenizer and
AutoModelForSequenceClassification, fp32. Per backend: token ids identical, max |logit
difference| on texts and on pairs, argmax agreement, and for tfhub/paddlenlp whether
convert -> back gives bit-identical weights. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from recorded import provenance

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/checkpoints.py builds the fixtures

BACKENDS = ("huggingface", "tfhub", "paddlenlp")


def reference(folder: Path, first: list[str], second: list[str] | None) -> tuple[np.ndarray, list[list[int]]]:
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    logits, ids = [], []
    for start in range(0, len(first), 64):
        pair = None if second is None else second[start : start + 64]
        batch = tok(first[start : start + 64], pair, padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            logits.append(model(**batch).logits.numpy())
        ids += [row[row_mask.bool()].tolist() for row, row_mask in zip(batch["input_ids"], batch["attention_mask"])]
    return np.concatenate(logits), ids


def measure(name: str, folder: Path, texts: list[str], pairs: list[tuple[str, str]], scratch: Path) -> list[dict]:
    import unified_nlp as un
    from unified_nlp.folder import read_state

    ref_texts, ref_ids = reference(folder, texts, None)
    ref_pairs, _ = reference(folder, [a for a, _ in pairs], [b for _, b in pairs])
    original = read_state(folder)
    rows = []
    for backend in BACKENDS:
        clf = un.load_classifier(folder, backend=backend)
        enc = clf.encode(*clf.prepare(texts))
        ids = [row[: int(n)].tolist() for row, n in zip(enc.input_ids, enc.lengths)]
        got_texts, got_pairs = clf.logits(texts), clf.logits(pairs)
        row = {
            "architecture": name,
            "backend": backend,
            "runs": clf.runs,
            "token_ids_identical": float(np.mean([a == b for a, b in zip(ids, ref_ids)])),
            "logits_max_abs_diff": float(np.abs(got_texts - ref_texts).max()),
            "pairs_logits_max_abs_diff": float(np.abs(got_pairs - ref_pairs).max()),
            "argmax_agreement": float(
                np.mean(np.r_[got_texts.argmax(1) == ref_texts.argmax(1), got_pairs.argmax(1) == ref_pairs.argmax(1)])
            ),
        }
        if backend != "huggingface":
            exported = un.convert(folder, to=backend, out=scratch / f"{name}-{backend}")
            back = read_state(un.convert(exported, to="huggingface", out=scratch / f"{name}-{backend}-back"))
            row["round_trip_bit_exact"] = all(
                np.array_equal(back[k], v) for k, v in original.items() if not k.endswith("position_ids")
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    names = list(dict.fromkeys(r["architecture"] for r in rows))
    lines = [
        "| architecture | " + " | ".join(BACKENDS) + " |",
        "| --- |" + " --- |" * len(BACKENDS),
    ]
    for name in names:
        cells = []
        for backend in BACKENDS:
            r = next(r for r in rows if r["architecture"] == name and r["backend"] == backend)
            cell = f"{r['logits_max_abs_diff']:.1e} / {r['pairs_logits_max_abs_diff']:.1e}"
            cell += f", ids {r['token_ids_identical']:.0%}, argmax {r['argmax_agreement']:.0%}"
            if "round_trip_bit_exact" in r:
                cell += ", round trip " + ("bit-exact" if r["round_trip_bit_exact"] else "DIFFERS")
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "architectures")
    args = parser.parse_args(argv)

    from tests.checkpoints import ARCHITECTURES, make_checkpoint, minilm_classifier
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts = read_tsv(sst2_path("dev"))[0]
    pairs = list(zip(texts[0::2], texts[1::2]))
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="unified-nlp-parity-") as tmp:
        scratch = Path(tmp)
        for name in ARCHITECTURES:
            folder = make_checkpoint(name, scratch / name, scale=8.0)
            rows += measure(name, folder, texts, pairs, scratch)
        rows += measure("MiniLM-L6 (real weights)", minilm_classifier(scratch / "minilm"), texts, pairs, scratch)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                **provenance(),
                "texts": len(texts),
                "pairs": len(pairs),
                "seconds": round(time.perf_counter() - started, 1),
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )
    (args.out / "results.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
