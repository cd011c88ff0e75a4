"""A shortened soak run per backend (the full 20,000-call run is benchmarks/soak.py,
figures in the README): memory after warm-up must not keep growing. 600 calls after 200
of warm-up (about a minute per backend): on some 600 MB, a leak of 50 KB a call fails it (5%)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO, require_module

require_module("psutil")


@pytest.mark.slow
def test_short_soak_does_not_grow_memory(backend, tmp_path):
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "soak.py"),
            "--backends",
            backend,
            "--calls",
            "600",
            "--warmup",
            "200",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    row = json.loads(out.read_text())["results"][0]
    assert row["calls"] == 600 and row["rss_final_mb"] > 0
    assert row["growth"] < 0.05, row
