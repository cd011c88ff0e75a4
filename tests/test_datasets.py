"""classify_dataset and `unified-nlp classify --input` on the local engine: every
format in and out, the classifier's own numbers, resume after SIGKILL, bad rows,
and clear errors for bad files. Real model, real files, small sizes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO, default_classifier, require_module

pa = require_module("pyarrow")
import pyarrow.csv as pcsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import unified_nlp as un  # noqa: E402
from unified_nlp.benchdata import read_tsv, sst2_path  # noqa: E402
from unified_nlp.datasets.rows import classify_rows, output_schema  # noqa: E402
from unified_nlp.progress import counted  # noqa: E402

TEXTS = read_tsv(sst2_path("dev"))[0]


def write_input(path: Path, columns: dict[str, list]) -> Path:
    fmt = path.suffix[1:]
    if fmt == "parquet":
        pq.write_table(pa.table(columns), path)
    elif fmt == "jsonl":
        names = list(columns)
        with open(path, "w", encoding="utf-8") as f:
            for values in zip(*columns.values()):
                f.write(json.dumps(dict(zip(names, values))) + "\n")
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            if fmt == "tsv":
                f.write("\t".join(columns) + "\n")
                for values in zip(*columns.values()):
                    f.write("\t".join(map(str, values)) + "\n")
            else:
                w = csv.writer(f)
                w.writerow(columns)
                w.writerows(zip(*columns.values()))
    return path


def read_output(path: Path) -> dict[str, list]:
    fmt = path.suffix[1:]
    if fmt == "parquet":
        return pq.read_table(path).to_pydict()
    if fmt == "jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return {k: [r[k] for r in rows] for k in rows[0]}
    parse = pcsv.ParseOptions(delimiter="\t", quote_char=False) if fmt == "tsv" else pcsv.ParseOptions()
    return pcsv.read_csv(path, parse_options=parse).to_pydict()


@pytest.fixture(scope="module")
def hf():
    return default_classifier("huggingface")


@pytest.mark.parametrize("fmt_in,fmt_out", [("jsonl", "parquet"), ("csv", "jsonl"), ("tsv", "csv"), ("parquet", "tsv")])
def test_formats_in_and_out_give_the_classifiers_own_numbers(tmp_path, hf, fmt_in, fmt_out):
    texts = TEXTS[:45]
    source = write_input(tmp_path / f"in.{fmt_in}", {"text": texts, "key": [f"k{i:03d}" for i in range(45)]})
    out = tmp_path / f"out.{fmt_out}"
    summary = un.classify_dataset(source, out, model=hf, id_column="key", chunk_rows=16, batch_size=8)
    assert (summary["rows"], summary["written"], summary["errors"], summary["parts"]) == (45, 45, 0, 3)
    got = read_output(out)
    assert list(got) == output_schema(hf.labels, "key")
    assert got["key"] == [f"k{i:03d}" for i in range(45)]  # input order, ids kept (CSV: as strings)
    want = hf.predict_proba(texts)
    probs = np.array([got[f"prob_{label}"] for label in hf.labels]).T
    assert np.abs(probs - want).max() <= 1e-6
    assert got["label"] == [p.label for p in hf.predict(texts)]
    assert np.abs(np.array(got["score"]) - want.max(axis=1)).max() <= 1e-6
    assert not (tmp_path / f"out.{fmt_out}.parts").exists() and not (tmp_path / f"out.{fmt_out}.errors.jsonl").exists()


def test_sentence_pairs_and_row_numbers(tmp_path, hf):
    first, second = TEXTS[:10], TEXTS[10:20]
    source = write_input(tmp_path / "pairs.parquet", {"a": first, "b": second})
    out = tmp_path / "out.jsonl"
    un.classify_dataset(source, out, model=hf, text_column="a", pair_column="b", chunk_rows=4)
    got = read_output(out)
    assert got["row"] == list(range(10))
    want = hf.predict_proba(first, text_pair=second)
    assert np.abs(np.array([got[f"prob_{x}"] for x in hf.labels]).T - want).max() <= 1e-6


def test_classify_rows_on_numpy_columns_names_bad_rows_and_missing_columns(hf):
    out, bad = classify_rows(
        hf,
        {"row": np.arange(3), "text": np.array(["great", None, "awful"], dtype=object)},
        text_column="text",
        on_error="skip",
    )
    assert out["row"] == [0, 2] and bad == [{"id": 1, "reason": "column 'text' is None"}]
    assert isinstance(out["row"][0], int) and out["score"].dtype == np.float32
    with pytest.raises(un.InvalidInputError, match=r"row 1: column 'text' is None"):
        classify_rows(hf, {"row": [0, 1], "text": ["fine", None]}, text_column="text")
    with pytest.raises(un.InvalidInputError, match=r"no column 'text'.*\['row', 'txt'\]"):
        classify_rows(hf, {"row": [0], "txt": ["fine"]}, text_column="text")


BAD_JSONL = (
    b'{"id": "a", "text": "a fine film"}\n'
    b'{"id": "b", "text": null}\n'
    b'{"id": "c", "text": 3}\n'
    b'{"id": "d", "text": "\\ud800 lone"}\n'
    b'{"id": "e", "text": "not \xff\xfe utf-8"}\n'
    b'{"id": "f"}\n'
    b"\n"
    b'{"id": "g", "text": ""}\n'
)


def test_on_error_skip_writes_every_bad_row_with_its_id_and_reason(tmp_path, hf):
    source = tmp_path / "bad.jsonl"
    source.write_bytes(BAD_JSONL)
    out = tmp_path / "out.parquet"
    summary = un.classify_dataset(source, out, model=hf, id_column="id", on_error="skip", chunk_rows=3)
    assert (summary["rows"], summary["written"], summary["errors"]) == (7, 2, 5)
    assert read_output(out)["id"] == ["a", "g"]  # an empty string is a valid text, as everywhere
    errors = [json.loads(line) for line in Path(summary["errors_file"]).read_text().splitlines()]
    assert [e["id"] for e in errors] == ["b", "c", "d", "e", "f"]
    reasons = [e["reason"] for e in errors]
    assert "None" in reasons[0] and "int" in reasons[1] and "UTF-8" in reasons[2] and "UTF-8" in reasons[3]
    assert "None" in reasons[4]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "UNIFIED_NLP_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "unified_nlp.cli", "classify", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def test_on_error_raise_names_the_row_and_a_rerun_with_skip_resumes(tmp_path, hf):
    source = write_input(tmp_path / "in.csv", {"text": TEXTS[:12], "id": [f"x{i}" for i in range(12)]})
    lines = source.read_bytes().splitlines(keepends=True)
    lines[10] = b'"bad \xff byte",x9\n'  # row 9 (line 1 is the header)
    source.write_bytes(b"".join(lines))
    out = tmp_path / "out.csv"
    with pytest.raises(un.InvalidInputError, match=r"row with id='x9': column 'text' is not valid UTF-8"):
        un.classify_dataset(source, out, model=hf, id_column="id", chunk_rows=4)
    assert not out.exists()
    manifest = json.loads((tmp_path / "out.csv.parts" / "manifest.json").read_text())
    assert sorted(manifest["parts"]) == ["0", "1"]  # rows 0-7 are done
    with pytest.raises(un.InvalidInputError, match=r"different chunk_rows.*--no-resume"):
        un.classify_dataset(source, out, model=hf, id_column="id", chunk_rows=5, on_error="skip")
    summary = un.classify_dataset(source, out, model=hf, id_column="id", chunk_rows=4, on_error="skip")
    assert (summary["parts_reused"], summary["rows_classified"], summary["errors"]) == (2, 4, 1)
    assert read_output(out)["id"] == [f"x{i}" for i in range(12) if i != 9]
    fresh = un.classify_dataset(source, out, model=hf, id_column="id", chunk_rows=5, on_error="skip", resume=False)
    assert fresh["parts_reused"] == 0 and fresh["written"] == 11


def test_cli_on_error_raise_is_one_line_naming_the_row(tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_bytes(BAD_JSONL)
    result = cli("--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--id-column", "id")
    assert result.returncode == 2, result.stderr
    assert "unified-nlp: error: row with id='b': column 'text' is None" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("empty.parquet", b"", "is empty"),
        ("empty.jsonl", b"\n\n", "has no rows"),
        ("header.csv", b"text,id\n", "has a header but no rows"),
        ("broken.parquet", b"PAR1 this is not parquet at all", "cannot read .* as parquet"),
        ("notjson.jsonl", b'{"text": "fine"}\n{"text": \n', "line 2: not a JSON object"),
        ("data.xlsx", b"text\nfine\n", "unknown format '.xlsx'"),
        ("missing.jsonl", None, "cannot read .*No such file"),
        ("folder.csv", "dir", "cannot read .*folder"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, name, content, match):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(un.InvalidInputError, match=match):
        un.classify_dataset(path, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("suffix", ["parquet", "csv", "tsv", "jsonl"])
def test_a_missing_column_names_the_columns_that_exist(tmp_path, suffix):
    path = write_input(tmp_path / f"in.{suffix}", {"sentence": ["fine"], "label": [1]})
    with pytest.raises(un.InvalidInputError, match=r"no column 'text'; its columns are \['sentence', 'label'\]"):
        un.classify_dataset(path, tmp_path / "out.parquet")
    result = cli("--input", str(path), "--output", str(tmp_path / "o.parquet"), "--text-column", "review")
    assert result.returncode == 2 and "no column 'review'; its columns are ['sentence', 'label']" in result.stderr


def test_cli_input_excludes_texts_and_needs_output(tmp_path):
    path = write_input(tmp_path / "in.jsonl", {"text": ["fine"]})
    assert "not both" in cli("--input", str(path), "--output", str(tmp_path / "o.jsonl"), "hello").stderr
    assert "--input needs --output" in cli("--input", str(path)).stderr


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (FileNotFoundError, ValueError):
        return {"parts": {}}


def test_resume_after_sigkill_writes_every_row_once_and_redoes_no_finished_part(tmp_path, hf):
    n = 1500
    texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
    source = write_input(tmp_path / "big.jsonl", {"text": texts})
    out = tmp_path / "preds.parquet"
    folder = tmp_path / "preds.parquet.parts"
    args = ["--input", str(source), "--output", str(out), "--chunk-rows", "100", "--threads", "1"]
    env = {**os.environ, "UNIFIED_NLP_PROGRESS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "unified_nlp.cli", "classify", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    deadline = time.monotonic() + 240
    while len(_manifest(folder)["parts"]) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    finished = _manifest(folder)["parts"]
    assert 3 <= len(finished) < 15 and not out.exists()
    first = folder / finished["0"]["file"]  # mark a finished part: a redone part would lose the mark
    table = pq.read_table(first)
    pq.write_table(table.set_column(1, "label", pa.array(["KEPT"] * table.num_rows)), first)

    quiet = {k: v for k, v in env.items() if k != "UNIFIED_NLP_PROGRESS"}
    result = subprocess.run(
        [sys.executable, "-m", "unified_nlp.cli", "classify", *args],
        capture_output=True,
        text=True,
        env=quiet,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    done_rows = sum(p["rows"][1] - p["rows"][0] for p in finished.values())
    assert summary["parts_reused"] == len(finished) and summary["rows_classified"] == n - done_rows
    assert f"resuming {out}: {counted(len(finished), 'finished part')}" in result.stderr
    got = read_output(out)
    assert got["row"] == list(range(n))  # every row exactly once, in order
    assert got["label"][:100] == ["KEPT"] * 100 and "KEPT" not in got["label"][100:]
    sample = list(range(101, n, 37))
    want = hf.predict_proba([texts[i] for i in sample])
    probs = np.array([[got[f"prob_{x}"][i] for x in hf.labels] for i in sample])
    assert np.abs(probs - want).max() <= 1e-6
    assert not folder.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tfhub", "paddlenlp"])
def test_every_backend_labels_sst2_dev_as_huggingface_does(tmp_path, hf, name):
    texts, _ = read_tsv(sst2_path("dev"))
    source = write_input(tmp_path / "dev.parquet", {"sentence": texts})
    reference = un.classify_dataset(source, tmp_path / "hf.parquet", model=hf, text_column="sentence")
    other = default_classifier(name)
    summary = un.classify_dataset(source, tmp_path / f"{name}.parquet", model=other, text_column="sentence")
    assert reference["rows"] == summary["rows"] == len(texts)
    a, b = read_output(tmp_path / "hf.parquet"), read_output(tmp_path / f"{name}.parquet")
    assert a["label"] == b["label"]
    head = texts[:64]
    own = other.predict_proba(head)
    assert np.abs(np.array([b[f"prob_{x}"][:64] for x in other.labels]).T - own).max() <= 1e-6


def _sigint_as_in_a_terminal() -> None:
    # a suite started in the background of a non-interactive shell (`make test &`, nohup)
    # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt: the child ran on
    # to the end (seen: a 60 s timeout). A terminal's Ctrl-C reaches a process with the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_after_finished_parts_and_says_how_to_go_on(tmp_path):
    # 80 parts, so the run cannot finish before the signal even when this test is descheduled for
    # seconds on a loaded machine (16 parts were about 8 s of work); one finished part is enough
    source = write_input(tmp_path / "in.parquet", {"text": [TEXTS[i % len(TEXTS)] for i in range(4000)]})
    out, folder = tmp_path / "preds.jsonl", tmp_path / "preds.jsonl.parts"
    proc = subprocess.Popen(
        [sys.executable, "-m", "unified_nlp.cli", "classify", "--input", str(source), "--output", str(out)]
        + ["--chunk-rows", "50", "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "UNIFIED_NLP_PROGRESS"},
        preexec_fn=_sigint_as_in_a_terminal,
    )
    deadline = time.monotonic() + 240
    while not _manifest(folder)["parts"] and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert " finished in " in err and "rerun the same command" in err and "Traceback" not in err
    parts = _manifest(folder)["parts"]
    assert parts and all((folder / p["file"]).is_file() for p in parts.values()) and not out.exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no half-written part


def test_the_output_cannot_be_the_input(tmp_path):
    path = write_input(tmp_path / "in.jsonl", {"text": ["fine"]})
    with pytest.raises(un.InvalidInputError, match="is the input file"):
        un.classify_dataset(path, path)


def test_a_multi_label_head_writes_sigmoids_and_every_label_at_the_threshold(tmp_path):
    from .checkpoints import make_checkpoint

    clf = un.load_classifier(
        make_checkpoint("bert", tmp_path / "m", num_labels=4, problem_type="multi_label_classification", scale=8.0),
        backend="huggingface",
    )
    texts = TEXTS[:40]
    source = write_input(tmp_path / "in.jsonl", {"text": texts})
    un.classify_dataset(source, tmp_path / "out.parquet", model=clf, chunk_rows=16)
    got = read_output(tmp_path / "out.parquet")
    probs = np.array([got[f"prob_{x}"] for x in clf.labels]).T
    assert np.abs(probs - clf.predict_proba(texts)).max() <= 1e-6
    want = [",".join(p.label for p in found) for found in clf.predict(texts)]
    assert got["label"] == want and len(set(want)) > 1  # the rows do not all get one label set
    assert np.abs(np.array(got["score"]) - probs.max(axis=1)).max() <= 1e-6


def test_a_first_part_of_bad_rows_only_still_assembles_into_parquet(tmp_path, hf):
    texts = [None, 7, "a wonderful film", "dull and long", None]  # chunk 0 (rows 0-1) and chunk 2 are all bad
    source = write_input(tmp_path / "in.jsonl", {"text": texts})
    out = tmp_path / "out.parquet"
    summary = un.classify_dataset(source, out, model=hf, chunk_rows=2, on_error="skip")
    assert (summary["parts"], summary["written"], summary["errors"]) == (3, 2, 3)
    got = read_output(out)
    assert got["row"] == [2, 3] and got["label"] == [p.label for p in hf.predict(texts[2:4])]
