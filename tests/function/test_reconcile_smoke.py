"""A tiny run of benchmarks/reconcile.py, so the benchmark keeps working.

Speed is measured there, never here: this checks that ours, pypicloud's own
``reload_from_storage`` and the floor all ran on both scenarios and left the cache
right (the benchmark asserts that itself), and that the S3 calls it counts are the
ones each contender must make.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = 20


@pytest.mark.slow
def test_the_reconcile_benchmark_runs(aws_env: None) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "reconcile.py"), "-n", str(PACKAGES),
         "--backends", "sqlite"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == [
        "backend", "scenario", "objects", "ours", "s", "ours", "S3", "calls", "reload", "s",
        "reload", "S3", "calls", "speed-up", "floor", "s", "floor", "S3", "calls"]
    rows = {" ".join(line.split()[1:3]): line.split() for line in lines
            if line.split()[:1] == ["sqlite"]}
    assert set(rows) == {"in sync", "drift 1+1"}, result.stdout
    for scenario, calls_ours in (("in sync", 1), ("drift 1+1", 1 + 2)):
        (_, _, _, objects, ours_s, ours_calls, reload_s, reload_calls, speedup, floor_s,
         floor_calls) = rows[scenario]
        assert int(objects) == PACKAGES
        for seconds in (ours_s, reload_s, floor_s):
            assert float(seconds) > 0
        assert speedup.endswith("x")
        # One listing page, plus one HEAD per difference; pypicloud HEADs every object.
        assert (int(ours_calls), int(reload_calls), int(floor_calls)) == (
            calls_ours, 1 + PACKAGES, 1)
