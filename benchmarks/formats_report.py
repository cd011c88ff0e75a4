"""The report of benchmarks/formats.py: results.md's tables and the environment record."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

BACKENDS = ("huggingface", "tfhub", "paddlenlp")


def few_words(message: str, limit: int = 110) -> str:
    """A recorded reason for the table: no exception name, no leading path, cut at a word."""
    text = re.sub(r"^\w+(Error|Exception): ", "", message)
    text = re.sub(r"^(<tmp>|/)\S*: ", "", text)
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)] + " ..."


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def fmt_load(r: dict) -> str:
    if r["status"] != "ok":
        return "refused: " + few_words(r["reason"])
    cell = f"{r['logits_max_abs_diff']:.1e}"
    if r.get("token_ids_identical") is not None:
        cell += f", ids {r['token_ids_identical']:.0%}"
    if not r["own_labels"]:
        cell += " (labels differ)"
    return cell


def fmt_target(cell: dict | None) -> str:
    if not cell:
        return "-"
    if "error" in cell:
        return "refused: " + few_words(cell["error"])
    parts = []
    if "round_trip_bit_exact" in cell:
        parts.append("round trip " + ("bit-exact" if cell["round_trip_bit_exact"] else "DIFFERS"))
    if "plain_diff" in cell:
        tool = cell["plain_tools"].split(" ")[0]
        if "plain_tokenizer_error" in cell:
            tool += " model (given the ids)"
        parts.append(f"{tool} {cell['plain_diff']:.1e}")
    elif "plain_tools" in cell:
        parts.append("plain: " + few_words(cell["plain_tools"]))
    if "plain_error" in cell:
        parts.append("plain PaddleNLP fails: " + few_words(cell["plain_error"]))
    if "paddle_tokenizer_missing" in cell:
        parts.append("no PaddleNLP tokenizer written: " + few_words(cell["paddle_tokenizer_missing"]))
    return ", ".join(parts)


def markdown(record: dict) -> str:
    env = record["environment"]
    lines = [
        f"Native checkpoints x backends on the first {record['texts']} SST-2 dev sentences, "
        f"{record['date']}; run took {record['seconds']:.0f} s.",
        f"Machine: {env['cpu']}, {env['cores']} logical cores; load average at the start "
        f"{env['load_start']}, at the end {env['load_end']} (shared with other jobs).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        "",
        "Loading: max |logit difference| against the checkpoint's own framework forward, and "
        "token ids identical to its own tokenizer's (where it has one apart from the model).",
        "",
        "| format | family | huggingface | tfhub | paddlenlp |",
        "| --- | --- | --- | --- | --- |",
    ]
    fixtures = list(dict.fromkeys(r["fixture"] for r in record["loads"]))
    info = {f["fixture"]: f for f in record["fixtures"]}
    for fixture in fixtures:
        cells = [
            fmt_load(next(r for r in record["loads"] if r["fixture"] == fixture and r["backend"] == b))
            for b in BACKENDS
        ]
        lines.append(f"| {info[fixture]['format']} | {info[fixture]['family']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Migration: `un.convert` to each backend; tfhub and paddlenlp exports converted back to "
        "huggingface give bit-identical weights (round trip); the exported folder in the target's "
        "plain tools (transformers AutoModelForSequenceClassification; the export's classifier/ "
        "SavedModel serving_default; PaddleNLP AutoModelForSequenceClassification + AutoTokenizer), "
        "max |logit difference| against the checkpoint's own forward.",
        "",
        "| format | family | to huggingface | to tfhub | to paddlenlp |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in record["migrations"]:
        fx = info[m["fixture"]]
        if not m["convertible"]:
            reason = few_words(m["reason"])
            lines.append(f"| {fx['format']} | {fx['family']} | not convertible: {reason} | - | - |")
            continue
        cells = [fmt_target(m["targets"].get(b)) for b in BACKENDS]
        lines.append(f"| {fx['format']} | {fx['family']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("numpy", "torch", "transformers", "tensorflow", "tf-keras", "keras", "tensorflow-hub"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
