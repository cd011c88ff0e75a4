"""TF-era Hugging Face folders (only `tf_model.h5`) on every backend, against the TF model's own logits.

    .venv/bin/python benchmarks/tf_h5.py   # -> benchmarks/results/tf-h5/

The folders are the committed fixtures of tests/test_tf_h5.py (tests/fixtures/tf_h5/, written by
transformers 4.46.3 with TensorFlow 2.21 through `TF*ForSequenceClassification.save_pretrained`,
tiny: 2 layers, hidden 32), each with the TF model's own logits on its texts and pairs
(reference.json). Per folder and backend: max |logit difference| over the texts and the pairs,
whether the token ids are those transformers 4's tokenizer gave the TF model, or the refusal's
reason. The test suite checks the same within 1e-5, on onnxruntime for two folders only (an
export per folder costs 15-33 s); this script runs every cell.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from recorded import REPO, write_results

FIXTURES = REPO / "tests" / "fixtures" / "tf_h5"
BACKENDS = ("huggingface", "tfhub", "paddlenlp", "onnxruntime")


def cell(folder: Path, backend: str) -> dict:
    import unified_nlp as un
    from unified_nlp.errors import UnifiedNLPError

    ref = json.loads((folder / "reference.json").read_text(encoding="utf-8"))
    try:
        clf = un.load_classifier(folder, backend=backend)
    except UnifiedNLPError as e:
        # the message names the imported folder in the store: not this machine's paths in the results
        why = str(e).splitlines()[0].replace(str(REPO) + "/", "").replace(str(Path.home()), "~")
        return {"status": "refused", "why": why[:300]}
    pairs = [tuple(p) for p in ref["pairs"]]
    enc = clf.tokenizer(ref["texts"])
    ids = [row[: int(n)].tolist() for row, n in zip(enc.input_ids, enc.lengths)]
    diffs = [
        float(np.abs(clf.logits(ref["texts"]) - np.asarray(ref["logits"])).max()),
        float(np.abs(clf.logits(pairs) - np.asarray(ref["pair_logits"])).max()),
    ]
    return {"status": "ok", "max_abs_logit_diff": max(diffs), "ids_identical": ids == ref["input_ids"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/tf-h5")
    args = p.parse_args(argv)

    rows = []
    for folder in sorted(f for f in FIXTURES.iterdir() if (f / "reference.json").is_file()):
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_type"]
        row = {"folder": folder.name, "model_type": model_type}
        for backend in BACKENDS:
            row[backend] = cell(folder, backend)
            print(folder.name, backend, json.dumps(row[backend]), flush=True)
        rows.append(row)

    def shown(c: dict) -> str:
        if c["status"] != "ok":
            return f"refused: {c['why'][:90]}"
        return f"{c['max_abs_logit_diff']:.1e}" + ("" if c["ids_identical"] else ", ids differ")

    lines = [
        "TF-era folders (tf_model.h5 only, transformers 4.46.3 + TensorFlow 2.21 fixtures) on every backend: max |logit "
        "difference| against the TF model's own logits, texts and pairs; token ids as transformers 4 gave them "
        "unless said. `python benchmarks/tf_h5.py`",
        "",
        "| folder | model_type | " + " | ".join(BACKENDS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in BACKENDS) + " |",
        *(f"| {r['folder']} | {r['model_type']} | " + " | ".join(shown(r[b]) for b in BACKENDS) + " |" for r in rows),
    ]
    write_results(args.out, rows, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
