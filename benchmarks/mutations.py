"""Does the suite catch real bugs? Each mutation below is a bug made on purpose in a copy of
the checkout; the tests that guard that code run against the copy, and a mutation counts as
caught only when one of them FAILS ON AN ASSERTION (AssertionError, or pytest.fail/raises'
"DID NOT RAISE") and that same test passes on the copy without the mutation. An error in
collection or in a fixture's set-up, or an exception the test did not expect, is recorded
with its test but not counted. Run on demand (all of them: about 4 minutes), recorded in
benchmarks/results/mutations/ (results.json, results.md, one <name>.log per mutation: the
change, the command, the failing test and the tail of pytest's output):

    .venv/bin/python benchmarks/mutations.py                 # every mutation, on a copy of HEAD
    .venv/bin/python benchmarks/mutations.py --worktree      # on the files as they are now
    .venv/bin/python benchmarks/mutations.py --only gelu-tanh-electra

Written by hand rather than with mutmut or cosmic-ray: those mutate operators at random
across a module and rerun a whole suite per mutant (hours here); these are bugs an audit
found the suite blind to, or that a user would meet first, each run against the tests
that should see it. A mutation names the code it changes by its text, searched for in a
set of files (code moves between modules): the text must occur exactly once there, or the
run stops and says so.

The copy's packages shadow the editable installs (its folders first on PYTHONPATH, checked
before each run); conversions go to a hard-linked clone of the checkout's .store, so a
mutant never writes into the store the real suite reads. pytest stops at the first test
that fails on an assertion (a small plugin, written next to the copy); the other outcomes
do not stop it, so a fixture error in one test does not hide an assertion in the next.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recorded import write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["", "backends/huggingface", "backends/tfhub", "backends/onnxruntime", "backends/paddlenlp"]
PYTHONS = {"main": REPO / ".venv" / "bin" / "python", "paddle": REPO / ".venv-paddle" / "bin" / "python"}
LOG_LINES = 40  # the tail of pytest's output kept in each log
SUMMARY = re.compile(r"\d+ (passed|failed|errors?|deselected)\b")  # pytest's last line


@dataclass(frozen=True)
class Mutation:
    name: str
    scope: str  # a glob, relative to the repository: the files the code may live in
    before: str  # must occur exactly once in all of `scope`
    after: str
    tests: tuple[str, ...]  # pytest arguments, relative to the copy
    bug: str
    python: str = "main"  # the environment the tests run in (PYTHONS)


MUTATIONS = (
    Mutation(
        "pickle-admits-torch",
        "unified_nlp/**/*.py",
        "        found = _ALLOWED.get((module, name))\n",
        "        found = _ALLOWED.get((module, name))\n"
        "        if found is None and module.startswith('torch'):\n"
        "            import importlib\n\n"
        "            found = getattr(importlib.import_module(module), name)\n",
        ("tests/test_safe_pickle.py",),
        "the restricted pickle reader lets any `torch.*` global through",
    ),
    Mutation(
        "gelu-tanh-all",
        "backends/tfhub/**/*.py",
        "self._act = ACTIVATIONS[options.activation]",
        'self._act = ACTIVATIONS["gelu_new" if options.activation == "gelu" else options.activation]',
        ("tests/test_tfhub_architectures.py",),
        "tfhub encoder: exact GELU swapped for the tanh form, every family",
    ),
    Mutation(
        "gelu-tanh-electra",
        "backends/tfhub/**/*.py",
        "self._act = ACTIVATIONS[options.activation]",
        "self._act = ACTIVATIONS[\n"
        '            "gelu_new" if options.model_type == "electra" and options.activation == "gelu" else options.activation\n'
        "        ]",
        ("tests/test_tfhub_architectures.py", "-k", "electra"),
        "tfhub encoder: tanh GELU for ELECTRA only",
    ),
    Mutation(
        "resume-redoes-parts",
        "unified_nlp/**/*.py",
        "        if str(index) in done:",
        "        if index in done:",
        ("tests/test_datasets.py", "-k", "resume or skip"),
        "dataset resume redoes finished parts (`str(index) in done` became `index in done`)",
    ),
    Mutation(
        "warmup-off-by-one",
        "unified_nlp/**/*.py",
        "        return peak * (step + 1) / warmup",
        "        return peak * step / warmup",
        ("tests/test_fit_core.py", "tests/test_core.py", "tests/test_fit_features.py"),
        "fit's warm-up starts at a learning rate of zero (`step` instead of `step + 1`)",
    ),
    Mutation(
        "top-k-worst-first",
        "unified_nlp/**/*.py",
        '    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]',
        '    order = np.argsort(probs, axis=-1, kind="stable")[:, :k]',
        ("tests/test_core.py",),
        "predict(top_k=k) returns the k least probable labels",
    ),
    Mutation(
        "multi-label-threshold-strict",
        "unified_nlp/**/*.py",
        "if row[j] >= threshold]",
        "if row[j] > threshold]",
        ("tests/test_core.py", "tests/test_huggingface.py", "-k", "multi"),
        "a multi-label score exactly at the threshold is dropped (`>=` became `>`)",
    ),
    Mutation(
        "batcher-rows-misplaced",
        "unified_nlp/serving/*.py",
        "        self.logits[rows] = logits",
        "        self.logits[np.sort(rows)] = logits",
        ("tests/test_serving.py",),
        "the server's batcher writes a length-sorted batch back in input order (rows swapped)",
    ),
    Mutation(
        "v2-datatype-fp64",
        "unified_nlp/serving/*.py",
        '        entry = {"name": name, "datatype": "FP32", "shape": list(array.shape)}',
        '        entry = {"name": name, "datatype": "FP64", "shape": list(array.shape)}',
        ("tests/test_serving.py",),
        "the v2 (KServe/Triton) protocol labels its float32 outputs `FP64`",
    ),
    Mutation(
        "paddle-drops-segment-ids",
        "backends/paddlenlp/**/*.py",
        '        if self.types:\n            kwargs["token_type_ids"] = token_type_ids\n        return _first(self.model(',
        '        if False:\n            kwargs["token_type_ids"] = token_type_ids\n        return _first(self.model(',
        ("tests/test_paddlenlp_architectures.py",),
        "paddlenlp backend, a classifier's own head: segment ids of sentence pairs not passed (all 0)",
        python="paddle",
    ),
)

# Loaded by pytest in the copy (-p): one JSON line per failed report, and a stop at the first
# test that fails on an assertion in its own body.
PLUGIN = """
import json, os
import pytest

_OUT = os.environ["UNIFIED_NLP_MUTATION_REPORT"]


def _write(row):
    with open(_OUT, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if not report.failed or call.excinfo is None:
        return
    assertion = call.when == "call" and call.excinfo.errisinstance((AssertionError, pytest.fail.Exception))
    message = str(call.excinfo.value).strip().splitlines()
    _write({"test": item.nodeid, "when": call.when, "exception": call.excinfo.typename,
            "message": message[0][:300] if message else "", "assertion": bool(assertion)})
    if assertion:
        item.session.shouldstop = "a test failed on an assertion: the mutation is caught"


def pytest_collectreport(report):
    if report.failed:
        _write({"test": report.nodeid, "when": "collect", "exception": "collection error",
                "message": str(report.longrepr).strip().splitlines()[-1][:300], "assertion": False})
"""


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


def _copy(into: Path, worktree: bool) -> None:
    """HEAD (git archive), or with `worktree` the files git sees as they are now (tracked and
    untracked, ignored ones left out)."""
    if not worktree:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
        return
    for name in _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0"):
        source = REPO / name
        if name and source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def _find(root: Path, mutation: Mutation) -> Path:
    """The one file of `root` holding the code to mutate. Stops the run when the code is not
    found exactly once (it moved or changed: the mutation needs updating)."""
    hits = [(f, f.read_text(encoding="utf-8").count(mutation.before)) for f in sorted(root.glob(mutation.scope))]
    hits = [(f, n) for f, n in hits if n]
    if [n for _, n in hits] != [1]:
        where = ", ".join(f"{f.relative_to(root)} ({n}x)" for f, n in hits) or "nowhere"
        raise SystemExit(
            f"{mutation.name}: the code to mutate must occur once in {mutation.scope}, found {where}:\n{mutation.before}"
        )
    return hits[0][0]


def _apply(copy: Path, mutation: Mutation) -> tuple[Path, str]:
    """Apply `mutation` in the copy; returns the file and its text before."""
    target = _find(copy, mutation)
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace(mutation.before, mutation.after), encoding="utf-8")
    return target, text


def _env(copy: Path, tmp: Path, python: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp / "plugin"), *(str(copy / p) for p in PACKAGES)])
    env["UNIFIED_NLP_HOME"] = str(tmp / "store")
    env["UNIFIED_NLP_PADDLENLP_PYTHON"] = str(PYTHONS["paddle"])
    env["UNIFIED_NLP_MAIN_PYTHON"] = str(PYTHONS["main"])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if python == "paddle":
        from unified_nlp.resolve import default_model_dir

        env["UNIFIED_NLP_TEST_MODEL"] = str(default_model_dir())
    return env


def _check_shadowing(copy: Path, env: dict[str, str], python: str) -> None:
    adapter = "unified_nlp_paddlenlp" if python == "paddle" else "unified_nlp_tfhub"
    code = f"import unified_nlp, {adapter}; print(unified_nlp.__file__); print({adapter}.__file__)"
    out = subprocess.run([str(PYTHONS[python]), "-c", code], cwd=copy, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the copy does not import:\n{out.stderr}")
    for line in out.stdout.split():
        if not Path(line).is_relative_to(copy):
            raise SystemExit(f"the copy does not shadow the checkout: {line}")


def _pytest(copy: Path, env: dict[str, str], python: str, args: list[str], report: Path, timeout: float):
    report.unlink(missing_ok=True)
    command = [str(PYTHONS[python]), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "mutation_stop", *args]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=copy,
            env=env | {"UNIFIED_NLP_MUTATION_REPORT": str(report)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        partial = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        output, code = f"{partial}\ntimed out after {timeout:.0f} s", None
    failures = [json.loads(line) for line in report.read_text().splitlines()] if report.is_file() else []
    return output, code, failures, round(time.monotonic() - started, 1)


def _verdict(failures: list[dict], control: tuple | None) -> tuple[bool, str]:
    """Caught or not, and how, in a few words for the table."""
    caught = next((f for f in failures if f["assertion"]), None)
    others = [f for f in failures if not f["assertion"]]
    noted = "".join(
        f"; {'exception' if f['when'] == 'call' else 'error in ' + f['when']} in `{f['test']}` "
        f"({f['exception']}), not counted"
        for f in others[:2]
    )
    if caught is None:
        return False, ("every test passed" if not others else noted[2:])
    if control is None or control[1] != 0:
        return False, f"assert in `{caught['test']}`, which fails without the mutation too{noted}"
    return True, f"assert in `{caught['test']}`; it passes without the mutation{noted}"


def _log(log: Path, mutation: Mutation, file: Path, run, caught, control, counted: bool, how: str, tmp: Path) -> None:
    """The change, the command, pytest's last lines (and the run without the mutation), the verdict."""
    output, code, seconds = run
    lines = [f"# {mutation.name}: {mutation.bug}", f"# in {file}:"]
    lines += [f"-{line}" for line in mutation.before.splitlines()] + [
        f"+{line}" for line in mutation.after.splitlines()
    ]
    lines += [f"$ pytest {' '.join(mutation.tests)}   (exit code {code}, {seconds} s)"]
    lines += output.strip().splitlines()[-LOG_LINES:]
    if control is not None:
        lines += [f"$ pytest {caught['test']}   (without the mutation: exit code {control[1]}, {control[3]} s)"]
        lines += control[0].strip().splitlines()[-5:]
    lines += [f"verdict: {'caught' if counted else 'NOT caught'}: {how}"]
    log.write_text(_hide("\n".join(lines) + "\n", tmp), encoding="utf-8")


def _hide(text: str, tmp: Path) -> str:
    """No machine paths in the record."""
    for path, shown in ((tmp / "copy", "<copy>"), (tmp, "<tmp>"), (REPO, "<checkout>"), (Path.home(), "~")):
        text = text.replace(str(path), shown)
    return text


def run(mutation: Mutation, timeout: float, log: Path, worktree: bool) -> dict:
    """Apply `mutation` to a copy and run its tests there, then rerun the test that caught it
    without the mutation; the change, the commands and pytest's last lines go to `log`."""
    with tempfile.TemporaryDirectory(prefix="unified-nlp-mutant-") as name:
        tmp = Path(name)
        copy = tmp / "copy"
        copy.mkdir()
        _copy(copy, worktree)
        (tmp / "plugin").mkdir()
        (tmp / "plugin" / "mutation_stop.py").write_text(PLUGIN, encoding="utf-8")
        subprocess.run(["cp", "-al", str(REPO / ".store"), str(tmp / "store")], check=True)
        target, original = _apply(copy, mutation)
        env = _env(copy, tmp, mutation.python)
        _check_shadowing(copy, env, mutation.python)
        output, code, failures, seconds = _pytest(copy, env, mutation.python, list(mutation.tests), tmp / "r", timeout)
        caught = next((f for f in failures if f["assertion"]), None)
        control = None
        if caught is not None:  # the same test, the mutation reverted
            target.write_text(original, encoding="utf-8")
            control = _pytest(copy, env, mutation.python, [caught["test"]], tmp / "c", timeout)
        counted, how = _verdict(failures, control)
        _log(log, mutation, target.relative_to(copy), (output, code, seconds), caught, control, counted, how, tmp)
        summary = next((s for s in reversed(output.splitlines()) if SUMMARY.search(s)), "")
        return {
            "mutation": mutation.name,
            "bug": mutation.bug,
            "file": str(target.relative_to(copy)),
            "tests": " ".join(mutation.tests),
            "environment": mutation.python,
            "caught": counted,
            "how": _hide(how, tmp),
            "failures": [{k: _hide(v, tmp) if isinstance(v, str) else v for k, v in f.items()} for f in failures],
            "control_exit_code": None if control is None else control[1],
            "exit_code": code,
            "summary": summary.strip("= "),
            "seconds": round(seconds + (control[3] if control else 0.0), 1),
            "log": log.name,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only these mutations (by name)")
    parser.add_argument("--worktree", action="store_true", help="mutate the files as they are, not HEAD")
    parser.add_argument("--check", action="store_true", help="only say where each mutation applies in the checkout")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per pytest run")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mutations")
    args = parser.parse_args()
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        raise SystemExit(f"unknown mutation(s) {sorted(unknown)}; known: {', '.join(m.name for m in MUTATIONS)}")
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.check:
        for mutation in chosen:
            print(f"{mutation.name}: {_find(REPO, mutation).relative_to(REPO)}")
        return
    changed = [line[3:] for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()]
    args.out.mkdir(parents=True, exist_ok=True)
    started, rows = time.monotonic(), []
    for mutation in chosen:
        print(f"-- {mutation.name}: {mutation.bug}", flush=True)
        rows.append(run(mutation, args.timeout, args.out / f"{mutation.name}.log", args.worktree))
        print(f"   {'caught' if rows[-1]['caught'] else 'NOT CAUGHT'}: {rows[-1]['how']}", flush=True)
    lines = ["| mutation | bug | tests run | caught | how | seconds |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [
        f"| {r['mutation']} | {r['bug']} | `{r['tests']}`{' (.venv-paddle)' if r['environment'] == 'paddle' else ''} | "
        f"{'yes' if r['caught'] else '**no**'} | {r['how']} | {r['seconds']:.0f} |"
        for r in rows
    ]
    write_results(
        args.out,
        rows,
        lines,
        commit=_git("rev-parse", "HEAD").strip(),
        tree="the working tree: HEAD and the uncommitted changes listed" if args.worktree else "HEAD",
        uncommitted=changed if args.worktree else [],
        caught=sum(r["caught"] for r in rows),
        mutations=len(rows),
        seconds=round(time.monotonic() - started, 1),
    )
    if not all(r["caught"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
