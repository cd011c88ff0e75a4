"""The benchmark harness (unified_nlp.bench): each target in its own process, every
field in the JSON, the CSV/Markdown/PNG files, and missing or broken backends
reported as rows instead of crashing the run."""

from __future__ import annotations

import csv
import json

import pytest

from unified_nlp import bench
from unified_nlp.bench.flops import encoder_flops_per_token
from unified_nlp.bench.scenario import count_steps, summarize_ms

from .conftest import require

FILES = ("results.json", "results.csv", "results.md", "throughput.png", "latency_b1.png")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny run on the huggingface backend with every reference row, plus a bogus backend."""
    require("huggingface")
    out = tmp_path_factory.mktemp("bench")
    # one thread: this tests the harness, and one thread suffers least when other processes share the cores
    results = bench.run(
        backends="huggingface,no-such-backend",
        batch_sizes="1,4",
        repeat=1,
        texts_limit=6,
        threads=1,
        out=out,
        progress=False,
        timeout=300,
    )
    return results, out


def test_every_file_is_written(tiny):
    results, out = tiny
    for name in FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "results.json").read_text())["runs"] == json.loads(json.dumps(results["runs"]))
    rows = {r["name"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert float(rows["huggingface"]["b4_texts_per_s"]) > 0
    md = (out / "results.md").read_text()
    assert "| huggingface | ok |" in md and "no-such-backend: missing" in md
    assert "bf16" in md and "GOP/s" in md  # the ceiling line names the reduced-precision rates


def test_backend_row_has_every_field_with_sane_values(tiny):
    results, _ = tiny
    hf = next(r for r in results["runs"] if r["name"] == "huggingface")
    assert hf["status"] == "ok", hf.get("error")
    assert hf["runs"] == "in-process" and hf["versions"]["torch"]
    assert hf["threads"]["applied"]["torch"]["intra_op"] == 1
    for key in ("import_s", "load_s", "first_prediction_s", "peak_rss_mb", "rss_after_load_mb", "wall_s"):
        assert hf[key] > 0, key
    lat = hf["latency_b1"]
    assert lat["n"] == 6 and len(lat["samples_ms"]) == 6
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert lat["stdev_ms"] >= 0
    assert [t["batch_size"] for t in hf["throughput"]] == [1, 4]
    for t in hf["throughput"]:
        assert t["texts_per_s"] > 0 and t["tokens_per_s"] > t["texts_per_s"]
        assert 0 < t["ceiling_fraction"] <= 1.0 and 0 < t["cpu_share"] <= 1.5  # never above the ceiling
    assert hf["tokenizer"]["texts_per_s"] > 0 and hf["tokens"]["mean"] > 2
    assert 0 <= hf["accuracy"] <= 1 and hf["rows_sum_to_1"]
    assert hf["max_prob_diff_across_batch_sizes"] < 1e-4  # batching must not change the answer
    assert hf["machine"]["cpu_model"] and hf["machine"]["logical_cores"] >= 1


def test_reference_rows_and_comparisons(tiny):
    results, _ = tiny
    by_name = {r["name"]: r for r in results["runs"]}
    assert [r["name"] for r in results["runs"]] == [
        "matmul-ceiling",
        "huggingface",
        "torch-raw",
        "no-such-backend",
        "hf-pipeline",
        "matmul-ceiling-end",
    ]
    ceiling = by_name["matmul-ceiling"]["ceiling"]
    libraries = ceiling["libraries"]  # every installed library's GEMM, not torch's alone
    assert set(libraries) == {"numpy", "torch", "onnxruntime", "tensorflow"}
    for name, rates in libraries.items():
        assert rates.get("fp32", 0) > 0, (name, rates)
    # the reduced-precision rates of the same GEMM, for the precision rows
    assert libraries["torch"]["int8"] > 0 and libraries["onnxruntime"]["int8"] > 0, libraries
    assert ceiling["bf16_gflops"] > 0 and ceiling["int8_gops"] >= libraries["onnxruntime"]["int8"], ceiling
    assert ceiling["gflops"] == max(r["fp32"] for r in libraries.values())
    assert libraries[ceiling["gflops_library"]]["fp32"] == ceiling["gflops"]
    end = by_name["matmul-ceiling-end"]["ceiling"]
    assert results["gemm_ceiling_gflops"] == max(ceiling["gflops"], end["gflops"])
    assert results["ceiling_gflops"] >= results["gemm_ceiling_gflops"]
    for name in ("torch-raw", "hf-pipeline"):
        assert by_name[name]["status"] == "ok", by_name[name].get("error")
        assert by_name[name]["accuracy"] == by_name["huggingface"]["accuracy"]  # same function, same answers
    assert [t["batch_size"] for t in by_name["hf-pipeline"]["throughput"]] == [32]
    summary = results["summary"]
    other = results["machine"]["other_processes_cpu_cores"]
    assert other["before"] >= 0 and other["mean"] >= 0 and other["max"] >= other["mean"]
    if "unreliable" in summary:  # other processes took the cores: the rows are kept, not compared
        assert set(summary) == {"unreliable"} and "other processes used" in summary["unreliable"]
    else:
        assert set(summary["huggingface_vs_torch_raw"]) == {"1", "4"} and "best_ceiling_fraction" in summary
    assert "targets" not in summary  # the project's own targets are benchmarks/run.py's, not the user's report
    assert results["config"]["n_texts"] == 6 and results["config"]["threads"] == 1


def test_unknown_backend_is_a_row_not_a_crash(tiny):
    results, _ = tiny
    row = next(r for r in results["runs"] if r["name"] == "no-such-backend")
    assert row["status"] == "missing" and "unknown backend" in row["error"] and "huggingface" in row["error"]


def test_worker_environment_without_interpreter_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIFIED_NLP_PADDLENLP_PYTHON", str(tmp_path / "nowhere" / "bin" / "python"))
    from unified_nlp import registry

    if registry.installed_here("paddlenlp"):
        pytest.skip("paddlenlp runs in this environment; the worker path is not used")
    results = bench.run(
        backends="paddlenlp", reference=False, texts_limit=2, repeat=1, progress=False, out=tmp_path / "out"
    )
    (row,) = results["runs"]
    assert row["status"] == "missing" and "nowhere" in row["error"]
    assert "paddlenlp: missing" in (tmp_path / "out" / "results.md").read_text()


def test_probe_that_dies_is_reported(monkeypatch, tmp_path):
    """An 'interpreter' that exits at once: the launcher reports the exit code and stderr."""
    from unified_nlp import registry

    if registry.installed_here("paddlenlp"):
        pytest.skip("paddlenlp runs in this environment; the worker path is not used")
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'this is not python' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("UNIFIED_NLP_PADDLENLP_PYTHON", str(fake))
    results = bench.run(backends="paddlenlp", reference=False, texts_limit=2, repeat=1, progress=False)
    (row,) = results["runs"]
    assert row["status"] == "error" and "exit code 3" in row["error"]
    assert "this is not python" in row["stderr_tail"]


def test_cli_reports_missing_backends_and_exits_0(tmp_path, capsys):
    from unified_nlp.cli import main

    assert main(["bench", "--backends", "bogus", "--no-reference", "--no-progress", "--out", str(tmp_path)]) == 0
    assert "bogus" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["status"] == "missing"


def test_flops_formula_matches_the_design_figure():
    config = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6}
    assert encoder_flops_per_token(config, 0) == pytest.approx(2 * 10.6e6, rel=0.01)
    assert encoder_flops_per_token(config, 25) - encoder_flops_per_token(config, 0) == 6 * 4 * 25 * 384


def test_latency_summary_and_step_count():
    stats = summarize_ms([0.001 * i for i in range(1, 101)])
    assert stats["p50_ms"] <= stats["p90_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= stats["max_ms"] == 100
    cfg = {"kind": "backend", "repeat": 2, "batch_sizes": [1, 8]}
    # load, first, 2 tokenizer, latency, b1: 2 timed (warmed by latency), b8: warm-up + 2 timed
    assert count_steps(cfg) == 2 + 2 + 1 + 2 + 3


def test_quick_plans_fewer_texts_and_no_slow_reference_rows(tmp_path):
    from unified_nlp.bench.runner import QUICK_TEXTS, plan

    full = [t["name"] for t in plan(["huggingface"], tmp_path, [], [], [1], 1, 1, None, True)]
    quick = [t["name"] for t in plan(["huggingface"], tmp_path, [], [], [1], 1, 1, None, True, quick=True)]
    assert "hf-pipeline" in full and "matmul-ceiling-end" in full
    assert quick == ["matmul-ceiling", "huggingface", "torch-raw"]
    both = [t["name"] for t in plan(["huggingface", "onnxruntime"], tmp_path, [], [], [1], 1, 1, None, True)]
    assert both[:5] == ["matmul-ceiling", "huggingface", "torch-raw", "onnxruntime", "onnx-plain"]
    results = bench.run(backends="bogus", quick=True, reference=False, progress=False)
    assert results["config"]["n_texts"] == QUICK_TEXTS  # of SST-2 dev's 872, spread over it
    assert results["config"]["batch_sizes"] == [1, 32] and results["config"]["repeat"] == 1


def test_each_cli_run_gets_a_new_timestamped_folder(tmp_path, monkeypatch):
    """Without --out, nothing is overwritten: not benchmarks/results, not an earlier run."""
    from unified_nlp.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["bench", "--backends", "bogus", "--no-reference", "--no-progress", "--quick"]
    assert main(argv) == 0 and main(argv) == 0
    runs = sorted((tmp_path / "bench-results").iterdir())
    assert len(runs) == 2 and all((r / "results.json").is_file() for r in runs)
    assert all(len(r.name) >= len("20261201-194500") and r.name[8] == "-" for r in runs)
    assert not (tmp_path / "benchmarks").exists()


def test_the_plain_onnx_reference_computes_what_the_raw_torch_call_does():
    """The onnx-plain row (a TorchScript export run with ONNX Runtime's defaults) is the same
    function as the raw torch call on texts of other lengths than the export's example (a mask
    baked into the graph would change them), so its speed is comparable."""
    require("onnxruntime")
    from unified_nlp.bench.references import PlainOnnxSubject, RawTorchSubject
    from unified_nlp.resolve import default_model_dir

    texts = ["a", "a gripping , beautifully acted film .", "dull " * 60, "Café naïve 日本語", "ok , fine"]
    subjects = [RawTorchSubject(str(default_model_dir())), PlainOnnxSubject(str(default_model_dir()))]
    for subject in subjects:
        subject.import_()
        subject.load()
    raw, plain = (s.predict_proba(texts, batch_size=2) for s in subjects)
    assert raw.shape == (5, 2) and abs(plain - raw).max() < 1e-5
