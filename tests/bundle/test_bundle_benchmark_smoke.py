"""A tiny run of benchmarks/bundle.py, so the benchmark keeps working.

Speed is measured there, never here: this checks that our bundle and the floor variants
were built or prepared and started once each, side by side.  pypicloud 1.3.12's own
bundle is left out: its recipe is a fresh venv and a pip install of minutes.
SQLite is the cheapest backend to run (no server, no tables); the benchmark keeps what
does not depend on this code (the runtime's boto3, the floor's libraries, pypicloud
1.3.12's bundle) in the session's bundle cache, and our builder uses that cache too, so
with ``PPC_S3SYNC_TEST_BUNDLE_CACHE`` set only the first session pays for them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"\d+\.\d+"


@pytest.mark.slow
def test_the_bundle_benchmark_runs(aws_env: None, builder_cache_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bundle.py"), "-n", "1",
         "--backends", "sqlite", "--work", str(builder_cache_dir / "bundle-benchmark"),
         "--builder-cache", str(builder_cache_dir), "--without-original"],
        capture_output=True, text=True, timeout=900, env=dict(os.environ), check=False)
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        found = re.match(r"sqlite  (ours|pypicloud 1\.3\.12|floor \+ pypicloud|floor, lowest"
                         r"|floor)\s+(.*)", line)
        if found:
            rows[found[1]] = found[2]
    assert set(rows) == {"ours", "pypicloud 1.3.12", "floor + pypicloud", "floor",
                         "floor, lowest"}, result.stdout
    # Our bundle was built and measured: sizes, build times, a cold start, the ratio.
    assert re.match(rf"{NUMBER} +{NUMBER} +{NUMBER}s +{NUMBER}s +{NUMBER} +{NUMBER} "
                    rf"+{NUMBER}x", rows["ours"]), rows["ours"]
    # pypicloud 1.3.12's own bundle takes a fresh venv and minutes of pip: left out here,
    # and the report says so rather than printing nothing.
    assert rows["pypicloud 1.3.12"].strip() == "left out (--without-original)"
    assert rows["floor"].split()[-2] == "1.00x"
    # Ours and the floors handle the event.
    for label in ("ours", "floor + pypicloud", "floor", "floor, lowest"):
        assert "fails" not in rows[label], rows[label]
