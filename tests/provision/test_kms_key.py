"""``--kms-key-arn``: the function's environment is encrypted with the operator's key, the
role may decrypt with that key, and re-running changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.provision import iam

from ..support import moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REDIS, REGION, write_zip
from ..support.pypicloud_app import write_ini

FUNCTION = "pypicloud_s3_sync"


def test_the_environment_is_encrypted_with_the_given_key(
        aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS})
    bundle = str(write_zip(tmp_path / "function.zip"))
    flags = ["--bundle", bundle, "--kms-key-arn", key]

    assert main(["create", str(ini), *flags]) == 0
    capsys.readouterr()
    lam = boto3.client("lambda", region_name=REGION)
    assert lam.get_function_configuration(FunctionName=FUNCTION)["KMSKeyArn"] == key
    policy = boto3.client("iam").get_role_policy(
        RoleName=iam.role_name(FUNCTION, REGION), PolicyName=iam.POLICY_NAME)["PolicyDocument"]
    policy = policy if isinstance(policy, dict) else json.loads(policy)
    assert [s["Resource"] for s in policy["Statement"] if s.get("Sid") == "EnvironmentKey"] \
        == [key]

    assert main(["create", str(ini), *flags, "-f"]) == 0
    assert "Nothing to create" in capsys.readouterr().out

    # Dropping the option goes back to Lambda's own key, with -f like any other change.
    assert main(["create", str(ini), "--bundle", bundle, "-f", "--dry-run", "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)["plan"]["steps"]
    update = [s for s in steps if s["call"] == "lambda.update_function_configuration"]
    assert update and update[0]["params"]["KMSKeyArn"] == ""
    assert update[0]["details"]["changed"] == ["KMSKeyArn"]


def test_a_key_that_is_no_kms_arn_is_refused(aws: None, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS})
    assert main(["create", str(ini), "--kms-key-arn", "alias/mine", "--dry-run"]) == 2
    assert "arn:aws:kms:REGION:ACCOUNT:key/ID" in capsys.readouterr().err
