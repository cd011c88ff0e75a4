"""Zero-shot classification (`un.zero_shot`, `unified-nlp zero-shot`) on every backend against
transformers' own ZeroShotClassificationPipeline on the same NLI folder (a tiny BERT built by
transformers, MNLI's label order), single- and multi-label; the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp.errors import InvalidInputError

from .checkpoints import assert_parity, make_checkpoint
from .conftest import require

TEXTS = ["The battery died after an hour.", "A wonderful film, moving and funny.", "He scored twice in the final."]
CANDIDATES = ["technology", "cinema", "sports", "politics"]
TEMPLATE = "This text is about {}."
MNLI = {0: "contradiction", 1: "neutral", 2: "entailment"}  # roberta-large-mnli's and bart-large-mnli's order


def _nli(folder, names: dict):
    return make_checkpoint(
        "bert", folder, scale=8.0, config={"id2label": names, "label2id": {v: k for k, v in names.items()}}
    )


@pytest.fixture(scope="module")
def nli(tmp_path_factory):
    require("huggingface")
    return _nli(tmp_path_factory.mktemp("nli") / "mnli-order", MNLI)


def pipeline_scores(folder, texts, labels, template, multi_label) -> np.ndarray:
    """transformers' pipeline: [texts, labels] scores in the order of `labels`."""
    import transformers

    pipe = transformers.pipeline("zero-shot-classification", model=str(folder), device="cpu")
    out = pipe(list(texts), candidate_labels=labels, hypothesis_template=template, multi_label=multi_label)
    return np.array([[dict(zip(o["labels"], o["scores"]))[label] for label in labels] for o in out])


def matrix(results: list[dict], labels) -> np.ndarray:
    return np.array([[dict(zip(r["labels"], r["scores"]))[label] for label in labels] for r in results])


@pytest.mark.parametrize("multi_label", [False, True], ids=["softmax-over-labels", "multi-label"])
def test_scores_are_the_pipelines_on_every_backend(nli, backend, multi_label):
    want = pipeline_scores(nli, TEXTS, CANDIDATES, TEMPLATE, multi_label)
    got = un.zero_shot(TEXTS, CANDIDATES, TEMPLATE, multi_label, model=str(nli), backend=backend)
    assert [r["sequence"] for r in got] == TEXTS
    for r in got:  # best first
        assert r["scores"] == sorted(r["scores"], reverse=True) and sorted(r["labels"]) == sorted(CANDIDATES)
    assert_parity(matrix(got, CANDIDATES), want, 1e-5, f"zero-shot scores on {backend}")
    if not multi_label:
        np.testing.assert_allclose(matrix(got, CANDIDATES).sum(axis=1), 1.0, atol=1e-6)


def test_entailment_first_and_one_label_as_the_pipeline(tmp_path):
    require("huggingface")
    folder = _nli(tmp_path / "entailment-first", {0: "ENTAILMENT", 1: "neutral", 2: "contradiction"})
    clf = un.load_classifier(folder, backend="onnxruntime" if _has("onnxruntime") else "huggingface")
    for labels, multi in ((CANDIDATES, True), (["sports"], False)):  # one label: multi-label, as the pipeline
        want = pipeline_scores(folder, TEXTS, labels, TEMPLATE, multi)
        assert_parity(matrix(un.zero_shot(TEXTS, labels, TEMPLATE, multi, model=clf), labels), want, 1e-5)
    one = un.zero_shot(TEXTS[0], "sports, cinema", model=clf)  # one string: one dict; comma-separated labels
    assert one["sequence"] == TEXTS[0] and sorted(one["labels"]) == ["cinema", "sports"]


def _has(backend: str) -> bool:
    try:
        require(backend)
    except pytest.skip.Exception:
        return False
    return True


@pytest.mark.parametrize(
    "labels, template, message",
    [
        ([], TEMPLATE, "at least one label"),
        (["a", ""], TEMPLATE, "non-empty string"),
        (["a", "a"], TEMPLATE, "given twice"),
        (["a", 3], TEMPLATE, "non-empty string"),
        (["a"], "no placeholder", "must contain '{}'"),
    ],
)
def test_bad_candidates_and_templates_are_refused_before_any_model_runs(labels, template, message):
    with pytest.raises(InvalidInputError, match=message):
        un.zero_shot(["x"], labels, template, model=object())  # never loaded: refused first


def test_a_model_without_an_entailment_label_is_refused():
    from .conftest import default_classifier

    with pytest.raises(InvalidInputError, match="entailment label.*NEGATIVE"):
        un.zero_shot(["x"], ["a", "b"], model=default_classifier("huggingface"))


def test_the_command_prints_the_same_scores(nli, capsys):
    from unified_nlp.cli import main

    code = main(["zero-shot", *TEXTS[:2], "--labels", ",".join(CANDIDATES), "--template", TEMPLATE,
                 "--model", str(nli), "--backend", "huggingface", "--json"])  # fmt: skip
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    want = pipeline_scores(nli, TEXTS[:2], CANDIDATES, TEMPLATE, False)
    assert code == 0 and [r["text"] for r in rows] == TEXTS[:2]
    got = np.array([[r["scores"][label] for label in CANDIDATES] for r in rows])
    np.testing.assert_allclose(got, want, atol=2e-6)  # printed with 6 decimals
