"""A tiny run of benchmarks/verify_overhead.py, so the benchmark keeps working.

Speed is measured there, never here: this only checks that a verify run on two
regions passes and that its cost was counted.
"""

from __future__ import annotations

import re

import pytest

from ..support.benchmarks import run_benchmark


@pytest.mark.slow
def test_the_verify_overhead_benchmark_runs(aws_env: None) -> None:
    stdout = run_benchmark("verify_overhead.py", "-n", "1", "--regions", "2")
    [row] = [line for line in stdout.splitlines() if line.startswith("2 ")]
    calls, seconds, wait_calls, wait_seconds = row.split()[1:]
    assert int(calls) > 0 and int(wait_calls) > 0, stdout
    assert re.fullmatch(r"\d+\.\d\d", seconds) and re.fullmatch(r"\d+\.\d\d", wait_seconds)
    assert "ListObjectVersions" in stdout  # the purges were counted
