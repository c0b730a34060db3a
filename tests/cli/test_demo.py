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

    kept = tmp_path / "demo"
    # One create provisioned both regions: each its own sync, and each bucket its
    # replication rule to the other, delete markers included.
    create = (kept / "create.log").read_text()
    assert re.search(r"Applied \d+ changes for 2 inis in 2 regions", create), create
    for region, bucket, peer in (("us-east-1", "packages-use1", "packages-euw1"),
                                 ("eu-west-1", "packages-euw1", "packages-use1")):
        assert f"role pypicloud-s3sync-pypicloud-s3sync-demo-{region}" in create
        assert f"role pypicloud-s3sync-replication-{bucket}" in create
        assert (f"replication configuration of bucket {bucket}: 1 rule(s) of ours "
                f"(to {peer}, with delete markers)") in create
    assert "rule ppc-s3sync-packages-euw1 -> packages-euw1 (delete markers Enabled)" in out

    # The replicator carried the upload to B, B's function saved it, pip got it from B.
    wheel = r"demo_greeting-0\.1\.0-py3-none-any\.whl"
    assert re.search(rf"B lists \['{wheel}'\] .* Replicator: version \S+{wheel} "
                     rf"packages-use1 -> packages-euw1; B's function: .*saved \S+{wheel}",
                     out), out
    assert re.search(rf"pip download .* -> {wheel}", out), out
    assert (kept / "downloads" / "demo_greeting-0.1.0-py3-none-any.whl").exists()
    # The delete in A reached B as a replicated delete marker.
    assert re.search(rf"B lists \[\] .* Replicator: delete marker \S+{wheel} packages-use1 "
                     rf"-> packages-euw1; B's function: .*cleared \S+{wheel}", out), out

    # verify passed both ways and its canary is gone from both buckets and caches.
    for source, dest in (("packages-use1", "packages-euw1"), ("packages-euw1", "packages-use1")):
        assert re.search(rf"{source} \(\S+\) -> {dest} \(\S+\): replication [\d.]+ s, "
                         r"sync [\d.]+ s, delete replication", out), out
    assert "ok: every region's uploads and deletes reached every other region's cache" in out
    assert "no canary left" in out

    # A first run prints no warning that does not apply to it (the function it runs
    # locally can reach the SQLite cache; pkg_resources' notice is pyramid's business),
    # nor do the commands it ran (their whole output is kept, the timeline shows a part).
    both = out + err + create + (kept / "verify.log").read_text()
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
