"""`classify_dataset`: one entry point, two engines (local, Ray)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import check_writable
from ..errors import InvalidInputError, UnifiedNLPError
from .local import CHUNK_ROWS
from .rows import ON_ERROR, resolve_keep

ENGINES = ("local", "ray")


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def classify_dataset(
    input: Any,
    output: str | os.PathLike,
    *,
    model: Any = "default",
    backend: str = "huggingface",
    text_column: str = "text",
    pair_column: str | None = None,
    id_column: str | None = None,
    keep_columns: Sequence[str] | str | None = None,
    engine: str = "local",
    address: str | None = None,
    batch_size: int = 32,
    chunk_rows: int = CHUNK_ROWS,
    on_error: str = "raise",
    resume: bool = True,
    num_threads: int | None = None,
    num_actors: int | None = None,
    progress: bool | None = None,
    input_format: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Classify every row of a JSONL, CSV/TSV or Parquet file into an output file.

    The output (its format from its suffix: .parquet, .jsonl, .csv, .tsv) has the
    input's `id_column` (or ``row``, the 0-based row number), the input columns
    `keep_columns` (None: none; ``"all"``: every one; or a list of names), then
    ``label``, ``score`` and ``prob_<label>`` per label; see
    `unified_nlp.datasets.rows`. A kept column named like an output column is an
    error. The local engine streams `chunk_rows` rows at a time (bounded memory);
    both engines write each chunk of `chunk_rows` input rows as a part of
    ``<output>.parts/`` and, with `resume`, a rerun after a crash, SIGKILL or Ctrl-C
    goes on from the finished parts, whichever engine wrote them (a Ray Dataset input
    never resumes; a rerun with other columns, kept ones included, refuses).
    ``on_error="raise"`` stops at the first bad row (a text that is null or an empty
    CSV/TSV cell, not a string, not UTF-8) naming its file, line and id; ``"skip"``
    writes bad rows, with their id, line and the reason, to ``<output>.errors.jsonl``.
    ``engine="ray"`` runs on Ray Data (`address` joins a cluster; `input` may then be
    a Ray Dataset). `model` is a
    name or folder for `load_classifier` (other keyword options go there too, e.g.
    ``preprocessor=``), or, on the local engine, an already loaded TextClassifier.

    Returns a summary: ``rows``, ``written``, ``errors``, ``errors_file``, ``parts``,
    ``parts_reused``, ``rows_classified`` (in this run), ``seconds``, ``rows_per_s``,
    ``output``, ``engine``.

    Examples:
        >>> import unified_nlp as un
        >>> un.classify_dataset("reviews.parquet", "preds.parquet", text_column="review",
        ...                     id_column="id", keep_columns=["stars"])  # doctest: +SKIP
        {'output': 'preds.parquet', 'rows': 1000000, 'written': 1000000, 'errors': 0, ...}
    """
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    if on_error not in ON_ERROR:
        raise InvalidInputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    _positive("batch_size", batch_size)
    _positive("chunk_rows", chunk_rows)
    check_writable(output, file=True)  # before any model loads or row is read
    if engine == "ray":
        if importlib.util.find_spec("unified_nlp.datasets.ray_engine") is None:
            raise UnifiedNLPError("the Ray engine is not available in this version; use engine='local'")
        from . import ray_engine

        return ray_engine.run(
            input,
            output,
            model=model,
            backend=backend,
            text_column=text_column,
            pair_column=pair_column,
            id_column=id_column,
            keep_columns=keep_columns,
            address=address,
            batch_size=batch_size,
            chunk_rows=chunk_rows,
            on_error=on_error,
            resume=resume,
            num_threads=num_threads,
            num_actors=num_actors,
            progress=progress,
            input_format=input_format,
            **options,
        )
    if num_actors is not None:
        raise InvalidInputError("num_actors is an option of engine='ray'; the local engine runs in this process")
    from . import local

    columns = [text_column, *([pair_column] if pair_column else []), *([id_column] if id_column else [])]
    reader, output = _local_input(input, output, columns, input_format)
    keep = resolve_keep(
        keep_columns, reader.columns, text_column=text_column, pair_column=pair_column, id_column=id_column
    )
    reader.read_also(keep)
    load, model_key = _local_model(model, backend, num_threads, options)
    return local.run(
        reader,
        output,
        load,
        model_key=model_key,
        text_column=text_column,
        pair_column=pair_column,
        id_column=id_column,
        keep_columns=keep,
        batch_size=batch_size,
        chunk_rows=chunk_rows,
        on_error=on_error,
        resume=resume,
        progress=progress,
    )


def _local_input(input: Any, output: str | os.PathLike, columns: list[str], input_format: str | None):
    """The local engine's reader of `input` and the absolute `output` path, checked before any work."""
    if not isinstance(input, (str, os.PathLike)):
        raise InvalidInputError(
            f"the local engine reads a file path, got {type(input).__name__} (a Ray Dataset needs engine='ray')"
        )
    from . import io

    output = Path(output).absolute()
    io.file_format(output)  # an unknown output suffix fails before any work
    reader = io.Reader(input, columns, input_format)
    if output == reader.path.absolute():
        raise InvalidInputError(f"the output {output} is the input file; write the predictions elsewhere")
    return reader, output


def _local_model(model: Any, backend: str, num_threads: int | None, options: dict[str, Any]):
    """(how the local engine loads the model, the model's part of the resume key)."""
    from ..api import load_classifier
    from ..classifier import TextClassifier
    from . import local

    if isinstance(model, TextClassifier):  # an already loaded classifier runs as it is
        clf = model
        model_key = {"model": str(clf.source), "backend": clf.backend, "labels": list(clf.labels)}
        return (lambda: clf), model_key
    model_key = local.named_model_key(model, backend, options)
    return (lambda: load_classifier(model, backend=backend, num_threads=num_threads, **options)), model_key
