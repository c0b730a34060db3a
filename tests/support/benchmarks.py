"""Run one of benchmarks/ as its smoke test does: a subprocess, as a person runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str) -> str:
    """``python benchmarks/<script> ARGS``'s output; the benchmark must exit 0."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout
