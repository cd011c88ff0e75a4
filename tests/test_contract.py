"""The adapter contract, declared once (protocols.BackendAdapter and protocols.Model): the
worker's allow-list and the remote proxies follow it, capabilities are asked, not probed,
and adapters reach the core through its front door only."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from unified_nlp import backend_kit, worker, worker_main
from unified_nlp.errors import NotSupportedError, UnifiedNLPError
from unified_nlp.protocols import BackendAdapter, Encoding, Model, ModelOutput

REPO = Path(__file__).resolve().parents[1]


class InferenceOnly(Model):
    num_labels = 2

    def __call__(self, encoding, *, output_hidden_states=False):
        return ModelOutput(np.zeros((encoding.num_texts, 2), np.float32))


class Trainable(InferenceOnly):
    def start_training(self, config):
        self.config = config

    def train_step(self, encoding, label_ids, learning_rate, example_weights=None, apply=True):
        return 0.5


def test_a_model_offers_what_it_overrides_and_refuses_the_rest_clearly():
    model = InferenceOnly()
    assert not model.offers("start_training") and not model.offers("state_dict")
    assert Trainable().offers("train_step") and not Trainable().offers("training_state")
    with pytest.raises(NotSupportedError, match="does not offer start_training"):
        model.start_training({})
    assert isinstance(NotSupportedError("x"), UnifiedNLPError)
    with pytest.raises(ValueError, match="not a Model capability"):
        model.offers("fly")
    model.end_training()  # nothing to drop: a no-op, not an error


def test_fit_refuses_a_model_that_cannot_train_before_any_work():
    from unified_nlp.classifier import TextClassifier

    class Tok:
        max_length, vocab_size = 8, 10

        def __call__(self, texts, text_pair=None, **kw):
            raise AssertionError("fit tokenized before checking the model")

        def decode(self, ids, skip_special_tokens=True):
            return ""

    clf = TextClassifier(Tok(), InferenceOnly(), ["a", "b"], "fake", spec={})
    with pytest.raises(NotSupportedError, match="start_training"):
        clf.fit(["x", "y"], ["a", "b"], progress=False)


def test_the_worker_serves_exactly_the_declared_methods():
    assert worker_main._METHODS["model"] == set(Model.METHODS)
    for method in Model.METHODS:  # every capability is forwarded, none inherited as a refusal
        assert getattr(worker.RemoteModel, method) is not getattr(Model, method), method
        assert getattr(worker.RemoteModel, method).__qualname__ == f"RemoteModel.{method}"
    for operation in BackendAdapter.OPERATIONS:
        assert getattr(worker.RemoteAdapter, operation) is not getattr(BackendAdapter, operation), operation
    with pytest.raises(PermissionError):
        worker_main._backend_operation(BackendAdapter(), "load", [], {})


def test_an_adapter_without_an_operation_says_so():
    class Bare(BackendAdapter):
        name = "bare"

    bare = Bare()
    assert bare.precisions == ("fp32",) and bare.set_threads(2) is None
    for operation, args in (("convert", 2), ("export_canonical", 2), ("describe_native", 1), ("import_native", 2)):
        with pytest.raises(NotSupportedError, match="the bare backend"):
            getattr(bare, operation)(*[Path("x")] * args)


def test_a_remote_model_offers_what_the_worker_said():
    class Handle:
        info = {"num_labels": 2, "offers": ["__call__", "state_dict"]}

    remote = worker.RemoteModel(Handle())
    assert remote.offers("state_dict") and not remote.offers("train_step")


def _core_imports(file: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "unified_nlp" or m.startswith("unified_nlp.")}


def test_adapters_import_the_core_through_its_front_door_only():
    files = [f for f in (REPO / "backends").glob("*/unified_nlp_*/**/*.py")]
    assert len(files) > 20
    strays = {f"{f.relative_to(REPO)}: {m}" for f in files for m in _core_imports(f) if m != "unified_nlp.backend_kit"}
    assert not strays, sorted(strays)


def test_the_core_imports_no_adapter():
    strays = []
    for file in (REPO / "unified_nlp").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            strays += [f"{file.relative_to(REPO)}: {n}" for n in names if n.startswith("unified_nlp_")]
    assert not strays, strays


def test_the_front_door_exports_what_it_lists():
    for name in backend_kit.__all__:
        assert hasattr(backend_kit, name), name
    assert backend_kit.Encoding is Encoding and backend_kit.Model is Model
