"""The exported template against what ``create`` makes on moto, field by field.

An operator who deploys the template instead of running create must get the same role
policy, function, environment, permissions, rules and async settings; the template is
resolved as CloudFormation would (pseudo parameters, Ref, GetAtt) and compared with
what AWS (moto) holds after create.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import zipfile

import boto3
import pytest

from pypicloud_s3sync import cli
from pypicloud_s3sync.bundle.archive import zip_sha256
from pypicloud_s3sync.provision import (
    bucket_resource,
    cloudformation,
    deploy,
    iam,
    names,
    notifications,
    resource_zip,
)
from pypicloud_s3sync.provision.names import SCHEDULE_PRINCIPAL, statement_id
from pypicloud_s3sync.provision.plan import OK

from ..support import moto_gaps
from ..support.deploy_helpers import (
    BUCKET,
    PREFIX,
    REGION,
    clients_for,
    make_config,
    snapshot,
    write_zip,
)

FUNCTION = "pypicloud_s3_sync"
QUEUE = f"arn:aws:sqs:{REGION}:123456789012:failed-events"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:ops"
CACHES = {
    "redis": {},
    "sql": {"pypi.db": "sql", "db.url": "postgresql://cache.internal/pypi"},
    "dynamo": {"pypi.db": "dynamo", "db.url": None, "db.region_name": REGION,
               "db.namespace": "team-"},
}


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


@pytest.fixture
def code(tmp_path):
    return deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))


class Resolver:
    """CloudFormation's intrinsic functions, for the values one account would see."""

    def __init__(self, account: str, function_arn: str, role_arn: str,
                 queues: dict[str, dict[str, str]] | None = None):
        self.account, self.function_arn, self.role_arn = account, function_arn, role_arn
        #: The stack's queues by logical id: their Arn, QueueName and (Ref) URL.
        self.queues = queues or {}

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            if value["Ref"] in self.queues:
                return self.queues[value["Ref"]]["Ref"]
            return {"Function": FUNCTION}.get(value["Ref"], value)  # parameters stay
        if set(value) == {"Fn::GetAtt"}:
            logical, attribute = value["Fn::GetAtt"]
            if logical in self.queues:
                return self.queues[logical][attribute]
            return {("Function", "Arn"): self.function_arn,
                    ("Role", "Arn"): self.role_arn}.get(tuple(value["Fn::GetAtt"]), value)
        if set(value) == {"Fn::Sub"}:
            return (value["Fn::Sub"].replace("${AWS::AccountId}", self.account)
                    .replace("${AWS::Partition}", "aws").replace("${AWS::Region}", REGION))
        return {k: self(v) for k, v in value.items()}


def _create(config, code, **options):
    opts, account, _ = _create_planned(config, code, **options)
    return opts, account


def _create_planned(config, code, **options):
    """Create, as ``ppc-create-s3-sync`` runs it; with the calls it made, so a test can
    name every field create set."""
    opts = deploy.DeployOptions.from_config(config, **options)
    clients = clients_for(config, opts)
    plan = deploy.plan_create(config, opts, clients, code=code)
    deploy.apply(plan, clients, sleep=lambda s: None)
    return opts, clients.account, plan.steps


def _network():
    """A subnet and a security group (moto's EC2) and a KMS key for --subnet-ids,
    --security-group-ids and --kms-key-arn."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="sync",
                                      Description="sync")["GroupId"]
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    return {"subnet_ids": subnet, "security_group_ids": group, "kms_key_arn": key}


#: CreateFunction's fields under another name in ``AWS::Lambda::Function``.
CFN_NAME = {"KMSKeyArn": "KmsKeyArn"}
#: CreateFunction's fields the template has no property for, and why that is the same
#: function: CloudFormation's function publishes no version (that is
#: ``AWS::Lambda::Version``), as create's ``Publish: False`` asks.
NO_PROPERTY = {"Publish"}


@pytest.mark.parametrize("cache", sorted(CACHES))
@pytest.mark.parametrize("prefix", [PREFIX, ""])
@pytest.mark.parametrize("delivery", ["direct", "eventbridge", "sqs"])
@pytest.mark.parametrize("network", ["lambda's", "vpc-own-key"])
def test_template_resources_are_what_create_makes(aws, tmp_path, code, delivery, prefix,
                                                  cache, network):
    """The template ``ppc-s3sync export`` writes, against what create made from the same
    config and options, in the function's own network and with its own key or not."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    config = make_config(tmp_path, **{"storage.prefix": prefix or None}, **CACHES[cache])
    placed = _network() if network == "vpc-own-key" else {}
    queued = {}
    if delivery == "sqs":
        queued = {"max_receives": "3", "batch_size": "20", "batch_window": "5",
                  "max_concurrency": "4"}
        if placed:
            queued["queue_kms_key_arn"] = placed["kms_key_arn"]
    options, account, steps = _create_planned(
        config, code, delivery=delivery, reconcile_every="12h", on_failure=QUEUE,
        retry_attempts="1", alarm_topic=TOPIC if delivery == "sqs" else None,
        **placed, **queued)
    written = cloudformation.export(config, options, REGION, code, tmp_path / "export")
    resources = json.loads(written.template.read_text())["Resources"]

    lam, iam_client = boto3.client("lambda", region_name=REGION), boto3.client("iam")
    events = boto3.client("events", region_name=REGION)
    function = lam.get_function_configuration(FunctionName=FUNCTION)
    role = iam_client.get_role(RoleName=iam.role_name(FUNCTION, REGION))["Role"]
    sqs = boto3.client("sqs", region_name=REGION)
    queues = {}
    for logical, name in (("DeliveryQueue", names.queue_name(FUNCTION)),
                          ("DeadLetterQueue", names.dead_letter_queue_name(FUNCTION))):
        if delivery == "sqs":
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            queues[logical] = {"Ref": url, "QueueName": name, "Arn": sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]}
    resolve = Resolver(account, function["FunctionArn"], role["Arn"], queues)

    # The role: name, path, trust, tags and the one inline policy.
    want = resolve(resources["Role"]["Properties"])
    assert want["RoleName"] == role["RoleName"] and want["Path"] == role["Path"]
    assert iam.same_policy(want["AssumeRolePolicyDocument"], role["AssumeRolePolicyDocument"])
    assert want["Description"] == role["Description"]
    assert want["Tags"] == role["Tags"]
    [policy] = want["Policies"]
    held = iam_client.get_role_policy(RoleName=role["RoleName"],
                                      PolicyName=policy["PolicyName"])["PolicyDocument"]
    assert iam.parse_document(held) == policy["PolicyDocument"]

    # The function: every field create's CreateFunction set, as Lambda holds it (the
    # environment to the byte), and no property create did not set.
    want = resolve(resources["Function"]["Properties"])
    [created] = [s.params for s in steps
                 if (s.service, s.operation) == ("lambda", "create_function")]
    assert set(want) == {CFN_NAME.get(f, f) for f in created} - NO_PROPERTY
    for field in set(created) - NO_PROPERTY - {"Code", "Tags"}:
        templated = want[CFN_NAME.get(field, field)]
        held = function[field]
        if isinstance(templated, dict):  # VpcConfig: Lambda adds the VPC's id
            held = {k: held.get(k) for k in templated}
        assert templated == held, field
    if placed:
        assert want["VpcConfig"] == {"SubnetIds": [placed["subnet_ids"]],
                                     "SecurityGroupIds": [placed["security_group_ids"]]}
        assert want["KmsKeyArn"] == placed["kms_key_arn"]
    else:
        assert not {"VpcConfig", "KmsKeyArn"} & set(want)
    tags = lam.list_tags(Resource=function["FunctionArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in want["Tags"]} == tags
    assert want["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}

    # Async settings.
    want = resolve(resources["AsyncConfig"]["Properties"])
    held = lam.get_function_event_invoke_config(FunctionName=FUNCTION)
    assert want.pop("Qualifier") == "$LATEST" and want.pop("FunctionName") == FUNCTION
    assert want == {k: held[k] for k in want}

    # Invoke permissions: the same set, each with the same principal and conditions.
    statements = {s["Sid"]: s for s in json.loads(lam.get_policy(
        FunctionName=FUNCTION)["Policy"])["Statement"]}
    logical = {statement_id("s3", BUCKET): "S3InvokePermission",
               statement_id("events", BUCKET): "DeliveryRuleInvokePermission",
               statement_id(SCHEDULE_PRINCIPAL, BUCKET): "ScheduleInvokePermission"}
    assert {logical[sid] for sid in statements} == {
        k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Permission"}
    for sid, statement in statements.items():
        want = resolve(resources[logical[sid]]["Properties"])
        assert want["Principal"] == statement["Principal"]["Service"]
        assert want["Action"] == statement["Action"]
        assert want["FunctionName"] == FUNCTION
        assert statement["Resource"] == function["FunctionArn"]
        assert want["SourceArn"] == statement["Condition"]["ArnLike"]["AWS:SourceArn"]
        assert want.get("SourceAccount") == statement["Condition"].get(
            "StringEquals", {}).get("AWS:SourceAccount")

    # Rules: the same set, each with the same pattern or schedule and target.
    rules = {r["Name"]: r for r in events.list_rules()["Rules"]}
    templated = {v["Properties"]["Name"]: v for v in resources.values()
                 if v["Type"] == "AWS::Events::Rule"}
    assert set(templated) == set(rules)
    for name, resource in templated.items():
        want = resolve(resource["Properties"])
        held = events.describe_rule(Name=name)
        for field in ("State", "Description", "ScheduleExpression"):
            assert want.get(field) == held.get(field), field
        assert want.get("EventPattern") == (json.loads(held["EventPattern"])
                                            if "EventPattern" in held else None)
        tags = events.list_tags_for_resource(ResourceARN=held["Arn"])["Tags"]
        assert {t["Key"]: t["Value"] for t in want["Tags"]} == {
            t["Key"]: t["Value"] for t in tags}
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
        assert want["Targets"] == [{"Id": t["Id"], "Arn": t["Arn"]} for t in targets]

    # The queue path: both queues with create's attributes and tags, the queue's policy,
    # the mapping with create's fields; none of them without --delivery sqs.
    kinds = ("AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Lambda::EventSourceMapping")
    templated = sorted(v["Type"] for v in resources.values() if v["Type"] in kinds)
    assert templated == (sorted([kinds[0], kinds[0], kinds[1], kinds[2]])
                         if delivery == "sqs" else [])
    for logical, queue in queues.items():
        want = resolve(resources[logical]["Properties"])
        held = sqs.get_queue_attributes(QueueUrl=queue["Ref"], AttributeNames=["All"])[
            "Attributes"]
        assert want.pop("QueueName") == queue["QueueName"]
        assert {t["Key"]: t["Value"] for t in want.pop("Tags")} == sqs.list_queue_tags(
            QueueUrl=queue["Ref"])["Tags"]
        for field, value in want.items():
            assert (json.loads(held[field]) if field == "RedrivePolicy"
                    else held[field]) == (value if field == "RedrivePolicy" else str(value)), field
        assert ("KmsMasterKeyId" in want) == bool(placed), logical
    if delivery == "sqs":
        want = resolve(resources["DeliveryQueuePolicy"]["Properties"])
        assert want["Queues"] == [queues["DeliveryQueue"]["Ref"]]
        held = sqs.get_queue_attributes(QueueUrl=queues["DeliveryQueue"]["Ref"],
                                        AttributeNames=["Policy"])["Attributes"]["Policy"]
        assert want["PolicyDocument"] == json.loads(held)
        want = resolve(resources["DeliveryQueueMapping"]["Properties"])
        [held] = lam.list_event_source_mappings(FunctionName=FUNCTION)["EventSourceMappings"]
        assert want.pop("FunctionName") == FUNCTION and held["FunctionArn"] == function[
            "FunctionArn"]
        assert want.pop("Enabled") is True and held["State"] == "Enabled"
        assert want == {k: held[k] for k in want}
        alarms = {a["AlarmName"]: a for a in boto3.client(
            "cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]}
        for logical in ("QueueAgeAlarm", "DeadLettersAlarm"):
            want = resolve(resources[logical]["Properties"])
            assert want["Dimensions"] == alarms[want["AlarmName"]]["Dimensions"], logical

    # The bucket: the custom resource writes what create wrote.
    props = resolve(resources["BucketNotification"]["Properties"])
    assert props["Delivery"] == delivery and props["Prefix"] == prefix
    held = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    held.pop("ResponseMetadata")
    assert bucket_resource.desired_configuration({}, props) == held


def test_given_role_is_referenced_not_created(aws, tmp_path):
    config = make_config(tmp_path)
    arn = "arn:aws:iam::123456789012:role/ops/pypicloud-sync"
    options = deploy.DeployOptions.from_config(config, role_arn=arn)
    resources = cloudformation.render(config, options, REGION)["Resources"]
    assert "Role" not in resources
    assert resources["Function"]["Properties"]["Role"] == arn


def test_the_notification_resource_outlives_its_wait_for_the_permission(aws, tmp_path):
    """The custom resource waits, as create does, for the invoke permission the stack
    has just added to reach S3; its function's timeout must leave it that minute and
    the time to answer CloudFormation, or the stack waits an hour for a reply."""
    config = make_config(tmp_path)
    options = deploy.DeployOptions.from_config(config)
    resources = cloudformation.render(config, options, REGION)["Resources"]
    timeout = resources["BucketNotificationFunction"]["Properties"]["Timeout"]
    assert timeout * 1000 >= (sum(notifications.VALIDATION_BACKOFF) * 1000
                              + bucket_resource.ANSWER_MARGIN_MS)


def test_copied_password_is_called_out_for_the_template_file(tmp_path, code):
    config = make_config(tmp_path, **{"pypi.db": "sql",
                                      "db.url": "postgresql://app:secret@cache.internal/pypi"})
    options = deploy.DeployOptions.from_config(config, db_password="copy")
    written = cloudformation.export(config, options, REGION, code, tmp_path / "out")
    assert "secret" in written.template.read_text()
    assert any("template holds that password" in w for w in written.warnings)


def test_withheld_password_is_refused_as_create_refuses(tmp_path):
    config = make_config(tmp_path, **{"pypi.db": "sql",
                                      "db.url": "postgresql://app:secret@cache.internal/pypi"})
    options = deploy.DeployOptions.from_config(config)
    with pytest.raises(deploy.DeployError, match="password"):
        cloudformation.render(config, options, REGION)


def test_a_secret_reference_and_an_environment_key_are_templated_without_reading_aws(
        tmp_path):
    """No AWS call at export: the secret is named, never read, and the role may read
    exactly that secret and decrypt with exactly that key."""
    secret = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:pypi-db-AbCdEf"
    key = f"arn:aws:kms:{REGION}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    config = make_config(tmp_path, **{"pypi.db": "sql",
                                      "db.url": "postgresql://app@cache.internal/pypi",
                                      "s3sync.db_url_secret": secret})
    options = deploy.DeployOptions.from_config(config, kms_key_arn=key)
    resources = cloudformation.render(config, options, REGION)["Resources"]
    function = resources["Function"]["Properties"]
    assert function["KmsKeyArn"] == key
    settings = json.loads(function["Environment"]["Variables"]["PYPICLOUD_SETTINGS"])
    assert settings["s3sync.db_url_secret"] == secret
    statements = resources["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    grants = {s["Resource"]: s["Action"] for s in statements
              if isinstance(s["Resource"], str)}
    assert grants[secret] == ["secretsmanager:GetSecretValue"]
    assert grants[key] == ["kms:Decrypt"]


def test_reserved_concurrency_caps_the_templated_function(aws, tmp_path, code):
    """The cap create would put on the function is the function's own property here."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    config = make_config(tmp_path, **CACHES["sql"])
    options, _ = _create(config, code, reserved_concurrency="4")
    made = boto3.client("lambda", region_name=REGION).get_function_concurrency(
        FunctionName=options.function_name)["ReservedConcurrentExecutions"]
    resources = cloudformation.render(config, options, REGION)["Resources"]
    assert resources["Function"]["Properties"]["ReservedConcurrentExecutions"] == made == 4


def test_alarms_are_templated_as_create_makes_them(aws, tmp_path, code):
    """Every field create sets on each alarm, the function by reference."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    config = make_config(tmp_path)
    options, _ = _create(config, code, alarm_topic=TOPIC, alarm_lag="120")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    made = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    resources = cloudformation.render(config, options, REGION)["Resources"]
    templated = {v["Properties"]["AlarmName"]: v["Properties"] for v in resources.values()
                 if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(templated) == set(made) == {"pypicloud-s3sync-pypicloud_s3_sync-errors",
                                           "pypicloud-s3sync-pypicloud_s3_sync-lag",
                                           "pypicloud-s3sync-pypicloud_s3_sync-dropped"}
    for name, want in templated.items():
        assert [d["Value"] for d in want["Dimensions"]] == [{"Ref": "Function"}]
        held = made[name]
        assert [d["Value"] for d in held["Dimensions"]] == [FUNCTION]
        for field in ("AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions",
                      "Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods",
                      "DatapointsToAlarm", "Threshold", "ComparisonOperator",
                      "TreatMissingData"):
            assert want[field] == held[field], field
        tags = cloudwatch.list_tags_for_resource(ResourceARN=held["AlarmArn"])["Tags"]
        assert want["Tags"] == tags


def test_storing_the_password_is_refused_since_the_template_would_carry_it(tmp_path):
    config = make_config(tmp_path, **{"pypi.db": "sql",
                                      "db.url": "postgresql://app:secret@cache.internal/pypi"})
    options = deploy.DeployOptions.from_config(config, store_db_password="secretsmanager")
    with pytest.raises(deploy.DeployError, match="s3sync.db_url_secret") as info:
        cloudformation.render(config, options, REGION)
    assert "secret@" not in str(info.value)


# -- cfn-lint -----------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {},
    {"delivery": "eventbridge", "reconcile_every": "1d", "on_failure": QUEUE},
    {"subnet_ids": "subnet-0123456789abcdef0", "security_group_ids": "sg-0123456789abcdef0",
     "role_arn":
     "arn:aws:iam::123456789012:role/given"},
    {"reserved_concurrency": "4", "kms_key_arn":
     f"arn:aws:kms:{REGION}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"alarm_topic": TOPIC, "alarm_lag": "300"},
    {"delivery": "sqs", "alarm_topic": TOPIC, "max_concurrency": "5", "batch_size": "50",
     "batch_window": "10", "queue_kms_key_arn":
     f"arn:aws:kms:{REGION}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
], ids=["direct", "eventbridge-schedule", "vpc-given-role", "capped-own-key", "alarms",
        "sqs-own-key"])
def test_template_passes_cfn_lint(tmp_path, options):
    config = make_config(tmp_path, **CACHES["dynamo"])
    template = cloudformation.render(
        config, deploy.DeployOptions.from_config(config, **options), REGION)
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=[REGION]))
    assert [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
            for m in matches] == []


@pytest.mark.parametrize("delivery", ["direct", "eventbridge", "sqs"])
def test_every_templated_resource_is_documented(tmp_path, delivery):
    """docs/infrastructure-as-code.rst lists what the export renders, every option on."""
    from pathlib import Path

    config = make_config(tmp_path, **CACHES["sql"])
    template = cloudformation.render(config, deploy.DeployOptions.from_config(
        config, delivery=delivery, reconcile_every="1d", on_failure=QUEUE,
        reserved_concurrency="4", alarm_topic=TOPIC,
        kms_key_arn=f"arn:aws:kms:{REGION}:123456789012:key/1234abcd"), REGION)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "infrastructure-as-code.rst").read_text()
    for logical, resource in template["Resources"].items():
        assert f"``{logical}``" in docs and f"``{resource['Type']}``" in docs, logical
    # The options that add a property to the function rather than a resource of their own.
    function = template["Resources"]["Function"]["Properties"]
    for name in ("KmsKeyArn", "ReservedConcurrentExecutions"):
        assert name in function and f"``{name}``" in docs, name


# -- export -------------------------------------------------------------------------------


def test_export_writes_template_and_zips_and_prints_deploy_commands(tmp_path, capsys):

    config = make_config(tmp_path, **{"s3sync.memory": "512"})
    zip_path = write_zip(tmp_path / "function.zip")
    out = tmp_path / "out"
    status = cli.main(["export", config.config_uri, "--format", "cloudformation",
                       "-o", str(out), "--bundle", str(zip_path), "--timeout", "90",
                       "--delivery", "eventbridge"])
    printed = capsys.readouterr().out
    assert status == 0
    template = json.loads((out / cloudformation.TEMPLATE_NAME).read_text())
    function = template["Resources"]["Function"]["Properties"]
    assert (function["MemorySize"], function["Timeout"]) == (512, 90)
    assert "DeliveryRule" in template["Resources"]
    # The function's zip is the bundle itself: the digest status compares with.
    assert (out / f"{FUNCTION}.zip").read_bytes() == zip_path.read_bytes()
    with zipfile.ZipFile(out / f"{FUNCTION}-bucket-notification.zip") as archive:
        assert "pypicloud_s3sync/provision/bucket_resource.py" in archive.namelist()
    assert f"aws s3 cp {out / FUNCTION}.zip s3://" in printed
    assert f"aws s3 cp {out / FUNCTION}-bucket-notification.zip s3://" in printed
    assert "aws cloudformation deploy --stack-name pypicloud-s3sync-pypicloud-s3-sync" in printed
    assert "CAPABILITY_NAMED_IAM" in printed
    assert f"NotificationCodeKey={FUNCTION}/pypicloud-s3sync-bucket-notification-" in printed


def test_exported_function_zip_has_the_digest_status_expects(tmp_path, code):
    """status compares the function's CodeSha256 with the bundle's; the export must not
    change a byte of it."""
    config = make_config(tmp_path)
    options = deploy.DeployOptions.from_config(config)
    written = cloudformation.export(config, options, REGION, code, tmp_path / "out")
    assert zip_sha256(written.bundle) == code.sha256


def test_resource_modules_run_from_their_zip_alone(tmp_path):
    """The custom resource's handler imports from its own zip, without the server's code
    and without the function's."""
    zipped = resource_zip.write_resource_zip(tmp_path / "resource.zip")
    with zipfile.ZipFile(zipped) as archive:
        assert "pypicloud_s3sync/handler.py" not in archive.namelist()
        archive.extractall(tmp_path / "run")
    run = subprocess.run([sys.executable, "-I", "-c",
                          "import sys; sys.path.insert(0, '.');"
                          "import pypicloud_s3sync.provision.bucket_resource as r;"
                          "print(r.HANDLER); print(sorted(m for m in sys.modules "
                          "if m.startswith('pypicloud_s3sync')))"],
                         cwd=tmp_path / "run", capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == bucket_resource.HANDLER
    assert "pypicloud_s3sync.provision.planner" not in run.stdout


def test_a_refused_export_leaves_no_folder_behind(tmp_path, capsys):
    config = make_config(tmp_path, **{"pypi.db": "sql",
                                      "db.url": "postgresql://app:secret@cache.internal/pypi"})
    zip_path = write_zip(tmp_path / "function.zip")
    out = tmp_path / "build" / "stack"
    status = cli.main(["export", config.config_uri, "-o", str(out), "--bundle", str(zip_path),
                       "--store-db-password", "ssm"])
    assert status == 2
    assert "the template would carry the password" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()


def test_an_export_that_fails_midway_removes_only_what_it_made(tmp_path, code, monkeypatch):
    config = make_config(tmp_path)
    options = deploy.DeployOptions.from_config(config)
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cloudformation.Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        cloudformation.export(config, options, REGION, code, kept / "new" / "out")
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    with pytest.raises(OSError, match="No space"):
        cloudformation.export(config, options, REGION, code, kept)
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]


def test_export_refuses_unknown_format(tmp_path, capsys):

    config = make_config(tmp_path)
    with pytest.raises(SystemExit):
        cli.main(["export", config.config_uri, "--format", "terraform", "-o",
                  str(tmp_path / "out")])
    assert "cloudformation" in capsys.readouterr().err


# -- the template on moto's CloudFormation ------------------------------------------------

#: Resource types moto's CloudFormation cannot create: it has no EventInvokeConfig, and it
#: runs a custom resource's function only in Docker.  Both are covered above instead.
MOTO_UNSUPPORTED = ("AWS::Lambda::EventInvokeConfig", "Custom::BucketNotification")


@pytest.fixture
def _moto_stack_policies_as_json(monkeypatch):
    """moto 5.2.5's CloudFormation stores a role's inline policy as the Python dict
    (GetRolePolicy then answers its repr); IAM stores the JSON document."""
    from moto.iam.models import Role

    original = Role.put_policy

    def put_policy(self, name, document):
        if isinstance(document, dict):
            document = json.dumps(document)
        return original(self, name, document)

    monkeypatch.setattr(Role, "put_policy", put_policy)


@pytest.fixture
def _moto_tags_stack_functions(monkeypatch):
    """AWS tags a function a stack creates with the stack's name (``aws:cloudformation:*``,
    which no caller may set); moto 5.2.5 tags only EC2 resources that way."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        function = original(cls, resource_name, cloudformation_json, account_id,
                            region_name, **kwargs)
        stack_id = kwargs["StackId"]
        function.tags.update({"aws:cloudformation:stack-name": stack_id.split("/")[1],
                              "aws:cloudformation:stack-id": stack_id,
                              "aws:cloudformation:logical-id": kwargs["LogicalId"]})
        return function

    monkeypatch.setattr(LambdaFunction, "create_from_cloudformation_json",
                        classmethod(create))


@pytest.fixture
def _moto_keeps_a_stack_functions_key(monkeypatch):
    """``AWS::Lambda::Function``'s ``KmsKeyArn`` is CreateFunction's ``KMSKeyArn``
    ("The ARN of the Key Management Service (KMS) customer managed key that's used to
    encrypt ... The function's environment variables", botocore's Lambda model); moto
    5.2.5's CloudFormation passes only some properties on to CreateFunction and drops
    that one, leaving the stack's function on Lambda's own key."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        function = original(cls, resource_name, cloudformation_json, account_id,
                            region_name, **kwargs)
        function.kms_key_arn = cloudformation_json["Properties"].get("KmsKeyArn")
        return function

    monkeypatch.setattr(LambdaFunction, "create_from_cloudformation_json",
                        classmethod(create))


def _run_commands(commands, s3):
    """The export's printed commands, on moto: the uploads, then the deploy's parameters."""
    parameters = []
    for command in commands:
        words = shlex.split(command)
        if words[:3] == ["aws", "s3", "cp"]:
            bucket, key = words[4].removeprefix("s3://").split("/", 1)
            s3.upload_file(words[3], bucket, key)
        else:
            assert words[:3] == ["aws", "cloudformation", "deploy"], command
            overrides = words[words.index("--parameter-overrides") + 1:]
            parameters = [dict(zip(("ParameterKey", "ParameterValue"), o.split("=", 1),
                                   strict=True)) for o in overrides]
    return parameters


def _deploy_stack(tmp_path, code, delivery, **placed):
    """Export and deploy as an operator would, on moto: the zips uploaded and the
    parameters given as the export prints; the resources moto cannot make are skipped,
    and the custom resource is called as CloudFormation would."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="deploy-artifacts")
    config = make_config(tmp_path)
    options = deploy.DeployOptions.from_config(config, delivery=delivery,
                                               reconcile_every="1d", force=True, **placed)
    written = cloudformation.export(config, options, REGION, code, tmp_path / "export")
    template = json.loads(written.template.read_text())
    parameters = _run_commands(written.commands("deploy-artifacts"), s3)
    skipped = {k: v for k, v in template["Resources"].items()
               if v["Type"] in MOTO_UNSUPPORTED}
    for logical in skipped:
        del template["Resources"][logical]
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName="sync", TemplateBody=json.dumps(template),
                     Capabilities=["CAPABILITY_NAMED_IAM"], Parameters=parameters)
    assert cfn.describe_stacks(StackName="sync")["Stacks"][0]["StackStatus"] == (
        "CREATE_COMPLETE")
    lam = boto3.client("lambda", region_name=REGION)
    function_arn = lam.get_function_configuration(FunctionName=FUNCTION)["FunctionArn"]
    props = skipped["BucketNotification"]["Properties"]
    bucket_resource.apply_request({"RequestType": "Create", "ResourceProperties": {
        **props, "FunctionName": FUNCTION, "FunctionArn": function_arn}}, s3)
    return config, options, template


@pytest.mark.parametrize(("delivery", "network"), [
    ("direct", "lambda's"), ("eventbridge", "lambda's"), ("direct", "vpc-own-key")])
def test_stack_makes_an_account_status_finds_in_sync(aws, tmp_path, code, delivery,
                                                      network,
                                                      _moto_stack_policies_as_json,
                                                      _moto_tags_stack_functions,
                                                      _moto_keeps_a_stack_functions_key):
    """The exported files deployed as the export's printed commands say: status, which
    compares every field create sets with the config, finds the stack's resources in
    sync, the function's subnets, security groups and key included."""
    placed = _network() if network == "vpc-own-key" else {}
    config, options, template = _deploy_stack(tmp_path, code, delivery, **placed)
    report = deploy.status(config, options, clients_for(config, options), code=code)
    rows = {(row.resource, row.name): row for row in report.rows}
    drifted = sorted(f"{resource} {name}" for (resource, name), row in rows.items()
                     if not row.in_sync)
    # Only the async settings, which moto's CloudFormation cannot make (skipped above);
    # the permissions match although CloudFormation chose their statement ids.
    assert drifted == [f"async-config {FUNCTION}"]
    assert rows["cloudformation-stack", "sync"].actual == (
        "managed by CloudFormation stack sync")
    # The stack runs the exported zip, and status finds the code this config builds.
    assert any(r == "function-code" and row.in_sync for (r, _), row in rows.items())
    [function] = [c for c in report.checks if c.name == "function"]
    assert function.status == OK, function.detail
    lam = boto3.client("lambda", region_name=REGION)
    held = lam.get_function_configuration(FunctionName=FUNCTION)
    assert (held.get("KMSKeyArn"), held.get("VpcConfig", {}).get("SubnetIds")) == (
        (placed["kms_key_arn"], [placed["subnet_ids"]]) if placed else (None, None))
    principals = {s["Principal"]["Service"]: s["Condition"]["ArnLike"]["AWS:SourceArn"]
                  for s in json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])[
                      "Statement"]}
    templated = {v["Properties"]["Principal"] for v in template["Resources"].values()
                 if v["Type"] == "AWS::Lambda::Permission"}
    assert set(principals) == templated
    permissions = [v for v in template["Resources"].values()
                   if v["Type"] == "AWS::Lambda::Permission"]
    assert sum(row.resource == "permission" and row.in_sync for row in report.rows) == len(
        permissions)


def test_status_names_the_stack_and_how_to_change_it(aws, tmp_path, code, capsys,
                                                     _moto_stack_policies_as_json,
                                                     _moto_tags_stack_functions):
    config, _, _ = _deploy_stack(tmp_path, code, "direct")
    bundle = str(code.path)
    assert cli.main(["status", config.config_uri, "--bundle", bundle,
                     "--reconcile-every", "1d"]) == cli.EXIT_DRIFT  # the skipped async
    out = capsys.readouterr().out.splitlines()
    assert "  ok    cloudformation-stack  sync" in out
    assert ("warning: pypicloud_s3_sync is managed by CloudFormation stack sync: change it "
            "by deploying a new template (ppc-s3sync export), remove it with aws "
            "cloudformation delete-stack --stack-name sync") in out
    assert out[-1] == ("Deploy a template exported from this config to stack sync to "
                       "bring it back in line.")


@pytest.mark.parametrize("delivery", ["direct", "eventbridge"])
def test_delete_refuses_a_stack_managed_sync_and_changes_nothing(
        aws, tmp_path, code, capsys, delivery, _moto_stack_policies_as_json,
        _moto_tags_stack_functions):
    config, _, _ = _deploy_stack(tmp_path, code, delivery)
    before = snapshot()
    capsys.readouterr()
    assert cli.main(["delete", config.config_uri]) == cli.EXIT_CONFIG
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"ppc-s3sync delete: error: function {FUNCTION} is managed by CloudFormation stack "
        "sync; delete the stack instead (aws cloudformation delete-stack --stack-name sync)"]
    assert captured.out == ""  # refused before a plan was printed
    assert snapshot() == before
    assert before["functions"] and before["rules"] and before["notification"]


def test_create_refuses_to_change_a_stack_managed_sync(aws, tmp_path, code, capsys,
                                                       _moto_stack_policies_as_json,
                                                       _moto_tags_stack_functions):
    config, _, _ = _deploy_stack(tmp_path, code, "direct")
    before = snapshot()
    capsys.readouterr()
    assert cli.main(["create", config.config_uri, "-f", "--bundle", str(code.path),
                     "--memory", "1024"]) == cli.EXIT_CONFIG
    assert capsys.readouterr().err.splitlines() == [
        f"ppc-s3sync create: error: function {FUNCTION} is managed by CloudFormation stack "
        "sync; change the stack instead: export a new template with ppc-s3sync export and "
        "deploy it"]
    assert snapshot() == before


# -- robustness: upgrades, the custom resource, the region, the partition ------------------


def _export(tmp_path, name, body=None):
    config = make_config(tmp_path)
    zipped = write_zip(tmp_path / f"{name}.zip", *([body] if body else []))
    code = deploy.ZipBundle.from_path(zipped)
    options = deploy.DeployOptions.from_config(config)
    written = cloudformation.export(config, options, REGION, code, tmp_path / name)
    template = json.loads(written.template.read_text())
    return written, template


def test_an_upgraded_zip_gets_a_new_s3_key_so_the_stack_update_deploys_it(tmp_path):
    """AWS::Lambda::Function Code: "Changes to a deployment package in Amazon S3 or a
    container image in ECR are not detected automatically during stack updates. To
    update the function code, change the object key or version in the template."  So
    the key carries the zip's digest, in the template and in the printed commands."""
    first, first_template = _export(tmp_path, "first")
    again, _ = _export(tmp_path, "again")
    upgraded, upgraded_template = _export(
        tmp_path, "upgraded", "def handle_event(event, context):\n    return 1\n")

    assert first.key == again.key  # the same zip: nothing to deploy
    assert first.key != upgraded.key
    assert first.key.startswith(f"{FUNCTION}/pypicloud-s3sync-")
    for written, template in ((first, first_template), (upgraded, upgraded_template)):
        parameters = template["Parameters"]
        assert parameters["CodeKey"]["Default"] == written.key
        assert parameters["NotificationCodeKey"]["Default"] == written.notification_key
        commands = "\n".join(written.commands("artifacts"))
        assert f"aws s3 cp {written.bundle} s3://artifacts/{written.key}" in commands
        assert f"CodeKey={written.key} " in commands
        assert (f"aws s3 cp {written.notification} s3://artifacts/"
                f"{written.notification_key}") in commands
        assert f"NotificationCodeKey={written.notification_key}" in commands
    # The custom resource's zip is ours alone: the same code, the same key.
    assert first.notification_key == upgraded.notification_key
    assert first.notification_key != first.key


def test_the_custom_resource_times_out_in_minutes_and_logs_to_its_own_group(tmp_path):
    """AWS::CloudFormation::CustomResource ServiceTimeout: "The maximum time, in
    seconds, that can elapse before a custom resource operation times out. The value
    must be an integer from 1 to 3600. The default value is 3600 seconds (1 hour)."  A
    handler that dies before answering must not hold the stack for an hour, and its
    log lines, which say why, need a log group it may write: its own only."""
    config = make_config(tmp_path)
    resources = cloudformation.render(config, deploy.DeployOptions.from_config(config),
                                      REGION)["Resources"]
    custom = resources["BucketNotification"]["Properties"]
    assert isinstance(custom["ServiceTimeout"], int)
    function = resources["BucketNotificationFunction"]["Properties"]
    assert function["Timeout"] < custom["ServiceTimeout"] < 3600

    from ..support import aws_trace

    resolve = Resolver(aws_trace.ACCOUNT, "", "")
    [policy] = resources["BucketNotificationRole"]["Properties"]["Policies"]
    document = resolve(policy["PolicyDocument"])
    name = function["FunctionName"]
    group = f"arn:aws:logs:{REGION}:{aws_trace.ACCOUNT}:log-group:/aws/lambda/{name}"
    other = f"arn:aws:logs:{REGION}:{aws_trace.ACCOUNT}:log-group:/aws/lambda/{FUNCTION}"

    def request(action, resource):
        return aws_trace.Request(action, resource)

    own = [request("logs:CreateLogGroup", f"{group}:*"),
           request("logs:CreateLogStream", f"{group}:log-stream:2026/12/06/x"),
           request("logs:PutLogEvents", f"{group}:log-stream:2026/12/06/x")]
    assert aws_trace.denied(document, own) == []
    foreign = [request("logs:PutLogEvents", f"{other}:log-stream:x"),
               request("logs:CreateLogGroup", f"{other}:*")]
    assert aws_trace.denied(document, foreign) == foreign


def test_the_template_refuses_a_stack_in_another_region_than_the_buckets(tmp_path):
    """A template's Rules are checked before any resource is made: "A rule can include a
    RuleCondition property and must include an Assertions property ... You can use the
    following rule-specific intrinsic functions to define rule conditions and
    assertions: ... Fn::Equals ..." (AWS CloudFormation, template Rules).  S3 notifies
    functions of its own region only, so a stack elsewhere is refused with words."""
    config = make_config(tmp_path)
    template = cloudformation.render(config, deploy.DeployOptions.from_config(config),
                                     "eu-west-1")
    [assertion] = [a for rule in template["Rules"].values() for a in rule["Assertions"]]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]}
    assert assertion["AssertDescription"].startswith(
        f"deploy this stack in eu-west-1, the region of bucket {BUCKET}")

    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


@pytest.mark.parametrize("region, partition", [("cn-north-1", "aws-cn"),
                                               ("us-gov-west-1", "aws-us-gov")])
def test_china_and_govcloud_get_their_own_partitions_arns(tmp_path, region, partition):
    """"In the Beijing and Ningxia Regions, the Amazon Resource Name (ARN) syntax
    includes a cn. arn:aws-cn" (Amazon General Reference, ARNs for Amazon Web Services
    in China); "In the AWS GovCloud (US) Regions, ARNs begin with: arn:aws-us-gov" (AWS
    GovCloud (US) User Guide).  The template says ${AWS::Partition}; the policies the
    commands grant and print name the region's own partition."""
    from pypicloud_s3sync.provision import operator_policy

    from ..support import aws_trace

    config = make_config(tmp_path, **{"storage.region_name": region})
    options = deploy.DeployOptions.from_config(config, delivery="eventbridge",
                                               reconcile_every="1d")
    template = cloudformation.render(config, options, region)
    text = json.dumps(template)
    assert "arn:aws:" not in text
    assert "arn:${AWS::Partition}:s3:::packages" in text

    from cfnlint.api import ManualArgs, lint

    matches = lint(text, config=ManualArgs(regions=[region]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []

    for policy in (operator_policy.operator_policy(
                       config, account=aws_trace.ACCOUNT, region=region,
                       function_name=FUNCTION),
                   iam.role_policy(config, account=aws_trace.ACCOUNT, region=region,
                                   function_name=FUNCTION)):
        resources = [r for s in policy["Statement"]
                     for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                               else s["Resource"]) if r != "*"]
        assert resources
        assert all(r.startswith(f"arn:{partition}:") for r in resources), resources


def test_no_arn_is_spelled_for_the_commercial_partition_alone():
    """Every ARN we build names its region's partition: no ``arn:aws:`` in the code,
    except the examples error messages give in parentheses."""
    import re
    from pathlib import Path

    import pypicloud_s3sync

    root = Path(pypicloud_s3sync.__file__).parent
    found = [f"{path.relative_to(root)}:{number}: {line.strip()}"
             for path in sorted(root.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"(?<!\()arn:aws:[a-z]", line)]
    assert found == []
