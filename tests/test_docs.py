"""The documentation site (docs/, mkdocs.yml; `make docs` builds it, warnings as errors, in
`make test`): every public name has its reference entry, every CLI command its section, and
every page is in the navigation."""

from __future__ import annotations

import importlib.util
import re

import yaml

import unified_nlp as un

from .conftest import REPO

DOCS = REPO / "docs"


def _hook():
    spec = importlib.util.spec_from_file_location("docs_reference_hook", DOCS / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_is_in_the_api_reference():
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: unified_nlp\.(\w+)", api, re.M))
    errors = {name for name in un.__all__ if name.endswith("Error")}  # all in `::: unified_nlp.errors`
    aliases = {"inspect"}  # `un.inspect` is `inspect_model`
    protocols = {"Encoding", "Model", "ModelOutput", "Tokenizer"}  # under unified_nlp.protocols
    missing = set(un.__all__) - documented - errors - aliases - protocols
    assert not missing, f"public names without an entry in docs/api.md: {sorted(missing)}"
    assert "errors" in documented and {f"protocols.{p}" for p in protocols} <= set(
        re.findall(r"^::: unified_nlp\.([\w.]+)", api, re.M)
    )


def test_the_cli_reference_has_every_command():
    from unified_nlp.cli import build_parser

    reference = _hook().cli_reference()
    commands = [name for name, _ in _hook()._commands(build_parser(), "unified-nlp") if name != "unified-nlp"]
    assert len(commands) >= 10
    for name in commands:
        assert f"`{name}`" in reference, name
    assert "usage: unified-nlp classify" in reference and "--backend" in reference


def test_every_page_is_in_the_navigation_and_exists():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = [next(iter(item.values())) for item in config["nav"]]
    assert all((DOCS / page).is_file() for page in pages), pages
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md")}
    assert on_disk == set(pages), on_disk ^ set(pages)
