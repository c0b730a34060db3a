"""A tiny run of benchmarks/handler_throughput.py, so the benchmark keeps working.

Speed is measured there, never here: this only checks that every contender it times
still runs and syncs (the benchmark itself checks the cache through pypicloud).
"""

from __future__ import annotations

import re

import pytest

from ..support.benchmarks import run_benchmark


@pytest.mark.slow
def test_the_throughput_benchmark_runs(aws_env: None) -> None:
    stdout = run_benchmark("handler_throughput.py", "-n", "4", "--backends", "sqlite", "dynamo")
    rows = {line.split()[0]: line for line in stdout.splitlines()
            if line.startswith(("sqlite", "dynamo"))}
    assert set(rows) == {"sqlite", "dynamo"}, stdout
    for row in rows.values():
        assert re.search(r"\d+\.\d\dx", row), row  # ours and the floor both ran
    assert "ours: fails" not in stdout and "floor: fails" not in stdout
