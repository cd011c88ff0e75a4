"""Cold start: wall time from process start to the first prediction of the default model, per
backend, against the framework's own bare import + native load + one forward of the same
model in the same form (what a user of that framework alone would run), on a warm model store
(every conversion already made; tested elsewhere that none is repeated).

    .venv/bin/python benchmarks/cold_start.py --out benchmarks/results/cold-start

Each measurement is a fresh `python -c ...` process timed from spawn to exit, the median of
--runs; ours is `un.load_classifier("default", backend=B).predict([TEXT])` and the CLI's
`unified-nlp classify --backend B TEXT`. The native rows:
- huggingface: torch + transformers, AutoTokenizer and AutoModel.from_pretrained of the
  canonical folder, one forward;
- tfhub: tensorflow + tensorflow_hub, hub.load of the converted encoder SavedModel, one call
  with token ids from `tokenizers`;
- paddlenlp: paddle + paddlenlp in .venv-paddle, AutoTokenizer and AutoModel.from_pretrained
  of the converted PaddleNLP folder, one forward (ours runs it through the worker process);
- onnxruntime: onnxruntime + tokenizers, InferenceSession of the export, one run.
The head (a few hundred weights) is left out of the native rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from recorded import write_results

REPO = Path(__file__).resolve().parents[1]
TEXT = "This is a great movie!"
BACKENDS = ("huggingface", "tfhub", "paddlenlp", "onnxruntime")

OURS = "import unified_nlp as un; print(un.load_classifier('default', backend={b!r}).predict([{t!r}])[0].label)"
NATIVE = {
    "huggingface": (
        "import torch, transformers as T; f = {f!r}; tok = T.AutoTokenizer.from_pretrained(f); "
        "m = T.AutoModel.from_pretrained(f).eval()\n"
        "with torch.inference_mode(): print(m(**tok([{t!r}], return_tensors='pt')).last_hidden_state.shape)"
    ),
    "tfhub": (
        "import tensorflow as tf, tensorflow_hub as hub, tokenizers; f = {f!r}; "
        "enc = tokenizers.Tokenizer.from_file(f + '/tokenizer.json').encode({t!r}); m = hub.load(f + '/encoder'); "
        "ids = tf.constant([enc.ids], tf.int32); "
        "print(m(dict(input_word_ids=ids, input_mask=tf.ones_like(ids), input_type_ids=tf.zeros_like(ids)))"
        "['sequence_output'].shape)"
    ),
    "paddlenlp": (
        "import paddle, paddlenlp.transformers as P; f = {f!r}; tok = P.AutoTokenizer.from_pretrained(f); "
        "m = P.AutoModel.from_pretrained(f); m.eval()\n"
        "with paddle.no_grad(): print(m(**tok([{t!r}], return_tensors='pd'))[0].shape)"
    ),
    "onnxruntime": (
        "import numpy as np, onnxruntime as ort, tokenizers; f = {f!r}; "
        "enc = tokenizers.Tokenizer.from_file(f + '/tokenizer.json').encode({t!r}); "
        "s = ort.InferenceSession(f + '/model.onnx', providers=['CPUExecutionProvider']); "
        "ids = np.array([enc.ids], np.int64); feeds = dict(input_ids=ids, attention_mask=np.ones_like(ids)); "
        "feeds.update({{'token_type_ids': np.zeros_like(ids)}} if len(s.get_inputs()) > 2 else {{}}); "
        "print(s.run(['logits'], feeds)[0].shape)"
    ),
}


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{argv[:3]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def _folders(store: Path) -> dict[str, str]:
    """The default model's folder in each backend's form, in the (fresh) store."""

    def newest(kind: str) -> str:
        found = sorted((store / "converted" / kind).glob("*/unified_nlp.json"), key=lambda p: p.stat().st_mtime)
        found = [p for p in found if json.loads(p.read_text()).get("precision", "fp32") == "fp32"]
        return str(found[-1].parent)

    return {
        "huggingface": str(next((store / "models").glob("default-*"))),
        "tfhub": newest("tfhub"),
        "paddlenlp": newest("paddlenlp") + "/paddlenlp",
        "onnxruntime": newest("onnxruntime"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", type=Path, default=REPO / "benchmarks/results/tmp/cold-start-store")
    parser.add_argument("--paddle-python", default=str(REPO / ".venv-paddle/bin/python"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/cold-start")
    args = parser.parse_args(argv)

    env = {**os.environ, "UNIFIED_NLP_HOME": str(args.store), "TF_CPP_MIN_LOG_LEVEL": "2"}
    python, cli = sys.executable, str(Path(sys.executable).with_name("unified-nlp"))
    for backend in BACKENDS:  # warm the store: every conversion made once, before any timing
        _timed([python, "-c", OURS.format(b=backend, t=TEXT)], env)
    folders = _folders(args.store)
    paddle_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # .venv-paddle must not see .venv's packages
    rows = []
    for backend in BACKENDS:
        native = [args.paddle_python if backend == "paddlenlp" else python, "-c"]
        native.append(NATIVE[backend].format(f=folders[backend], t=TEXT))
        runs = {"ours": [], "cli": [], "native": []}
        for _ in range(args.runs):  # in turn, so a slow spell of the machine hits all three
            runs["ours"].append(_timed([python, "-c", OURS.format(b=backend, t=TEXT)], env))
            runs["cli"].append(_timed([cli, "classify", "--backend", backend, TEXT], env))
            runs["native"].append(_timed(native, paddle_env if backend == "paddlenlp" else env))
        row = {"backend": backend, **{k: round(statistics.median(v), 2) for k, v in runs.items()}, "samples": runs}
        row["ratio"] = round(row["ours"] / row["native"], 2)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "samples"}), flush=True)
    lines = [
        f"Wall seconds from process start to the first prediction, median of {args.runs} fresh processes, "
        f"warm store, {time.strftime('%Y-%m-%d')}",
        "",
        "| backend | load_classifier + predict | unified-nlp classify | framework alone (import + native load + forward) | ours / framework |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['ours']:.2f} | {r['cli']:.2f} | {r['native']:.2f} | {r['ratio']:.2f}x |")
    write_results(args.out, rows, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
