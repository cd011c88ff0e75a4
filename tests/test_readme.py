"""The examples of the README and of the docs pages run as written: every ```python block,
in order, in one fresh interpreter outside the checkout, on the real backends (the README's
in one, the docs pages' in another, page after page in the site's order), and every ```bash
block with bash, page by page in a folder of its own outside the checkout, the test
environment's `unified-nlp` and `python` first on PATH. A block preceded by an HTML comment
`<!-- not run: why -->` is skipped (a server that runs until Ctrl-C, an install, a
benchmark of minutes). Every `unified-nlp ...` command line of the ```bash blocks, run or
not, is parsed by the CLI's own parser, so an option renamed or removed fails here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from .conftest import REPO, require

FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
BASH = re.compile(r"^```bash\n(.*?)^```$", re.S | re.M)


def docs_pages() -> list:
    """The docs pages in the site's order (mkdocs.yml's nav)."""
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    return [REPO / "docs" / next(iter(item.values())) for item in nav]


def _documents() -> list:
    return [REPO / "README.md", *docs_pages()]


def _run(blocks: list[str], tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "examples.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )


NOT_RUN = "<!-- not run"


def python_blocks(text: str, fence: re.Pattern = FENCE) -> tuple[list[str], list[str]]:
    """A page's blocks (Python; `fence=BASH`: shell) to run, and those marked not to run."""
    run, skipped = [], []
    for match in fence.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        marked = bool(before) and before[-1].strip().startswith(NOT_RUN)
        (skipped if marked else run).append(match.group(1))
    return run, skipped


def test_the_marker_skips_only_marked_blocks():
    text = "a\n```python\nx = 1\n```\n<!-- not run: needs a GPU -->\n```python\ny = 2\n```\n"
    assert python_blocks(text) == (["x = 1\n"], ["y = 2\n"])


def test_the_readme_python_example_runs(tmp_path):
    for backend in ("huggingface", "onnxruntime"):
        require(backend)
    run, _ = python_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert run, "the README has no Python example to run"
    done = _run(run, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "True" in done.stdout and (tmp_path / "my-classifier" / "config.json").is_file()


def test_the_docs_python_examples_run(tmp_path):
    for backend in ("huggingface", "tfhub", "paddlenlp"):  # the Quickstart uses all three
        require(backend)
    run = [block for page in docs_pages() for block in python_blocks(page.read_text(encoding="utf-8"))[0]]
    assert len(run) >= 2, "the docs have too few Python examples to run"  # the Quickstart and datasets
    done = _run(run, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASS" in done.stdout  # the Quickstart prints a parity report
    assert (tmp_path / "my-model" / "config.json").is_file() and (tmp_path / "minilm-tfhub").is_dir()


def test_every_not_run_marker_says_why():
    for page in _documents():
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith(NOT_RUN):
                assert re.fullmatch(r"<!-- not run: \S.{9,}-->", line.strip()), f"{page.name}: {line}"


@pytest.mark.parametrize("page", _documents(), ids=lambda p: p.name)
def test_the_shell_examples_run(page, tmp_path):
    run, _ = python_blocks(page.read_text(encoding="utf-8"), BASH)
    if not run:
        pytest.skip(f"{page.name} has no shell example to run")
    for backend in ("huggingface", "tfhub", "paddlenlp", "onnxruntime"):
        require(backend)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    for number, block in enumerate(run, start=1):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, (
            f"{page.name}, shell block {number} (exit {done.returncode}):\n{block}\n{done.stderr[-3000:]}"
        )


def test_a_failing_shell_line_fails_its_block(tmp_path):
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", "false\necho after"], capture_output=True, text=True)
    assert done.returncode != 0 and "after" not in done.stdout


def command_lines(text: str) -> list[str]:
    """The `unified-nlp ...` lines of the ```bash blocks, comments cut, shell pipelines left out."""
    found = []
    for block in BASH.findall(text):
        for line in block.replace("\\\n", " ").splitlines():  # continuation lines joined
            line = line.split(" #")[0].strip()
            if line.startswith("unified-nlp ") and not re.search(r"[|<>$`]|&&", line):
                found.append(line)
    return found


@pytest.mark.parametrize("page", _documents(), ids=lambda p: p.name)
def test_every_documented_command_parses(page):
    from unified_nlp.cli import build_parser

    for line in command_lines(page.read_text(encoding="utf-8")):
        try:
            build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit as e:
            pytest.fail(f"{page.name}: `{line}` does not parse (exit {e.code})")


def test_commands_are_found_and_a_wrong_option_fails():
    text = "```bash\nunified-nlp classify 'great' --backend tfhub   # a comment\nunified-nlp x | head\n```\n"
    assert command_lines(text) == ["unified-nlp classify 'great' --backend tfhub"]
    assert sum(len(command_lines(p.read_text(encoding="utf-8"))) for p in _documents()) >= 20
