"""What the commands say, as cli.rst promises it: one line per mistake, and headlines and
advice that match what the account holds."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from pypicloud_s3sync import cli

from ..support.deploy_helpers import BUCKET, PREFIX, REDIS, REGION, write_zip
from ..support.pypicloud_app import write_ini


@pytest.mark.parametrize("argv", [
    [],
    ["frob"],
    ["status"],
    ["create", "x.ini", "--memory", "lots"],
    ["reconcile", "x.ini", "--workers", "0"],
])
def test_a_usage_mistake_is_one_line_and_exit_2(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ppc-s3sync")
    assert "--help)" in err


def test_the_standalone_scripts_say_it_in_one_line_too(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.create_main(["x.ini", "--timeout", "soon"])
    assert capsys.readouterr().err == (
        "ppc-create-s3-sync: error: argument --timeout: invalid int value: 'soon' "
        "(see ppc-create-s3-sync --help)\n")


@pytest.mark.parametrize("body, problem", [
    ("no header\n", "line 1: 'no header' comes before any [section] header"),
    ("[app:main]\nuse = egg:pypicloud\n  indented\nfoo\n", "line 4: cannot read 'foo'"),
    ("[app:main]\nuse = egg:pypicloud\n[app:main]\n", "line 3: section [app:main] appears twice"),
    ("[app:main]\nuse = egg:pypicloud\na = 1\na = 2\n", "line 4: a appears twice in [app:main]"),
])
def test_a_malformed_ini_is_one_line(body: str, problem: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    ini = tmp_path / "broken.ini"
    ini.write_text(body)
    assert cli.main(["status", str(ini)]) == cli.EXIT_CONFIG
    assert capsys.readouterr().err == (
        f"ppc-s3sync status: error: {ini} is not a valid ini file: {problem}\n")


@pytest.fixture
def deployed(aws: None, tmp_path: Path) -> tuple[str, str]:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS})
    bundle = str(write_zip(tmp_path / "f.zip"))
    assert cli.main(["create", str(ini), "--bundle", bundle, "--runtime", "3.13"]) == 0
    return str(ini), bundle


def test_a_rerun_that_finds_drift_does_not_say_up_to_date(
        deployed: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    ini, bundle = deployed
    capsys.readouterr()
    boto3.client("lambda", region_name=REGION).update_function_configuration(
        FunctionName="pypicloud_s3_sync", MemorySize=1024)
    assert cli.main(["create", ini, "--bundle", bundle, "--runtime", "3.13"]) == 0
    headline = capsys.readouterr().out.splitlines()[0]
    assert "up to date" not in headline
    assert headline == ("Nothing to create without -f: pypicloud_s3_sync in us-east-1 "
                        "(account 123456789012) differs from the config (function "
                        "pypicloud_s3_sync: MemorySize); run with -f to update it in place.")
    assert cli.main(["status", ini, "--bundle", bundle, "--runtime", "python3.13"]) == 3
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Run 'ppc-create-s3-sync CONFIG -f' to bring it back in line.")


def test_after_a_delete_status_suggests_plain_create(
        deployed: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    ini, bundle = deployed
    assert cli.main(["delete", ini]) == 0
    capsys.readouterr()
    assert cli.main(["status", ini, "--bundle", bundle, "--runtime", "3.13"]) == 3
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Run 'ppc-create-s3-sync CONFIG' to bring it back in line.")
