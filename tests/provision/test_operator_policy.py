"""The operator's policy (``operator_policy.operator_policy``, printed in docs/resources.rst) allows
every AWS call the commands make, and grants nothing they do not need.

The commands run as operators run them (``ppc-s3sync ...`` in process, moto underneath)
through create with direct and EventBridge delivery, ``--reconcile-every``,
``--on-failure``, ``--alarm-topic`` (made, changed, then dropped), a VPC, updates with
``-f``, status, reconcile (plain and deep), delete, with the role made by create or
given with ``-a``; every call is traced
(tests/support/aws_trace.py) and judged by moto's IAM evaluator against the policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.provision import iam, operator_policy

from ..support import account, aws_trace, moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REGION, write_zip
from ..support.pypicloud_app import create_dynamo_tables, write_ini

FUNCTION = "pypicloud_s3_sync"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "resources.rst"


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


@pytest.fixture
def tracer(aws: None) -> Iterator[aws_trace.Tracer]:
    with aws_trace.tracing() as tracer:
        yield tracer


def settings_for(backend: str, cache_settings: Any) -> dict[str, str]:
    if backend == "dynamo":
        settings = {"pypi.db": "dynamo", "db.region_name": REGION, "db.namespace": "prod-"}
        create_dynamo_tables(settings)  # the pypicloud server's first start
        return settings
    return cache_settings(backend)


class Operator:
    """Runs commands against one ini, recording the AWS calls of each."""

    def __init__(self, ini: str, tracer: aws_trace.Tracer) -> None:
        self.ini = ini
        self.tracer = tracer
        self.calls: list[tuple[str, list[aws_trace.Call]]] = []

    def run(self, *args: str, expect: int = 0) -> None:
        command = " ".join(args)
        with self.tracer.recording() as calls:
            status = main([args[0], self.ini, *args[1:]])
        assert status == expect, command
        self.calls.append((command, calls))

    def requests(self) -> list[aws_trace.Request]:
        return aws_trace.iam_requests(c for _, calls in self.calls for c in calls)

    def check(self, policy: dict[str, Any]) -> None:
        refused = aws_trace.denied(policy, self.requests())
        assert not refused, "the operator policy refuses:\n" + aws_trace.describe(refused)


def upload(name: str) -> str:
    key = f"{PREFIX}{name}/{name}-1.0.tar.gz"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=key, Body=b"x", Metadata={"name": name, "version": "1.0"})
    return key


@pytest.mark.parametrize("backend", ["redis", "dynamo"])
def test_every_command_path_is_allowed_and_every_grant_is_needed(
    tracer: aws_trace.Tracer, cache_settings: Any, backend: str,
    restore_dynamo_models: None, tmp_path: Path,
) -> None:
    settings = {**settings_for(backend, cache_settings), "storage.bucket": BUCKET,
                "storage.prefix": PREFIX}
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, settings)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    # Encrypted with a customer key named by alias: create reads the queue's key for the
    # role's grant, and asks KMS which key the alias names.
    kms = boto3.client("kms", region_name=REGION)
    kms.create_alias(AliasName="alias/dead-letters",
                     TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    queue = boto3.client("sqs", region_name=REGION).create_queue(
        QueueName="dead-letters", Attributes={"KmsMasterKeyId": "alias/dead-letters"})
    dead_letters = f"arn:aws:sqs:{REGION}:{aws_trace.ACCOUNT}:dead-letters"
    assert queue["QueueUrl"].endswith("dead-letters")
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="ops")["TopicArn"]
    zip_one = str(write_zip(tmp_path / "one.zip"))
    zip_two = str(write_zip(tmp_path / "two.zip", "def handle_event(e, c):\n    return 1\n"))

    op = Operator(str(ini), tracer)
    op.run("create", "--bundle", zip_one, "--dry-run")
    op.run("create", "--bundle", zip_one)
    op.run("create", "--bundle", zip_one)
    op.run("status", "--bundle", zip_one)
    # Drift an operator repairs with -f: new code, new settings, a changed trust policy.
    boto3.client("iam").update_assume_role_policy(
        RoleName=iam.role_name(FUNCTION, REGION), PolicyDocument=json.dumps(
            {**iam.trust_policy(), "Statement": [
                {**iam.trust_policy()["Statement"][0],
                 "Principal": {"Service": "edgelambda.amazonaws.com"}}]}))
    op.run("status", "--bundle", zip_two, expect=3)
    op.run("create", "-f", "--bundle", zip_two, "--memory", "512", "--retry-attempts", "1",
           "--reserved-concurrency", "4", "--alarm-topic", topic)
    op.run("create", "-f", "--bundle", zip_two, "--memory", "512", "--retry-attempts", "1",
           "--reserved-concurrency", "4", "--alarm-topic", topic, "--alarm-lag", "60")
    op.run("status", "--bundle", zip_two, "--memory", "512", "--retry-attempts", "1",
           "--reserved-concurrency", "4", "--alarm-topic", topic, "--alarm-lag", "60")
    op.run("create", "-f", "--bundle", zip_two, "--memory", "512", "--delivery",
           "eventbridge", "--reconcile-every", "1d", "--on-failure", dead_letters,
           "--reserved-concurrency", "off")
    op.run("status", "--bundle", zip_two, "--memory", "512", "--delivery", "eventbridge",
           "--reconcile-every", "1d", "--on-failure", dead_letters,
           "--reserved-concurrency", "off")
    upload("alpha")
    beta = upload("beta")
    op.run("reconcile", expect=3)  # 3: it found drift (two packages added)
    s3.delete_object(Bucket=BUCKET, Key=beta)
    op.run("reconcile", "--deep", expect=3)  # one removed
    op.run("reconcile")
    op.run("create", "-f", "--bundle", zip_two, "--memory", "512", "--on-failure", topic)
    # The queue path: made, changed (both queues and the mapping), read, then left.
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    op.run("create", "-f", "--bundle", zip_two, "--memory", "512", "--delivery", "sqs",
           "--alarm-topic", topic)
    op.run("create", "-f", "--bundle", zip_two, "--memory", "512", "--delivery", "sqs",
           "--alarm-topic", topic, "--queue-kms-key-arn", key, "--batch-size", "5")
    op.run("status", "--bundle", zip_two, "--memory", "512", "--delivery", "sqs",
           "--alarm-topic", topic, "--queue-kms-key-arn", key, "--batch-size", "5")
    account.consume_our_queues(lambda service: boto3.client(service, region_name=REGION))
    op.run("create", "-f", "--bundle", zip_two, "--memory", "512")  # back to direct
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="sync",
                                      Description="sync")["GroupId"]
    in_vpc = ("--bundle", zip_two, "--memory", "512", "--subnet-ids", subnet,
              "--security-group-ids", group)
    op.run("create", "-f", *in_vpc)
    op.run("status", *in_vpc, expect=3)  # 3: no gateway endpoint, no NAT
    op.run("delete", "--dry-run")
    op.run("delete")
    op.run("delete")

    config = load_config(str(ini))
    policy = operator_policy.operator_policy(config, account=aws_trace.ACCOUNT, region=REGION,
                                 function_name=FUNCTION, subnet_ids=[subnet])
    op.check(policy)
    unused = aws_trace.unused_grants(policy, op.requests())
    assert not unused, f"granted but never needed by a traced command: {unused}"
    # Bundle building calls no AWS API (traced in test_bundle_calls_no_aws).
    assert not any(c.service == "dynamodb" and c.operation in ("ListTables", "CreateTable")
                   for _, calls in op.calls for c in calls)


def test_a_given_role_is_only_read_and_passed(
    tracer: aws_trace.Tracer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = {"pypi.db": "redis", "db.url": "redis://cache.internal:6379/0",
                "storage.bucket": BUCKET, "storage.prefix": PREFIX}
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, settings)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    role = boto3.client("iam").create_role(
        RoleName="platform-team-role",
        AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))["Role"]["Arn"]
    monkeypatch.setitem(aws_trace.KNOWN_ROLES, "platform-team-role", role)
    bundle = str(write_zip(tmp_path / "function.zip"))

    op = Operator(str(ini), tracer)
    op.run("create", "--bundle", bundle, "-a", role)
    op.run("status", "--bundle", bundle, "-a", role)
    op.run("delete", "-a", role)
    policy = operator_policy.operator_policy(load_config(str(ini)), account=aws_trace.ACCOUNT,
                                 region=REGION, function_name=FUNCTION, given_role=role)
    op.check(policy)
    granted = {a for s in policy["Statement"] for a in s["Action"] if a.startswith("iam:")}
    assert granted == {"iam:GetRole", "iam:PassRole"}
    assert {r.action for r in op.requests() if r.action.startswith("iam:")} == granted


@pytest.mark.slow
def test_bundle_calls_no_aws(tracer: aws_trace.Tracer, tmp_path: Path) -> None:
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"pypi.db": "redis", "db.url": "redis://cache.internal:6379/0",
                    "storage.bucket": BUCKET})
    op = Operator(str(ini), tracer)
    op.run("bundle", "-o", str(tmp_path / "function.zip"), "-q")
    assert op.calls == [(f"bundle -o {tmp_path / 'function.zip'} -q", [])]


@pytest.mark.parametrize("extras", [{}, {"given_role": "arn:aws:iam::123456789012:role/x"},
                                    {"subnet_ids": ["subnet-1"]}],
                         ids=["own-role", "given-role", "vpc"])
@pytest.mark.parametrize("backend", ["redis", "dynamo"])
def test_the_operator_policy_passes_parliament(backend: str, extras: dict[str, Any],
                                               tmp_path: Path) -> None:
    config = aws_trace.lint_config(tmp_path, backend, bucket=BUCKET, region=REGION,
                                   prefix=PREFIX)
    policy = operator_policy.operator_policy(config, account=aws_trace.ACCOUNT, region=REGION,
                      function_name=FUNCTION, **extras)
    assert aws_trace.parliament_findings(policy) == []


def documented_policies() -> dict[str, dict[str, Any]]:
    """The JSON policies in docs/resources.rst, by the label comment before each."""
    text = DOCS.read_text(encoding="utf-8")
    found = {}
    for label, body in re.findall(
            r"\.\. policy: (\S+)\n\n.*?::\n\n((?:    [^\n]*\n|\n)+)", text, flags=re.S):
        found[label] = json.loads(body)
    return found


def test_the_documented_policies_are_what_the_code_generates(tmp_path: Path) -> None:
    """docs/resources.rst's example: bucket acme-packages, prefix pypi/, DynamoDB cache
    with db.namespace prod- in eu-west-1, account 111122223333; replicating to
    acme-packages-us when several inis are given."""
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": "acme-packages", "storage.prefix": "pypi/",
                    "storage.region_name": "eu-west-1", "pypi.db": "dynamo",
                    "db.region_name": "eu-west-1", "db.namespace": "prod-"})
    config = load_config(str(ini))
    where = {"account": "111122223333", "region": "eu-west-1", "function_name": FUNCTION}
    documented = documented_policies()
    single = operator_policy.operator_policy(config, **where)
    several = operator_policy.operator_policy(config, replicates=True, **where)
    assert documented == {
        "role": iam.role_policy(config, **where),
        "operator": single,
        "replication-role": iam.replication_policy("acme-packages", "pypi/",
                                                   ["acme-packages-us"], "aws"),
        "operator-replication": {"Version": several["Version"], "Statement": [
            statement for statement in several["Statement"]
            if statement not in single["Statement"]]},
    }
    for policy in documented.values():
        assert aws_trace.parliament_findings(policy) == []
