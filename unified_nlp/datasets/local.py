"""The local engine: one process streams the input in chunks, classifies each chunk
and writes it as one part, then assembles the parts into the output.

Resume: ``<output>.parts/manifest.json`` (rewritten atomically after every part)
lists the finished parts and their row ranges. A rerun after a crash, SIGKILL or
Ctrl-C reads the input again but classifies only the chunks not listed, so no part
is redone and no row is written twice (a part written but not yet listed is
simply written again, atomically, under the same name). The manifest records the
input (path, size, mtime), the model, backend, columns (those kept too) and chunk
size; a rerun with any of them different refuses, and ``resume=False`` starts over.

The Ray engine (`ray_engine`) keeps the same folder with the same helpers
(`resume_key`, `_start`, `write_chunk`, `finish`), one part per input chunk. The
engine is not part of the key: both run `rows.classify_rows` with the same model and
write the same columns (labels identical, probabilities within 1e-6), so a run
stopped on one engine can be finished on the other.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import atomic_file
from ..errors import InvalidInputError
from ..progress import bar, counted, notice
from . import io
from .rows import ROW_COLUMN, classify_rows, output_schema

CHUNK_ROWS = 8192  # rows per part: about 30 s of work on 2 cores, a few MB of memory
MANIFEST = "manifest.json"
VERSION = 1


def parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def errors_path(output: Path) -> Path:
    return output.with_name(output.name + ".errors.jsonl")


def _part_name(index: int, fmt: str) -> str:
    return f"part-{index:06d}.{fmt}"


def named_model_key(model: Any, backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of a model given by name or folder (either engine)."""
    from ..registry import canonical_name

    return {"model": str(model), "backend": canonical_name(backend), "options": {k: str(v) for k, v in options.items()}}


def resume_key(
    reader: io.Reader,
    model_key: dict[str, Any],
    *,
    text_column: str,
    pair_column: str | None,
    id_column: str | None,
    keep_columns: list[str],
    chunk_rows: int,
    output_format: str,
) -> dict[str, Any]:
    """What a rerun must match to go on from the finished parts."""
    return {
        "input": reader.identity(),
        **model_key,
        "text_column": text_column,
        "pair_column": pair_column,
        "id_column": id_column,
        "keep_columns": keep_columns,
        "chunk_rows": chunk_rows,
        "output_format": output_format,
    }


def finished_rows(parts: dict[str, Any]) -> int:
    return sum(p["rows"][1] - p["rows"][0] for p in parts.values())


def stopped(folder: Path, manifest: dict[str, Any]) -> None:
    """The notice on Ctrl-C: what is kept and how to go on."""
    notice(
        f"stopped: {counted(len(manifest['parts']), 'part')} finished in {folder}; rerun the same command to go on from there"
    )


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable: treated as no finished parts (they are redone, never duplicated)


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    with atomic_file(folder / MANIFEST) as f:
        f.write((json.dumps(manifest, indent=1) + "\n").encode("utf-8"))


def _start(folder: Path, key: dict[str, Any], resume: bool) -> dict[str, Any]:
    """The manifest to go on from: the previous run's when it matches `key`."""
    previous = _read_manifest(folder) if resume else None
    if previous is not None and previous.get("key") != key:
        old = previous.get("key") or {}
        differs = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
        raise InvalidInputError(
            f"{folder} holds parts of an earlier run with a different {', '.join(differs)}; "
            "rerun with resume=False (--no-resume) to start over, or remove that folder"
        )
    if previous is None and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = previous or {"version": VERSION, "key": key, "parts": {}}
    parts = manifest["parts"]
    for index in [i for i, p in parts.items() if not (folder / p["file"]).is_file()]:
        del parts[index]  # a part file removed by hand is simply redone
    return manifest


def write_chunk(
    folder: Path,
    manifest: dict[str, Any] | None,
    index: int,
    rows: tuple[int, int],
    columns: dict[str, Any],
    names: list[str],
    bad: list[dict[str, Any]],
    out_fmt: str,
) -> dict[str, Any]:
    """Write input chunk `index` (rows [start, end)) as one part, its bad rows beside it,
    and list it in the manifest (rewritten atomically; None: no manifest is kept)."""
    part = _part_name(index, out_fmt)
    io.write_part(folder / part, out_fmt, columns, names)
    entry = {"file": part, "rows": list(rows), "written": rows[1] - rows[0] - len(bad), "errors": len(bad)}
    if bad:
        entry["errors_file"] = f"errors-{index:06d}.jsonl"
        io.write_jsonl(folder / entry["errors_file"], bad)
    if manifest is not None:
        manifest["parts"][str(index)] = entry
        _write_manifest(folder, manifest)
    return entry


def finish(folder: Path, parts: dict[str, Any], out_fmt: str, output: Path) -> dict[str, Any]:
    """Assemble the parts, in row order, into `output` and their bad rows into the errors
    file (both atomically), remove `folder`; returns the counts of the summary."""
    order = sorted(parts.values(), key=lambda p: p["rows"][0])
    io.assemble([folder / p["file"] for p in order], out_fmt, output)
    errors = [folder / p["errors_file"] for p in order if p.get("errors_file")]
    errors_file = errors_path(output)
    if errors:
        io.assemble(errors, "jsonl", errors_file)
    elif errors_file.exists():
        errors_file.unlink()  # from an earlier run of the same output
    shutil.rmtree(folder)
    return {
        "output": str(output),
        "rows": sum(p["rows"][1] - p["rows"][0] for p in order),
        "written": sum(p["written"] for p in order),
        "errors": sum(p["errors"] for p in order),
        "errors_file": str(errors_file) if errors else None,
        "parts": len(order),
    }


def run(
    reader: io.Reader,
    output: Path,
    load: Callable[[], Any],
    *,
    model_key: dict[str, Any],
    text_column: str,
    pair_column: str | None,
    id_column: str | None,
    keep_columns: list[str],
    batch_size: int,
    chunk_rows: int,
    on_error: str,
    resume: bool,
    progress: bool | None,
) -> dict[str, Any]:
    """Classify `reader`'s rows into `output`; returns the summary (see `classify_dataset`)."""
    began = time.perf_counter()
    out_fmt = io.file_format(output)
    folder = parts_dir(output)
    key = resume_key(
        reader,
        model_key,
        text_column=text_column,
        pair_column=pair_column,
        id_column=id_column,
        keep_columns=keep_columns,
        chunk_rows=chunk_rows,
        output_format=out_fmt,
    )
    manifest = _start(folder, key, resume)
    done: dict[str, Any] = manifest["parts"]
    reused = len(done)
    total = reader.count() or 0
    kept_rows = finished_rows(done)
    if reused:
        notice(
            f"resuming {output}: {counted(reused, 'finished part')} ({counted(kept_rows, 'row')}) kept from the earlier run"
        )
    clf = load()
    loaded = time.perf_counter()
    names = output_schema(clf.labels, id_column, keep_columns)
    remaining = max(total - kept_rows, 0)  # CSV/TSV: an estimate (see Reader.count)
    try:
        with bar(remaining, f"classify {reader.path.name} ({clf.backend})", progress, unit="row") as shown:
            _classify_chunks(reader, clf, folder, manifest, names, shown, key, on_error, batch_size)
    except KeyboardInterrupt:
        stopped(folder, manifest)
        raise
    classified = finished_rows(done) - kept_rows
    summary = finish(folder, done, out_fmt, output)
    finished = time.perf_counter()
    seconds, working = finished - began, finished - loaded
    return {
        **summary,
        "parts_reused": reused,
        "rows_classified": classified,
        "seconds": round(seconds, 3),
        "load_seconds": round(loaded - began, 3),
        "rows_per_s": round(classified / working, 1) if working > 0 else 0.0,  # after the model loaded
        "engine": "local",
        "backend": clf.backend,
    }


def _classify_chunks(reader, clf, folder, manifest, names, shown, key, on_error, batch_size) -> None:
    """Classify and write every chunk not in the manifest, listing each part once written."""
    done = manifest["parts"]
    text_column, pair_column, id_column = key["text_column"], key["pair_column"], key["id_column"]
    out_fmt, chunk_rows = key["output_format"], key["chunk_rows"]
    for index, (start, chunk) in enumerate(reader.chunks(chunk_rows)):
        if str(index) in done:
            continue
        n = len(chunk[text_column])
        if id_column is None:
            chunk[ROW_COLUMN] = list(range(start, start + n))
        columns, bad = classify_rows(
            clf,
            chunk,
            text_column=text_column,
            pair_column=pair_column,
            id_column=id_column,
            keep_columns=key["keep_columns"],
            on_error=on_error,
            batch_size=batch_size,
            locate=lambda i, start=start: reader.line(start + i),
            source=str(reader.path),
        )
        write_chunk(folder, manifest, index, (start, start + n), columns, names, bad, out_fmt)
        shown.update(n)
