"""The Paddle-environment halves of benchmarks/formats.py, run with the Paddle interpreter
(.venv-paddle, or the registered paddlenlp worker environment):

    python benchmarks/formats_paddle.py build OUT N       # tests/paddle_fixtures.py's folders + reference
    python benchmarks/formats_paddle.py plain JOBS RESULT # plain PaddleNLP on exported folders
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' fixture builders


def build(out: Path, n: int) -> None:
    """tests/paddle_fixtures.py's folders, with PaddleNLP's reference on the first n dev texts."""
    from tests import paddle_fixtures as pfx

    out.mkdir(parents=True, exist_ok=True)
    dev = pfx.texts()
    ref: dict[str, np.ndarray] = {}
    for seed, name in enumerate(pfx.FIXTURES):  # the seeds tests/paddle_fixtures.py uses
        ref.update(pfx.build(name, out, dev, dev[:n], seed))
    np.savez(out / "reference.npz", **ref)
    import paddle
    import paddlenlp

    versions = {"paddle": paddle.__version__, "paddlenlp": paddlenlp.__version__}
    (out / "built.json").write_text(json.dumps({"fixtures": list(pfx.FIXTURES), "versions": versions}))


def plain_encode(tok, text: str, max_length: int) -> dict:
    """One text at a time (PaddleNLP's batch options differ per class), truncated where the class can."""
    try:
        return tok(text, max_length=max_length, truncation=True)
    except TypeError:  # DistilBertTokenizer.__call__ takes no max_length
        return tok(text)


def plain(jobs_file: Path, result_file: Path) -> None:
    """Plain PaddleNLP on each exported folder: AutoModelForSequenceClassification + AutoTokenizer."""
    import inspect

    import paddle
    from paddlenlp.transformers import AutoModelForSequenceClassification, AutoTokenizer

    jobs = json.loads(jobs_file.read_text())
    results = {}
    for key, job in jobs.items():
        row: dict = {}
        try:
            model = AutoModelForSequenceClassification.from_pretrained(job["folder"]).eval()
            row["model_class"] = type(model).__name__
            try:
                tok = AutoTokenizer.from_pretrained(job["folder"])
                row["tokenizer_class"] = type(tok).__name__
                encoded = [plain_encode(tok, t, job["max_length"]) for t in job["texts"]]
                pad = tok.pad_token_id
            except Exception as e:  # no PaddleNLP tokenizer for it: the model alone, on the reference's ids
                row["tokenizer_error"] = f"{type(e).__name__}: {e}"[:500]
                encoded, pad = [{"input_ids": ids} for ids in job["ids"]], job["pad_id"]
            width = max(len(e["input_ids"]) for e in encoded)
            ids = np.full((len(encoded), width), pad, np.int64)
            mask, types = np.zeros_like(ids), np.zeros_like(ids)
            for i, e in enumerate(encoded):
                k = len(e["input_ids"])
                ids[i, :k], mask[i, :k] = e["input_ids"], 1
                types[i, :k] = e.get("token_type_ids") or [0] * k
            inputs = {"input_ids": paddle.to_tensor(ids), "attention_mask": paddle.to_tensor(mask)}
            if "token_type_ids" in inspect.signature(model.forward).parameters:
                inputs["token_type_ids"] = paddle.to_tensor(types)
            with paddle.no_grad():
                out = model(**inputs)
            row["logits"] = (out[0] if isinstance(out, (tuple, list)) else out).numpy().tolist()
        except Exception as e:  # recorded, not raised: the row says what plain PaddleNLP did
            row["error"] = f"{type(e).__name__}: {e}"[:500]
        results[key] = row
    result_file.write_text(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(Path(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "plain":
        plain(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(f"unknown command {sys.argv[1]!r}; known: build, plain")
