"""Deployment exports as black boxes: on their own stack against their runtime's own outputs, and
on every other backend, recorded.

    .venv/bin/python benchmarks/deployment_exports.py --out benchmarks/results/deployment-exports

The exports of tests/deployment_fixtures.py, each as its tool writes it: Optimum's ONNX folder of a
tiny BERT checkpoint (model.onnx, and model_quantized.onnx at precision int8), TF Serving classify
SavedModels (strings in; serialized tf.Example protos in), a Keras 3 model as .keras and .h5, and a
Paddle Inference export as PaddleNLP's export_model.py writes it. On the first --texts SST-2 dev
sentences (to 64 tokens for Paddle Inference, the positions its graph embeds), per export and
backend: max |difference| of what the runtime returns (logits for ONNX Runtime's InferenceSession
fed by transformers' tokenizer and Paddle Inference's predictor fed by PaddleNLP's; scores for
tf.saved_model.load and keras.models.load_model) and the labels agreeing, or the error the backend
refuses the export with. The int8 graph quantises each batch's activations by that batch's range,
so it is run one text per batch on both sides, and also in the default batches of 32. The exports
with their training checkpoint beside them (Optimum, Paddle) are also compared with it through
`un.compare` (the checkpoint on huggingface). Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from recorded import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/deployment_fixtures.py builds the exports

BACKENDS = ("huggingface", "tfhub", "paddlenlp", "onnxruntime")
PADDLE_POSITIONS = 64  # the Paddle fixture's max_position_embeddings, which its export does not record
# export -> (row name, its own backend, what its runtime returns)
EXPORTS = {
    "onnx": ("Optimum ONNX folder, `model.onnx`", "onnxruntime", "logits"),
    "onnx-int8": ("Optimum ONNX folder, `model_quantized.onnx` (int8)", "onnxruntime", "logits"),
    "classify": ("TF Serving classify SavedModel (strings in)", "tfhub", "scores"),
    "examples": ("TF Serving classify SavedModel (tf.Example protos in)", "tfhub", "scores"),
    "keras": ("`.keras` file", "tfhub", "scores"),
    "h5": ("Keras `.h5` file", "tfhub", "scores"),
    "paddle": ("Paddle Inference export (`inference.json`)", "paddlenlp", "logits"),
}


def reason(error: Exception, path: Path) -> str:
    """The first sentence of the error, without the machine's path it starts with."""
    text = str(error).splitlines()[0].removeprefix(f"{path}: ")
    return text.split(". ")[0].rstrip(".")


def measure(export: str, path: Path, want: np.ndarray, texts: list[str], batch_size=32, **options) -> list[dict]:
    """`export` at `path` on every backend against its runtime's own outputs `want`."""
    import unified_nlp as un

    compared = EXPORTS[export][2]
    max_length = options.pop("max_length", None)
    rows = []
    for backend in BACKENDS:
        row = {"export": export, "backend": backend, "own_stack": backend == EXPORTS[export][1]}
        try:
            clf = un.load_classifier(path, backend=backend, **options)
            run = clf.logits if compared == "logits" else clf.predict_proba
            got = run(texts, max_length=max_length, batch_size=batch_size)
        except un.UnifiedNLPError as e:
            rows.append(row | {"refused": reason(e, path)})
            continue
        diff = float(np.abs(got - want).max())
        agree = float((got.argmax(1) == want.argmax(1)).mean())
        figures = {"compared": compared, "texts": len(texts), "batch_size": batch_size}
        rows.append(row | figures | {"max_abs_diff": diff, "label_agreement": agree})
        print(rows[-1], flush=True)
    return rows


def against_checkpoint(export: str, served, checkpoint: Path, texts: list[str]) -> dict:
    """`un.compare` of the export (on its own stack) with the checkpoint it came from on huggingface."""
    import unified_nlp as un

    report = un.compare(served, un.load_classifier(checkpoint, backend="huggingface"), texts, progress=False)
    return {
        "export": export,
        "versus": "checkpoint on huggingface",
        "texts": report.n_texts,
        "token_id_equality": report.token_id_equality,
        "logits_max_abs_diff": report.logits_max_abs_diff,
        "argmax_agreement": report.argmax_agreement,
    }


def onnx_rows(work: Path, texts: list[str]) -> list[dict]:
    import unified_nlp as un
    from tests.checkpoints import make_checkpoint
    from tests.deployment_fixtures import optimum_export, ort_logits

    checkpoint = make_checkpoint("bert", work / "checkpoint", scale=8)
    folder = optimum_export(checkpoint, work / "onnx")
    rows = measure("onnx", folder, ort_logits(folder, texts), texts)
    # dynamic quantisation scales each batch's activations by that batch's range: the same batches on
    # both sides (one text each), and what the default batches of 32 make of it
    alone = np.concatenate([ort_logits(folder, [t], "model_quantized.onnx") for t in texts])
    rows += measure("onnx-int8", folder, alone, texts, batch_size=1, precision="int8")
    served = {"onnx": un.load_classifier(folder, backend="onnxruntime")}
    served["onnx-int8"] = un.load_classifier(folder, backend="onnxruntime", precision="int8")
    batched = served["onnx-int8"].logits(texts)
    own = next(r for r in rows if r["export"] == "onnx-int8" and r["own_stack"])
    own["batches_of_32_max_abs_diff"] = float(np.abs(batched - alone).max())
    own["batches_of_32_label_agreement"] = float((batched.argmax(1) == alone.argmax(1)).mean())
    rows += [against_checkpoint(export, clf, checkpoint, texts) for export, clf in served.items()]
    return rows


def tf_rows(work: Path, texts: list[str]) -> list[dict]:
    from tests.checkpoints import LABELS
    from tests.deployment_fixtures import keras_exports, keras_scores, saved_model_scores

    paths = keras_exports(work)
    rows = measure("classify", paths["classify"], saved_model_scores(paths["classify"], texts), texts)
    rows += measure("examples", paths["examples"], saved_model_scores(paths["examples"], texts, examples=True), texts)
    for kind in ("keras", "h5"):
        rows += measure(kind, paths[kind], keras_scores(paths[kind], texts), texts, labels=list(LABELS))
    return rows


def paddle_rows(work: Path, texts: list[str]) -> list[dict]:
    import unified_nlp as un
    from tests.deployment_fixtures import paddle_export

    made = paddle_export(work, texts)
    rows = measure("paddle", made["export"], made["logits"], texts, labels=made["labels"], max_length=PADDLE_POSITIONS)
    served = un.load_classifier(made["export"], backend="paddlenlp", labels=made["labels"])
    # compare reads whole texts: the ones within the positions the graph embeds
    fits = [t for t, n in zip(texts, served.encode(served.preprocess(texts)).lengths) if n <= PADDLE_POSITIONS]
    rows.append(against_checkpoint("paddle", served, made["checkpoint"], fits))
    return rows


def markdown(rows: list[dict]) -> list[str]:
    lines = [
        "max |difference| against the runtime's own outputs (logits or scores, as the row says) and labels "
        "agreeing, on its own stack and on the others",
        "",
        "| export | compared | " + " | ".join(BACKENDS) + " |",
        "| --- | --- |" + " --- |" * len(BACKENDS),
    ]
    for export, (name, _, compared) in EXPORTS.items():
        cells = []
        for backend in BACKENDS:
            row = next(r for r in rows if r["export"] == export and r.get("backend") == backend)
            if "refused" in row:
                cells.append(f"refused: {row['refused']}")
                continue
            cells.append(f"{row['max_abs_diff']:.1e} ({row['label_agreement']:.0%})")
            if "batches_of_32_max_abs_diff" in row:
                cells[-1] += (
                    f" one text per batch; {row['batches_of_32_max_abs_diff']:.1e} "
                    f"({row['batches_of_32_label_agreement']:.0%}) in batches of 32"
                )
        lines.append(f"| {name} | {compared} | " + " | ".join(cells) + " |")
    lines += ["", "| export | against | texts | token ids equal | logits max abs diff | argmax agreement |"]
    lines.append("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in (r for r in rows if "versus" in r):
        lines.append(
            f"| {EXPORTS[r['export']][0]} | {r['versus']} | {r['texts']} | {r['token_id_equality']:.0%} | "
            f"{r['logits_max_abs_diff']:.1e} | {r['argmax_agreement']:.0%} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    from unified_nlp.benchdata import read_tsv, sst2_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "deployment-exports")
    parser.add_argument("--texts", type=int, default=300)
    args = parser.parse_args(argv)
    texts = read_tsv(sst2_path("dev"))[0][: args.texts]
    rows = []
    with tempfile.TemporaryDirectory(prefix="deployment-exports-") as work:
        for name, build in (("onnx", onnx_rows), ("tf", tf_rows), ("paddle", paddle_rows)):
            (Path(work) / name).mkdir()
            rows += build(Path(work) / name, texts)
    write_results(args.out, rows, markdown(rows), texts=len(texts), paddle_max_length=PADDLE_POSITIONS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
