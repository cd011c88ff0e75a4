"""The Ray engine against a real local Ray cluster (started once for this module: 2 CPUs,
no dashboard): the same output as the local engine, an actor killed mid-run, bad rows.

Ray missing is a skip, or a failure where $UNIFIED_NLP_REQUIRE_BACKENDS lists "ray"."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from tests.conftest import REQUIRED, default_classifier, require

if importlib.util.find_spec("ray") is None or importlib.util.find_spec("pyarrow") is None:
    if "ray" in REQUIRED:
        pytest.fail("ray is required here (UNIFIED_NLP_REQUIRE_BACKENDS) but not importable", pytrace=False)
    pytest.skip("ray[data] is not installed (pip install 'unified-nlp[ray]')", allow_module_level=True)

import pyarrow as pa  # noqa: E402
import pyarrow.csv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import unified_nlp as un  # noqa: E402
from unified_nlp.errors import InvalidInputError  # noqa: E402

ROWS = 240  # SST-2 dev rows per run: a few seconds of work per backend on one actor
CHUNK = 40


@pytest.fixture(scope="module")
def cluster():
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 << 20, log_to_driver=False,
             logging_level=logging.WARNING)  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def sst2_parquet(tmp_path_factory, sst2_dev):
    texts, _ = sst2_dev
    path = tmp_path_factory.mktemp("ray") / "sst2.parquet"
    pq.write_table(pa.table({"sentence": texts[:ROWS]}), path)
    return path


def _local(path, out, backend):
    return un.classify_dataset(path, out, backend=backend, text_column="sentence", chunk_rows=CHUNK, resume=False)


@pytest.mark.parametrize("backend", ["huggingface", "tfhub", "paddlenlp"])
def test_same_output_as_the_local_engine(cluster, sst2_parquet, tmp_path, backend):
    require(backend)
    local = _local(sst2_parquet, tmp_path / "local.parquet", backend)
    seen: set[int] = set()
    done = threading.Event()

    def watch():  # the actors' Paddle workers, while they run
        while not done.is_set():
            seen.update(_actor_workers())
            time.sleep(0.2)

    side = threading.Thread(target=watch, daemon=True)
    if backend == "paddlenlp":
        side.start()
    try:
        summary = un.classify_dataset(
            sst2_parquet, tmp_path / "ray.parquet", backend=backend, text_column="sentence", chunk_rows=CHUNK,
            engine="ray",
        )  # fmt: skip
    finally:
        done.set()
    assert summary["engine"] == "ray" and summary["rows"] == summary["written"] == local["rows"] == ROWS
    a, b = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    assert a.schema == b.schema
    assert b.column("row").to_pylist() == list(range(ROWS))
    assert a.column("label").to_pylist() == b.column("label").to_pylist()
    for name in a.column_names[2:]:
        assert np.abs(a.column(name).to_numpy() - b.column(name).to_numpy()).max() <= 1e-6, name
    assert not (tmp_path / "ray.parquet.ray-parts").exists()
    if backend == "paddlenlp":  # the actors' Paddle workers ended with the actors (this process's own may stay)
        side.join(5)
        assert seen, "no Paddle worker of an actor was seen during the run"
        deadline = time.monotonic() + 15
        while _actor_workers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _actor_workers()


def _actor_workers() -> list[int]:
    """Paddle workers started by Ray actors on this machine, orphaned or not (they carry Ray's
    environment and this process's store)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if "unified_nlp.worker_main" not in " ".join(proc.cmdline()):
                continue
            env = proc.environ()
            ours = env.get("UNIFIED_NLP_HOME") == os.environ.get("UNIFIED_NLP_HOME")
            mine = env.get("UNIFIED_NLP_PARENT_PID") == str(os.getpid())  # the local engine's, in this process
            if ours and not mine and any(k.startswith("RAY_") for k in env):
                found.append(proc.pid)
        except psutil.Error:
            pass
    return found


def _actor_pids() -> set[int]:
    import psutil

    found = set()
    for proc in psutil.Process().children(recursive=True):  # this test's own cluster only
        try:
            if "MapWorker" in " ".join(proc.cmdline()) and "_Classify" in " ".join(proc.cmdline()):
                found.add(proc.pid)
        except psutil.Error:
            pass
    return found


def test_an_actor_killed_mid_run_is_restarted_and_every_row_lands_once(cluster, sst2_parquet, tmp_path):
    require("huggingface")
    out = tmp_path / "ray.parquet"
    parts = tmp_path / "ray.parquet.ray-parts"
    killed: list[int] = []

    def kill_after_first_part():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if parts.is_dir() and any(parts.glob("part-*")):
                for pid in _actor_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.05)

    side = threading.Thread(target=kill_after_first_part, daemon=True)
    side.start()
    summary = un.classify_dataset(
        sst2_parquet, out, text_column="sentence", chunk_rows=CHUNK, batch_size=8, engine="ray", num_actors=1
    )
    side.join(5)
    assert killed, "no actor process was found to kill mid-run"
    table = pq.read_table(out)
    assert sorted(table.column("row").to_pylist()) == list(range(ROWS))  # every row, exactly once
    assert summary["rows"] == summary["written"] == ROWS
    expected = pq.read_table(_expected(sst2_parquet, tmp_path))
    assert table.column("label").to_pylist() == expected.column("label").to_pylist()


def _expected(path, tmp_path):
    out = tmp_path / "local.parquet"
    _local(path, out, "huggingface")
    return out


def _bad_jsonl(tmp_path):
    rows = [
        {"id": "a", "text": "a wonderful film"},
        {"id": "b", "text": None},
        {"id": "c", "text": 7},
        {"id": "d", "text": "dull and long"},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_bad_rows_skip_writes_an_errors_file_with_id_and_reason(cluster, tmp_path):
    require("huggingface")
    path = _bad_jsonl(tmp_path)
    out = tmp_path / "out.jsonl"
    summary = un.classify_dataset(path, out, id_column="id", engine="ray", on_error="skip", chunk_rows=2)
    assert (summary["rows"], summary["written"], summary["errors"]) == (4, 2, 2)
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in written] == ["a", "d"] and [r["label"] for r in written] == ["POSITIVE", "NEGATIVE"]
    errors = [json.loads(line) for line in (tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines()]
    assert errors == [
        {"id": "b", "reason": "column 'text' is None"},
        {"id": "c", "reason": "column 'text' is int, expected str"},
    ]
    local = un.classify_dataset(path, tmp_path / "local.jsonl", id_column="id", on_error="skip", chunk_rows=2)
    assert local["errors"] == 2
    assert (tmp_path / "local.jsonl.errors.jsonl").read_text() == (tmp_path / "out.jsonl.errors.jsonl").read_text()


def test_bad_rows_raise_names_the_first_bad_row(cluster, tmp_path):
    require("huggingface")
    path = _bad_jsonl(tmp_path)
    with pytest.raises(InvalidInputError, match=r"row with id='b': column 'text' is None"):
        un.classify_dataset(path, tmp_path / "out.parquet", id_column="id", engine="ray", chunk_rows=2)
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "out.parquet.ray-parts").exists()


def test_a_ray_dataset_without_ids_is_numbered_in_order(cluster, tmp_path):
    require("huggingface")
    texts = ["a wonderful film", "dull and long", "", "great fun"] * 5
    ds = cluster.data.from_items([{"text": t} for t in texts])
    out = tmp_path / "out.csv"
    summary = un.classify_dataset(ds, out, engine="ray", chunk_rows=6)
    assert summary["rows"] == len(texts)
    table = pa.csv.read_csv(out)
    assert table.column("row").to_pylist() == list(range(len(texts)))
    expected = default_classifier("huggingface").predict_proba(texts)
    assert np.abs(table.column("prob_POSITIVE").to_numpy() - expected[:, 1]).max() <= 1e-6


def test_missing_column_and_loaded_classifier_are_clear_errors(cluster, sst2_parquet, tmp_path):
    with pytest.raises(InvalidInputError, match="its columns are"):
        un.classify_dataset(sst2_parquet, tmp_path / "o.parquet", text_column="text", engine="ray")
    ds = cluster.data.from_items([{"sentence": "x"}])
    with pytest.raises(InvalidInputError, match="its columns are"):
        un.classify_dataset(ds, tmp_path / "o.parquet", text_column="text", engine="ray")
    require("huggingface")
    with pytest.raises(InvalidInputError, match="not a loaded classifier"):
        un.classify_dataset(ds, tmp_path / "o.parquet", model=default_classifier("huggingface"), engine="ray")


def test_cli_engine_ray_with_num_actors(cluster, tmp_path, capsys):
    require("huggingface")
    from unified_nlp.cli import main

    path = tmp_path / "in.csv"
    path.write_text("id,text\n007,a wonderful film\n008,dull and long\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = main(["classify", "--input", str(path), "--output", str(out), "--id-column", "id", "--engine", "ray",
                 "--num-actors", "1"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "ray" and summary["actors"] == 1 and summary["rows"] == 2
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["label"]) for r in rows] == [("007", "POSITIVE"), ("008", "NEGATIVE")]
