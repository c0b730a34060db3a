"""The README's Quickstart, walked as written against a moto server: its ini, then each
of its commands in order, read from README.md itself so that the two cannot drift apart.

The only additions are what points the setup at moto instead of AWS and the server
settings the Quickstart does not repeat, given the way pypicloud lets any setting be
given: ``PPC_*`` environment variables (``s3sync.endpoint_url`` for our commands,
``db.host``/``db.port`` for the DynamoDB cache, the server's session keys).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import boto3
import pytest

from pypicloud_s3sync import cli
from pypicloud_s3sync.bundle.archive import built_for
from pypicloud_s3sync.bundle.target import DEFAULT_RUNTIME

from ..support.pypicloud_app import make_app

README = Path(__file__).resolve().parents[2] / "README.md"

SCRIPTS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "ppc-s3sync": cli.main,
    "ppc-create-s3-sync": cli.create_main,
    "ppc-delete-s3-sync": cli.delete_main,
    "ppc-build-lambda-bundle": cli.bundle_main,
}


def quickstart() -> tuple[str, list[list[str]]]:
    """The Quickstart's ini and its commands (the last shell block), comments dropped."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quickstart"):]
    section = section[:section.find("\n## ", 1) if "\n## " in section[1:] else None]
    ini = re.findall(r"```ini\n(.*?)```", section, re.S)[0]
    shell = re.findall(r"```sh\n(.*?)```", section, re.S)[-1]
    commands = [shlex.split(line, comments=True) for line in shell.splitlines()]
    return ini, [command for command in commands if command]


def test_the_quickstart_is_read_from_the_readme() -> None:
    ini, commands = quickstart()
    assert "[app:main]" in ini and "pyramid.includes = pypicloud_s3sync" in ini
    assert [c[0] for c in commands] == ["ppc-create-s3-sync", "ppc-create-s3-sync",
                                        "ppc-s3sync", "ppc-s3sync", "ppc-delete-s3-sync",
                                        "ppc-build-lambda-bundle"]


def _setting(ini: str, key: str) -> str:
    return re.search(rf"^{re.escape(key)}\s*=\s*(.+)$", ini, re.M).group(1).strip()


@pytest.mark.slow
def test_the_quickstart_as_written_against_a_moto_server(
        moto_server: str, tmp_path: Path, builder_cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("flywheel")
    ini, commands = quickstart()
    bucket, region = _setting(ini, "storage.bucket"), _setting(ini, "storage.region_name")
    host, port = moto_server.rsplit("//", 1)[1].split(":")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.ini").write_text(ini)
    for name, value in {"S3SYNC_ENDPOINT_URL": moto_server, "DB_HOST": host,
                        "DB_PORT": port, "DB_SECURE": "false"}.items():
        monkeypatch.setenv(f"PPC_{name}", value)
    monkeypatch.setenv("PPC_S3SYNC_CACHE_DIR", str(builder_cache_dir))
    # The server's own settings the Quickstart does not repeat (its ini already has them).
    for name, value in {"STORAGE_ENDPOINT_URL": moto_server, "SESSION_ENCRYPT_KEY": "e" * 32,
                        "SESSION_VALIDATE_KEY": "v" * 32}.items():
        monkeypatch.setenv(f"PPC_{name}", value)
    s3 = boto3.client("s3", region_name=region, endpoint_url=moto_server)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    # "Let the server load the plugin": pypicloud starts from this ini, and its first
    # start creates the DynamoDB cache's tables.
    assert make_app(tmp_path / "config.ini").get("/health", status="*").status_int < 500
    lam = boto3.client("lambda", region_name=region, endpoint_url=moto_server)

    expected = [
        (0, "Dry run: nothing was changed."),   # --dry-run
        (0, "Applied 6 changes"),               # create
        (0, "in sync"),                         # status
        (0, "in sync"),                         # reconcile: nothing was in the bucket
        (0, "Applied"),                         # delete
        (0, "wrote pypicloud_s3_sync.zip"),     # bundle
    ]
    assert len(commands) == len(expected)
    for command, (status, says) in zip(commands, expected, strict=True):
        capsys.readouterr()
        assert SCRIPTS[command[0]](command[1:]) == status, (command, capsys.readouterr())
        out = capsys.readouterr().out
        assert says in out, (command, out)
        if command[:1] == ["ppc-create-s3-sync"] and "--dry-run" in command:
            assert lam.list_functions()["Functions"] == []
        if command[1:2] == ["status"]:
            assert lam.get_function_configuration(
                FunctionName="pypicloud_s3_sync")["Runtime"] == DEFAULT_RUNTIME
    assert lam.list_functions()["Functions"] == []
    assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(
        Bucket=bucket)
    assert built_for(tmp_path / "pypicloud_s3_sync.zip") == (DEFAULT_RUNTIME, "x86_64")
