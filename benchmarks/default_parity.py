"""Parity of the default model on every backend with the Hugging Face reference: what
`unified-nlp compare --backends huggingface,B` measures, on all 872 SST-2 dev sentences, fp32,
plus each backend's SST-2 dev accuracy.

    .venv/bin/python benchmarks/default_parity.py --out benchmarks/results/default-parity

Per backend B: `un.compare(huggingface, B, texts)` (token ids, logits, probabilities, last
hidden state on unpadded positions, argmax; tolerance 1e-4 as the CLI) and
`B.evaluate(texts, labels)["accuracy"]`. paddlenlp runs through its worker process, as a
user of `.venv` gets it. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recorded import write_results

BACKENDS = ("tfhub", "paddlenlp", "onnxruntime")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS), help="compared with huggingface")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/default-parity"))
    args = parser.parse_args(argv)

    import unified_nlp as un
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, labels = read_tsv(sst2_path("dev"))
    reference = un.load_classifier("default", backend="huggingface", num_threads=args.threads)
    rows = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        clf = un.load_classifier("default", backend=backend, num_threads=args.threads)
        report = un.compare(reference, clf, texts, progress=False)
        row = {
            "backend": backend,
            **report.as_dict(),
            "accuracy": clf.evaluate(texts, labels, progress=False)["accuracy"],
        }
        row.pop("mismatched_tokens")  # the indices, empty when every text's ids match (counted by token_id_equality)
        rows.append(row)
        print(json.dumps(row), flush=True)
    reference_accuracy = reference.evaluate(texts, labels, progress=False)["accuracy"]
    lines = [
        f"Default model vs huggingface, all {len(texts)} SST-2 dev sentences, fp32 "
        f"(huggingface's own accuracy {reference_accuracy:.4f})",
        "",
        "| vs huggingface | token ids identical | logits max / mean abs diff | probabilities max abs diff "
        "| last hidden state max / mean abs diff | argmax agreement | SST-2 dev accuracy | passed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['token_id_equality']:.0%} | {r['logits_max_abs_diff']:.1e} / "
            f"{r['logits_mean_abs_diff']:.1e} | {r['probs_max_abs_diff']:.1e} | {r['hidden_max_abs_diff']:.1e} / "
            f"{r['hidden_mean_abs_diff']:.1e} | {r['argmax_agreement']:.0%} | {r['accuracy']:.4f} | {r['passed']} |"
        )
    write_results(args.out, rows, lines, texts=len(texts), reference_accuracy=reference_accuracy)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
