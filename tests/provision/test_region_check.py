"""The sync is planned in the bucket's own region or not at all: S3 notifies only
functions there, and on AWS a plan for another region would fail at the notification
after creating the role and the function."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from pypicloud_s3sync import cli

from ..support.deploy_helpers import BUCKET, PREFIX, REDIS, write_zip
from ..support.pypicloud_app import write_ini

BUCKET_REGION = "eu-west-1"


@pytest.fixture
def bucket_in_ireland(aws: None) -> None:
    boto3.client("s3", region_name=BUCKET_REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": BUCKET_REGION})


def _ini(tmp_path: Path, region: str) -> str:
    path = tmp_path / "pypicloud.ini"
    write_ini(path, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS,
                     "storage.region_name": region})
    return str(path)


def _functions(region: str) -> list[str]:
    return [f["FunctionName"] for f in
            boto3.client("lambda", region_name=region).list_functions()["Functions"]]


def _roles() -> list[str]:
    return [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]]


@pytest.mark.parametrize("region, flags", [
    ("", []),                                   # the profile's region (us-east-1 here)
    (BUCKET_REGION, ["-r", "us-west-2"]),       # -r names another region
])
def test_a_plan_for_another_region_is_refused_before_anything_changes(
        bucket_in_ireland: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        region: str, flags: list[str]) -> None:
    ini = _ini(tmp_path, region)
    bundle = str(write_zip(tmp_path / "f.zip"))
    planned_in = flags[1] if flags else "us-east-1"
    for command in (["create", ini, "--bundle", bundle], ["status", ini, "--bundle", bundle],
                    ["delete", ini]):
        assert cli.main([*command, *flags]) == cli.EXIT_CONFIG
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert (f"error: bucket {BUCKET} is in {BUCKET_REGION}, but the sync would be set "
                f"up in {planned_in}") in err
        assert f"set storage.region_name = {BUCKET_REGION} in the ini, or -r {BUCKET_REGION}" \
            in err
    assert _functions(planned_in) == [] and _roles() == []


def test_the_bucket_region_plans_as_before(bucket_in_ireland: None, tmp_path: Path) -> None:
    ini = _ini(tmp_path, BUCKET_REGION)
    assert cli.main(["create", ini, "--bundle", str(write_zip(tmp_path / "f.zip"))]) == 0
    assert _functions(BUCKET_REGION) == ["pypicloud_s3_sync"]
