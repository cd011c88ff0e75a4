"""The Ray engine against a real local Ray cluster (started once for this module: 2 CPUs,
no dashboard): the same output as the local engine, an actor killed mid-run, bad rows.

Ray missing is a skip, or a failure where $UNIFIED_NLP_REQUIRE_BACKENDS lists "ray"."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, REQUIRED, default_classifier, require

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
NO_VALUE = "has no value (null, or an empty CSV/TSV cell)"  # the reason for a missing text, as the local engine's
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


@pytest.mark.parametrize("backend", ["huggingface", "tfhub", "paddlenlp", "onnxruntime"])
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
    assert not (tmp_path / "ray.parquet.parts").exists()
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
    parts = tmp_path / "ray.parquet.parts"
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
        {"id": "b", "line": 2, "reason": f"column 'text' {NO_VALUE}"},
        {"id": "c", "line": 3, "reason": "column 'text' is int, expected str"},
    ]
    local = un.classify_dataset(path, tmp_path / "local.jsonl", id_column="id", on_error="skip", chunk_rows=2)
    assert local["errors"] == 2
    assert (tmp_path / "local.jsonl.errors.jsonl").read_text() == (tmp_path / "out.jsonl.errors.jsonl").read_text()


def test_bad_rows_raise_names_the_first_bad_row(cluster, tmp_path):
    require("huggingface")
    path = _bad_jsonl(tmp_path)
    with pytest.raises(InvalidInputError, match=r"in\.jsonl:2: row with id='b': column 'text' has no value"):
        un.classify_dataset(path, tmp_path / "out.parquet", id_column="id", engine="ray", chunk_rows=2)
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "out.parquet.ray-parts").exists()


def test_kept_columns_and_bad_bytes_as_the_local_engine_writes_them(cluster, tmp_path):
    require("huggingface")
    path = tmp_path / "in.csv"  # Latin-1 bytes in a text (line 4) and in a kept value (line 6); an empty text
    path.write_bytes(
        b'id,text,stars,note\nr0,"a wonderful\nfilm",5,\nr1,caf\xe9,1,x\nr2,,3,y\n'
        b"r3,dull and long,2,na\xefve\nr4,great fun,4,z\nr5,a moving story,5,\n"
    )
    runs = {}
    for engine in ("ray", "local"):
        out = tmp_path / f"{engine}.jsonl"
        summary = un.classify_dataset(
            path, out, id_column="id", keep_columns=["stars", "note"], engine=engine, on_error="skip", chunk_rows=2
        )
        assert (summary["rows"], summary["written"], summary["errors"]) == (6, 3, 3), engine
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        runs[engine] = rows, (tmp_path / f"{engine}.jsonl.errors.jsonl").read_text()
    (ray_rows, ray_errors), (local_rows, local_errors) = runs["ray"], runs["local"]
    assert [list(r)[:4] for r in ray_rows] == [["id", "stars", "note", "label"]] * 3
    assert [(r["id"], r["stars"], r["note"]) for r in ray_rows] == [
        ("r0", "5", None),
        ("r4", "4", "z"),
        ("r5", "5", None),
    ]
    assert [r["label"] for r in ray_rows] == [r["label"] for r in local_rows]
    assert max(abs(a["prob_POSITIVE"] - b["prob_POSITIVE"]) for a, b in zip(ray_rows, local_rows)) <= 1e-6
    assert ray_errors == local_errors
    assert [json.loads(e)["line"] for e in ray_errors.splitlines()] == [4, 5, 6]
    with pytest.raises(
        InvalidInputError, match=rf"{path}:4: row with id='r1': column 'text' is not valid UTF-8 \(byte 0xe9\)"
    ):
        un.classify_dataset(path, tmp_path / "o.parquet", id_column="id", engine="ray", chunk_rows=2)
    ds = cluster.data.from_items([{"text": "a wonderful film", "stars": 5}, {"text": "dull", "stars": 1}])
    un.classify_dataset(ds, tmp_path / "ds.jsonl", engine="ray", keep_columns="all")
    rows = [json.loads(line) for line in (tmp_path / "ds.jsonl").read_text().splitlines()]
    assert [(r["row"], r["text"], r["stars"]) for r in rows] == [(0, "a wonderful film", 5), (1, "dull", 1)]


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


# Resume: the local engine's parts folder and manifest, on a killed driver and across engines.


def _manifest(folder):
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {"parts": {}}


def _cmdline(proc) -> list[str]:
    import psutil

    try:
        return [proc.name(), *proc.cmdline()]
    except psutil.Error:
        return []


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def test_a_killed_driver_resumes_from_its_finished_parts(cluster, sst2_parquet, tmp_path):
    """SIGKILL of a driver that started its own cluster; the rerun (here, on the test's
    cluster) keeps the listed parts, classifies the rest, writes every row once."""
    import psutil

    require("huggingface")
    out, folder = tmp_path / "preds.parquet", tmp_path / "preds.parquet.parts"
    args = dict(text_column="sentence", chunk_rows=20, batch_size=8, engine="ray", num_actors=1, num_threads=1)
    code = f"import unified_nlp as un; un.classify_dataset({str(sst2_parquet)!r}, {str(out)!r}, **{args!r})"
    env = {**os.environ, "UNIFIED_NLP_PROGRESS": "0"}
    log = tmp_path / "driver.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=REPO)
    cluster_procs: list = []
    try:
        deadline = time.monotonic() + 150
        while not _manifest(folder)["parts"] and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        cluster_procs = _descendants(proc.pid)  # the Ray cluster this driver started
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, log.read_text(errors="replace")
        # Ray's dashboard and runtime-env agents may linger (ended below); the cluster itself must go
        agents = ("DashboardAgent", "RuntimeEnvAgent", "dashboard/agent.py", "runtime_env/agent/main.py")
        core = [p for p in cluster_procs if not any(a in " ".join(_cmdline(p)) for a in agents)]
        _, alive = psutil.wait_procs(core, timeout=30)
        assert not alive, (
            f"the killed driver's Ray processes outlived it: {[' '.join(_cmdline(p))[:80] for p in alive]}"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in cluster_procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
    # a normal run's Ray logging: no Python warning (token authentication, progress bars off)
    warnings = re.findall(r"WARNING \S+\.py:\d+ -- .*", log.read_text(errors="replace"))
    assert not warnings, warnings
    finished = _manifest(folder)["parts"]
    assert 1 <= len(finished) < ROWS // 20 and not out.exists(), finished
    first = folder / finished["0"]["file"]  # mark a finished part: a redone part would lose the mark
    table = pq.read_table(first)
    pq.write_table(table.set_column(1, "label", pa.array(["KEPT"] * table.num_rows)), first)

    summary = un.classify_dataset(sst2_parquet, out, **args)
    done_rows = sum(p["rows"][1] - p["rows"][0] for p in finished.values())
    assert summary["parts_reused"] == len(finished) and summary["rows_classified"] == ROWS - done_rows
    assert (summary["rows"], summary["written"], summary["parts"]) == (ROWS, ROWS, ROWS // 20)
    got = pq.read_table(out)
    assert got.column("row").to_pylist() == list(range(ROWS))  # every row exactly once, in order
    expected = pq.read_table(_expected(sst2_parquet, tmp_path))
    labels = got.column("label").to_pylist()
    assert labels[:20] == ["KEPT"] * 20 and labels[20:] == expected.column("label").to_pylist()[20:]
    for name in got.column_names[2:]:
        assert np.abs(got.column(name).to_numpy() - expected.column(name).to_numpy()).max() <= 1e-6, name
    assert not folder.exists()


def test_parts_of_one_engine_are_finished_by_the_other(cluster, tmp_path):
    require("huggingface")
    texts = [f"{w} film number {i}" for i, w in enumerate(["a wonderful", "a dull", "a moving", "a tedious"] * 3)]
    rows = [{"id": f"x{i}", "text": None if i == 9 else t} for i, t in enumerate(texts)]  # row 9 (chunk 2) is bad
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    clf = default_classifier("huggingface")
    want = clf.predict_proba([t for i, t in enumerate(texts) if i != 9])
    for first, second in [("ray", "local"), ("local", "ray")]:
        out = tmp_path / f"{first}-then-{second}.csv"
        with pytest.raises(InvalidInputError, match=r"row with id='x9'"):
            un.classify_dataset(path, out, id_column="id", chunk_rows=4, engine=first)
        assert sorted(_manifest(tmp_path / f"{out.name}.parts")["parts"]) == ["0", "1"], first  # rows 0-7
        with pytest.raises(InvalidInputError, match=r"different chunk_rows.*--no-resume"):
            un.classify_dataset(path, out, id_column="id", chunk_rows=5, engine=second, on_error="skip")
        summary = un.classify_dataset(path, out, id_column="id", chunk_rows=4, engine=second, on_error="skip")
        assert (summary["engine"], summary["parts_reused"], summary["rows_classified"]) == (second, 2, 4)
        assert (summary["rows"], summary["written"], summary["errors"]) == (12, 11, 1)
        table = pa.csv.read_csv(out, convert_options=pa.csv.ConvertOptions(column_types={"id": pa.string()}))
        assert table.column("id").to_pylist() == [f"x{i}" for i in range(12) if i != 9]
        assert np.abs(table.column("prob_POSITIVE").to_numpy() - want[:, 1]).max() <= 1e-6
        errors = (tmp_path / f"{out.name}.errors.jsonl").read_text().splitlines()
        assert [json.loads(e) for e in errors] == [{"id": "x9", "line": 10, "reason": f"column 'text' {NO_VALUE}"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_address_joins_a_running_cluster_and_leaves_it_up(cluster, sst2_parquet, tmp_path):
    """A cluster of its own (`ray start --head --block`, its own temp dir, so no other Ray
    on this machine sees it); stopped by ending that one command, which ends its processes."""
    import psutil

    require("huggingface")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths under it must stay < 108 bytes
    with open(tmp_path / "head.log", "wb") as log:
        head = subprocess.Popen(
            [ray_cli, "start", "--head", "--block", "--num-cpus", "2", "--port", str(port), "--node-ip-address",
             "127.0.0.1", "--disable-usage-stats", "--include-dashboard", "false", "--temp-dir", str(temp)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    head_procs: list = []
    try:
        deadline = time.monotonic() + 60
        while not (temp / "ray_current_cluster").exists() and head.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # written once the head node is up
        up = head.poll() is None and (temp / "ray_current_cluster").exists()
        assert up, "ray start --head did not come up: " + (tmp_path / "head.log").read_text(errors="replace")
        head_procs = _descendants(head.pid)
        out = tmp_path / "out.jsonl"
        result = subprocess.run(
            [sys.executable, "-m", "unified_nlp.cli", "classify", "--input", str(sst2_parquet), "--output", str(out),
             "--text-column", "sentence", "--chunk-rows", "60", "--engine", "ray", "--address", f"127.0.0.1:{port}"],
            capture_output=True, text=True, cwd=REPO, timeout=240,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert (summary["engine"], summary["address"], summary["actors"]) == ("ray", f"127.0.0.1:{port}", 1)
        assert summary["rows"] == summary["written"] == ROWS
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        expected = pq.read_table(_expected(sst2_parquet, tmp_path))
        assert [r["row"] for r in rows] == list(range(ROWS))
        assert [r["label"] for r in rows] == expected.column("label").to_pylist()
        # the joined cluster is still up and answers
        assert head.poll() is None and all(p.is_running() for p in head_procs)
        status = subprocess.run([ray_cli, "status", "--address", f"127.0.0.1:{port}"], capture_output=True, text=True)
        assert status.returncode == 0 and "2.0 CPU" in status.stdout, status.stdout + status.stderr
    finally:
        head.terminate()  # `ray start --block` ends the processes it started on SIGTERM (`ray stop` would end every Ray)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        _, alive = psutil.wait_procs(head_procs, timeout=30)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        shutil.rmtree(temp, ignore_errors=True)
    assert not alive, f"processes of the stopped head outlived it: {[p.pid for p in alive]}"
