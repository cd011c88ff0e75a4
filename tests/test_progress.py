"""Long work is not silent: notices and bars (unified_nlp.progress), quiet on request;
convert --to tfhub reuses a conversion already in the store; a compare FAIL names
the check that failed."""

from __future__ import annotations

import filecmp
import json

import pytest

from tests.conftest import require
from unified_nlp import progress
from unified_nlp.spec import ModelSpec


@pytest.fixture
def texts(sst2_dev, monkeypatch):
    monkeypatch.setattr(progress, "LONG", 8)  # "long" from 8 texts: the test stays fast
    return sst2_dev[0][:10]


def test_a_bar_on_a_terminal_for_long_work_only(monkeypatch):
    monkeypatch.delenv("UNIFIED_NLP_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "_tty", lambda: True)
    assert progress.wanted(None, progress.LONG) and not progress.wanted(None, progress.LONG - 1)
    assert not progress.wanted(False, 10_000) and progress.wanted(True, 1)
    monkeypatch.setattr(progress, "_tty", lambda: False)  # a log file: no bar unless asked for
    assert not progress.wanted(None, 10_000) and progress.wanted(True, 1)
    monkeypatch.setenv("UNIFIED_NLP_PROGRESS", "0")
    assert not progress.wanted(True, 10_000)


def test_predict_and_evaluate_show_a_bar_when_asked(texts, sst2_dev, capsys):
    from tests.conftest import default_classifier

    clf = default_classifier("huggingface")
    clf.predict(texts, progress=True)
    assert "huggingface" in capsys.readouterr().err
    clf.evaluate(texts, sst2_dev[1][: len(texts)], progress=False)
    clf.predict(texts)  # the library default for predict: quiet
    assert capsys.readouterr().err == ""


def _write(path, rows):
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_the_cli_says_what_it_does_before_long_work(texts, sst2_dev, tmp_path, capsys, monkeypatch):
    require("huggingface")
    from unified_nlp.cli import main

    monkeypatch.delenv("UNIFIED_NLP_PROGRESS", raising=False)
    lines = _write(tmp_path / "t.txt", texts)
    assert main(["classify", "--file", lines]) == 0
    assert f"unified-nlp: classifying {len(texts)} texts on huggingface" in capsys.readouterr().err
    rows = [f"{t}\t{y}" for t, y in zip(texts, sst2_dev[1])]
    assert main(["evaluate", "--data", _write(tmp_path / "d.tsv", ["sentence\tlabel", *rows])]) == 0
    assert f"unified-nlp: evaluating on {len(texts)} texts on huggingface" in capsys.readouterr().err
    monkeypatch.setenv("UNIFIED_NLP_PROGRESS", "0")  # asked for quiet
    assert main(["classify", "--file", lines]) == 0
    assert "unified-nlp:" not in capsys.readouterr().err


def test_a_compare_fail_names_the_check_and_its_value(texts, tmp_path, capsys):
    require("huggingface")
    from unified_nlp.cli import main

    lines = _write(tmp_path / "t.txt", texts)
    argv = ["compare", "--backends", "huggingface,hf", "--texts", lines, "--tolerance", "-1"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "FAIL: logits max |diff| 0.000e+00 > tolerance -1" in out
    assert f"comparing huggingface and huggingface on {len(texts)} texts" in err
    assert main([*argv, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["failures"] == ["logits max |diff| 0.000e+00 > tolerance -1"]


@pytest.fixture
def tiny_bert(tmp_path, monkeypatch):
    """A tiny classifier and an empty model store of its own: its first tfhub use converts."""
    require("huggingface")
    require("tfhub")
    from tests.checkpoints import make_checkpoint

    monkeypatch.setenv("UNIFIED_NLP_HOME", str(tmp_path / "store"))
    monkeypatch.delenv("UNIFIED_NLP_PROGRESS", raising=False)
    return make_checkpoint("bert", tmp_path / "bert", seed=7)


def test_a_first_conversion_is_announced_then_reused_by_convert(tiny_bert, tmp_path, capsys, monkeypatch):
    import unified_nlp_tfhub.backend as tfhub_backend

    import unified_nlp as un
    from unified_nlp.store_keys import converted_dir

    un.load_classifier(tiny_bert, backend="tfhub")
    err = capsys.readouterr().err
    assert "on tfhub: converting it into the model store once" in err and "later loads reuse it" in err
    un.load_classifier(tiny_bert, backend="tfhub")
    assert "converting" not in capsys.readouterr().err  # cached: nothing to say

    exports = []
    real = tfhub_backend.export
    monkeypatch.setattr(tfhub_backend, "export", lambda *a: (exports.append(a), real(*a)))
    out = un.convert(tiny_bert, to="tfhub", out=tmp_path / "exported")
    assert exports == [], "convert converted again instead of copying the cached conversion"
    cached = converted_dir(tiny_bert.absolute(), "tfhub")
    err = capsys.readouterr().err
    assert "writing the tfhub format of" in err and "copying the TF Hub conversion cached in" in err
    same = filecmp.dircmp(cached, out)
    assert not same.left_only and not same.right_only and not same.diff_files
    assert un.load_classifier(out, backend="tfhub").predict(["a fine film"])[0].label in (
        "negative",
        "neutral",
        "positive",
    )


def test_a_conversion_is_quiet_when_asked(tmp_path, capsys, monkeypatch, default_dir):
    monkeypatch.setenv("UNIFIED_NLP_HOME", str(tmp_path / "empty-store"))  # nothing converted yet
    spec = ModelSpec.from_dict({"format": "huggingface"})
    monkeypatch.setenv("UNIFIED_NLP_PROGRESS", "0")
    assert progress.conversion_notice(default_dir, spec, "tfhub")
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("UNIFIED_NLP_PROGRESS")
    assert progress.conversion_notice(default_dir, spec, "paddlenlp")
    assert "on paddlenlp: converting it" in capsys.readouterr().err
    assert not progress.conversion_notice(default_dir, spec, "huggingface")  # runs the folder as it is
