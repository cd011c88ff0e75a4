"""bench's measure of contention: the cores other processes use while we measure
(unified_nlp.bench.contention), and the report that marks such figures unreliable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from unified_nlp.bench.contention import OtherCPU, _ours, busy_threshold, unreliable_because
from unified_nlp.bench.report import markdown

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
