"""How the code reads (STYLE.md), checked statically with `ast`: every function and method in
the core and in each adapter fits in one screen, and no call passes `**locals()`.

A function's length is counted as the project's structure tool counts it: from its `def`
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


def _module_name(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    parts = parts[2:] if parts[0] == "backends" else parts  # backends/<name>/unified_nlp_<name>/...
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name: str, is_package: bool, tree: ast.Module, known: set[str]) -> set[str]:
    """The modules `name` imports, counting imports inside functions (not under TYPE_CHECKING);
    `from . import x` counts the package itself too, as Python runs its __init__ first."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING"
        for child in node.body
        for n in ast.walk(child)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    resolved = set()
    for target in found:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def test_no_module_imports_another_in_a_circle():
    modules = {_module_name(path): (path, tree) for path, tree in _trees()}
    graph = {
        name: _imports(name, path.endswith("__init__.py"), tree, set(modules)) for name, (path, tree) in modules.items()
    }
    circles = []
    for start in graph:  # a module that reaches itself again is in a circle
        seen, todo = set(), list(graph[start])
        while todo:
            current = todo.pop()
            if current == start:
                circles.append(start)
                break
            if current not in seen:
                seen.add(current)
                todo.extend(graph.get(current, ()))
    assert not circles, f"modules in an import circle: {sorted(circles)}"
