"""The Ray engine: the same rows, columns and numbers as the local engine, on Ray Data.

Plan: read -> ``map_batches`` with an actor pool -> the driver writes the output.

- Read: a file goes through the local engine's own reader (`io.Reader`, so CSV/TSV
  cells, JSONL values and bad UTF-8 reach the classifier exactly as they do there)
  in one streaming Ray read task, pinned to the driver's node (where the file is);
  it reads the local engine's chunks of `chunk_rows` rows, leaves out the chunks a
  resumed run has finished, and gives every row its position in the file before the
  map, so every output row is traceable (and a bad row's line can be named). A `ray.data.Dataset` given in Python is
  read as it is; its rows are numbered in the order the dataset yields them (the
  ``row`` column without an `id_column`).
- Map: an actor pool of `num_actors` actors, each loading the classifier once in
  ``__init__`` (paddlenlp through its worker process, started by the actor and
  ended with it) and running `rows.classify_rows` on each batch of `chunk_rows`
  rows. Each actor reserves `num_threads` CPUs and runs its framework with that
  many threads, so the actors together never ask for more cores than they hold.
  Default: one thread per actor and as many actors as cores (less one CPU for the
  reading task).
- Write: the driver takes the classified batches in order (``preserve_order``),
  puts each row back in its input chunk by its position (a batch need not match a
  chunk, and an actor returns a batch's bad rows after its good ones) and writes each
  chunk, once all its rows are in (`chunk_rows` of them; only the file's last chunk
  is shorter), with the kept input columns (`keep_columns`, which the actors pass
  through), as the local engine does: one part per chunk in ``<output>.parts/``
  listed in the same manifest (`local.write_chunk`), then one output file assembled
  atomically (`local.finish`), bad rows to ``<output>.errors.jsonl``
  (``on_error="skip"``) or an InvalidInputError naming the first bad row (``"raise"``),
  with its line in the file (`io.Reader.line`: the driver runs where the file is).

Faults: an actor that dies (killed, out of memory) is restarted by Ray up to
`MAX_RESTARTS` times and its unfinished batches run again on it (`MAX_TASK_RETRIES`);
a batch's output reaches the driver once, so every row is written exactly once.

Resume (a file input): the local engine's scheme and folder. A rerun of the same
command after a crash, SIGKILL or Ctrl-C of the driver keeps the parts the manifest
lists and classifies only the other chunks; a different input file, model, backend,
options, columns (kept ones too), chunk size or output format refuses, ``resume=False``
starts over.
The engine is not in the key (both give the same labels, and probabilities within
1e-6), so parts of a local run are finished by a Ray run and back. A
`ray.data.Dataset` has no identity to check a rerun against: it never resumes (its
parts go to ``<output>.ray-parts/``, removed at the end, success or not).

Cluster: `address=None` starts a local Ray cluster sized for the actors (no
dashboard) and stops it at the end; an address ("auto", "ray://host:10001",
"host:6379") joins that cluster and leaves it running; a Ray already initialised
in this process is used as it is.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendNotInstalledError, InvalidInputError, UnifiedNLPError
from ..progress import bar, counted, notice
from ..threads import available_cores
from ..threads import check as check_threads
from . import io
from .local import (
    CHUNK_ROWS,
    _start,
    finish,
    finished_rows,
    named_model_key,
    parts_dir,
    resume_key,
    stopped,
    write_chunk,
)
from .rows import (
    ROW_COLUMN,
    bad_row,
    bad_row_error,
    classify_rows,
    output_schema,
    prediction_columns,
    resolve_keep,
)

MAX_RESTARTS = 3  # per actor: a killed actor comes back this often before the run fails
MAX_TASK_RETRIES = 3  # per batch, on actor death (a bad row is not retried: it is data, not a fault)
READ_CPUS = 1  # the reading task holds one logical CPU for the whole (streaming) run
OBJECT_STORE_BYTES = 512 << 20  # the local cluster's object store: blocks are small and streamed
ERROR = "_error"  # per-row column from the actors to the driver: "" or why the row is bad
POSITION = "_unified_nlp_position"  # per-row column, reader -> actor -> driver: the row's 0-based place in the input
INDEX = "_unified_nlp_index"  # in the actor: the row's place in its batch (classify_rows's id while classifying)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise BackendNotInstalledError(
            "engine='ray' needs Ray Data: pip install 'unified-nlp[ray]' (ray[data]==2.60.0)"
        ) from None
    return ray


class _Classify:
    """The actor: loads the classifier once, classifies one batch per call."""

    def __init__(self, model, backend, num_threads, options, columns, batch_size):
        from ..api import load_classifier

        self.clf = load_classifier(model, backend=backend, num_threads=num_threads, **options)
        self.text_column, self.pair_column, self.id_column, self.keep = columns
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        id_name = self.id_column or ROW_COLUMN
        output_schema(self.clf.labels, self.id_column, self.keep)  # a name given twice: a clear error
        local = np.arange(len(batch[self.text_column]), dtype=np.int64)
        # a file's rows carry their position; a Dataset's are numbered in the batch (the driver adds the offset)
        position = np.asarray(batch[POSITION], dtype=np.int64) if POSITION in batch else local
        batch = {**batch, INDEX: local}
        if self.id_column is None:
            batch[ROW_COLUMN] = position
        out, bad = classify_rows(
            self.clf,
            batch,
            text_column=self.text_column,
            pair_column=self.pair_column,
            id_column=INDEX,  # the rows' places in the batch, to send each one's id and position with it
            keep_columns=[*self.keep, *([self.id_column] if self.id_column else [])],  # values checked as UTF-8
            on_error="skip",  # the driver raises, in row order, so "raise" names the first bad row
            batch_size=self.batch_size,
        )
        kept, nbad = len(out["label"]), len(bad)
        order = np.array(list(out[INDEX]) + [b["id"] for b in bad], dtype=np.int64)  # good rows, then bad ones
        result: dict[str, np.ndarray] = {}
        for name in [id_name, *self.keep]:  # every row's, in `order`; numpy scalars as Python values
            result[name] = _objects(list(batch[name]))[order]
        result["label"] = np.array(list(out["label"]) + [""] * nbad, dtype=object)
        for name in prediction_columns(self.clf.labels)[1:]:  # score, prob_*
            result[name] = np.concatenate([out[name], np.full(nbad, np.nan, dtype=np.float32)])
        result[ERROR] = np.array([""] * kept + [b["reason"] for b in bad], dtype=object)
        result[POSITION] = position[order]
        return result

    def pid(self) -> int:
        return os.getpid()


def _objects(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one by one: a list or array value stays one value
        array[i] = value.item() if isinstance(value, np.generic) else value
    return array


def _file_dataset(ray, reader: io.Reader, chunk_rows: int, skip: set[int]):
    """A Ray Dataset streaming `reader`'s chunks, but those in `skip`, from one read
    task on this node, each row with its position in the file."""
    from ray.data.block import BlockAccessor, BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class _Chunks(Datasource):
        def estimate_inmemory_data_size(self):
            return None

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            def read():
                for index, (start, chunk) in enumerate(reader.chunks(chunk_rows)):
                    if index in skip:  # finished by an earlier run
                        continue
                    n = len(chunk[reader.wanted[0]])
                    block = {c: _objects(v) for c, v in chunk.items()}
                    block[POSITION] = np.arange(start, start + n, dtype=np.int64)
                    yield BlockAccessor.batch_to_block(block)

            meta = BlockMetadata(num_rows=None, size_bytes=None, input_files=[str(reader.path)], exec_stats=None)
            return [ReadTask(read, meta)]

    here = {"ray.io/node-id": ray.get_runtime_context().get_node_id()}  # the file is on this node
    ds = ray.data.read_datasource(_Chunks(), override_num_blocks=1, num_cpus=READ_CPUS, label_selector=here)
    # the read task's chunks would be merged into large blocks (one actor's work): cut them back
    return ds.repartition(target_num_rows_per_block=chunk_rows)


def _sizes(cores: int, num_actors: int | None, num_threads: int | None) -> tuple[int, int]:
    """(actors, threads per actor): together within `cores` unless asked otherwise."""
    if num_threads is not None:
        per = check_threads(num_threads)
    elif num_actors is not None:
        per = max(1, cores // num_actors)
    else:
        per = 1
    actors = num_actors if num_actors is not None else max(1, cores // per)
    if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
        raise InvalidInputError(f"num_actors must be a positive integer or None, got {num_actors!r}")
    return actors, per


def _unwrap(e: BaseException) -> BaseException | None:
    """The library's own error inside a Ray task failure, if any."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, UnifiedNLPError):
            return e
        cause = getattr(e, "cause", None)
        e = cause if isinstance(cause, BaseException) else (e.__cause__ or e.__context__)
    return None


@dataclass(frozen=True)
class _Job:
    """What a run classifies, with which model, and where and how it writes."""

    output: Path
    out_fmt: str
    model: Any
    backend: str
    options: dict[str, Any]
    text_column: str
    pair_column: str | None
    id_column: str | None
    keep_columns: tuple[str, ...]
    batch_size: int
    chunk_rows: int
    on_error: str
    progress: bool | None
    address: str | None

    @property
    def columns(self) -> tuple[str, str | None, str | None, tuple[str, ...]]:
        """The text, pair, id and kept columns, as an actor takes them."""
        return self.text_column, self.pair_column, self.id_column, self.keep_columns


def run(
    input: Any,
    output: str | os.PathLike,
    *,
    model: Any = "default",
    backend: str = "huggingface",
    text_column: str = "text",
    pair_column: str | None = None,
    id_column: str | None = None,
    keep_columns: Any = None,
    address: str | None = None,
    num_actors: int | None = None,
    batch_size: int = 32,
    chunk_rows: int = CHUNK_ROWS,
    on_error: str = "raise",
    resume: bool = True,
    num_threads: int | None = None,
    progress: bool | None = None,
    input_format: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Classify `input` (a file path or a `ray.data.Dataset`) into `output` on Ray Data;
    returns the summary of `classify_dataset`. With a file and `resume`, a rerun goes
    on from the finished parts in ``<output>.parts/``, the local engine's or this
    engine's (see the module's notes); a Dataset input always starts over.

    >>> run("reviews.parquet", "preds.parquet", model="default", backend="tfhub", num_actors=2)  # doctest: +SKIP
    {'output': '.../preds.parquet', 'rows': 1000000, 'written': 1000000, 'errors': 0, 'engine': 'ray', ...}
    """
    from ..classifier import TextClassifier
    from ..registry import canonical_name

    began = time.perf_counter()
    if isinstance(model, TextClassifier):
        raise InvalidInputError(
            "engine='ray' loads the model in each actor: pass its name or folder, not a loaded classifier"
        )
    backend = canonical_name(backend)
    output = Path(output).absolute()
    out_fmt = io.file_format(output)
    ray = _ray()
    reader = folder = manifest = None  # a Dataset's parts folder is made in _run
    if isinstance(input, (str, os.PathLike)):
        columns = [text_column, *(c for c in (pair_column, id_column) if c)]
        reader = io.Reader(input, columns, input_format)  # missing columns, empty or unreadable files fail here
        if output == reader.path.absolute():
            raise InvalidInputError(f"the output {output} is the input file; write the predictions elsewhere")
        columns = reader.columns
    elif isinstance(input, ray.data.Dataset):
        columns = input.columns()
    else:
        raise InvalidInputError(f"engine='ray' reads a file path or a ray.data.Dataset, got {type(input).__name__}")
    keep = resolve_keep(keep_columns, columns, text_column=text_column, pair_column=pair_column, id_column=id_column)
    job = _Job(
        output=output, out_fmt=out_fmt, model=model, backend=backend, options=options,
        text_column=text_column, pair_column=pair_column, id_column=id_column, keep_columns=tuple(keep),
        batch_size=batch_size, chunk_rows=chunk_rows, on_error=on_error, progress=progress, address=address,
    )  # fmt: skip
    if reader is not None:
        reader.read_also(keep)
        folder, manifest = _resumed(reader, job, resume)  # before the cluster starts: a mismatch refuses at once
    sizes = _connect(ray, address, num_actors, num_threads)
    started = sizes is not None
    try:
        if not started or num_actors is None:
            cluster = int(ray.cluster_resources().get("CPU", 1))
            sizes = _sizes(max(cluster - READ_CPUS, 1), num_actors, num_threads)
        with warnings.catch_warnings():
            # max_restarts/max_task_retries have no named parameter in Ray 2.60; the pool-size hint counts read tasks
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            warnings.filterwarnings("ignore", message=".*minimum number of concurrent actors")
            return _run(ray, job, input, reader, folder, manifest, sizes, began)
    finally:
        if started:
            ray.shutdown()


def _resumed(reader: io.Reader, job: _Job, resume: bool) -> tuple[Path, dict[str, Any]]:
    """The parts folder of a file input and its manifest: the finished parts of an earlier
    run of the same job are kept (with `resume`), a different job refuses."""
    folder = parts_dir(job.output)
    key = resume_key(
        reader,
        named_model_key(job.model, job.backend, job.options),
        text_column=job.text_column,
        pair_column=job.pair_column,
        id_column=job.id_column,
        keep_columns=list(job.keep_columns),
        chunk_rows=job.chunk_rows,
        output_format=job.out_fmt,
    )
    return folder, _start(folder, key, resume)


def _connect(ray, address: str | None, num_actors: int | None, num_threads: int | None) -> tuple[int, int] | None:
    """Start a local cluster sized for the actors (`address` None) or join `address`; a Ray
    already initialised is used as it is. Returns (actors, threads per actor) when this
    started the cluster (to shut it down at the end), else None."""
    if ray.is_initialized():
        return None
    if address is not None:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        return None
    actors, per = _sizes(available_cores(), num_actors, num_threads)
    # Ray turns token authentication on for a new local cluster (a good default) and warns
    # that it did, on every run; RAY_AUTH_MODE=token instead fails without a token file
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    ray.init(
        num_cpus=actors * per + READ_CPUS,
        include_dashboard=False,
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    return actors, per


def _run(
    ray,
    job: _Job,
    input,
    reader: io.Reader | None,
    folder: Path | None,
    manifest: dict[str, Any] | None,
    sizes: tuple[int, int],
    began: float,
) -> dict[str, Any]:
    """Read, classify on `sizes` = (actors, threads per actor), write; returns the summary."""
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # our own bar shows progress: Ray's warning that its bars are off is noise on every run
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    actors, per = sizes
    done: dict[str, Any] = manifest["parts"] if manifest is not None else {}
    reused = len(done)
    ds, total, name = _source(ray, input, reader, done, job)
    ds = _classified(ray, ds, job, actors, per)
    if reader is None:  # a Dataset has no stable identity to check a rerun against: never resumed
        folder = job.output.with_name(job.output.name + ".ray-parts")
        manifest = _start(folder, {"input": "ray.data.Dataset"}, resume=False)
        done = manifest["parts"]
    chunks = _Chunks(folder, manifest, job, reader)
    try:
        with bar(total or 0, f"classify {name} ({job.backend}, ray x{actors})", job.progress, unit="row") as shown:
            rows, first_batch, first_rows = _collect(ds, chunks, reader is None, shown)
        chunks.close()
        if chunks.names is None and not done:
            raise InvalidInputError(f"{name} has no rows: nothing to classify")
        summary = finish(folder, done, job.out_fmt, job.output)
    except KeyboardInterrupt:
        if reader is not None:
            stopped(folder, manifest)
        raise
    except Exception as e:
        ours = _unwrap(e)
        if ours is not None and ours is not e:
            raise ours.with_traceback(None) from None
        raise
    finally:
        if reader is None:  # a Dataset's parts are never resumed
            shutil.rmtree(folder, ignore_errors=True)
    finished = time.perf_counter()
    seconds = finished - began
    working = finished - (first_batch or began)
    return {
        **summary,
        "parts_reused": reused,
        "rows_classified": rows,
        "seconds": round(seconds, 3),
        "load_seconds": round((first_batch or finished) - began, 3),  # cluster, actors and model up, first batch
        "rows_per_s": float(f"{rows / seconds:.3g}") if seconds > 0 else 0.0,  # 3 digits: 2 rows in 60 s is not 0.0
        # the steady rate: rows after the first batch over the time after it (actors loaded);
        # None when everything came in the first batch (no steady state was seen, not a rate of 0)
        "rows_per_s_after_first_batch": round((rows - first_rows) / working, 1)
        if rows > first_rows and working > 0
        else None,
        "engine": "ray",
        "backend": job.backend,
        "actors": actors,
        "threads_per_actor": per,
        "address": job.address,
    }


def _source(ray, input, reader: io.Reader | None, done: dict[str, Any], job: _Job):
    """(the dataset to classify, its rows if known, its name): a file's chunks that `done`
    does not hold, or a Dataset checked for the job's columns."""
    if reader is not None:
        reused, kept_rows = len(done), finished_rows(done)
        if reused:
            notice(
                f"resuming {job.output}: {counted(reused, 'finished part')} ({counted(kept_rows, 'row')}) kept from the earlier run"
            )
        ds = _file_dataset(ray, reader, job.chunk_rows, {int(i) for i in done})
        total = max((reader.count() or 0) - kept_rows, 0)  # CSV/TSV: an estimate (see Reader.count)
        return ds, total, reader.path.name
    missing = [c for c in job.columns[:3] if c and c not in input.columns()]
    if missing:
        raise InvalidInputError(
            f"the dataset has no column {', '.join(map(repr, missing))}; its columns are {input.columns()}"
        )
    return input, None, "dataset"


def _classified(ray, ds, job: _Job, actors: int, per: int):
    """`ds` mapped through a pool of `actors` classifier actors of `per` threads each, in input order."""
    ds = ds.map_batches(
        _Classify,
        fn_constructor_args=(job.model, job.backend, per, job.options, job.columns, job.batch_size),
        batch_size=job.chunk_rows,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=per,
        max_restarts=MAX_RESTARTS,
        max_task_retries=MAX_TASK_RETRIES,
    )
    context = ds.context  # the copy this dataset runs with (taken when it was created)
    context.execution_options.preserve_order = True  # in input order, whatever actor finishes first
    context.enable_progress_bars = False
    return ds


def _collect(ds, chunks: _Chunks, numbered_in_batch: bool, shown) -> tuple[int, float | None, int]:
    """Every classified batch into its input chunk; returns (rows, when the first batch
    came, its rows)."""
    rows, first_batch, first_rows = 0, None, 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        if first_batch is None:
            first_batch, first_rows = time.perf_counter(), len(batch[ERROR])
        positions = np.asarray(batch.pop(POSITION), dtype=np.int64)
        if numbered_in_batch:  # a Dataset's rows are numbered in their batch
            positions = positions + rows
        chunks.add(batch, positions)
        rows += len(positions)
        shown.update(len(positions))
    return rows, first_batch, first_rows


class _Chunks:
    """The driver's side: classified rows back into the input's chunks, each written as
    one part (`local.write_chunk`) once all its rows are in."""

    def __init__(self, folder: Path, manifest: dict[str, Any], job: _Job, reader: io.Reader | None) -> None:
        self.folder, self.manifest, self.chunk_rows, self.out_fmt = folder, manifest, job.chunk_rows, job.out_fmt
        self.on_error, self.id_column, self.keep = job.on_error, job.id_column, job.keep_columns
        self.reader = reader  # names a bad row's line (the driver runs where the file is)
        self.names: list[str] | None = None
        self.open: dict[int, dict[str, Any]] = {}  # chunk index -> its rows so far

    def _bad(self, chunk: dict[str, Any], row_id: Any, reason: str, position: int) -> None:
        line = self.reader.line(position) if self.reader is not None else None
        if self.on_error == "raise":
            source = str(self.reader.path) if self.reader is not None else None
            raise bad_row_error(row_id, reason, self.id_column, source, line)
        chunk["bad"].append(bad_row(row_id, reason, line))

    def add(self, batch: dict[str, np.ndarray], positions: np.ndarray) -> None:
        reasons = batch.pop(ERROR).tolist()
        if self.names is None:
            self.names = list(batch)
        names = self.names
        values = names[2 + len(self.keep) :]  # score, prob_*
        ids = positions.tolist() if self.id_column is None else batch[names[0]].tolist()
        order = np.argsort(positions, kind="stable")  # input order again: the actor put bad rows last
        indices = positions[order] // self.chunk_rows
        cuts = np.flatnonzero(np.diff(indices)) + 1
        for rows_of_chunk in np.split(order, cuts):
            index = int(positions[rows_of_chunk[0]] // self.chunk_rows)
            chunk = self.open.setdefault(
                index, {"ids": [], "kept": {c: [] for c in self.keep}, "label": [], "probs": [], "bad": [], "rows": 0}
            )
            good = []
            for i in rows_of_chunk.tolist():
                if reasons[i]:
                    self._bad(chunk, ids[i], reasons[i], int(positions[i]))
                else:
                    good.append(i)
            chunk["ids"].extend(ids[i] for i in good)
            for c in self.keep:
                chunk["kept"][c].extend(batch[c][good].tolist())
            chunk["label"].extend(batch["label"][good].tolist())
            chunk["probs"].append(np.stack([np.asarray(batch[k][good], dtype=np.float32) for k in values]))
            chunk["rows"] += len(rows_of_chunk)
            if chunk["rows"] == self.chunk_rows:
                self._write(index)

    def close(self) -> None:
        """Write the last chunk (the only one shorter than chunk_rows); any other still
        open would mean rows lost on the way, which is never written as a result."""
        last = max((int(i) for i in self.manifest["parts"]), default=-1)
        short = sorted(self.open)
        if len(short) > 1 or (short and short[0] < last):
            raise UnifiedNLPError(
                f"rows of input chunks {short} did not all come back from the Ray actors; nothing was "
                f"written for them (the finished parts are kept in {self.folder})"
            )
        for index in short:
            self._write(index)

    def _write(self, index: int) -> None:
        chunk = self.open.pop(index)
        probs = np.concatenate(chunk["probs"], axis=1)  # scores float32, as the local engine writes them
        columns = {self.names[0]: chunk["ids"], **chunk["kept"], "label": chunk["label"]}
        columns.update(zip(self.names[2 + len(self.keep) :], probs))
        start = index * self.chunk_rows
        write_chunk(
            self.folder,
            self.manifest,
            index,
            (start, start + chunk["rows"]),
            columns,
            self.names,
            chunk["bad"],
            self.out_fmt,
        )
