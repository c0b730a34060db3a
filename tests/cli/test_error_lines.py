"""Mistakes in where AWS is (endpoint URL, region), in credentials and in setting names,
as the user meets them: one line on stderr that names the fix, and the exit status
cli.rst gives (2: fix the config or the command line; 1: AWS could not be reached)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync import cli

from ..support.deploy_helpers import BUCKET, PREFIX, REDIS
from ..support.pypicloud_app import ADMIN, basic_auth, write_ini

FORM = ("give it as the server's address only, http://HOST:PORT (a moto server, say) or "
        "https://HOST[:PORT]")


def _ini(tmp_path: Path, **settings: str) -> str:
    path = tmp_path / "pypicloud.ini"
    write_ini(path, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS, **settings})
    return str(path)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stderr, whether the command returned or argparse exited."""
    try:
        status = cli.main(argv)
    except SystemExit as stop:
        status = int(stop.code or 0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    return status, err.rstrip("\n")


def _closed_port() -> str:
    with socket.socket() as probe:  # nobody listens after this: connections are refused
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# -- the endpoint URL --------------------------------------------------------------------

@pytest.mark.parametrize("url, problem", [
    ("127.0.0.1:5000", "it has no scheme"),
    ("http://127.0.0.1:5000/nope", "it has a path (/nope)"),
    ("https://s3.eu-west-1.amazonaws.com/acme-packages", "it has a path (/acme-packages)"),
    ("ftp://127.0.0.1:5000", "its scheme is 'ftp', not http or https"),
    ("http://127.0.0.1:port", "its port is not a number from 0 to 65535"),
])
@pytest.mark.parametrize("command", ["status", "reconcile", "create", "delete"])
def test_a_malformed_endpoint_flag_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, problem: str,
        command: str) -> None:
    status, err = _run([command, _ini(tmp_path), "--endpoint-url", url], capsys)
    assert status == cli.EXIT_CONFIG
    assert err == (f"ppc-s3sync {command}: error: argument --endpoint-url: {url!r} is not an "
                   f"endpoint URL: {problem}; {FORM} (see ppc-s3sync {command} --help)")


def test_the_ini_and_the_environment_follow_the_same_rule(
        aws_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ini = _ini(tmp_path, **{"s3sync.endpoint_url": "127.0.0.1:5000"})
    assert _run(["reconcile", ini], capsys) == (cli.EXIT_CONFIG, (
        "ppc-s3sync reconcile: error: s3sync.endpoint_url = '127.0.0.1:5000' is not an "
        f"endpoint URL: it has no scheme; {FORM}"))
    monkeypatch.setenv("PPC_S3SYNC_ENDPOINT_URL", "http://ops:hunter2@127.0.0.1:5000/x")
    assert _run(["status", _ini(tmp_path)], capsys) == (cli.EXIT_CONFIG, (
        "ppc-s3sync status: error: PPC_S3SYNC_ENDPOINT_URL = 'http://ops:***@127.0.0.1:5000/x'"
        f" is not an endpoint URL: it has a path (/x); {FORM}"))


def test_a_well_formed_endpoint_passes(moto_server: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=BUCKET)
    ini = _ini(tmp_path, **{"pypi.db": "sql", "db.url": f"sqlite:///{tmp_path / 'c.db'}"})
    assert cli.main(["reconcile", ini, "-q", "--endpoint-url", moto_server + "/"]) == 0


# -- the region --------------------------------------------------------------------------

@pytest.mark.parametrize("region, problem", [
    ("eu-wset-1", "is not an AWS region botocore {} knows (did you mean eu-west-1?)"),
    ("Ireland", "is not the name of an AWS region (such as eu-west-1)"),
])
def test_an_unknown_region_is_refused_before_any_aws_call(
        aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        region: str, problem: str) -> None:
    import botocore

    status, err = _run(["status", _ini(tmp_path), "-r", region], capsys)
    assert status == cli.EXIT_CONFIG
    assert err == (f"ppc-s3sync status: error: region {region!r} (from -r or s3sync.region) "
                   f"{problem.format(botocore.__version__)}; set storage.region_name in the "
                   "ini or -r REGION")


def test_an_unknown_storage_region_stops_reconcile_too(
        aws_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _run(["reconcile", _ini(tmp_path, **{"storage.region_name": "eu-wset-1"})],
                       capsys)
    assert status == cli.EXIT_CONFIG
    assert err.startswith("ppc-s3sync reconcile: error: storage.region_name = 'eu-wset-1' "
                          "is not an AWS region botocore ")
    assert err.endswith("(did you mean eu-west-1?); set storage.region_name to the "
                        "bucket's region")


def test_an_s3_compatible_store_keeps_its_own_region_names(tmp_path: Path) -> None:
    from pypicloud_s3sync.config import load_config

    config = load_config(_ini(tmp_path, **{"storage.region_name": "auto",
                                           "storage.endpoint_url": "https://r2.example"}),
                         environ={})
    assert config.target.region == "auto"


# -- credentials -------------------------------------------------------------------------

@pytest.fixture
def no_credentials(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


WAYS = ("give them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, "
        "~/.aws/credentials (AWS_PROFILE=NAME picks a profile), or an instance or task role")


def test_missing_credentials_say_how_to_give_them(
        no_credentials: None, moto_server: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    ini = _ini(tmp_path)
    assert _run(["status", ini, "--endpoint-url", moto_server], capsys) == (
        cli.EXIT_CONFIG, "ppc-s3sync status: error: no usable AWS credentials (Unable to "
                         f"locate credentials); {WAYS}")
    # reconcile reads storage.* as pypicloud does, so pypicloud's keys count too; and
    # nothing ran, so it does not say that running it again is safe
    assert _run(["reconcile", ini, "--endpoint-url", moto_server], capsys) == (
        cli.EXIT_CONFIG, "ppc-s3sync reconcile: error: no usable AWS credentials (Unable to "
                         f"locate credentials); {WAYS}, or storage.aws_access_key_id and "
                         "storage.aws_secret_access_key in the ini")


def test_a_missing_profile_is_a_credentials_problem_too(
        no_credentials: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")
    status, err = _run(["create", _ini(tmp_path), "--dry-run"], capsys)
    assert status == cli.EXIT_CONFIG
    assert "(The config profile (nope) could not be found); give them as" in err


# -- an endpoint that does not answer ----------------------------------------------------

@pytest.fixture
def one_attempt(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.mark.parametrize("how, named", [
    ("flag", "--endpoint-url"),
    ("ini", "s3sync.endpoint_url"),
    ("env", "PPC_S3SYNC_ENDPOINT_URL"),
])
def test_an_unreachable_endpoint_names_the_setting_it_came_from(
        one_attempt: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, how: str, named: str) -> None:
    down = _closed_port()
    flags = ["--endpoint-url", down] if how == "flag" else []
    ini = _ini(tmp_path, **({"s3sync.endpoint_url": down} if how == "ini" else {}))
    if how == "env":
        monkeypatch.setenv("PPC_S3SYNC_ENDPOINT_URL", down)
    assert _run(["status", ini, *flags], capsys) == (cli.EXIT_AWS, (
        f'ppc-s3sync status: error: AWS: Could not connect to the endpoint URL: "{down}/" '
        f"(the endpoint is set by {named}: check that it is running there, or correct it)"))


def test_reconcile_names_storage_endpoint_url(
        one_attempt: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    down = _closed_port()
    ini = _ini(tmp_path, **{"storage.endpoint_url": down})
    assert cli.main(["reconcile", ini]) == cli.EXIT_ERROR
    first, second = capsys.readouterr().err.splitlines()
    assert first == (f'ppc-s3sync reconcile: error: EndpointConnectionError: Could not connect '
                     f'to the endpoint URL: "{down}/{BUCKET}" (the endpoint is set by '
                     "storage.endpoint_url: check that it is running there, or correct it)")
    assert second.startswith("ppc-s3sync reconcile: running it again is safe")


def test_the_admin_api_names_the_setting_too(
        aws: None, pypicloud_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    down = _closed_port()
    server = pypicloud_factory(cache="sqlite", bucket="error-lines",
                               **{"s3sync.endpoint_url": down})
    res = server.app.post("/admin/s3sync/reconcile", json.dumps({}), status="*",
                          content_type="application/json", extra_environ=basic_auth(ADMIN))
    assert (res.status_int, res.json["error"]) == (504, "aws_unreachable")
    assert res.json["message"].endswith(
        "(the endpoint is set by s3sync.endpoint_url: check that it is running there, or "
        "correct it)")


# -- names in the environment ------------------------------------------------------------

def test_a_misspelt_variable_is_refused_like_a_misspelt_key(
        aws_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PPC_S3SYNC_ENDPOIN_URL", "http://127.0.0.1:5000")
    assert _run(["status", _ini(tmp_path)], capsys) == (cli.EXIT_CONFIG, (
        "ppc-s3sync status: error: environment variable PPC_S3SYNC_ENDPOIN_URL is not a "
        "setting of pypicloud-s3sync; did you mean PPC_S3SYNC_ENDPOINT_URL?"))


def test_our_variables_that_are_not_settings_pass(tmp_path: Path) -> None:
    from pypicloud_s3sync.config import load_config

    environ = {"PPC_S3SYNC_CACHE_DIR": "/tmp", "PPC_S3SYNC_LOG_LEVEL": "DEBUG",
               "PPC_S3SYNC_REQUIRE_SERVICES": "1", "PPC_S3SYNC_TEST_REDIS": "redis://x",
               "PPC_S3SYNC_ADMIN_WAIT": "5", "PPC_S3SYNC_MEMORY": "512"}
    assert load_config(_ini(tmp_path), environ=environ).option("memory") == "512"
