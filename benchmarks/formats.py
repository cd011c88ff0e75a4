"""Parity per native format x backend, recorded: checkpoints as PaddleNLP and TF Hub users
have them, on every backend, against their own framework's forward.

    .venv/bin/python benchmarks/formats.py --out benchmarks/results/formats

The fixtures are the tests' own builders, tiny (hidden 32, 2 layers), nothing downloaded:
- PaddleNLP ``save_pretrained`` folders of 8 families (tests/paddle_fixtures.py, run in
  the Paddle environment), with PaddleNLP's own token ids and logits as the reference;
- TF Hub SavedModels (tests/test_tfhub_native.py, tests/tfhub_native_fixtures.py): an
  encoder + preprocessor pair with a head.safetensors, an independently built pair
  (einsum BERT, tensorflow_text preprocessor), a text embedding (``labels=``, fresh head),
  a tf_keras ``model.save`` classifier and a Keras 3 ``model.export()``, with the
  SavedModel's own forward (hub.load / hub.KerasLayer / tf.saved_model.load) as the reference.

Per fixture x backend: loads or is refused (the reason), max |logit difference| and token
ids identical on the first TEXTS SST-2 dev sentences. Per convertible fixture and target
backend: convert -> back to huggingface gives bit-identical weights, and the exported folder
loads in the target's plain tools (transformers AutoModelForSequenceClassification; the
exported classifier/ SavedModel's serving_default; PaddleNLP's AutoModelForSequenceClassification
in the Paddle environment) with the logits difference against the reference.
Writes results.json and results.md atomically.

The Paddle-environment halves are benchmarks/formats_paddle.py, run with the Paddle
interpreter; the tables are benchmarks/formats_report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' fixture builders, and benchmarks/formats_report.py

from benchmarks.formats_report import BACKENDS, cpu_name, markdown, versions, write_atomically  # noqa: E402

TEXTS = 48  # the first 48 SST-2 dev sentences
BLACK_BOXES = ("keras-classifier", "embedding")  # spec kinds whose strings go straight into the SavedModel
PADDLE_WEIGHTS = {
    "pdparams": "model_state.pdparams",
    "safetensors": "model.safetensors",
    "pdparams-sharded": "model_state.pdparams, sharded",
    "safetensors-sharded": "model.safetensors, sharded",
}


# --- helpers -------------------------------------------------------------------------------


def paddle_python() -> str:
    from unified_nlp import registry

    if registry.installed_here("paddlenlp"):
        return sys.executable
    return registry.worker_python("paddlenlp") or str(REPO / ".venv-paddle" / "bin" / "python")


def run_paddle(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run(
        [paddle_python(), str(Path(__file__).with_name("formats_paddle.py")), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode:
        raise RuntimeError(f"the Paddle environment failed ({' '.join(args[:1])}):\n{done.stderr[-4000:]}")


def rows_of(ids: np.ndarray, mask: np.ndarray) -> list[list[int]]:
    return [row[: int(m.sum())].tolist() for row, m in zip(np.asarray(ids), np.asarray(mask))]


def short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{type(error).__name__}: {text}"


# --- the fixtures, with their own framework's reference ------------------------------------


def paddle_fixtures(root: Path, texts: list[str]) -> tuple[list[dict], dict]:
    from tests import paddle_fixtures as pfx

    run_paddle("build", str(root), str(len(texts)))
    ref = dict(np.load(root / "reference.npz"))
    built = json.loads((root / "built.json").read_text())
    fixtures = []
    for name in built["fixtures"]:
        key = f"{name}/single"
        fixtures.append(
            {
                "fixture": f"paddlenlp/{name}",
                "format": f"PaddleNLP save_pretrained ({PADDLE_WEIGHTS[pfx.FIXTURES[name][3]]})",
                "family": name,
                "own": "paddlenlp",
                "path": root / name,
                "options": {},
                "labels": list(pfx.LABELS),
                "ref_logits": ref[f"{key}/logits"],
                "ref_ids": rows_of(ref[f"{key}/input_ids"], ref[f"{key}/attention_mask"]),
                "reference": "PaddleNLP: its tokenizer, its forward",
            }
        )
    return fixtures, built["versions"]


def tfhub_fixtures(root: Path, texts: list[str]) -> list[dict]:
    from unified_nlp_tfhub._tf import hub, tf

    import unified_nlp as un
    from tests import test_tfhub_native as t
    from tests.checkpoints import make_checkpoint
    from unified_nlp.folder import initial_head
    from unified_nlp.weights import save_file

    strings = tf.constant(texts)
    # the test fixtures: our exporter's encoder/ + preprocessor/ stripped to tfhub.dev's layout
    export = un.convert(make_checkpoint("bert", root / "bert-hf", scale=8), to="tfhub", out=root / "bert-export")
    pair = t.pair.__wrapped__(root, export)
    independent = t.independent_pair.__wrapped__(root, pair)
    embedding = t.embedding.__wrapped__(root)
    keras2 = t.keras2.__wrapped__(root, pair)  # built on the head-less pair, as the test's
    keras3 = t.keras3.__wrapped__(root)
    rng = np.random.default_rng(5)
    for folder in (pair, independent):  # a head beside encoder/, under transformers' names
        head = {
            "classifier.weight": rng.standard_normal((3, 32)).astype(np.float32),
            "classifier.bias": rng.standard_normal(3).astype(np.float32) * 0.1,
        }
        save_file(head, folder / "head.safetensors")

    def pair_reference(folder: Path) -> tuple[np.ndarray, list[list[int]]]:
        from unified_nlp.weights import load_file

        head = load_file(folder / "head.safetensors")
        packed = hub.load(str(folder / "preprocessor"))(strings)
        pooled = hub.load(str(folder / "encoder"))(packed)["pooled_output"].numpy()
        logits = pooled @ head["classifier.weight"].T + head["classifier.bias"]
        return logits, rows_of(packed["input_word_ids"].numpy(), packed["input_mask"].numpy())

    fixtures = []
    for name, folder, fmt in (
        ("bert-pair", pair, "TF Hub encoder/ + preprocessor/ (+ head.safetensors)"),
        ("bert-pair-independent", independent, "TF Hub pair built apart (tensorflow_text preprocessor)"),
    ):
        logits, ids = pair_reference(folder)
        fixtures.append(
            {
                "fixture": f"tfhub/{name}",
                "format": fmt,
                "family": "bert",
                "own": "tfhub",
                "path": folder,
                "options": {},
                "labels": ["LABEL_0", "LABEL_1", "LABEL_2"],
                "ref_logits": logits,
                "ref_ids": ids,
                "reference": "hub.load: preprocessor -> encoder pooled_output -> head.safetensors",
            }
        )
    head = initial_head(2, 16, 1)
    fixtures.append(
        {
            "fixture": "tfhub/embedding",
            "format": "text-embedding SavedModel (labels=, fresh head)",
            "family": "NNLM-style",
            "own": "tfhub",
            "path": embedding,
            "options": {"labels": ["negative", "positive"], "seed": 1},
            "labels": ["negative", "positive"],
            "ref_logits": hub.load(str(embedding))(strings).numpy() @ head["weight"].T + head["bias"],
            "ref_ids": None,
            "reference": "hub.load(module)(texts) -> the core's fresh head for seed 1",
        }
    )
    packed = hub.load(str(pair / "preprocessor"))(strings)
    fixtures.append(
        {
            "fixture": "tfhub/keras2",
            "format": "tf_keras classifier (model.save)",
            "family": "bert + Dense",
            "own": "tfhub",
            "path": keras2,
            "options": {},
            "labels": ["LABEL_0", "LABEL_1", "LABEL_2"],
            "ref_logits": hub.KerasLayer(str(keras2))(strings).numpy(),
            "ref_ids": rows_of(packed["input_word_ids"].numpy(), packed["input_mask"].numpy()),
            "reference": "hub.KerasLayer(model)(texts)",
        }
    )
    exported = tf.saved_model.load(str(keras3))  # held: a restored function needs its object alive
    fixtures.append(
        {
            "fixture": "tfhub/keras3",
            "format": "Keras 3 model.export()",
            "family": "TextVectorization + Embedding",
            "own": "tfhub",
            "path": keras3,
            "options": {},
            "labels": ["LABEL_0", "LABEL_1"],
            "ref_logits": exported.serve(tf.constant([[x] for x in texts])).numpy(),
            "ref_ids": None,
            "reference": "tf.saved_model.load(export).serve(texts)",
        }
    )
    return fixtures


# --- the measurements ----------------------------------------------------------------------


def load_row(fx: dict, backend: str, texts: list[str]) -> dict:
    import unified_nlp as un

    row: dict = {"fixture": fx["fixture"], "backend": backend}
    started = time.perf_counter()
    try:
        clf = un.load_classifier(fx["path"], backend=backend, **fx["options"])
    except Exception as e:  # a refusal is a result: its reason is recorded
        return row | {"status": "refused", "reason": short(e), "error": f"{type(e).__name__}: {e}"[:1000]}
    row |= {"status": "ok", "runs": clf.runs, "load_s": round(time.perf_counter() - started, 2)}
    logits = clf.logits(texts)
    row["logits_max_abs_diff"] = float(np.abs(logits - fx["ref_logits"]).max())
    row["argmax_agreement"] = float(np.mean(logits.argmax(1) == fx["ref_logits"].argmax(1)))
    row["labels"] = list(clf.labels)
    row["own_labels"] = list(clf.labels) == fx["labels"]
    row["head"] = clf.spec.head or clf.spec.extra.get("kind")
    if fx["ref_ids"] is not None and clf.spec.extra.get("kind") in BLACK_BOXES:
        row["token_ids_identical"] = None
        row["token_ids_note"] = "the SavedModel tokenizes inside its own graph"
    elif fx["ref_ids"] is not None:
        try:
            enc = clf.tokenizer(texts)
            ids = rows_of(enc.input_ids, enc.attention_mask)
            row["token_ids_identical"] = float(np.mean([a == b for a, b in zip(ids, fx["ref_ids"])]))
        except Exception as e:  # a black box has no separate tokenizer
            row["token_ids_identical"] = None
            row["token_ids_note"] = short(e)
    return row


def plain_transformers(folder: Path, texts: list[str]) -> np.ndarray:
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(**tok(texts, padding=True, truncation=True, return_tensors="pt")).logits.numpy()


def plain_tfhub(export: Path, texts: list[str]) -> dict:
    from unified_nlp_tfhub._tf import hub, tf

    out: dict = {}
    try:
        encoder = hub.KerasLayer(str(export / "encoder"))
        if (export / "preprocessor" / "saved_model.pb").is_file():
            packed = hub.KerasLayer(str(export / "preprocessor"))(tf.constant(texts))
            encoder(packed)
            out["hub_keras_layer"] = "encoder + preprocessor run"
        else:
            out["hub_keras_layer"] = "encoder loads (no preprocessor/)"
    except Exception as e:
        out["hub_keras_layer"] = f"fails: {short(e)}"
    if (export / "classifier" / "saved_model.pb").is_file():
        loaded = tf.saved_model.load(str(export / "classifier"))  # held: its signatures need it alive
        out["logits"] = loaded.signatures["serving_default"](text=tf.constant(texts))["logits"].numpy()
    else:
        meta = json.loads((export / "unified_nlp.json").read_text())
        out["no_classifier"] = str(meta.get("classifier", "no classifier/"))
    return out


def migrate(fx: dict, texts: list[str], scratch: Path, paddle_jobs: dict) -> dict:
    """convert to every backend and back; the exported folders in their plain tools."""
    import unified_nlp as un
    from unified_nlp.weights import load_file

    name = fx["fixture"].replace("/", "-")
    row: dict = {"fixture": fx["fixture"]}
    started = time.perf_counter()
    try:
        canonical = un.convert(fx["path"], to="huggingface", out=scratch / f"{name}-huggingface")
    except Exception as e:
        return row | {"convertible": False, "reason": short(e)}
    row["convertible"] = True
    original = load_file(canonical / "model.safetensors")
    targets: dict = {}
    try:
        diff = float(np.abs(plain_transformers(canonical, texts) - fx["ref_logits"]).max())
        targets["huggingface"] = {"plain_tools": "transformers AutoModelForSequenceClassification", "plain_diff": diff}
    except Exception as e:
        targets["huggingface"] = {"plain_tools": f"fails: {short(e)}"}
    for target in ("tfhub", "paddlenlp"):
        cell: dict = {}
        try:
            out = un.convert(fx["path"], to=target, out=scratch / f"{name}-{target}")
            back = load_file(
                un.convert(out, to="huggingface", out=scratch / f"{name}-{target}-back") / "model.safetensors"
            )
            cell["round_trip_bit_exact"] = sorted(back) == sorted(original) and all(
                back[k].dtype == v.dtype and back[k].tobytes() == v.tobytes() for k, v in original.items()
            )
        except Exception as e:
            targets[target] = {"error": short(e)}
            continue
        if target == "tfhub":
            plain = plain_tfhub(out, texts)
            cell["hub_keras_layer"] = plain["hub_keras_layer"]
            if "logits" in plain:
                cell["plain_tools"] = "classifier/ serving_default"
                cell["plain_diff"] = float(np.abs(plain["logits"] - fx["ref_logits"]).max())
            else:
                cell["plain_tools"] = plain["no_classifier"]
        else:
            meta = json.loads((out / "unified_nlp.json").read_text())
            config = json.loads((out / "paddlenlp" / "config.json").read_text())
            paddle_jobs[fx["fixture"]] = {
                "folder": str(out / "paddlenlp"),
                "texts": texts,
                "max_length": int(meta["max_length"]),
                "ids": fx["ref_ids"],
                "pad_id": int(config.get("pad_token_id") or 0),
            }
            if meta.get("paddle_tokenizer_missing"):
                cell["paddle_tokenizer_missing"] = meta["paddle_tokenizer_missing"]
        targets[target] = cell
    row["targets"] = targets
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "formats")
    parser.add_argument("--texts", type=int, default=TEXTS, help="how many SST-2 dev sentences (from the first)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="unified-nlp-formats-") as tmp:
        scratch = Path(tmp)
        os.environ["UNIFIED_NLP_HOME"] = str(scratch / "store")  # imports go to a fresh store: cold, and not the user's
        from unified_nlp.benchdata import read_tsv, sst2_path

        texts = read_tsv(sst2_path("dev"))[0][: args.texts]
        stamp = time.perf_counter()
        fixtures, paddle_versions = paddle_fixtures(scratch / "paddle", texts)
        build_s = {"paddlenlp": round(time.perf_counter() - stamp, 1)}
        stamp = time.perf_counter()
        fixtures += tfhub_fixtures(scratch / "tfhub", texts)
        build_s["tfhub"] = round(time.perf_counter() - stamp, 1)
        print(f"fixtures built: {build_s}", flush=True)

        loads = []
        for fx in fixtures:
            for backend in BACKENDS:
                loads.append(load_row(fx, backend, texts))
                print(json.dumps(loads[-1]), flush=True)
        migrations, jobs = [], {}
        for fx in fixtures:
            migrations.append(migrate(fx, texts, scratch / "out", jobs))
            print(json.dumps(migrations[-1]), flush=True)
        (scratch / "jobs.json").write_text(json.dumps(jobs))
        run_paddle("plain", str(scratch / "jobs.json"), str(scratch / "plain.json"))
        plain = json.loads((scratch / "plain.json").read_text())
        info = {fx["fixture"]: fx for fx in fixtures}
        for m in migrations:
            if m["fixture"] not in plain:
                continue
            got, cell = plain[m["fixture"]], m["targets"]["paddlenlp"]
            cell["plain_tools"] = f"PaddleNLP {got.get('model_class')} + {got.get('tokenizer_class')}"
            if "tokenizer_error" in got:  # the model alone, on the reference's token ids
                cell["plain_tools"] = f"PaddleNLP {got.get('model_class')} (model only, given the token ids)"
                cell["plain_tokenizer_error"] = got["tokenizer_error"]
            if "logits" in got:
                cell["plain_diff"] = float(np.abs(np.array(got["logits"]) - info[m["fixture"]]["ref_logits"]).max())
            else:
                cell["plain_error"] = got["error"]
        shutil.rmtree(scratch / "out", ignore_errors=True)

    record = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python benchmarks/formats.py " + " ".join(argv),
        "texts": len(texts),
        "seconds": round(time.perf_counter() - started, 1),
        "fixture_build_seconds": build_s,
        "environment": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_start": load_start,
            "load_end": [round(x, 2) for x in os.getloadavg()],
            "versions": versions() | paddle_versions,
        },
        "fixtures": [
            {k: fx[k] for k in ("fixture", "format", "family", "own", "options", "labels", "reference")}
            for fx in fixtures
        ],
        "loads": loads,
        "migrations": migrations,
    }
    # no machine paths in the record: the scratch folder is <tmp>, the repository "."
    text = json.dumps(record, indent=1).replace(str(scratch), "<tmp>").replace(str(REPO), ".")
    record = json.loads(text)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out / "results.json", text + "\n")
    write_atomically(args.out / "results.md", markdown(record))
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
