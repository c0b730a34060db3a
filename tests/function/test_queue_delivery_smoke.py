"""A tiny run of benchmarks/queue_delivery.py, so the benchmark keeps working.

Speed is measured there, never here: this only checks that both paths still run and
sync (the benchmark checks the cache through pypicloud, and that the queue path
reports no failed message).
"""

from __future__ import annotations

import re

import pytest

from ..support.benchmarks import run_benchmark


@pytest.mark.slow
def test_the_queue_delivery_benchmark_runs(aws_env: None) -> None:
    stdout = run_benchmark("queue_delivery.py", "-n", "20", "--backends", "sqlite", "dynamo")
    rows = {line.split()[0]: line for line in stdout.splitlines()
            if line.startswith(("sqlite", "dynamo"))}
    assert set(rows) == {"sqlite", "dynamo"}, stdout
    for row in rows.values():
        assert re.search(r"\d+\.\d\dx$", row), row  # both paths ran
