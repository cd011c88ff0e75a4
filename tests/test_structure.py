"""How the code reads (STYLE.md), checked statically with `ast`: every function and method in
the core and in each adapter fits in one screen, and no call passes `**locals()`.

A function's length is counted as /work/shared/tools/structure.py counts it: from its `def`
line to its last line, less its docstring's lines."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 80  # hard limit; aim for ~60 lines of code


@lru_cache(maxsize=1)
def _trees() -> tuple[tuple[str, ast.Module], ...]:
    """(path relative to the repository, parsed module) of every file in unified_nlp/ and backends/*/unified_nlp_*/."""
    roots = [REPO / "unified_nlp", *sorted(p for p in REPO.glob("backends/*/unified_nlp_*") if p.is_dir())]
    files = [f for root in roots for f in sorted(root.rglob("*.py"))]
    return tuple((str(f.relative_to(REPO)), ast.parse(f.read_text(encoding="utf-8"), str(f))) for f in files)


def _length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    n = node.end_lineno - node.lineno + 1
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        n -= first.end_lineno - first.lineno + 1  # the docstring does not count
    return n


def _splats_locals(call: ast.Call) -> bool:
    """f(**locals()) or f(**vars()): every local name passed on unseen."""
    return any(
        k.arg is None
        and isinstance(k.value, ast.Call)
        and isinstance(k.value.func, ast.Name)
        and k.value.func.id in ("locals", "vars")
        and not k.value.args
        for k in call.keywords
    )


def test_the_trees_are_found():
    paths = {path for path, _ in _trees()}
    assert "unified_nlp/training.py" in paths
    assert any(p.startswith("backends/") for p in paths), "no adapter package found under backends/*/unified_nlp_*/"


def test_no_function_is_longer_than_a_screen():
    long = [
        f"{path}:{node.lineno} {node.name} {_length(node)}"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _length(node) > MAX_LINES
    ]
    assert not long, f"functions over {MAX_LINES} lines (docstring not counted); split them:\n" + "\n".join(long)


def test_no_call_passes_locals():
    found = [
        f"{path}:{node.lineno}"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _splats_locals(node)
    ]
    assert not found, "calls with **locals(): pass the arguments by name:\n" + "\n".join(found)
