"""The command line's input files and errors: one-line messages, exit code 2, checked
before any model loads; labelled files read one way (header or not, BOM, exact columns)."""

from __future__ import annotations

import json
import sys

import pytest

import unified_nlp as un
from unified_nlp.benchdata import read_tsv
from unified_nlp.cli import main

from .conftest import require


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "--file", "nope.txt"],
        ["compare", "--backends", "huggingface,tfhub", "--texts", "nope.txt"],
        ["evaluate", "--data", "nope.tsv"],
        ["fit", "--train", "nope.tsv", "--out", "model"],
    ],
)
def test_a_missing_input_file_is_a_one_line_error(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the input file was read")

    monkeypatch.setattr("unified_nlp.api.load_classifier", no_model)
    code, _, err = _run(capsys, *argv)
    assert code == 2 and err.startswith("unified-nlp: error: nope.") and "cannot read" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_batch_size_of_zero_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as done:
        main(["classify", "--batch-size", "0", "hello"])
    assert done.value.code == 2 and "expected a positive integer" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"unified-nlp {un.__version__}"


@pytest.mark.parametrize(
    "content, texts, labels",
    [
        ("sentence\tlabel\na fine film\t1\ndull\t0\n", ["a fine film", "dull"], [1, 0]),
        ("\ufeffsentence\tlabel\na fine film\t1\n", ["a fine film"], [1]),  # a byte-order mark
        ("a fine film\tPOSITIVE\n\n  \ndull\tNEGATIVE\n", ["a fine film", "dull"], ["POSITIVE", "NEGATIVE"]),
    ],
)
def test_labelled_files_with_or_without_header_bom_and_blank_lines(tmp_path, content, texts, labels):
    path = tmp_path / "data.tsv"
    path.write_text(content, encoding="utf-8")
    assert read_tsv(path) == (texts, labels)


@pytest.mark.parametrize(
    "content, message",
    [
        ("a fine film\tgood\t1\n", ":1: expected 'sentence<TAB>label', got 3 column(s) (sentence pairs: use --pairs)"),
        ("sentence\tlabel\n", "no rows"),
        ("", "no rows"),
        ("fine\t1\njust text\n", ":2: expected 'sentence<TAB>label', got 1 column(s)"),
    ],
)
def test_labelled_files_of_the_wrong_shape_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "data.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(un.InvalidInputError) as info:
        read_tsv(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_classify_skips_blank_lines_and_prints_every_score(capsys, tmp_path):
    require("huggingface")
    path = tmp_path / "texts.txt"
    path.write_text("a great film\n\n   \nawful\n", encoding="utf-8")
    code, out, _ = _run(capsys, "classify", "--file", str(path), "--json", "--all-scores")
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and [r["text"] for r in rows] == ["a great film", "awful"]
    assert all(set(r["scores"]) == {"NEGATIVE", "POSITIVE"} for r in rows)
    assert all(abs(sum(r["scores"].values()) - 1) < 1e-5 for r in rows)
    assert [r["label"] for r in rows] == ["POSITIVE", "NEGATIVE"]


def test_evaluate_prints_json_ready_report(capsys, tmp_path):
    require("huggingface")
    path = tmp_path / "dev.tsv"
    path.write_text("sentence\tlabel\na great film\tPOSITIVE\nawful\tNEGATIVE\n", encoding="utf-8")
    code, out, _ = _run(capsys, "evaluate", "--data", str(path), "--json")
    report = json.loads(out)
    assert code == 0 and report["n"] == 2 and report["confusion_matrix"] == [[1, 0], [0, 1]]


def test_an_unwritable_store_is_a_one_line_error(capsys, tmp_path, monkeypatch):
    # a store under a regular file: root is refused too (a read-only folder stops only other users)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("UNIFIED_NLP_HOME", str(blocker / "store"))
    code, _, err = _run(capsys, "classify", "hello")
    assert code == 2 and err.startswith("unified-nlp: error: cannot write") and "UNIFIED_NLP_HOME" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["convert", "fit", "save"])
def test_writing_under_a_file_is_a_one_line_error(capsys, tmp_path, monkeypatch, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "model"
    if command == "save":
        require("huggingface")
        from .conftest import default_classifier

        with pytest.raises(un.NotWritableError, match=f"cannot write {out}: {blocker} is a file"):
            default_classifier("huggingface").save(out)
        return
    if command == "convert":
        code, _, err = _run(capsys, "convert", "--to", "huggingface", "default", str(out))
    else:
        train = tmp_path / "train.tsv"
        train.write_text("good\tPOSITIVE\nbad\tNEGATIVE\n", encoding="utf-8")

        def no_model(*args, **kwargs):
            raise AssertionError("a model was loaded although the output cannot be written")

        monkeypatch.setattr("unified_nlp.api.load_classifier", no_model)
        code, _, err = _run(capsys, "fit", "--train", str(train), "--out", str(out))
    assert code == 2 and err.startswith(f"unified-nlp: error: cannot write {out}") and "is a file" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"] + (["train.tsv"] if command == "fit" else [])


def _parsers(parser, name="unified-nlp"):
    import argparse

    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_has_help_and_shows_its_default():
    import argparse

    from unified_nlp.cli import build_parser

    for name, parser in _parsers(build_parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):  # each subcommand says what it does
                assert all(choice.help for choice in action._choices_actions), name
                continue
            if action.dest in ("help", "version"):
                continue
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help text"
            if action.option_strings and action.default not in (None, False) and not action.required:
                assert f"(default: {action.default})" in text, f"{name}: {action.option_strings} hides its default"


def _no_work(monkeypatch):
    """Fail the test if any model loads, converts or benchmarks."""

    def no_work(*args, **kwargs):
        raise AssertionError("work began although an output cannot be written")

    for target in ("unified_nlp.api.load_classifier", "unified_nlp.api.convert", "unified_nlp.bench.runner.main"):
        monkeypatch.setattr(target, no_work)


OUTPUTS = ("classify", "convert", "fit", "checkpoint-dir", "plot", "history-csv", "bench", "worker")


def _output_case(tmp_path, command: str, bad: str) -> tuple[list[str], str]:
    """(a command line whose output `command` is unwritable, the path it names)."""
    train = tmp_path / "train.tsv"
    train.write_text("good\tPOSITIVE\nbad\tNEGATIVE\n", encoding="utf-8")
    data = tmp_path / "in.csv"
    data.write_text("text\ngood\n", encoding="utf-8")
    fit = ["fit", "--train", str(train), "--out"]
    return {
        "classify": (["classify", "--input", str(data), "--output", f"{bad}/out.csv"], f"{bad}/out.csv"),
        "convert": (["convert", "--to", "tfhub", "default", bad], bad),
        "fit": ([*fit, bad], bad),
        "checkpoint-dir": ([*fit, str(tmp_path / "m"), "--checkpoint-dir", bad], bad),
        "plot": ([*fit, str(tmp_path / "m"), "--plot", f"{bad}/loss.png"], f"{bad}/loss.png"),
        "history-csv": ([*fit, str(tmp_path / "m"), "--history-csv", f"{bad}/h.csv"], f"{bad}/h.csv"),
        "bench": (["bench", "--quick", "--out", bad], bad),
        "worker": (["worker", "register", "paddlenlp", sys.executable, "--config", f"{bad}/w.json"], f"{bad}/w.json"),
    }[command]


@pytest.mark.parametrize("where", ["proc", "under-a-file"])
@pytest.mark.parametrize("command", OUTPUTS)
def test_every_unwritable_output_is_a_one_line_error_before_any_work(capsys, tmp_path, monkeypatch, command, where):
    _no_work(monkeypatch)
    # /proc refuses new files even to root (a permission check alone lets root through)
    bad = "/proc/unified-nlp-test" if where == "proc" else str(tmp_path / "a-file" / "sub")
    (tmp_path / "a-file").write_text("")
    argv, named = _output_case(tmp_path, command, bad)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = _run(capsys, *argv)
    assert code == 2 and err.startswith(f"unified-nlp: error: cannot write {named}"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no probe file or part left


def test_fit_offers_only_backends_that_train(capsys):
    from unified_nlp.registry import backend_names, title, training_backends

    with pytest.raises(SystemExit) as done:
        main(["fit", "--backend", "ort", "--train", "t.tsv", "--out", "m"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "onnxruntime runs models but does not fit them" in err
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    backend_help = " ".join(capsys.readouterr().out.split()).split("--backend BACKEND", 2)[2].split("--model")[0]
    assert all(name in backend_help for name in training_backends()) and "onnxruntime" not in backend_help
    with pytest.raises(SystemExit):
        main(["--help"])
    description = " ".join(capsys.readouterr().out.split())
    assert all(title(name) in description for name in backend_names())  # four, from the registry
    assert "three" not in un.__doc__ and all(title(name) in " ".join(un.__doc__.split()) for name in backend_names())


def test_saving_a_mean_pooling_head_says_what_plain_tools_load(capsys, tmp_path, monkeypatch):
    require("huggingface")
    from .conftest import default_classifier

    monkeypatch.delenv("UNIFIED_NLP_PROGRESS", raising=False)
    default_classifier("huggingface").save(tmp_path / "mine")
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mean-pooling head" in err and "plain transformers" in err
    assert f"unified-nlp convert --to onnxruntime {tmp_path / 'mine'} OUT" in err and "--model minilm" in err
    native = un.load_classifier("minilm", backend="huggingface", labels=["NEGATIVE", "POSITIVE"])
    native.save(tmp_path / "plain")  # a plain transformers folder: nothing to say
    assert capsys.readouterr().err == ""


def test_a_label_the_model_lacks_names_file_line_and_labels_option(capsys, tmp_path):
    require("huggingface")
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\ngood\tPOSITIVE\nbad\tawful\n", encoding="utf-8")
    code, _, err = _run(capsys, "fit", "--train", str(train), "--out", str(tmp_path / "m"))
    assert code == 2 and f"{train}:3: label 'awful'" in err and "--labels" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_one_text_is_counted_in_the_singular(capsys):
    require("huggingface")
    code, _, err = _run(capsys, "classify", "a fine film")
    assert code == 0 and ", 1 text in " in err  # (a rate stays in texts/s)


def test_empty_stdin_says_so_without_loading_a_model(capsys, monkeypatch):
    import io

    _no_work(monkeypatch)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\n  \n")))
    code, out, err = _run(capsys, "classify")
    assert code == 0 and out == "" and err.strip() == "unified-nlp: nothing to classify: stdin has no texts"


def test_a_hub_id_without_organisation_gets_the_cache_hint(tmp_path, monkeypatch):
    from unified_nlp.resolve import resolve

    name = "distilbert-base-uncased-finetuned-sst-2-english"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(un.ModelNotFoundError, match=f"Hugging Face cache.*hf download {name}"):
        resolve(name)
    snapshot = tmp_path / "hub" / f"models--{name}" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert resolve(name) == snapshot


# Labelled files in every format, and column options given once (issue 26, point 7).

REVIEWS = [("a great film", "POSITIVE"), ("awful, and far too long", "NEGATIVE"), ("a moving story", "POSITIVE")]


def _reviews(path, text: str = "text", label: str = "label"):
    """REVIEWS as `path`'s format, with an id column first and the texts and labels under these names."""
    import csv

    rows = [{"id": f"r{i}", text: t, label: y} for i, (t, y) in enumerate(REVIEWS)]
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, list(rows[0]), delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    "name, columns, options",
    [
        ("dev.csv", ("text", "label"), []),
        ("dev.tsv", ("text", "label"), []),  # a header naming 'text': by names, as classify --input reads it
        ("dev.jsonl", ("review", "verdict"), ["--text-column", "review", "--label-column", "verdict"]),
        ("dev.parquet", ("review", "verdict"), ["--text-column", "review", "--label-column", "verdict"]),
    ],
)
def test_evaluate_reads_every_format_by_column_names(capsys, tmp_path, name, columns, options):
    require("huggingface")
    sst2_like = tmp_path / "sst2.tsv"  # the positional TSV of the same rows: the reference
    sst2_like.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in REVIEWS), encoding="utf-8")
    code, out, _ = _run(capsys, "evaluate", "--data", str(sst2_like), "--json")
    assert code == 0
    want = json.loads(out)
    assert want["n"] == 3 and want["accuracy"] == 1.0
    path = _reviews(tmp_path / name, *columns)
    code, out, err = _run(capsys, "evaluate", "--data", str(path), "--json", *options)
    assert code == 0, err
    assert json.loads(out) == want


def test_fit_trains_on_parquet_and_jsonl_by_column_names(capsys, tmp_path):
    require("huggingface")
    train = _reviews(tmp_path / "train.parquet", "review", "verdict")
    validation = _reviews(tmp_path / "dev.jsonl", "review", "verdict")
    args = ["fit", "--train", str(train), "--validation", str(validation), "--out", str(tmp_path / "m")]
    args += ["--text-column", "review", "--label-column", "verdict", "--batch-size", "3", "--max-length", "16"]
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 1 and summary["val_accuracy"] is not None
    assert (tmp_path / "m" / "config.json").is_file()


def test_a_label_the_model_lacks_in_a_csv_names_its_line(capsys, tmp_path):
    require("huggingface")
    train = tmp_path / "train.csv"  # the first row's text spans two lines: the bad label is on line 4
    train.write_text('text,label\n"a great\nfilm",POSITIVE\nawful,meh\n', encoding="utf-8")
    code, _, err = _run(capsys, "fit", "--train", str(train), "--out", str(tmp_path / "m"))
    assert code == 2 and f"{train}:4: label 'meh' is not one of the model's labels" in err and "--labels" in err


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("data.csv", b"text,label\nfine,POSITIVE\n,NEGATIVE\n", ":3: column 'text' has no value"),
        ("data.tsv", b"fine\tPOSITIVE\n\tNEGATIVE\n", ":2: the text has no value (an empty cell)"),
        ("data.jsonl", b'{"text": "fine", "label": null}\n', ":1: column 'label' has no value"),
        (
            "data.csv",
            b"text,label\nfine,POSITIVE\ncaf\xe9,NEGATIVE\n",
            ":3: column 'text' is not valid UTF-8 (byte 0xe9)",
        ),
        ("data.csv", b"sentence,label\nfine,POSITIVE\n", ": no column 'text'; its columns are ['sentence', 'label']"),
    ],
)
def test_a_bad_labelled_row_names_file_and_line_before_any_model_loads(
    capsys, tmp_path, monkeypatch, name, content, message
):
    _no_work(monkeypatch)
    path = tmp_path / name
    path.write_bytes(content)
    for argv in (["evaluate", "--data", str(path)], ["fit", "--train", str(path), "--out", str(tmp_path / "m")]):
        code, _, err = _run(capsys, *argv)
        assert code == 2 and f"unified-nlp: error: {path}{message}" in err, err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "--input", "in.csv", "--output", "o.csv", "--id-column", "a", "--id-column", "b"],
        ["classify", "--input", "in.csv", "--output", "o.csv", "--text-column", "a", "--text-column", "b"],
        ["classify", "--input", "in.csv", "--output", "o.csv", "--keep-columns", "a", "--keep-columns", "b"],
        ["evaluate", "--data", "d.csv", "--label-column", "a", "--label-column", "b"],
        ["classify", "--input", "in.csv", "--output", "a.csv", "--output", "b.csv"],
        ["classify", "--input", "a.csv", "--input", "b.csv"],
        ["fit", "--train", "t.tsv", "--out", "a", "--out", "b"],
        ["compare", "--backends", "huggingface,onnxruntime", "--texts", "a.tsv", "--texts", "b.tsv"],
        ["classify", "great", "--backend", "tfhub", "--backend", "paddlenlp"],
    ],
)
def test_an_option_given_twice_is_refused_not_silently_the_last(capsys, argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    option = argv[-2]
    assert done.value.code == 2 and f"argument {option}: given twice" in capsys.readouterr().err


def test_keep_columns_on_the_command_line(capsys, tmp_path):
    from unified_nlp.cli import build_parser

    parse = build_parser().parse_args
    for given, kept in [("stars, note", ["stars", "note"]), ("all", "all"), ("none", None), ("", None)]:
        assert parse(["classify", "--input", "x.csv", "--keep-columns", given]).keep_columns == kept
    with pytest.raises(SystemExit):
        parse(["classify", "--input", "x.csv", "--keep-columns", "a,,b"])
    capsys.readouterr()
    require("huggingface")
    source = tmp_path / "in.csv"
    source.write_text("id,text,stars\n007,a great film,5\n008,awful,1\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, _, err = _run(capsys, "classify", "--input", str(source), "--output", str(out), "--id-column", "id",
                        "--keep-columns", "stars")  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["stars"], r["label"]) for r in rows] == [("007", "5", "POSITIVE"), ("008", "1", "NEGATIVE")]
    assert list(rows[0])[:3] == ["id", "stars", "label"]


def test_a_flag_and_a_list_option_may_still_repeat(capsys):
    from unified_nlp.cli import build_parser

    args = build_parser().parse_args(["classify", "a", "b", "--json", "--json"])
    assert args.texts == ["a", "b"] and args.json


@pytest.mark.parametrize(
    "name, content, options",
    [
        ("t.csv", b"id,review\n1,a fine film\n2,dull\n", ["--text-column", "review"]),
        ("t.jsonl", b'{"review": "a fine film"}\n{"review": "dull"}\n', ["--text-column", "review"]),
        ("t.tsv", b"a fine film\t1\ndull\t0\n", []),
        ("t.tsv", b"id\ttext\n1\ta fine film\n2\tdull\n", []),
        ("t.txt", b"a fine film\ndull\n", []),
    ],
)
def test_compare_reads_its_texts_as_classify_input_does(monkeypatch, tmp_path, name, content, options):
    from unified_nlp import cli

    path = tmp_path / name
    path.write_bytes(content)
    seen = {}

    class Report:
        passed = True

    def fake_compare(a, b, texts, tolerance):  # the texts as read; the backends are tested elsewhere
        seen["texts"] = texts
        return Report()

    monkeypatch.setattr("unified_nlp.api.load_classifier", lambda *a, **k: type("C", (), {"backend": "x"})())
    monkeypatch.setattr("unified_nlp.parity.compare", fake_compare)
    assert cli.main(["compare", "--backends", "huggingface,onnxruntime", "--texts", str(path), *options]) == 0
    assert seen["texts"] == ["a fine film", "dull"]


def test_compare_names_a_missing_column_before_any_model_loads(capsys, tmp_path, monkeypatch):
    _no_work(monkeypatch)
    path = tmp_path / "t.csv"
    path.write_bytes(b"review\nfine\n")
    code, _, err = _run(capsys, "compare", "--backends", "huggingface,onnxruntime", "--texts", str(path))
    assert code == 2 and "no column 'text'" in err and "--text-column" in err, err
