"""Does the suite catch real bugs? Each mutation below is a bug made on purpose in a copy of
the checkout; the tests that guard that code run against the copy (of HEAD: commit first), and a mutation counts as
caught when they fail. Run on demand (minutes per mutation), recorded in
benchmarks/results/mutations/:

    .venv/bin/python benchmarks/mutations.py            # every mutation
    .venv/bin/python benchmarks/mutations.py --only gelu-tanh-electra

Written by hand rather than with mutmut or cosmic-ray: those mutate operators at random
across a module and rerun a whole suite per mutant (hours here); these are the bugs an audit
found the suite blind to, each run against the tests that should see it.

The copy's packages shadow the editable install (its folder first on PYTHONPATH); a backend
run in a worker process (paddlenlp) would still import the checkout, so no mutation here
touches it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recorded import write_results  # noqa: E402

from unified_nlp.bench.tracker import cpu_model, load_average, now  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["", "backends/huggingface", "backends/tfhub", "backends/onnxruntime"]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    before: str  # must occur exactly once in `file`
    after: str
    tests: tuple[str, ...]  # pytest arguments, relative to the copy
    bug: str


MUTATIONS = (
    Mutation(
        "pickle-admits-torch",
        "unified_nlp/safe_pickle.py",
        "        found = _ALLOWED.get((module, name))\n",
        "        found = _ALLOWED.get((module, name))\n"
        "        if found is None and module.startswith('torch'):\n"
        "            import importlib\n\n"
        "            found = getattr(importlib.import_module(module), name)\n",
        ("tests/test_safe_pickle.py",),
        "the restricted pickle reader lets any torch.* global through",
    ),
    Mutation(
        "gelu-tanh-all",
        "backends/tfhub/unified_nlp_tfhub/encoder.py",
        '    "gelu": lambda x: tf.nn.gelu(x, approximate=False),',
        '    "gelu": lambda x: tf.nn.gelu(x, approximate=True),',
        ("tests/test_tfhub_architectures.py",),
        "tfhub encoder: exact GELU swapped for the tanh form, every family",
    ),
    Mutation(
        "gelu-tanh-electra",
        "backends/tfhub/unified_nlp_tfhub/encoder.py",
        "        act = config.get(key, default)\n",
        "        act = config.get(key, default)\n"
        "        act = 'gelu_new' if arch.model_type == 'electra' and act == 'gelu' else act\n",
        ("tests/test_tfhub_architectures.py", "-k", "electra"),
        "tfhub encoder: tanh GELU for ELECTRA only",
    ),
    Mutation(
        "resume-redoes-parts",
        "unified_nlp/datasets/local.py",
        "        if str(index) in done:",
        "        if index in done:",
        ("tests/test_datasets.py", "-k", "resume or skip"),
        "dataset resume redoes finished parts (str(index) in done -> index in done)",
    ),
    Mutation(
        "warmup-off-by-one",
        "unified_nlp/fit_options.py",
        "        return peak * (step + 1) / warmup",
        "        return peak * step / warmup",
        ("tests/test_training.py", "tests/test_fit_core.py"),
        "fit's warm-up starts at a learning rate of 0 (step instead of step + 1)",
    ),
    Mutation(
        "top-k-worst-first",
        "unified_nlp/postprocess.py",
        '    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]',
        '    order = np.argsort(probs, axis=-1, kind="stable")[:, :k]',
        ("tests/test_core.py",),
        "predict(top_k=k) returns the k least probable labels",
    ),
    Mutation(
        "multi-label-threshold-strict",
        "unified_nlp/postprocess.py",
        "if row[j] >= threshold]",
        "if row[j] > threshold]",
        ("tests/test_core.py", "tests/test_huggingface.py", "-k", "multi"),
        "a multi-label score exactly at the threshold is dropped (>= became >)",
    ),
)


def _copy(into: Path) -> None:
    """The committed checkout (HEAD), so that a run says what it measured."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _env(copy: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(copy / p) for p in PACKAGES)}
    env.setdefault("UNIFIED_NLP_HOME", str(REPO / ".store"))  # the checkout's conversions: same bytes, same keys
    env.setdefault("UNIFIED_NLP_PADDLENLP_PYTHON", str(REPO / ".venv-paddle" / "bin" / "python"))
    return env


def _check_shadowing(copy: Path, env: dict[str, str]) -> None:
    code = "import unified_nlp, unified_nlp_tfhub; print(unified_nlp.__file__); print(unified_nlp_tfhub.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the copy does not import:\n{out.stderr}")
    for line in out.stdout.split():
        if not Path(line).is_relative_to(copy):
            raise SystemExit(f"the copy does not shadow the checkout: {line}")


def run(mutation: Mutation, timeout: float, log: Path) -> dict:
    """Apply `mutation` to a copy of HEAD and run its tests there; pytest's last lines go to `log`."""
    with tempfile.TemporaryDirectory(prefix="unified-nlp-mutant-") as tmp:
        copy = Path(tmp)
        _copy(copy)
        target = copy / mutation.file
        text = target.read_text(encoding="utf-8")
        if text.count(mutation.before) != 1:
            raise SystemExit(f"{mutation.name}: the text to mutate occurs {text.count(mutation.before)} times")
        target.write_text(text.replace(mutation.before, mutation.after), encoding="utf-8")
        env = _env(copy)
        _check_shadowing(copy, env)
        command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutation.tests]
        started = time.monotonic()
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        log.write_text(f"$ {' '.join(command)}\n" + "\n".join(lines[-60:]) + "\n", encoding="utf-8")
        tail = lines[-1:] or [""]
        return {
            "mutation": mutation.name,
            "bug": mutation.bug,
            "tests": " ".join(mutation.tests),
            "caught": done.returncode == 1,  # pytest: 1 = tests failed; 0 = all passed (missed)
            "exit_code": done.returncode,
            "summary": tail[0],
            "seconds": round(time.monotonic() - started, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only these mutations (by name)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per mutation")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mutations")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    rows = []
    for mutation in chosen:
        print(f"-- {mutation.name}: {mutation.bug}", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        rows.append(run(mutation, args.timeout, args.out / f"{mutation.name}.log"))
        print(f"   {'caught' if rows[-1]['caught'] else 'MISSED'}: {rows[-1]['summary']}", flush=True)
    lines = ["| mutation | bug | tests run | caught | pytest said |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {r['mutation']} | {r['bug']} | `{r['tests']}` | {'yes' if r['caught'] else '**no**'} | {r['summary']} |"
        for r in rows
    ]
    write_results(
        args.out,
        rows,
        lines,
        command=" ".join(["python", "benchmarks/mutations.py", *sys.argv[1:]]),
        commit=subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip(),
        finished=now(),
        cpu=cpu_model(),
        load_average=load_average(),
    )
    if not all(r["caught"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
