"""The commands as operators run them: in process, and as installed scripts against a
moto server over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.provision import iam, notifications, tags

from ..support import moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REDIS, REGION, snapshot, write_zip
from ..support.pypicloud_app import write_ini

BIN = Path(sys.executable).parent
FUNCTION = "pypicloud_s3_sync"


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


def ini(tmp_path: Path, **settings: str) -> str:
    path = tmp_path / "pypicloud.ini"
    write_ini(path, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS, **settings})
    return str(path)


@pytest.fixture
def setup(aws, tmp_path):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    return ini(tmp_path), str(write_zip(tmp_path / "function.zip"))


def test_dry_run_prints_the_plan_and_changes_nothing(setup, capsys):
    config, bundle = setup
    before = snapshot()
    assert main(["create", config, "--bundle", bundle, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Plan to create pypicloud_s3_sync in us-east-1" in out
    assert "+ create IAM role pypicloud-s3sync-pypicloud_s3_sync" in out
    assert "Dry run: nothing was changed." in out
    assert snapshot() == before


def test_create_status_delete_round_trip(setup, capsys):
    config, bundle = setup
    before = snapshot()
    assert main(["create", config, "--bundle", bundle]) == 0
    captured = capsys.readouterr()
    assert "Applied 6 changes" in captured.out
    assert "[3/6] create function" in captured.err  # progress goes to stderr

    assert main(["create", config, "--bundle", bundle]) == 0
    assert "Nothing to create" in capsys.readouterr().out

    assert main(["status", config, "--bundle", bundle]) == 0
    assert "in sync" in capsys.readouterr().out
    boto3.client("lambda", region_name=REGION).update_function_configuration(
        FunctionName=FUNCTION, MemorySize=1024)
    assert main(["status", config, "--bundle", bundle]) == 3
    out = capsys.readouterr().out
    assert "DRIFT function" in " ".join(out.split())
    assert main(["status", config, "--bundle", bundle, "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["in_sync"] is False
    assert [f["call"] for f in report["fix"]] == ["lambda.update_function_configuration"]

    assert main(["delete", config, "--dry-run"]) == 0
    assert "- delete function pypicloud_s3_sync" in capsys.readouterr().out
    assert main(["delete", config]) == 0
    assert snapshot() == before


def test_json_output_is_one_document(setup, capsys):
    config, bundle = setup
    assert main(["create", config, "--bundle", bundle, "--json", "-n", "other-name",
                 "--memory", "512", "--delivery", "eventbridge"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["plan"]["function"] == "other-name"
    # What was applied is what the plan in the same document said, step for step.
    assert [(r["call"], r["name"]) for r in document["applied"]] == [
        (s["call"], s["name"]) for s in document["plan"]["steps"]]
    assert boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName="other-name")["MemorySize"] == 512


def test_withheld_password_stops_with_one_line(aws, tmp_path, capsys):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    config = ini(tmp_path, **{"pypi.db": "sql",
                              "db.url": "mysql+pymysql://pypi:s3cret@db.internal/pypi"})
    bundle = str(write_zip(tmp_path / "function.zip"))
    assert main(["create", config, "--bundle", bundle]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("ppc-s3sync create: error: db.url holds a password "
                          "(mysql+pymysql://pypi:***@db.internal/pypi)")
    assert "--allow-db-password" in err and "s3cret" not in err


def test_overlap_error_from_the_command(setup, capsys):
    config, bundle = setup
    arn = boto3.client("sns", region_name=REGION).create_topic(Name="all")["TopicArn"]
    boto3.client("s3", region_name=REGION).put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"TopicConfigurations": [
            {"Id": "everything", "TopicArn": arn, "Events": ["s3:ObjectRemoved:*"]}]})
    assert main(["create", config, "--bundle", bundle]) == 2
    err = capsys.readouterr().err
    assert "'everything'" in err and "--delivery eventbridge" in err


def test_missing_given_role_is_a_clear_error(setup, capsys):
    config, bundle = setup
    assert main(["create", config, "--bundle", bundle, "-a",
                 "arn:aws:iam::123456789012:role/missing"]) == 2
    err = capsys.readouterr().err
    assert "role given with -a (arn:aws:iam::123456789012:role/missing) does not exist" in err


def test_aws_refusal_is_one_line_not_a_traceback(setup, capsys, monkeypatch):
    from pypicloud_s3sync.provision import deploy, executor

    config, bundle = setup
    monkeypatch.setattr(executor, "ROLE_BACKOFF", ())  # no waiting for a role that never comes
    # Someone deletes the role between plan and apply: Lambda refuses create_function.
    real_plan = deploy.plan_create

    def plan_then_lose_role(config, options, clients, **kwargs):
        plan = real_plan(config, options, clients, **kwargs)
        boto3.client("iam").delete_role(RoleName="platform")
        return plan

    boto3.client("iam").create_role(RoleName="platform",
                                    AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))
    monkeypatch.setattr(deploy, "plan_create", plan_then_lose_role)
    code = main(["create", config, "--bundle", bundle, "-a",
                 "arn:aws:iam::123456789012:role/platform"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]  # progress lines come before it
    assert last.startswith("ppc-s3sync create: error: step 1/4 (create function")
    assert "cannot be assumed" in last and "run the command again" in last


# -- the installed scripts -------------------------------------------------------------------

def test_installed_script_is_ours_not_pypiclouds():
    """pypicloud and we both declare ppc-create-s3-sync; the file pip left is ours."""
    declared = {ep.value for ep in entry_points(group="console_scripts",
                                                name="ppc-create-s3-sync")}
    assert "pypicloud_s3sync.cli:create_main" in declared
    script = BIN / "ppc-create-s3-sync"
    assert "from pypicloud_s3sync.cli import create_main" in script.read_text()
    result = subprocess.run([str(script), "-h"], capture_output=True, text=True, check=True)
    assert "--dry-run" in result.stdout and "--delivery" in result.stdout
    for name in ("ppc-delete-s3-sync", "ppc-s3sync"):
        assert "pypicloud_s3sync.cli" in (BIN / name).read_text()


@pytest.mark.slow
def test_installed_scripts_against_a_moto_server(moto_server, tmp_path):
    """End to end over HTTP: the scripts on PATH, a separate process, --endpoint-url."""
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_server)
    queue = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName="audit")["QueueUrl"],
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    foreign = {"QueueConfigurations": [{"Id": "audit", "QueueArn": queue,
                                        "Events": ["s3:ObjectCreated:*"],
                                        "Filter": {"Key": {"FilterRules": [
                                            {"Name": "prefix", "Value": "audit/"}]}}}]}
    s3.put_bucket_notification_configuration(Bucket=BUCKET,
                                             NotificationConfiguration=foreign)
    before = snapshot(endpoint_url=moto_server)
    config = ini(tmp_path)
    bundle = str(write_zip(tmp_path / "function.zip"))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=120)

    created = run("ppc-create-s3-sync", config, "--bundle", bundle,
                  "--endpoint-url", moto_server)
    assert created.returncode == 0, created.stderr
    assert "Applied 6 changes" in created.stdout

    again = run("ppc-create-s3-sync", config, "--bundle", bundle, "--endpoint-url",
                moto_server, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["plan"]["steps"] == []

    status = run("ppc-s3sync", "status", config, "--bundle", bundle,
                 "--endpoint-url", moto_server)
    assert status.returncode == 0, status.stdout + status.stderr

    config_now = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    assert config_now["QueueConfigurations"] == before["notification"]["QueueConfigurations"]
    ours = [e["Id"] for e in config_now["LambdaFunctionConfigurations"]]
    assert ours == [notifications.entry_id(FUNCTION)]
    role = boto3.client("iam", endpoint_url=moto_server).get_role(
        RoleName=iam.role_name(FUNCTION, REGION))["Role"]
    assert {t["Key"] for t in role["Tags"]} == {tags.MANAGED_TAG}

    deleted = run("ppc-delete-s3-sync", config, "--endpoint-url", moto_server)
    assert deleted.returncode == 0, deleted.stderr
    assert snapshot(endpoint_url=moto_server) == before


@pytest.mark.slow
def test_create_builds_the_real_bundle_and_rerun_with_force_skips_unchanged_code(
        setup, capsys):
    """No --bundle: the command builds the zip; reproducible builds make -f a no-op."""
    from pypicloud_s3sync.bundle.builder import build_bundle
    from pypicloud_s3sync.config import load_config

    config, _ = setup
    assert main(["create", config]) == 0
    built = build_bundle(load_config(config))
    fn = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=FUNCTION)
    assert fn["CodeSha256"] == built.sha256
    assert fn["CodeSize"] == built.size
    assert fn["Runtime"] == built.runtime
    capsys.readouterr()
    assert main(["create", config, "-f"]) == 0
    assert "Nothing to create" in capsys.readouterr().out


def test_delete_removes_the_rest_when_the_bucket_is_gone(setup, capsys):
    """Someone deleted the bucket first: delete still removes the function, its role
    and the rest of ours, says that it could not reach the bucket, and exits 0; create
    and status still refuse, since they would make a sync for a bucket that is not
    there."""
    config, bundle = setup
    assert main(["create", config, "--bundle", bundle, "--reconcile-every", "1d"]) == 0
    boto3.client("s3", region_name=REGION).delete_bucket(Bucket=BUCKET)
    capsys.readouterr()

    assert main(["delete", config]) == 0
    out = capsys.readouterr().out
    assert f"bucket {BUCKET} does not exist: its notification configuration could not " \
           "be reached" in " ".join(out.split())
    assert f"- delete function {FUNCTION}" in out
    lam = boto3.client("lambda", region_name=REGION)
    assert lam.list_functions()["Functions"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []
    assert boto3.client("events", region_name=REGION).list_rules()["Rules"] == []

    for command in (["create", config, "--bundle", bundle], ["status", config]):
        assert main(command) != 0
        err = capsys.readouterr().err
        assert "start pypicloud once so that it creates the bucket" in err, command
