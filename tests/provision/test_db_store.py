"""``--store-db-password``: create keeps the ini's db.url in a secret it owns, the function
is pointed at it, re-running changes nothing, a changed password is an update whose
value is never shown, and delete removes exactly that secret."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.cli import main as cli_main
from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.provision import iam, operator_policy, tags

from ..support import aws_trace, moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REGION, write_zip
from ..support.pypicloud_app import write_ini

FUNCTION = "pypicloud_s3_sync"
NAME = f"pypicloud-s3sync/{FUNCTION}/{REGION}/db-url"
URL = "redis://:First-Store-Pass1@cache.internal:6379/0"


@pytest.fixture
def tracer(aws: None) -> Iterator[aws_trace.Tracer]:
    with aws_trace.tracing() as tracer:
        yield tracer


@pytest.fixture
def setup(tracer: aws_trace.Tracer, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    return tmp_path / "pypicloud.ini", str(write_zip(tmp_path / "function.zip"))


def write(ini: Path, url: str) -> str:
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, "pypi.db": "redis",
                    "db.url": url})
    return str(ini)


def stored_value(store: str) -> tuple[str, dict[str, str]]:
    if store == "ssm":
        ssm = boto3.client("ssm", region_name=REGION)
        value = ssm.get_parameter(Name="/" + NAME, WithDecryption=True)["Parameter"]["Value"]
        tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/" + NAME)
        return value, {t["Key"]: t["Value"] for t in tags["TagList"]}
    sm = boto3.client("secretsmanager", region_name=REGION)
    tags = sm.describe_secret(SecretId=NAME).get("Tags", [])
    return (sm.get_secret_value(SecretId=NAME)["SecretString"],
            {t["Key"]: t["Value"] for t in tags})


def function_settings() -> dict[str, str]:
    variables = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=FUNCTION)["Environment"]["Variables"]
    return json.loads(variables["PYPICLOUD_SETTINGS"])


@pytest.mark.parametrize("store", ["secretsmanager", "ssm"])
def test_create_keeps_db_url_in_its_own_secret_and_delete_removes_it(
        store: str, setup: tuple[Path, str], tracer: aws_trace.Tracer,
        capsys: pytest.CaptureFixture[str]) -> None:
    ini, bundle = setup
    every_call: list[aws_trace.Call] = []
    run_the_lifecycle(store, ini, bundle, capsys, tracer, every_call)
    # The operator's policy for this option allows each call, and needs each grant.
    policy = operator_policy.operator_policy(load_config(str(ini)), account=aws_trace.ACCOUNT,
                                 region=REGION, function_name=FUNCTION,
                                 store_db_password=store)
    requests = aws_trace.iam_requests(every_call)
    assert not aws_trace.denied(policy, requests)
    assert [grant for grant in aws_trace.unused_grants(policy, requests)
            if grant.startswith("StoredDatabaseSecret")] == []


def run_the_lifecycle(store: str, ini: Path, bundle: str,
                      capsys: pytest.CaptureFixture[str], tracer: aws_trace.Tracer,
                      commands: list[aws_trace.Call]) -> None:
    def main(argv: list[str]) -> int:  # the command, its AWS calls recorded
        with tracer.recording() as calls:
            status = cli_main(argv)
        commands.extend(calls)
        return status

    config = write(ini, URL)
    flag = ["--store-db-password", store]
    mine = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="operators-own", SecretString="redis://:Not-Ours-0@elsewhere:6379/0")["ARN"]

    assert main(["create", config, "--bundle", bundle, *flag]) == 0
    out = capsys.readouterr()
    assert "First-Store-Pass1" not in out.out + out.err
    value, found = stored_value(store)
    assert value == URL and found == {tags.MANAGED_TAG: tags.MANAGED_VALUE}
    settings = function_settings()
    assert "First-Store-Pass1" not in json.dumps(settings)
    assert settings["db.url"] == "redis://cache.internal:6379/0"
    assert NAME in settings["s3sync.db_url_secret"]
    policy = json.loads(json.dumps(boto3.client("iam").get_role_policy(
        RoleName=f"pypicloud-s3sync-{FUNCTION}-{REGION}"[:64], PolicyName=iam.POLICY_NAME)
        ["PolicyDocument"]))
    grants = [s for s in policy["Statement"] if s.get("Sid") == "DatabaseSecret"]
    assert len(grants) == 1 and NAME in grants[0]["Resource"]

    # Nothing changed: nothing to do, and not one mutating call.
    before = len(commands)
    assert main(["create", config, "--bundle", bundle, *flag]) == 0
    assert "Nothing to create" in capsys.readouterr().out
    assert [c.name for c in commands[before:] if not c.operation.startswith(
        ("Get", "List", "Describe", "Head"))] == []

    # A new password in the ini: the plan shows an update of the secret, not its value.
    config = write(ini, URL.replace("First", "Second"))
    assert main(["create", config, "--bundle", bundle, *flag, "--dry-run", "--json"]) == 0
    shown = capsys.readouterr().out
    steps = json.loads(shown)["plan"]["steps"]
    assert [(s["resource"], s["action"]) for s in steps] == [("db-secret", "update")]
    assert "Second-Store-Pass1" not in shown and "First-Store-Pass1" not in shown
    assert main(["create", config, "--bundle", bundle, *flag]) == 0
    assert "Second-Store-Pass1" not in capsys.readouterr().out
    assert stored_value(store)[0] == URL.replace("First", "Second")

    # delete finds it through the function (no flag needed) and removes only it.
    assert main(["delete", config]) == 0
    assert NAME in capsys.readouterr().out
    with pytest.raises(Exception, match="ParameterNotFound|ResourceNotFound"):
        stored_value(store)
    assert boto3.client("secretsmanager", region_name=REGION).describe_secret(
        SecretId=mine)["Name"] == "operators-own"


def test_a_secret_of_that_name_not_made_by_create_is_refused_and_kept(
        setup: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    ini, bundle = setup
    sm = boto3.client("secretsmanager", region_name=REGION)
    sm.create_secret(Name=NAME, SecretString="theirs")
    assert main(["create", write(ini, URL), "--bundle", bundle,
                 "--store-db-password", "secretsmanager"]) == 2
    err = capsys.readouterr().err
    assert "was not created by pypicloud-s3sync" in err and "s3sync.db_url_secret" in err
    assert sm.get_secret_value(SecretId=NAME)["SecretString"] == "theirs"


def test_the_roles_grant_names_the_one_stored_secret_as_iam_matches_it(
        setup: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    ini, bundle = setup
    assert main(["create", write(ini, URL), "--bundle", bundle,
                 "--store-db-password", "secretsmanager"]) == 0
    policy = boto3.client("iam").get_role_policy(
        RoleName=f"pypicloud-s3sync-{FUNCTION}-{REGION}"[:64],
        PolicyName=iam.POLICY_NAME)["PolicyDocument"]
    full_arn = boto3.client("secretsmanager", region_name=REGION).describe_secret(
        SecretId=NAME)["ARN"]
    as_moto = policy if isinstance(policy, dict) else json.loads(policy)
    allowed = aws_trace.Request("secretsmanager:GetSecretValue", full_arn)
    longer = aws_trace.Request("secretsmanager:GetSecretValue",
                               re.sub(r"db-url-", "db-url-other-", full_arn))
    assert aws_trace.denied(as_moto, [allowed, longer]) == [longer]
