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
NO_VALUE = "has no value (null, or an empty CSV/TSV cell)"  # the one reason for a missing text, every format


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
    convert = pcsv.ConvertOptions(strings_can_be_null=True, null_values=[""])  # an empty cell: None, as read
    return pcsv.read_csv(path, parse_options=parse, convert_options=convert).to_pydict()


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
    assert out["row"] == [0, 2] and bad == [{"id": 1, "reason": f"column 'text' {NO_VALUE}"}]
    assert isinstance(out["row"][0], int) and out["score"].dtype == np.float32
    with pytest.raises(un.InvalidInputError, match=r"row 1: column 'text' has no value"):
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
    assert NO_VALUE in reasons[0] and "int" in reasons[1] and "U+D800" in reasons[2]
    assert "not valid UTF-8 (byte 0xff)" in reasons[3] and NO_VALUE in reasons[4]
    assert [e["line"] for e in errors] == [2, 3, 4, 5, 6]  # the file's lines, from 1


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
    assert f"unified-nlp: error: {source}:2: row with id='b': column 'text' {NO_VALUE}" in result.stderr
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


# Kept input columns, empty cells, bytes that are not UTF-8 (issue 26, point 7).

KEEP_INPUT = {
    "id": [f"r{i}" for i in range(7)],
    "text": TEXTS[:7],
    "stars": [5, 1, 4, 2, 5, 1, 3],
    "note": [None, None, None, None, "seen twice", None, "long"],  # all null in the first parts: still typed
}


@pytest.mark.parametrize("fmt_out", ["parquet", "jsonl", "csv"])
def test_kept_columns_are_written_beside_the_predictions(tmp_path, hf, fmt_out):
    source = write_input(tmp_path / "in.parquet", KEEP_INPUT)
    want = hf.predict_proba(TEXTS[:7])
    for keep, kept in [(["stars", "note"], ["stars", "note"]), ("all", ["text", "stars", "note"]), (None, [])]:
        out = tmp_path / f"out.{fmt_out}"
        un.classify_dataset(source, out, model=hf, id_column="id", keep_columns=keep, chunk_rows=2)
        got = read_output(out)
        assert list(got) == ["id", *kept, "label", "score", "prob_NEGATIVE", "prob_POSITIVE"], keep
        for name in kept:  # as they were (CSV output: read back by type inference)
            assert got[name] == KEEP_INPUT[name], (keep, name)
        assert np.abs(np.array(got["prob_POSITIVE"]) - want[:, 1]).max() <= 1e-6
    if fmt_out == "parquet":
        schema = pq.read_schema(tmp_path / "out.parquet")
        assert str(schema.field("id").type) == "string"
        out = tmp_path / "typed.parquet"
        un.classify_dataset(source, out, model=hf, keep_columns=["stars", "note"], chunk_rows=2)
        schema = pq.read_schema(out)
        assert (str(schema.field("stars").type), str(schema.field("note").type)) == ("int64", "string")


def test_kept_values_of_mixed_types_stay_in_jsonl_and_are_a_clear_error_in_parquet(tmp_path, hf):
    source = tmp_path / "in.jsonl"
    rows = [{"text": "a fine film", "extra": 3}, {"text": "dull", "extra": "three"}, {"text": "ok", "extra": [1]}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    un.classify_dataset(source, tmp_path / "out.jsonl", model=hf, keep_columns=["extra"])
    assert read_output(tmp_path / "out.jsonl")["extra"] == [3, "three", [1]]
    with pytest.raises(un.InvalidInputError, match=r"column 'extra' holds values of different types.*\.jsonl"):
        un.classify_dataset(source, tmp_path / "out.parquet", model=hf, keep_columns=["extra"])
    with pytest.raises(un.InvalidInputError, match=r"one type in some rows and another.*\.jsonl"):
        un.classify_dataset(source, tmp_path / "out2.parquet", model=hf, keep_columns=["extra"], chunk_rows=1)


@pytest.mark.parametrize(
    "columns, keep, id_column, match",
    [
        (["text", "label"], "all", None, r"cannot keep the input column 'label': the output has a column of that name"),
        (["text", "score"], ["score"], None, r"cannot keep the input column 'score'"),
        (["text", "row"], ["row"], None, r"cannot keep the input column 'row'.*--id-column row"),
        (["text", "stars"], ["stars", "nope"], None, r"no column 'nope' to keep; the input's columns are"),
        (["text", "stars"], "stars", None, r"a list of column names or 'all', got the string 'stars'"),
    ],
)
def test_kept_columns_that_cannot_be_written_are_refused_before_the_model_loads(
    tmp_path, columns, keep, id_column, match
):
    source = write_input(tmp_path / "in.jsonl", {c: ["fine"] for c in columns})
    with pytest.raises(un.InvalidInputError, match=match):  # the model does not exist: it was never loaded
        un.classify_dataset(source, tmp_path / "out.jsonl", model=str(tmp_path / "no-model"), keep_columns=keep)
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.parts").exists()


def test_a_kept_column_named_like_a_label_probability_is_refused(tmp_path, hf):
    source = write_input(tmp_path / "in.jsonl", {"text": ["fine"], "prob_POSITIVE": [0.5]})
    with pytest.raises(un.InvalidInputError, match=r"cannot keep the input column 'prob_POSITIVE'"):
        un.classify_dataset(source, tmp_path / "out.jsonl", model=hf, keep_columns="all")


def test_kept_columns_are_part_of_the_resume_key(tmp_path, hf):
    columns = {"text": TEXTS[:12], "id": [f"x{i}" for i in range(12)], "stars": [str(i % 5) for i in range(12)]}
    columns["note"] = [f"n{i}" for i in range(12)]
    columns["text"][9] = None  # row 9 (chunk 2) stops the first run
    source = write_input(tmp_path / "in.jsonl", columns)
    out = tmp_path / "out.csv"
    with pytest.raises(un.InvalidInputError, match=r"row with id='x9'"):
        un.classify_dataset(source, out, model=hf, id_column="id", keep_columns=["stars"], chunk_rows=4)
    with pytest.raises(un.InvalidInputError, match=r"different keep_columns.*--no-resume"):
        un.classify_dataset(source, out, model=hf, id_column="id", keep_columns=["note"], chunk_rows=4, on_error="skip")
    summary = un.classify_dataset(
        source, out, model=hf, id_column="id", keep_columns=["stars"], chunk_rows=4, on_error="skip"
    )
    assert (summary["parts_reused"], summary["rows_classified"]) == (2, 4)
    got = pcsv.read_csv(out, convert_options=pcsv.ConvertOptions(column_types={"stars": pa.string()})).to_pydict()
    assert list(got)[:3] == ["id", "stars", "label"]
    assert got["stars"] == [s for i, s in enumerate(columns["stars"]) if i != 9]  # the reused parts have it too


MISSING_TEXT = {  # the same three rows in every format: a text, a missing text, texts that only look like nulls
    "csv": b"id,text\na,a fine film\nb,\nc,NA\nd,null\n",
    "tsv": b"id\ttext\na\ta fine film\nb\t\nc\tNA\nd\tnull\n",
    "jsonl": b'{"id": "a", "text": "a fine film"}\n{"id": "b", "text": null}\n{"id": "c", "text": "NA"}\n'
    b'{"id": "d", "text": "null"}\n',
    "parquet": None,
}


@pytest.mark.parametrize("fmt", list(MISSING_TEXT))
def test_an_empty_cell_is_the_same_bad_row_as_a_null_in_every_format(tmp_path, hf, fmt):
    source = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        write_input(source, {"id": ["a", "b", "c", "d"], "text": ["a fine film", None, "NA", "null"]})
    else:
        source.write_bytes(MISSING_TEXT[fmt])
    summary = un.classify_dataset(source, tmp_path / "out.jsonl", model=hf, id_column="id", on_error="skip")
    errors = [json.loads(line) for line in Path(summary["errors_file"]).read_text().splitlines()]
    line = {"jsonl": 2, "parquet": None}.get(fmt, 3)  # CSV/TSV: the header is line 1
    assert errors == [{"id": "b", "reason": f"column 'text' {NO_VALUE}", **({"line": line} if line else {})}]
    assert read_output(tmp_path / "out.jsonl")["id"] == ["a", "c", "d"]  # "NA" and "null" are texts


NOT_UTF8 = (  # Latin-1, as a spreadsheet may export it: a quoted cell over two lines, a blank line
    b'id,text,note\nr0,"a fine\nfilm",ok\nr1,dull,ok\n\nr2,caf\xe9 cr\xe8me,ok\nr3,great,na\xefve\nr4,fine,ok\n'
)


def test_bytes_that_are_not_utf8_name_the_line_and_byte(tmp_path, hf):
    source = tmp_path / "latin1.csv"
    source.write_bytes(NOT_UTF8)
    message = f"{source}:6: row with id='r2': column 'text' is not valid UTF-8 (byte 0xe9)"
    with pytest.raises(un.InvalidInputError) as info:
        un.classify_dataset(source, tmp_path / "out.jsonl", model=hf, id_column="id", chunk_rows=2)
    assert str(info.value).startswith(message)
    summary = un.classify_dataset(
        source, tmp_path / "out2.jsonl", model=hf, id_column="id", keep_columns=["note"], on_error="skip"
    )
    errors = [json.loads(line) for line in Path(summary["errors_file"]).read_text().splitlines()]
    assert errors == [
        {"id": "r2", "line": 6, "reason": "column 'text' is not valid UTF-8 (byte 0xe9)"},
        {"id": "r3", "line": 7, "reason": "column 'note' is not valid UTF-8 (byte 0xef)"},  # a kept value too
    ]
    assert read_output(tmp_path / "out2.jsonl")["id"] == ["r0", "r1", "r4"]
    result = cli("--input", str(source), "--output", str(tmp_path / "o.csv"), "--id-column", "id")
    assert result.returncode == 2 and f"unified-nlp: error: {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
