"""The README's Python examples run as written: every ```python block, in order, in
one fresh interpreter outside the checkout, on the real backends. A block preceded
by an HTML comment starting `<!-- not run` is skipped (say why in the comment)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .conftest import REPO, require

FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks(text: str) -> tuple[list[str], list[str]]:
    """The README's Python blocks to run, and those marked not to run."""
    run, skipped = [], []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        marked = bool(before) and before[-1].strip().startswith("<!-- not run")
        (skipped if marked else run).append(match.group(1))
    return run, skipped


def test_the_marker_skips_only_marked_blocks():
    text = "a\n```python\nx = 1\n```\n<!-- not run: needs a GPU -->\n```python\ny = 2\n```\n"
    assert python_blocks(text) == (["x = 1\n"], ["y = 2\n"])


def test_the_readme_python_examples_run(tmp_path):
    for backend in ("huggingface", "tfhub", "paddlenlp"):  # the Quickstart uses all three
        require(backend)
    run, _ = python_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert run, "the README has no Python example to run"
    script = tmp_path / "readme_examples.py"
    script.write_text("\n\n".join(run), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASS" in done.stdout  # the Quickstart prints a parity report
    assert (tmp_path / "my-model" / "config.json").is_file() and (tmp_path / "minilm-tfhub").is_dir()
