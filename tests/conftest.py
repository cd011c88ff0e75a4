"""Shared fixtures. Backends are parametrised; a backend listed in
$UNIFIED_NLP_REQUIRE_BACKENDS (CI sets all of them) that cannot load is a
failure, not a skip."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REQUIRED = {x.strip() for x in os.environ.get("UNIFIED_NLP_REQUIRE_BACKENDS", "").split(",") if x.strip()}


class Backend(str, Enum):
    HUGGINGFACE = "huggingface"
    TFHUB = "tfhub"
    PADDLENLP = "paddlenlp"


def require(name: str) -> None:
    """Skip when backend `name` cannot run here, or fail when CI requires it."""
    from unified_nlp import registry
    from unified_nlp.errors import BackendNotInstalledError

    try:
        registry.placement(name)
    except BackendNotInstalledError as e:
        if name in REQUIRED:
            pytest.fail(f"backend {name} is required here but unavailable: {e}")
        pytest.skip(f"backend {name} unavailable: {e}")


def require_module(name: str):
    """Import `name` (a package `make setup` installs) at a module's top: skip without it,
    or fail where $UNIFIED_NLP_REQUIRE_BACKENDS is set (CI), as setup should have installed it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as e:
        if REQUIRED:
            pytest.fail(f"{name} is not importable ({e}); `make setup` installs it", pytrace=False)
        pytest.skip(f"{name} is not installed ({e}); `make setup` installs it", allow_module_level=True)


def paddle_unavailable(reason: str) -> None:
    """Skip (or fail, where CI lists "paddlenlp-inprocess") what needs paddle in this process."""
    if "paddlenlp-inprocess" in REQUIRED:
        pytest.fail(f"paddlenlp-inprocess is required here: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_paddle_in_process() -> None:
    """At a module's top: paddle and PaddleNLP must be importable in this very process."""
    import importlib.util
    import sys

    missing = [m for m in ("paddle", "paddlenlp", "unified_nlp_paddlenlp") if importlib.util.find_spec(m) is None]
    if missing:
        paddle_unavailable(f"not importable here: {', '.join(missing)} (run in the Paddle environment, .venv-paddle)")
    if "tensorflow" in sys.modules and "paddle" not in sys.modules:
        paddle_unavailable("tensorflow is already imported in this process, and importing paddle now would crash it")
    pytest.importorskip("paddlenlp")  # through a real import: a broken install skips (or fails when required) here


_CLASSIFIERS: dict[str, object] = {}


def default_classifier(name: str):
    """The default model on backend `name`, loaded once per test session."""
    require(name)
    if name not in _CLASSIFIERS:
        import unified_nlp as un

        _CLASSIFIERS[name] = un.load_classifier("default", backend=name)
    return _CLASSIFIERS[name]


@pytest.fixture(params=[b.value for b in Backend], ids=[b.value for b in Backend])
def backend(request) -> str:
    require(request.param)
    return request.param


@pytest.fixture
def clf(backend):
    return default_classifier(backend)


@pytest.fixture(scope="session")
def sst2_dev():
    from unified_nlp.benchdata import read_tsv, sst2_path

    return read_tsv(sst2_path("dev"))


@pytest.fixture(scope="session")
def default_dir():
    from unified_nlp.resolve import default_model_dir

    return default_model_dir()
