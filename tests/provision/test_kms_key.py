"""``--kms-key-arn``: the function's environment is encrypted with the operator's key, the
role may decrypt with that key, and re-running changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.provision import iam, operator_policy

from ..support import aws_trace, moto_gaps
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


def test_the_operator_policy_grants_what_lambda_does_with_the_callers_key(
        aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """"To use a customer managed CMK, you need permission to use the key. Lambda uses
    your permissions to create a grant on the key [...] ``kms:CreateGrant``,
    ``kms:Encrypt`` – To configure a customer managed CMK on a function.
    ``kms:Decrypt`` – To view and manage environment variables that are encrypted with
    a customer managed CMK." (Lambda developer guide, "Securing environment variables")

    Create, status, an update with -f and delete, traced and judged with aws_trace's
    table, are all allowed by the operator's policy for the key, which grants the three
    on exactly that key and nothing it does not use."""
    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS})
    bundle = str(write_zip(tmp_path / "function.zip"))
    flags = ["--bundle", bundle, "--kms-key-arn", key]
    with aws_trace.tracing() as tracer, tracer.recording() as traced:
        assert main(["create", str(ini), *flags]) == 0
        assert main(["status", str(ini), *flags]) == 0
        assert main(["create", str(ini), *flags, "-f", "--memory", "512"]) == 0
        assert main(["delete", str(ini)]) == 0
    capsys.readouterr()

    policy = operator_policy.operator_policy(
        load_config(str(ini)), account=aws_trace.ACCOUNT, region=REGION,
        function_name=FUNCTION, kms_key_arn=key)
    requests = aws_trace.iam_requests(traced)
    assert {r.action for r in requests if r.action.startswith("kms:")} == {
        "kms:CreateGrant", "kms:Encrypt", "kms:Decrypt"}
    refused = aws_trace.denied(policy, requests)
    assert not refused, aws_trace.describe(refused)
    key_use = {"kms:CreateGrant", "kms:Encrypt", "kms:Decrypt"}
    kms = [s for s in policy["Statement"] if key_use & set(s["Action"])]
    assert [s["Resource"] for s in kms] == [key]
    assert [g for g in aws_trace.unused_grants(policy, requests)
            if any(f"{action} " in g for action in key_use)] == []


def test_an_environment_the_caller_cannot_decrypt_is_not_reported_as_changed(
        aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller without ``kms:Decrypt`` on the key gets ``Environment.Error`` instead of
    the variables: "Users without Decrypt permissions can still manage functions, but
    they can't view environment variables" (Lambda developer guide, "Securing
    environment variables"); botocore's ``EnvironmentResponse``: "If it fails, the
    response contains details about the error" (``Error``: ``ErrorCode``, ``Message``).

    Status and create say they cannot tell and name the permission, plan no update that
    would replace variables they cannot see, and delete still removes the secret create
    made for the function."""
    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, "pypi.db": "redis",
                    "db.url": "redis://:Kms-Test-Pass1@cache.internal:6379/0"})
    bundle = str(write_zip(tmp_path / "function.zip"))
    flags = ["--bundle", bundle, "--kms-key-arn", key, "--store-db-password", "secretsmanager"]
    assert main(["create", str(ini), *flags]) == 0
    capsys.readouterr()
    moto_gaps.environment_unreadable(
        monkeypatch, "AccessDeniedException",
        "Lambda was unable to decrypt the environment variables because KMS access was "
        "denied.")

    assert main(["status", str(ini), *flags]) == 0
    out = capsys.readouterr().out
    assert "differs" not in out and "DRIFT" not in out
    assert "environment" in out and "kms:Decrypt" in out and key in out

    assert main(["create", str(ini), *flags, "-f", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert [s["call"] for s in plan["steps"]
            if s["call"] == "lambda.update_function_configuration"] == []
    assert any("kms:Decrypt" in w and key in w for w in plan["warnings"])

    assert main(["delete", str(ini)]) == 0
    capsys.readouterr()
    sm = boto3.client("secretsmanager", region_name=REGION)
    assert [s["Name"] for s in sm.list_secrets()["SecretList"]] == []
    assert boto3.client("lambda", region_name=REGION).list_functions()["Functions"] == []


def test_delete_refuses_when_neither_the_environment_nor_the_secrets_can_be_read(
        aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variables ("Users without Decrypt permissions [...] can't view
    environment variables", Lambda developer guide, "Securing environment variables")
    and without read access to the secrets of our naming, delete cannot know whether
    one holds db.url: it refuses before any step, naming what to allow, rather than
    deleting the function and leaving the secret behind unnamed."""
    from botocore.exceptions import ClientError

    from pypicloud_s3sync.provision.errors import DeployError
    from pypicloud_s3sync.provision.operation import run
    from pypicloud_s3sync.provision.options import DeployOptions

    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, "pypi.db": "redis",
                    "db.url": "redis://:Kms-Test-Pass1@cache.internal:6379/0"})
    assert main(["create", str(ini), "--bundle", str(write_zip(tmp_path / "f.zip")),
                 "--kms-key-arn", key, "--store-db-password", "ssm"]) == 0
    capsys.readouterr()
    moto_gaps.environment_unreadable(monkeypatch, "AccessDeniedException", "denied")
    session = boto3.Session()

    def refuse(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}},
                          model.name)

    session.events.register("before-call.secretsmanager.DescribeSecret", refuse)
    session.events.register("before-call.ssm.GetParameter", refuse)
    config = load_config(str(ini))
    with pytest.raises(DeployError) as refused:
        run(config, DeployOptions.from_config(config), "delete", session=session)
    message = str(refused.value)
    assert f"kms:Decrypt on {key}" in message and "s3sync.store_db_password" in message
    assert len(message.splitlines()) == 1
    assert [f["FunctionName"] for f in boto3.client(
        "lambda", region_name=REGION).list_functions()["Functions"]] == [FUNCTION]
