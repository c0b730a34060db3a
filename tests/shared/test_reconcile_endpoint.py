"""reconcile is pointed at another endpoint the way create, delete and status are:
``--endpoint-url`` or ``s3sync.endpoint_url``, either winning over ``storage.endpoint_url``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync import cli

from ..support.pypicloud_app import write_ini


@pytest.fixture
def uploaded(moto_server: str, pypicloud_factory: Any) -> Any:
    """A package in a moto server's bucket (one per test: moto's state is per process)."""
    import uuid

    server = pypicloud_factory(cache="sqlite", bucket=f"endpoint-{uuid.uuid4().hex[:12]}",
                               **{"storage.endpoint_url": moto_server})
    server.upload("alpha", "1.0")
    assert cli.main(["reconcile", str(server.ini), "-q"]) == 0
    return server


def _ini_without_storage_endpoint(server: Any, tmp_path: Path, **settings: str) -> str:
    values = {k: v for k, v in server.settings.items()
              if k.startswith(("db.", "pypi.db", "storage.")) and k != "storage.endpoint_url"}
    path = tmp_path / "operator.ini"
    write_ini(path, {**values, **settings})
    return str(path)


def _forget(server: Any) -> None:
    from pypicloud_s3sync.config import load_config
    from pypicloud_s3sync.function.reconcile import open_cache

    cache = open_cache(load_config(str(server.ini)).settings)
    cache.clear_all()
    import transaction

    transaction.commit()


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_reconcile_reaches_the_endpoint_it_is_given(
    how: str, uploaded: Any, moto_server: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _forget(uploaded)
    assert uploaded.simple("alpha") == []
    if how == "flag":
        ini = _ini_without_storage_endpoint(uploaded, tmp_path)
        argv = ["reconcile", ini, "--endpoint-url", moto_server]
    else:
        ini = _ini_without_storage_endpoint(uploaded, tmp_path,
                                            **{"s3sync.endpoint_url": moto_server})
        argv = ["reconcile", ini]
    capsys.readouterr()
    assert cli.main(argv) == cli.EXIT_DRIFT
    assert "added: alpha-1.0.tar.gz" in capsys.readouterr().out
    assert uploaded.simple("alpha") == ["alpha-1.0.tar.gz"]


def test_the_flag_wins_over_storage_endpoint_url(
    uploaded: Any, moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    ini = _ini_without_storage_endpoint(
        uploaded, tmp_path, **{"storage.endpoint_url": "http://127.0.0.1:9"})
    assert cli.main(["reconcile", ini, "-q"]) == cli.EXIT_ERROR
    assert cli.main(["reconcile", ini, "-q", "--endpoint-url", moto_server]) == 0
    bucket = uploaded.settings["storage.bucket"]
    assert boto3.client("s3", endpoint_url=moto_server).list_objects_v2(
        Bucket=bucket)["KeyCount"] == 1


def test_the_admin_endpoints_reconcile_goes_where_s3sync_endpoint_url_says(
        aws: None, pypicloud_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's own S3 is moto in process; s3sync.endpoint_url names a port where
    nothing listens, and the reconcile started through the endpoint must try that one."""
    import json

    from ..support.pypicloud_app import ADMIN, basic_auth

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    server = pypicloud_factory(cache="sqlite", bucket="admin-endpoint",
                               **{"s3sync.endpoint_url": "http://127.0.0.1:9"})
    res = server.app.post("/admin/s3sync/reconcile", params=json.dumps({}),
                          content_type="application/json", status="*",
                          extra_environ=basic_auth(ADMIN))
    assert res.status_int == 504, res.text
    assert res.json["error"] == "aws_unreachable"
    assert "127.0.0.1:9" in res.json["message"]
