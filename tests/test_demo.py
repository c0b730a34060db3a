"""README's first command: the two-region demo runs end to end and cleans up after itself."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent.parent / "demo" / "two_regions.py"


def listening(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


@pytest.mark.slow
def test_two_region_demo(tmp_path):
    proc = subprocess.run([sys.executable, str(DEMO), "--keep", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]

    # Region B's function saved the replicated package, and pip got it from B.
    saved = re.search(r"B's function: .*saved \S+demo_greeting-0\.1\.0-py3-none-any\.whl; "
                      r"B lists \['demo_greeting-0\.1\.0-py3-none-any\.whl'\]", out)
    assert saved, out
    assert re.search(r"pip download .* -> demo_greeting-0\.1\.0-py3-none-any\.whl", out), out
    assert (tmp_path / "demo" / "downloads" / "demo_greeting-0.1.0-py3-none-any.whl").exists()
    # The delete in A reached B.
    assert re.search(r"B's function: cleared \S+; B lists \[\]", out), out
    # Both regions were provisioned by the real command, each with its own role.
    both = out + proc.stderr
    assert "role pypicloud-s3sync-pypicloud-s3sync-demo-us-east-1" in both
    assert "role pypicloud-s3sync-pypicloud-s3sync-demo-eu-west-1" in both

    # A first run prints no warning that does not apply to it (the function it runs
    # locally can reach the SQLite cache; pkg_resources' notice is pyramid's business).
    assert "warning" not in both.lower(), [x for x in both.splitlines() if "arning" in x]

    # Nothing it started is still listening.
    urls = set(re.findall(r"http://127\.0\.0\.1:\d+", out))
    assert len(urls) >= 3
    assert not [url for url in urls if listening(url)]
