"""Quiet when nothing is wrong: in the server venv operators really have (plain
``python3 -m venv``, so setuptools 65.5 on Python 3.11), every command that succeeds and
``pserve`` print nothing on stderr.  A warning there is noise an operator learns to
skip, and then misses the one that matters; the real ones are ours to print.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from ..support.pypicloud_app import write_ini

BUCKET = "quiet-packages"

#: What Python prints for a warning or an exception: never ours to show an operator.
NOT_OURS = re.compile(r"^Traceback |^\S+:\d+: \w*Warning: |^\s+warnings\.warn\(|site-packages/",
                      re.M)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_ini(moto_server: str, tmp_path: Path) -> Path:
    """A server ini whose every AWS call goes to moto, with its bucket made."""
    ini = tmp_path / "config.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.endpoint_url": moto_server,
                    "s3sync.endpoint_url": moto_server, "pypi.db": "sql",
                    "db.url": f"sqlite:///{tmp_path / 'cache.sqlite'}"})
    ini.write_text(ini.read_text().replace("port = 6543", f"port = {_free_port()}"))
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server).create_bucket(
        Bucket=BUCKET)
    return ini


def _environment(builder_cache_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith("PYTEST")}
    env["PPC_S3SYNC_CACHE_DIR"] = str(builder_cache_dir)
    return env


@pytest.mark.slow
def test_every_command_that_succeeds_says_nothing_on_stderr(
        plain_server_venv: Path, server_ini: Path, tmp_path: Path,
        builder_cache_dir: Path) -> None:
    setuptools = next(plain_server_venv.glob("lib/python3.*/site-packages/setuptools-*"))
    bin_ = plain_server_venv / "bin"
    env = _environment(builder_cache_dir)
    # (argv, exit status, whether it reports progress of its own on stderr)
    commands = [
        ([bin_ / "ppc-create-s3-sync", server_ini, "--dry-run"], 0, True),
        # Nothing deployed: drift, and the fix it proposes is create's, zip included.
        ([bin_ / "ppc-s3sync", "status", server_ini], 3, True),
        ([bin_ / "ppc-s3sync", "reconcile", server_ini], 0, False),
        ([bin_ / "ppc-build-lambda-bundle", server_ini, "-o", tmp_path / "b.zip"], 0, True),
        ([bin_ / "ppc-s3sync", "--version"], 0, False),
    ]
    for argv, status, progress in commands:
        done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=600)
        assert done.returncode == status, (argv, done.stdout, done.stderr)
        assert done.stdout, argv
        assert not NOT_OURS.search(done.stderr), (argv[0].name, setuptools.name, done.stderr)
        assert bool(done.stderr) is progress, (argv[0].name, done.stderr)


@pytest.mark.slow
def test_pserve_starts_the_server_with_no_warning_on_stderr(
        plain_server_venv: Path, server_ini: Path, tmp_path: Path,
        builder_cache_dir: Path) -> None:
    port = server_ini.read_text().rsplit("port = ", 1)[1].strip()
    with (tmp_path / "stderr").open("w+") as stderr:
        server = subprocess.Popen([str(plain_server_venv / "bin" / "pserve"), str(server_ini)],
                                  stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path,
                                  env=_environment(builder_cache_dir))
        try:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, (tmp_path / "stderr").read_text()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health",
                                                timeout=5) as reply:
                        assert reply.status == 200
                        break
                except (urllib.error.URLError, ConnectionError):
                    assert time.monotonic() < deadline, "pserve never answered /health"
                    time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(timeout=30)
        stderr.seek(0)
        said = stderr.read()
    # pserve's own lines ("Starting server in PID ...") are the server's; nothing else.
    assert not NOT_OURS.search(said), said
    assert "Starting server in PID" in said
