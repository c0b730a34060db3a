"""``s3sync.endpoint_url`` / ``--endpoint-url`` reaches a DynamoDB cache too.

The README's Quickstart ini uses ``pypi.db = dynamo`` with only ``db.region_name``; a
reader who points the commands at a moto server with the one setting the docs name must
not have reconcile open the cache in the real account.  pypicloud's DynamoDB cache has
no endpoint setting of its own, so the endpoint becomes ``db.host``/``db.port``/
``db.secure`` for our commands' cache, and never for the deployed function.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import boto3
import pytest
from pypicloud.util import EnvironSettings

from pypicloud_s3sync import cli
from pypicloud_s3sync.cache_endpoint import at_endpoint, dynamo_host_settings
from pypicloud_s3sync.config import load_config

from ..cli.test_quickstart import quickstart
from ..support.pypicloud_app import (
    ADMIN,
    basic_auth,
    create_dynamo_tables,
    make_app,
    sdist_bytes,
    write_ini,
)
from ..support.sync_harness import cached


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:5000", ("127.0.0.1", "5000", "false")),
    ("https://dynamo.example.test", ("dynamo.example.test", "443", "true")),
    ("http://localhost/", ("localhost", "80", "false")),
    ("http://[::1]:5000", ("[::1]", "5000", "false")),
])
def test_the_endpoint_becomes_host_port_and_secure(url: str, expected: tuple) -> None:
    assert tuple(dynamo_host_settings(url).values()) == expected
    assert list(dynamo_host_settings(url)) == ["db.host", "db.port", "db.secure"]


def test_an_endpoint_that_is_not_a_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not http"):
        dynamo_host_settings("127.0.0.1:5000")


def _settings(environ: dict[str, str] | None = None, **values: str) -> EnvironSettings:
    return EnvironSettings({"pypi.db": "dynamo", "db.region_name": "eu-west-1", **values},
                           environ or {})


def test_only_a_dynamo_cache_without_a_host_is_moved() -> None:
    url = "http://127.0.0.1:5000"
    original = _settings()
    moved = at_endpoint(original, "dynamo", url)
    assert (moved["db.host"], moved["db.port"], moved["db.secure"]) == (
        "127.0.0.1", "5000", "false")
    assert "db.host" not in original  # a clone: the function's settings stay as they were
    assert at_endpoint(original, "dynamo", None) is original
    sql = EnvironSettings({"pypi.db": "sql", "db.url": "sqlite://"}, {})
    assert at_endpoint(sql, "sql", url) is sql


@pytest.mark.parametrize("where", ["ini", "environment"])
def test_an_explicit_db_host_wins(where: str) -> None:
    given = ({"db.host": "dynamodb-local"}, None) if where == "ini" else (
        {}, {"PPC_DB_HOST": "dynamodb-local"})
    settings = _settings(given[1], **given[0])
    assert at_endpoint(settings, "dynamo", "http://127.0.0.1:5000") is settings


def _readme_ini(tmp_path: Path, **extra: str) -> tuple[Path, str, str]:
    ini, _ = quickstart()
    path = tmp_path / "config.ini"
    path.write_text(ini + "".join(f"{key} = {value}\n" for key, value in extra.items()))
    section = dict(line.split(" = ", 1) for line in ini.splitlines() if " = " in line)
    return path, section["storage.bucket"], section["storage.region_name"]


def test_the_function_never_gets_the_endpoint(tmp_path: Path) -> None:
    ini, _, _ = _readme_ini(tmp_path, **{"s3sync.endpoint_url": "http://127.0.0.1:5000"})
    config = load_config(str(ini), {})
    assert config.cache_settings()["db.host"] == "127.0.0.1"
    assert not {"db.host", "db.port", "db.secure", "s3sync.endpoint_url"} & set(
        config.function.values)


@pytest.fixture
def readme_on_moto(moto_server: str, tmp_path: Path) -> dict[str, Any]:
    """The Quickstart's bucket in moto and the cache's tables made by pypicloud's own
    first start; ``upload()`` puts a package in the bucket with pypicloud's S3 storage,
    and not in the cache (as after a missed event)."""
    pytest.importorskip("flywheel")
    import requests
    from pypicloud.models import Package
    from pypicloud.storage import get_storage_impl

    # moto's state belongs to the process, not to one server: start from nothing.
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    ini, bucket, region = _readme_ini(tmp_path)
    host, port = moto_server.rsplit("//", 1)[1].split(":")
    db = {"pypi.db": "dynamo", "db.region_name": region, "db.host": host, "db.port": port,
          "db.secure": "false"}
    create_dynamo_tables(db)
    boto3.client("s3", region_name=region, endpoint_url=moto_server).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    storage = get_storage_impl(EnvironSettings({
        "pypi.storage": "s3", "storage.bucket": bucket, "storage.region_name": region,
        "storage.endpoint_url": moto_server}, {}))(None)

    def upload() -> None:
        storage.upload(Package("alpha", "1.0", "alpha-1.0.tar.gz"),
                       io.BytesIO(sdist_bytes("alpha", "1.0")))

    return {"ini": ini, "db": db, "endpoint": moto_server, "region": region,
            "upload": upload}


@pytest.mark.parametrize("how", ["setting", "flag"])
def test_reconcile_with_the_readme_ini_writes_to_the_endpoints_dynamodb(
        how: str, readme_on_moto: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    ini, endpoint = str(readme_on_moto["ini"]), readme_on_moto["endpoint"]
    readme_on_moto["upload"]()
    # Real AWS is unreachable, so a cache opened there fails fast instead of hanging.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    if how == "setting":
        monkeypatch.setenv("PPC_S3SYNC_ENDPOINT_URL", endpoint)
        argv = ["reconcile", ini]
    else:
        argv = ["reconcile", ini, "--endpoint-url", endpoint]

    capsys.readouterr()
    assert cli.main(argv) == cli.EXIT_DRIFT, capsys.readouterr()
    assert "added: alpha-1.0.tar.gz" in capsys.readouterr().out
    assert cli.main(argv) == 0, capsys.readouterr()
    assert "in sync" in capsys.readouterr().out
    assert set(cached(readme_on_moto["db"])) == {"alpha-1.0.tar.gz"}
    dynamodb = boto3.client("dynamodb", region_name=readme_on_moto["region"],
                            endpoint_url=endpoint)
    assert dynamodb.scan(TableName="DynamoPackage")["Count"] == 1


def test_an_explicit_db_host_is_where_reconcile_goes(
        readme_on_moto: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PPC_DB_HOST", "127.0.0.1")
    monkeypatch.setenv("PPC_DB_PORT", "9")  # discard: nothing listens there
    readme_on_moto["upload"]()
    argv = ["reconcile", str(readme_on_moto["ini"]), "--endpoint-url",
            readme_on_moto["endpoint"]]
    capsys.readouterr()
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "http://127.0.0.1:9/" in capsys.readouterr().err
    assert cached(readme_on_moto["db"]) == {}


def test_the_admin_endpoints_reconcile_writes_to_the_endpoints_dynamodb(
        readme_on_moto: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The server starts once with its cache at moto (its own settings, as the recipe
    gives them); the admin endpoint's reconcile then has only ``s3sync.endpoint_url``."""
    ini, _ = quickstart()
    settings = dict(line.split(" = ", 1) for line in ini.splitlines()
                    if " = " in line and not line.startswith("use "))
    path = write_ini(tmp_path / "server.ini", {
        **settings, "s3sync.endpoint_url": readme_on_moto["endpoint"]})
    db = readme_on_moto["db"]
    server_only = {"PPC_STORAGE_ENDPOINT_URL": readme_on_moto["endpoint"],
                   **{f"PPC_DB_{key[3:].upper()}": db[key]
                      for key in ("db.host", "db.port", "db.secure")}}
    for name, value in server_only.items():
        monkeypatch.setenv(name, value)
    app = make_app(tmp_path / "server.ini")
    for name in server_only:
        monkeypatch.delenv(name)
    readme_on_moto["upload"]()  # after the start, whose reload would find it
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert path["pypi.db"] == "dynamo" and "db.host" not in path

    res = app.post_json("/admin/s3sync/reconcile", {}, extra_environ=basic_auth(ADMIN),
                        status="*")

    assert res.status_int == 200, res.text
    assert res.json["report"]["added"] == ["alpha-1.0.tar.gz"]
    assert set(cached(db)) == {"alpha-1.0.tar.gz"}
