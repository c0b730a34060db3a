"""Every ``s3sync.*`` setting an operator writes either takes effect or stops the command:
the function gets ``verify_after``, the bundle command the runtime and architecture create
deploys with, a zip built for another target is refused, and a misspelt key is named."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync import cli
from pypicloud_s3sync.bundle import archive, builder
from pypicloud_s3sync.bundle.target import Target
from pypicloud_s3sync.config import SETTINGS, ConfigError, load_config
from pypicloud_s3sync.provision.options import DeployOptions

from ..support.deploy_helpers import BUCKET, PREFIX, REDIS, REGION, make_config, snapshot, write_zip
from ..support.pypicloud_app import write_ini


def _ini(tmp_path: Path, **settings: str) -> str:
    path = tmp_path / "pypicloud.ini"
    write_ini(path, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS, **settings})
    return str(path)


def test_verify_after_from_the_servers_ini_reaches_the_function(aws: None,
                                                                 tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    ini = _ini(tmp_path, **{"s3sync.verify_after": "0.2"})
    assert cli.main(["create", ini, "--bundle", str(write_zip(tmp_path / "f.zip"))]) == 0
    environment = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName="pypicloud_s3_sync")["Environment"]["Variables"]
    assert json.loads(environment["PYPICLOUD_SETTINGS"])["s3sync.verify_after"] == "0.2"


def test_a_bad_verify_after_stops_the_command_not_the_function(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ini = _ini(tmp_path, **{"s3sync.verify_after": "soon"})
    assert cli.main(["status", ini]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err == ("ppc-s3sync status: error: s3sync.verify_after = 'soon'; give seconds "
                   "(e.g. 0.05) or off\n")


def test_a_misspelt_key_names_the_closest_known_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ini = _ini(tmp_path, **{"s3sync.verfy_after": "0.2"})
    assert cli.main(["status", ini]) == cli.EXIT_CONFIG
    assert capsys.readouterr().err == (
        "ppc-s3sync status: error: s3sync.verfy_after is not a setting of "
        "pypicloud-s3sync; did you mean s3sync.verify_after?\n")
    with pytest.raises(ConfigError, match="configuration.rst lists"):
        load_config(_ini(tmp_path, **{"s3sync.colour": "blue"}))


def test_a_misspelt_key_stops_the_server_at_startup(tmp_path: Path) -> None:
    from ..support.pypicloud_app import make_app

    ini = tmp_path / "server.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "pypi.db": "sql",
                    "db.url": f"sqlite:///{tmp_path / 'db.sqlite'}",
                    "s3sync.admin.wiat": "5"})
    with pytest.raises(ConfigError, match="did you mean s3sync.admin.wait"):
        make_app(ini)


def test_every_deploy_option_is_a_known_setting() -> None:
    assert {f.name for f in fields(DeployOptions)} <= set(SETTINGS)


@pytest.mark.parametrize("spelling", ["3.12", "python3.12"])
def test_runtime_spelt_like_the_bundle_command_takes_it(spelling: str, tmp_path: Path) -> None:
    assert DeployOptions.from_config(make_config(tmp_path), runtime=spelling,
                                     arch="aarch64").runtime == "python3.12"
    config = make_config(tmp_path, **{"s3sync.runtime": spelling, "s3sync.arch": "aarch64"})
    options = DeployOptions.from_config(config)
    assert (options.runtime, options.arch) == ("python3.12", "arm64")


def test_bundle_command_builds_for_the_ini_runtime_and_architecture(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zip is requested for ``s3sync.runtime``/``arch``; flags still win."""
    asked: list[tuple[str, str]] = []

    def record(config: Any, *, runtime: str, arch: str, **kwargs: Any) -> builder.Bundle:
        asked.append((runtime, arch))
        raise SystemExit(0)  # what was asked for is all this test checks

    monkeypatch.setattr(builder, "build_bundle", record)
    ini = _ini(tmp_path, **{"s3sync.runtime": "3.12", "s3sync.arch": "arm64"})
    with pytest.raises(SystemExit):
        cli.bundle_main([ini, "-q"])
    with pytest.raises(SystemExit):
        cli.bundle_main([ini, "-q", "--runtime", "3.13", "--arch", "x86_64"])
    assert asked == [("python3.12", "arm64"), ("python3.13", "x86_64")]


def _recorded_zip(tmp_path: Path, runtime: str, arch: str) -> Path:
    """A zip written by the builder's own writer for one target."""
    tree = tmp_path / "tree" / "pypicloud_s3sync"
    tree.mkdir(parents=True)
    (tree / "__init__.py").write_text("")
    (tree / "handler.py").write_text("def handle_event(event, context):\n    return 0\n")
    path = tmp_path / f"{runtime}-{arch}.zip"
    archive.write_zip(tree.parent, path, Target.of(runtime, arch))
    return path


def test_the_zip_records_its_runtime_and_architecture(tmp_path: Path) -> None:
    assert archive.built_for(_recorded_zip(tmp_path, "python3.12", "arm64")) == (
        "python3.12", "arm64")
    assert archive.built_for(write_zip(tmp_path / "other.zip")) is None


def test_create_refuses_a_zip_built_for_another_target(
        aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    bundle = _recorded_zip(tmp_path, "python3.12", "arm64")
    ini = _ini(tmp_path, **{"s3sync.bundle": str(bundle)})
    before = snapshot()
    assert cli.main(["create", ini, "--runtime", "3.13"]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (f"the bundle {bundle} was built for python3.12 on arm64, but the function is to "
            "run python3.13 on x86_64") in err
    assert "--runtime python3.12 --arch arm64" in err
    assert snapshot() == before
    assert cli.main(["create", ini, "--runtime", "3.12", "--arch", "arm64"]) == 0
    assert boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName="pypicloud_s3_sync")["Architectures"] == ["arm64"]


def test_configuration_rst_documents_every_setting() -> None:
    """The reference operators read lists each key the code accepts, and no other."""
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.rst").read_text()
    table = text[text.index(".. _s3sync-settings:"):text.index("What the function receives")]
    documented = set(re.findall(r"``s3sync\.([a-z_.]+)``", table))
    assert documented == set(SETTINGS)
