"""A tiny run of benchmarks/queue_delivery.py, so the benchmark keeps working.

Speed is measured there, never here: this only checks that both paths still run and
sync (the benchmark checks the cache through pypicloud, and that the queue path
reports no failed message).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_queue_delivery_benchmark_runs(aws_env: None) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "queue_delivery.py"), "-n", "20",
         "--backends", "sqlite", "dynamo"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()
            if line.startswith(("sqlite", "dynamo"))}
    assert set(rows) == {"sqlite", "dynamo"}, result.stdout
    for row in rows.values():
        assert re.search(r"\d+\.\d\dx$", row), row  # both paths ran
