"""bench's measure of contention: the cores other processes use while we measure
(unified_nlp.bench.contention), and the report that marks such figures unreliable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from unified_nlp.bench.contention import OtherCPU, _ours, busy_threshold, unreliable_because
from unified_nlp.bench.flops import encoder_flops_per_token
from unified_nlp.bench.report import markdown
from unified_nlp.bench.runner import derive

from .conftest import require_module

SPIN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def _our_cpu_over(script: str) -> float:
    """CPU seconds counted as ours (this process and its descendants) while `script` runs."""
    psutil = require_module("psutil")
    me = psutil.Process()
    before = _ours(psutil, me)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    return _ours(psutil, me) - before


def test_our_children_count_as_ours_and_a_process_we_do_not_own_does_not():
    # CPU time, not wall time: the same on a quiet and on a loaded machine
    assert _our_cpu_over(SPIN.format(seconds=1.0)) >= 0.95  # a child (reaped: its time is in children_*)
    # a grandchild that outlives its parent is re-parented to init: not ours, as another user's job would
    # be. The parent waits on a pipe until the orphan ends, so the orphan's whole second falls in the window.
    orphan = textwrap.dedent(
        f"""
        import os, subprocess, sys
        r, w = os.pipe()
        subprocess.Popen([sys.executable, "-c", {SPIN.format(seconds=1.0)!r}], pass_fds=(w,), start_new_session=True)
        os.close(w)
        os.read(r, 1)  # EOF when the orphan (which holds w) exits
        """
    )
    assert _our_cpu_over(orphan) < 0.5  # the parent's own start-up only


def test_other_cpu_figures_are_sane():
    require_module("psutil")
    with OtherCPU(settle_s=0.2, interval_s=0.1) as other:
        subprocess.run([sys.executable, "-c", SPIN.format(seconds=0.5)], check=True, timeout=60)
    figures = other.figures()
    assert 0 <= figures["before"] and 0 <= figures["mean"] <= figures["max"], figures
    assert len(other.samples) >= 2


def test_unreliable_when_others_use_half_a_core_or_the_load_average_says_so():
    assert busy_threshold(2) == 0.5 and busy_threshold(16) == 4.0
    assert unreliable_because({"before": 0.1, "mean": 0.2, "max": 0.9}, [3.0], 2) is None  # psutil's figures win
    assert "0.8 of the 2 cores" in unreliable_because({"before": 0.8, "mean": 0.1, "max": 0.3}, None, 2)
    assert "load average was 1.5" in unreliable_because(None, [1.5, 1.0, 1.0], 2)
    assert unreliable_because(None, None, 2) is None


@pytest.mark.parametrize("busy", [False, True])
def test_the_report_marks_busy_runs_and_does_not_compare_them(busy):
    run = {
        "name": "huggingface",
        "kind": "backend",
        "status": "ok",
        "throughput": [
            {"batch_size": 8, "texts_per_s": 100.0, "tokens_per_s": 2150.0, "ceiling_fraction": 2.15, "cpu_share": 0.9}
        ],
    }
    other = {"before": 1.2 if busy else 0.0, "mean": 1.4 if busy else 0.1, "max": 1.9 if busy else 0.2}
    results = {
        "config": {"model": "default", "n_texts": 8, "data": "sst2", "threads": 2, "repeat": 1, "batch_sizes": [8]},
        "created": "2026-12-07 00:00 UTC",
        "machine": {"logical_cores": 2, "load_average_start": [0.1], "other_processes_cpu_cores": other},
        "runs": [run],
        "summary": {"unreliable": unreliable_because(other, [0.1], 2)} if busy else {},
    }
    md = markdown(results)
    assert ("UNRELIABLE FIGURES" in md) is busy
    assert ("215.0%" in md) is not busy  # the ceiling fraction of a busy run is not shown


def test_the_ceiling_is_raised_to_a_model_that_ran_faster_than_every_gemm():
    """No row can read above 100%: a whole model's useful FLOP/s above every library's GEMM
    becomes the ceiling, named in the results and the report."""
    config = {"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64, "num_attention_heads": 2}
    flops = encoder_flops_per_token(config, 10.0)
    gemm = {"kind": "ceiling", "name": "matmul-ceiling", "status": "ok", "ceiling": {"gflops": 1.0, "size": 8}}

    def backend(name, tokens_per_s):
        throughput = [{"batch_size": 8, "texts_per_s": tokens_per_s / 10, "tokens_per_s": tokens_per_s}]
        return {"name": name, "kind": "backend", "status": "ok", "tokens": {"mean": 10.0}, "throughput": throughput}

    fast = 3e9 / flops  # 3 GFLOP/s of useful work: faster than the 1 GFLOP/s GEMM
    results = {"model": config, "machine": {"logical_cores": 2}, "runs": [gemm, backend("slow", fast / 6)]}
    derive(results)
    assert results["ceiling_gflops"] == 1.0 and "ceiling_raised_by" not in results
    assert results["runs"][1]["throughput"][0]["ceiling_fraction"] == pytest.approx(0.5)

    results["runs"] = [gemm, backend("slow", fast / 6), backend("fast", fast)]
    derive(results)
    assert results["ceiling_raised_by"] == "fast" and results["gemm_ceiling_gflops"] == 1.0
    assert results["ceiling_gflops"] == pytest.approx(3.0)
    fractions = [r["throughput"][0]["ceiling_fraction"] for r in results["runs"][1:]]
    assert fractions == pytest.approx([1 / 6, 1.0])
