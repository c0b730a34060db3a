"""README's first command: the two-region demo runs end to end and cleans up after itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "demo" / "two_regions.py"


def left_in_session(session: int) -> list[str]:
    """Command lines of the processes still in ``session`` (Linux ``/proc``).

    The demo runs as a session of its own, and every server it starts inherits that
    session, so whatever is left in it afterwards is the demo's, even on a port that
    someone else's server has taken since (which a "still listening" probe would blame).
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


@pytest.mark.slow
def test_two_region_demo(tmp_path):
    proc = subprocess.Popen([sys.executable, str(DEMO), "--keep", str(tmp_path / "demo")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        leftovers = left_in_session(proc.pid)
        if proc.poll() is None or leftovers:
            os.killpg(proc.pid, 9)  # never leave the demo's servers running
            proc.wait()
    assert proc.returncode == 0, out[-3000:] + err[-3000:]

    # Region B's function saved the replicated package, and pip got it from B.
    saved = re.search(r"B's function: .*saved \S+demo_greeting-0\.1\.0-py3-none-any\.whl; "
                      r"B lists \['demo_greeting-0\.1\.0-py3-none-any\.whl'\]", out)
    assert saved, out
    assert re.search(r"pip download .* -> demo_greeting-0\.1\.0-py3-none-any\.whl", out), out
    assert (tmp_path / "demo" / "downloads" / "demo_greeting-0.1.0-py3-none-any.whl").exists()
    # The delete in A reached B.
    assert re.search(r"B's function: cleared \S+; B lists \[\]", out), out
    # Both regions were provisioned by the real command, each with its own role.
    both = out + err
    assert "role pypicloud-s3sync-pypicloud-s3sync-demo-us-east-1" in both
    assert "role pypicloud-s3sync-pypicloud-s3sync-demo-eu-west-1" in both

    # A first run prints no warning that does not apply to it (the function it runs
    # locally can reach the SQLite cache; pkg_resources' notice is pyramid's business).
    assert "warning" not in both.lower(), [x for x in both.splitlines() if "arning" in x]

    # Nothing it started is still running.
    assert leftovers == []


def test_a_process_left_behind_is_found() -> None:
    """The check above can fail: a child that outlives its parent is still named."""
    proc = subprocess.Popen([sys.executable, "-c",
                             "import subprocess, sys; subprocess.Popen([sys.executable, "
                             "'-c', 'import time; time.sleep(60)'])"],
                            start_new_session=True)
    proc.wait()
    try:
        [left] = left_in_session(proc.pid)
        assert "time.sleep(60)" in left
    finally:
        os.killpg(proc.pid, 9)
