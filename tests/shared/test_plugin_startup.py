"""The server refuses a setting it cannot use at startup, as pserve's user sees it: one
line naming the key (and the nearest valid one) or the value's expected form, instead
of a traceback at startup or a 500 at the first request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyramid.exceptions import ConfigurationError

from ..support.pypicloud_app import make_app, write_ini

CASES = [
    ({"s3sync.endpoin_url": "http://127.0.0.1:5000"}, {},
     "pypicloud-s3sync: s3sync.endpoin_url is not a setting of pypicloud-s3sync; did you "
     "mean s3sync.endpoint_url?"),
    ({"s3sync.endpoint_url": "127.0.0.1:5000"}, {},
     "pypicloud-s3sync: s3sync.endpoint_url = '127.0.0.1:5000' is not an endpoint URL: it "
     "has no scheme; give it as the server's address only, http://HOST:PORT (a moto server, "
     "say) or https://HOST[:PORT]"),
    ({}, {"PPC_S3SYNC_ENDPOIN_URL": "http://127.0.0.1:5000"},
     "pypicloud-s3sync: environment variable PPC_S3SYNC_ENDPOIN_URL is not a setting of "
     "pypicloud-s3sync; did you mean PPC_S3SYNC_ENDPOINT_URL?"),
]


def _ini(tmp_path: Path, settings: dict[str, str]) -> Path:
    ini = tmp_path / "server.ini"
    write_ini(ini, {"storage.bucket": "packages", "pypi.db": "sql",
                    "db.url": f"sqlite:///{tmp_path / 'cache.sqlite'}", **settings})
    return ini


@pytest.mark.parametrize("settings, environ, line", CASES)
def test_pserve_prints_one_line(aws_env: None, tmp_path: Path, settings: dict[str, str],
                                environ: dict[str, str], line: str) -> None:
    """pserve for real (waitress is the ini's server); it stops before binding a port."""
    pserve = Path(sys.executable).with_name("pserve")
    proc = subprocess.run([str(pserve), str(_ini(tmp_path, settings))], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **environ})
    # pyramid's own import of pkg_resources warns on stderr (two lines); not ours.
    ours = [text for text in proc.stderr.splitlines()
            if "pkg_resources" not in text]
    assert (proc.returncode, ours) == (1, [line]), proc.stderr


@pytest.mark.parametrize("settings, environ, line", CASES)
def test_an_app_loader_gets_pyramids_configuration_error(
        aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        settings: dict[str, str], environ: dict[str, str], line: str) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:
        make_app(_ini(tmp_path, settings))
    assert str(refused.value) == line
    assert refused.value.__context__ is None or refused.value.__suppress_context__


def test_other_exceptions_keep_their_traceback() -> None:
    """The one-line printing applies to the refusal only."""
    code = ("import pypicloud_s3sync.admin.refusal as r; from pypicloud_s3sync.config import "
            "ConfigError; r.refuse(ConfigError('x')); raise KeyError('other')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.rstrip().endswith("KeyError: 'other'")
