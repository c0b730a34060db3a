"""ARNs the settings accept that IAM never matches: a grant on them is a grant on
nothing, so the function (or the operator) is refused on AWS although every check here
passed.

* A Secrets Manager ARN without the six characters AWS appends finds the secret, but
  IAM authorises the call on the secret's full ARN: the grant must match any suffix.
* A KMS alias (name or ARN) selects a key for Lambda or a decrypt, but IAM matches a
  key only by its key ARN: the settings that grant a key take nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.provision import iam, operator_policy

from ..support import aws_trace, moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REDIS, REGION, write_zip
from ..support.pypicloud_app import write_ini

FUNCTION = "pypicloud_s3_sync"


def test_a_secret_arn_without_its_suffix_is_granted_as_iam_authorises_it(
        aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """"Secrets Manager constructs the last part of the secret ARN by appending a dash
    and six random alphanumeric characters at the end of the secret name" (Secrets
    Manager user guide, "Permissions reference"), and "Using '??????' as a wildcard to
    match the 6 random characters assigned by Secrets Manager" grants exactly that
    secret (user guide, "Limiting access to specific secrets").  GetSecretValue takes
    the ARN without them ("You can specify a partial ARN too", botocore's SecretId).

    With ``s3sync.db_url_secret`` given so, the role create writes allows the
    function's read, and the operator's policy allows create's own read of it."""
    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    full = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="pypi-db", SecretString="redis://:Db-Pass-1@cache.internal:6379/0")["ARN"]
    partial = full[:-len("-AbCdEf")]
    assert partial.endswith(":secret:pypi-db")
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS,
                    "s3sync.db_url_secret": partial})
    with aws_trace.tracing() as tracer, tracer.recording() as traced:
        assert main(["create", str(ini), "--bundle", str(write_zip(tmp_path / "f.zip"))]) == 0
    capsys.readouterr()

    role = iam.parse_document(boto3.client("iam").get_role_policy(
        RoleName=iam.role_name(FUNCTION, REGION), PolicyName=iam.POLICY_NAME)
        ["PolicyDocument"])
    # What the function calls (function.dbsecret.read_value), as IAM sees it.
    function_read = aws_trace.iam_requests([aws_trace.Call(
        "secretsmanager", "GetSecretValue", REGION, {"SecretId": partial})])
    assert function_read[0].resource != partial
    assert not aws_trace.denied(role, function_read), aws_trace.describe(function_read)

    operator = operator_policy.operator_policy(
        load_config(str(ini)), account=aws_trace.ACCOUNT, region=REGION,
        function_name=FUNCTION)
    refused = aws_trace.denied(operator, aws_trace.iam_requests(traced))
    assert not refused, aws_trace.describe(refused)
    # Exactly that secret: not another whose name only starts the same.
    other = aws_trace.iam_requests([aws_trace.Call(
        "secretsmanager", "GetSecretValue", REGION, {"SecretId": partial + "-old-Ab12Cd"})])
    assert aws_trace.denied(role, other) == other


def test_a_full_secret_arn_is_granted_as_given(aws: None, tmp_path: Path) -> None:
    """A complete ARN already names the one secret: it is granted as it is."""
    full = f"arn:aws:secretsmanager:{REGION}:{aws_trace.ACCOUNT}:secret:pypi-db-AbCdEf"
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, **REDIS, "s3sync.db_url_secret": full})
    policy = iam.role_policy(load_config(str(ini)), account=aws_trace.ACCOUNT, region=REGION,
                             function_name=FUNCTION)
    assert [s["Resource"] for s in policy["Statement"]
            if s["Sid"] == "DatabaseSecret"] == [full]


KEY = f"arn:aws:kms:{REGION}:{aws_trace.ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALIAS = f"arn:aws:kms:{REGION}:{aws_trace.ACCOUNT}:alias/pypi"
SECRET = f"arn:aws:ssm:{REGION}:{aws_trace.ACCOUNT}:parameter/pypi-db"


@pytest.mark.parametrize(("where", "value"), [
    ("--kms-key-arn", ALIAS),
    ("s3sync.kms_key_arn", ALIAS),
    ("s3sync.db_url_secret_kms_key", ALIAS),
    ("s3sync.db_url_secret_kms_key", "alias/pypi"),
    ("s3sync.db_url_secret_kms_key", "1234abcd-12ab-34cd-56ef-1234567890ab"),
])
def test_every_kms_setting_takes_a_key_arn_and_nothing_iam_ignores(
        aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str,
        value: str) -> None:
    """"To specify a KMS key in an IAM policy statement, you must use its key ARN. You
    cannot use a key id, alias name, or alias ARN to identify a KMS key in an IAM policy
    statement." (KMS developer guide, "Specifying KMS keys in IAM policy statements")

    Each setting whose key the role or the operator is granted stops the command before
    anything is read, in one line that says how to find the key ARN."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="pypi-db", Value="redis://:Db-Pass-1@cache.internal:6379/0", Type="SecureString")
    settings = {"storage.bucket": BUCKET, **REDIS, "s3sync.db_url_secret": SECRET}
    flags = [where, value] if where.startswith("--") else []
    if not flags:
        settings[where] = value
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, settings)
    assert main(["create", str(ini), "--dry-run", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert value in err and "arn:aws:kms:REGION:ACCOUNT:key/ID" in err
    assert "aws kms describe-key" in err


@pytest.mark.parametrize("setting", ["kms_key_arn", "db_url_secret_kms_key"])
def test_a_key_arn_is_taken_by_every_kms_setting(aws: None, tmp_path: Path,
                                                 setting: str) -> None:
    """The form the refusals ask for is accepted, and granted as it is."""
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, **REDIS, "s3sync.db_url_secret": SECRET,
                    f"s3sync.{setting}": KEY})
    config = load_config(str(ini))
    policy = operator_policy.operator_policy(config, account=aws_trace.ACCOUNT,
                                             region=REGION, function_name=FUNCTION)
    assert KEY in json.dumps(policy)
