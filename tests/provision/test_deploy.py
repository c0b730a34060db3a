"""The deploy planner against moto in-process: what an operator would check in the console."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from pypicloud_s3sync.config import ConfigError
from pypicloud_s3sync.provision import awsfailure, deploy, executor, iam, notifications, tags

from ..support import moto_gaps
from ..support.deploy_helpers import (
    BUCKET,
    PREFIX,
    REGION,
    Recorder,
    clients_for,
    foreign_destinations,
    make_config,
    snapshot,
    stale_foreign_queue,
    write_zip,
)

FUNCTION = "pypicloud_s3_sync"
ENTRY_ID = notifications.entry_id(FUNCTION)


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


@pytest.fixture
def bucket(aws: None) -> str:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def code(tmp_path):
    return deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))


def create(config, recorder=None, code=None, **options):
    opts = deploy.DeployOptions.from_config(config, **options)
    clients = clients_for(config, opts, recorder)
    plan = deploy.plan_create(config, opts, clients, code=code)
    deploy.apply(plan, clients, sleep=lambda s: None)
    return plan


def delete(config, recorder=None, **options):
    opts = deploy.DeployOptions.from_config(config, **options)
    clients = clients_for(config, opts, recorder)
    plan = deploy.plan_delete(config, opts, clients)
    deploy.apply(plan, clients)
    return plan


def function_env(name=FUNCTION):
    config = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=name)
    return config["Environment"]["Variables"]


def bucket_notification():
    result = boto3.client("s3", region_name=REGION).get_bucket_notification_configuration(
        Bucket=BUCKET)
    result.pop("ResponseMetadata")
    return result


# -- create, re-run, status ------------------------------------------------------------------

def test_first_run_creates_everything_and_second_run_makes_no_mutating_call(
        bucket, tmp_path, code):
    """A re-run makes no change at all: no mutating call is the promise ("re-running is
    safe and quiet"), so that one is counted; the first run is judged by what it made."""
    config = make_config(tmp_path)
    recorder = Recorder()
    create(config, recorder, code)
    made = snapshot()
    assert made["roles"] == {iam.role_name(FUNCTION, REGION): {
        "inline": [iam.POLICY_NAME], "attached": []}}
    assert made["functions"] == {FUNCTION: {"sha": code.sha256,
                                            "statements": [f"pypicloud-s3sync-s3-{BUCKET}"]}}
    assert [e["Id"] for e in made["notification"]["LambdaFunctionConfigurations"]] == [
        ENTRY_ID]
    assert made["rules"] == {}

    recorder.clear()
    again = create(config, recorder, code)
    assert again.is_empty
    assert recorder.mutating == []
    assert recorder.calls  # it did look
    assert "Nothing to create" in again.describe()

    # -f with unchanged code and config: still nothing to do.
    recorder.clear()
    assert create(config, recorder, code, force=True).is_empty
    assert recorder.mutating == []

    # Adding a reconcile schedule adds exactly its three resources (the rule, its
    # target, the permission to invoke); again: nothing.
    create(config, code=code, reconcile_every="1d")
    after = snapshot()
    assert after["rules"] == {SCHEDULE_RULE: None}  # a schedule, no event pattern
    assert after["functions"][FUNCTION]["statements"] == sorted(
        made["functions"][FUNCTION]["statements"] + [SCHEDULE_SID])
    assert {k: v for k, v in after.items() if k not in ("rules", "functions")} == {
        k: v for k, v in made.items() if k not in ("rules", "functions")}
    targets = boto3.client("events", region_name=REGION).list_targets_by_rule(
        Rule=SCHEDULE_RULE)["Targets"]
    assert [t["Arn"].rsplit(":", 1)[1] for t in targets] == [FUNCTION]
    recorder.clear()
    assert create(config, recorder, code, reconcile_every="1d").is_empty
    assert create(config, recorder, code, reconcile_every="24h", force=True).is_empty
    assert recorder.mutating == []

    lam = boto3.client("lambda", region_name=REGION)
    fn = lam.get_function(FunctionName=FUNCTION)
    assert fn["Configuration"]["CodeSha256"] == code.sha256
    assert fn["Configuration"]["Runtime"] == deploy.DEFAULT_RUNTIME
    assert fn["Configuration"]["Handler"] == "pypicloud_s3sync.handler.handle_event"
    assert fn["Tags"][tags.MANAGED_TAG] == tags.MANAGED_VALUE
    invoke = lam.get_function_event_invoke_config(FunctionName=FUNCTION)
    assert (invoke["MaximumRetryAttempts"], invoke["MaximumEventAgeInSeconds"]) == (2, 21600)


def test_status_in_sync_then_drift(bucket, tmp_path, code):
    config = make_config(tmp_path)
    create(config, code=code)
    opts = deploy.DeployOptions.from_config(config)
    report = deploy.status(config, opts, clients_for(config, opts), code=code)
    assert report.in_sync, report.describe()
    assert {row.resource for row in report.rows} >= {
        "role", "role-policy", "function", "function-code", "permission", "notification"}

    boto3.client("lambda", region_name=REGION).update_function_configuration(
        FunctionName=FUNCTION, Timeout=3)
    report = deploy.status(config, opts, clients_for(config, opts), code=code)
    assert not report.in_sync
    drifted = [row for row in report.rows if not row.in_sync]
    assert [(row.resource, row.actual) for row in drifted] == [
        ("function", "differs: Timeout")]
    assert "DRIFT" in report.describe()
    assert json.loads(json.dumps(report.to_json()))["in_sync"] is False


def test_options_from_ini_and_flags_win(bucket, tmp_path, code):
    config = make_config(tmp_path, **{"s3sync.memory": "512", "s3sync.timeout": "30",
                                      "s3sync.function_name": "from-ini"})
    opts = deploy.DeployOptions.from_config(config, timeout=45)
    assert (opts.function_name, opts.memory, opts.timeout) == ("from-ini", 512, 45)
    with pytest.raises(ConfigError, match="memory = 64 is not valid"):
        deploy.DeployOptions.from_config(config, memory=64)
    with pytest.raises(ConfigError, match="both subnet ids and security group ids"):
        deploy.DeployOptions.from_config(config, subnet_ids="subnet-1")


# -- what the function gets ------------------------------------------------------------------

def test_function_environment_has_cache_settings_and_no_credentials(bucket, tmp_path, code):
    config = make_config(
        tmp_path,
        **{"pypi.db": "dynamo", "db.url": None, "db.region_name": REGION,
           "db.namespace": "prod-", "db.aws_access_key_id": "AKIADBKEY",
           "db.aws_secret_access_key": "db-secret",
           "storage.aws_access_key_id": "AKIASTORAGE",
           "storage.aws_secret_access_key": "storage-secret"})
    create(config, code=code)
    env = function_env()
    assert set(env) == {deploy.ENV_VAR}
    settings = json.loads(env[deploy.ENV_VAR])
    assert settings == {
        "pypi.db": "dynamo", "pypi.storage": "s3", "db.region_name": REGION,
        "db.namespace": "prod-", "storage.bucket": BUCKET, "storage.prefix": PREFIX,
        "storage.region_name": REGION,
    }
    everything = json.dumps(boto3.client("lambda", region_name=REGION).get_function(
        FunctionName=FUNCTION)["Configuration"])
    for secret in ("AKIADBKEY", "db-secret", "AKIASTORAGE", "storage-secret", "admin-pass"):
        assert secret not in everything


def test_db_password_refused_with_one_clear_line(bucket, tmp_path, code):
    config = make_config(tmp_path, **{"pypi.db": "sql",
                                      "db.url": "postgresql://app:hunter2@db.internal/pypi"})
    recorder = Recorder()
    with pytest.raises(ConfigError) as info:
        create(config, recorder, code)
    message = str(info.value)
    assert "\n" not in message
    assert "db.url" in message and "postgresql://app:***@db.internal/pypi" in message
    assert "hunter2" not in message
    assert "--allow-db-password" in message
    assert recorder.mutating == []

    plan = create(config, code=code, db_password="copy")
    assert any("with its password" in w for w in plan.warnings)
    assert "hunter2" not in json.dumps(plan.to_json())
    assert "hunter2" not in plan.describe()
    settings = json.loads(function_env()[deploy.ENV_VAR])
    assert settings["db.url"] == "postgresql://app:hunter2@db.internal/pypi"


def test_sqlite_cache_is_warned_about(bucket, tmp_path, code):
    config = make_config(tmp_path, **{"pypi.db": "sql", "db.url": "sqlite:////tmp/cache.db"})
    opts = deploy.DeployOptions.from_config(config)
    plan = deploy.plan_create(config, opts, clients_for(config, opts), code=code)
    assert any("SQLite" in w and "cannot" in w for w in plan.warnings)


@pytest.mark.parametrize(("endpoint", "warned"), [
    (None, True),
    ("https://s3.internal.example.com", True),
    ("http://moto.internal:5000", True),
    ("http://127.0.0.1:5000", False),
    ("http://localhost:5000", False),
    ("http://[::1]:5000", False),
])
@pytest.mark.parametrize("cache", [
    {"pypi.db": "sql", "db.url": "sqlite:////var/lib/pypicloud/cache.db"},
    {"pypi.db": "redis", "db.url": "redis://cache.internal:6379/0"},
], ids=["sqlite", "redis-without-vpc"])
def test_reachability_warnings_are_left_out_only_for_aws_on_this_machine(
        tmp_path, endpoint, warned, cache):
    # docs/cli.rst promises exactly this: a moto server on loopback (as in the demo)
    # runs the function here, where the cache is reachable; any other endpoint is AWS.
    config = make_config(tmp_path, **cache, **({"s3sync.endpoint_url": endpoint}
                                               if endpoint else {}))
    opts = deploy.DeployOptions.from_config(config)
    found: list[str] = []
    deploy.check_cache_reachable(config, opts, found)
    assert bool([w for w in found if "SQLite" in w or "reachable from Lambda" in w]) == warned


def test_storage_endpoint_alone_does_not_silence_the_reachability_warning(tmp_path):
    config = make_config(tmp_path, **{"pypi.db": "sql", "db.url": "sqlite:////tmp/c.db",
                                      "storage.endpoint_url": "http://127.0.0.1:5000"})
    found: list[str] = []
    deploy.check_cache_reachable(config, deploy.DeployOptions.from_config(config), found)
    assert any("SQLite" in w for w in found)


# -- IAM ----------------------------------------------------------------------------------

def test_role_policy_is_least_privilege_for_dynamo_tables_pypicloud_made(
        bucket, tmp_path, code, pypicloud_factory):
    from pypicloud_s3sync.config import load_config

    # A real pypicloud with a namespaced DynamoDB cache creates its own tables.
    server = pypicloud_factory(cache="dynamo", bucket=BUCKET, prefix=PREFIX,
                               **{"db.namespace": "team-"})
    server.upload("demo", "1.0")
    create(load_config(str(server.ini)), code=code)

    client = boto3.client("iam")
    role = client.get_role(RoleName=iam.role_name(FUNCTION, REGION))["Role"]
    assert role["Path"] == iam.ROLE_PATH
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == {tags.MANAGED_TAG: tags.MANAGED_VALUE}
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"}
    doc = iam.parse_document(client.get_role_policy(
        RoleName=role["RoleName"], PolicyName=iam.POLICY_NAME)["PolicyDocument"])
    assert iam.has_wildcard_resource(doc, ("s3", "dynamodb", "logs")) == []
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ReadPackages"]["Resource"] == f"arn:aws:s3:::{BUCKET}/{PREFIX}*"
    assert by_sid["ListPackages"]["Condition"] == {
        "StringLikeIfExists": {"s3:prefix": [f"{PREFIX}*"]}}
    assert "/aws/lambda/pypicloud_s3_sync" in by_sid["OwnLogGroup"]["Resource"]
    assert "VpcNetworkInterfaces" not in by_sid

    tables = [t for t in boto3.client("dynamodb", region_name=REGION).list_tables()[
        "TableNames"] if t.startswith("team-")]
    arns = [boto3.client("dynamodb", region_name=REGION).describe_table(TableName=t)[
        "Table"]["TableArn"] for t in tables]
    assert sorted(tables) == ["team-DynamoPackage", "team-PackageSummary"]
    assert sorted(by_sid["CacheTables"]["Resource"]) == sorted(arns)
    packages = next(arn for arn in arns if arn.endswith("team-DynamoPackage"))
    assert by_sid["PackageTable"]["Resource"] == packages
    assert by_sid["PackagesByName"]["Resource"] == f"{packages}/index/name-index"


def test_vpc_options_add_network_interface_permissions(bucket, tmp_path, code):
    config = make_config(tmp_path)
    create(config, code=code, subnet_ids="subnet-1,subnet-2", security_group_ids="sg-1")
    doc = iam.parse_document(boto3.client("iam").get_role_policy(
        RoleName=iam.role_name(FUNCTION, REGION), PolicyName=iam.POLICY_NAME)["PolicyDocument"])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["VpcCreateNetworkInterface"]["Action"] == ["ec2:CreateNetworkInterface"]
    assert {r.rsplit(":", 1)[1] for r in by_sid["VpcCreateNetworkInterface"]["Resource"]} == {
        "network-interface/*", "subnet/subnet-1", "subnet/subnet-2", "security-group/sg-1"}
    vpc = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=FUNCTION)["VpcConfig"]
    assert sorted(vpc["SubnetIds"]) == ["subnet-1", "subnet-2"]


def test_given_role_is_used_and_never_touched(bucket, tmp_path, code):
    client = boto3.client("iam")
    arn = client.create_role(RoleName="platform-team-role",
                             AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))[
        "Role"]["Arn"]
    config = make_config(tmp_path)
    roles = snapshot()["roles"]
    role = client.get_role(RoleName="platform-team-role")["Role"]
    plan = create(config, code=code, role_arn=arn)
    shown = plan.describe()
    assert f"using role {arn} as given (-a); its policy is yours" in shown
    assert "IAM role" not in shown and "inline policy" not in shown
    assert snapshot()["roles"] == roles == {"platform-team-role": {"inline": [],
                                                                   "attached": []}}
    assert client.get_role(RoleName="platform-team-role")["Role"] == role
    assert boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=FUNCTION)["Role"] == arn

    delete(config, role_arn=arn)
    assert snapshot()["roles"] == roles
    assert client.get_role(RoleName="platform-team-role")["Role"] == role


def test_foreign_role_with_our_name_is_refused(bucket, tmp_path, code):
    boto3.client("iam").create_role(RoleName=iam.role_name(FUNCTION, REGION),
                                    AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))
    with pytest.raises(deploy.DeployError, match="not created by pypicloud-s3sync.*-a"):
        create(make_config(tmp_path), code=code)


# -- the function ---------------------------------------------------------------------------

def test_force_updates_code_and_configuration_in_place(bucket, tmp_path, code):
    """``-f`` changes the function and its code where it is: its settings and permissions
    survive.  That no DeleteFunction is sent is itself the promise (the function module:
    "updated in place, never deleted and made again"), so that one call is looked for."""
    config = make_config(tmp_path)
    create(config, code=code)
    lam = boto3.client("lambda", region_name=REGION)
    before = lam.get_function_configuration(FunctionName=FUNCTION)

    new_code = deploy.ZipBundle.from_path(
        write_zip(tmp_path / "v2.zip", "def handle_event(event, context):\n    return 2\n"))
    assert new_code.sha256 != code.sha256

    # Without -f an existing function is left alone, and the operator is told so.
    plan = create(config, code=new_code, timeout=120)
    assert plan.is_empty
    assert any("-f" in w and "Timeout" in w for w in plan.warnings)
    assert lam.get_function_configuration(FunctionName=FUNCTION)["CodeSha256"] == code.sha256

    recorder = Recorder()
    invoke = lam.get_function_event_invoke_config(FunctionName=FUNCTION)
    invoke.pop("ResponseMetadata")
    plan = create(config, recorder, new_code, force=True, timeout=120)
    assert "update configuration of pypicloud_s3_sync: Timeout" in plan.describe()
    after = lam.get_function_configuration(FunctionName=FUNCTION)
    assert after["CodeSha256"] == new_code.sha256
    assert after["Timeout"] == 120
    assert after["FunctionArn"] == before["FunctionArn"]
    # In place, as the function module promises ("never deleted and made again, so its
    # ARN and permissions stay valid"): moto gives a function made again the same ARN,
    # so what shows it is what a new function would lack, and that no delete was sent.
    kept = lam.get_function_event_invoke_config(FunctionName=FUNCTION)
    kept.pop("ResponseMetadata")
    assert kept == invoke
    assert snapshot()["functions"][FUNCTION]["statements"] == [
        f"pypicloud-s3sync-s3-{BUCKET}"]
    assert "DeleteFunction" not in recorder.calls


def test_foreign_function_needs_force_and_keeps_its_other_variables(bucket, tmp_path, code):
    """A function left by pypicloud's old script: python2.7-era, no tag, extra env vars."""
    role = boto3.client("iam").create_role(
        RoleName="old", AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    old = lam.create_function(
        FunctionName=FUNCTION, Runtime="python3.9", Role=role, Handler="lambda_script.handle",
        Code={"ZipFile": (tmp_path / "function.zip").read_bytes()},
        Environment={"Variables": {"PPC_DB_URL": "kept-by-operator"}})
    s3 = boto3.client("s3", region_name=REGION)
    # The old script's entries: no Id of ours, no filter, aimed at this function.
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "LambdaFunctionConfigurations": [
            {"LambdaFunctionArn": old["FunctionArn"], "Events": ["s3:ObjectCreated:*"]},
            {"LambdaFunctionArn": old["FunctionArn"], "Events": ["s3:ObjectRemoved:*"]}]})
    config = make_config(tmp_path)
    with pytest.raises(deploy.DeployError, match="not created by pypicloud-s3sync.*-f"):
        create(config, code=code)
    create(config, code=code, force=True)
    env = function_env()
    assert env["PPC_DB_URL"] == "kept-by-operator"
    assert json.loads(env[deploy.ENV_VAR])["db.url"] == "redis://cache.internal:6379/0"
    assert lam.get_function(FunctionName=FUNCTION)["Tags"][tags.MANAGED_TAG] == "true"
    entries = bucket_notification()["LambdaFunctionConfigurations"]
    assert [e["Id"] for e in entries] == [ENTRY_ID]


def test_our_function_is_ours_also_when_get_function_withholds_its_tags(
        bucket, tmp_path, monkeypatch, code):
    """A caller without ``lambda:ListTags`` gets GetFunction without ``Tags``: the tags are
    asked again with ListTags, so a re-run still plans nothing (it refused "not created
    by pypicloud-s3sync") and delete still removes the function (it left it behind)."""
    config = make_config(tmp_path)
    create(config, code=code)
    moto_gaps.tags_withheld_from_get_function(monkeypatch)
    assert "Tags" not in boto3.client("lambda", region_name=REGION).get_function(
        FunctionName=FUNCTION)
    assert create(config, code=code).is_empty
    delete(config)
    assert boto3.client("lambda", region_name=REGION).list_functions()["Functions"] == []


def test_too_large_zip_is_refused_before_any_change(bucket, tmp_path, monkeypatch, code):
    monkeypatch.setattr(deploy, "MAX_ZIP_BYTES", code.size - 1)
    recorder = Recorder()
    with pytest.raises(deploy.DeployError, match="at most"):
        create(make_config(tmp_path), recorder, code)
    assert recorder.mutating == []


# -- permissions and notifications ------------------------------------------------------------

def test_invoke_permission_is_scoped_to_bucket_and_account(bucket, tmp_path, code):
    create(make_config(tmp_path), code=code)
    policy = json.loads(boto3.client("lambda", region_name=REGION).get_policy(
        FunctionName=FUNCTION)["Policy"])
    [statement] = policy["Statement"]
    assert statement["Sid"] == f"pypicloud-s3sync-s3-{BUCKET}"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": f"arn:aws:s3:::{BUCKET}"},
        "StringEquals": {"AWS:SourceAccount": "123456789012"}}


@pytest.mark.parametrize("delivery", ["direct", "eventbridge"])
def test_foreign_notifications_of_every_kind_survive_create_and_delete(
        bucket, tmp_path, code, delivery):
    foreign = foreign_destinations(tmp_path)
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=foreign)
    before_all = snapshot()
    before = bucket_notification()
    assert "EventBridgeConfiguration" in before  # what AWS returns (moto_gaps)

    config = make_config(tmp_path)
    create(config, code=code, delivery=delivery)
    during = bucket_notification()
    for kind in ("QueueConfigurations", "TopicConfigurations"):
        assert during[kind] == before[kind]
    assert during["EventBridgeConfiguration"] == {}
    lambdas = {e["Id"]: e for e in during["LambdaFunctionConfigurations"]}
    assert lambdas["thumbs"] == before["LambdaFunctionConfigurations"][0]
    if delivery == "direct":
        assert set(lambdas) == {"thumbs", ENTRY_ID}
        assert lambdas[ENTRY_ID]["Filter"]["Key"]["FilterRules"] == [
            {"Name": "prefix", "Value": PREFIX}]
        assert sorted(lambdas[ENTRY_ID]["Events"]) == notifications.OUR_EVENTS
    else:
        assert set(lambdas) == {"thumbs"}

    assert create(config, code=code, delivery=delivery).is_empty
    plan = delete(config)
    assert any("kept as they are" in s.summary for s in plan.steps) == (delivery == "direct")
    assert bucket_notification() == before
    assert snapshot() == before_all


def test_overlapping_foreign_notification_is_a_clear_error(bucket, tmp_path, code):
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="everything")
    arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3", region_name=REGION).put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [
            {"Id": "mirror-all", "QueueArn": arn, "Events": ["s3:ObjectCreated:Put"]}]})
    before = snapshot()
    recorder = Recorder()
    with pytest.raises(deploy.DeployError) as info:
        create(make_config(tmp_path), recorder, code)
    message = str(info.value)
    assert "'mirror-all'" in message and arn in message
    assert "--delivery eventbridge" in message
    assert recorder.mutating == []
    assert snapshot() == before

    # The suggested way out works and leaves the queue's entry alone.
    create(make_config(tmp_path), code=code, delivery="eventbridge")
    assert bucket_notification()["QueueConfigurations"][0]["Id"] == "mirror-all"


def test_eventbridge_delivery(bucket, tmp_path, code):
    config = make_config(tmp_path)
    before = snapshot()
    create(config, code=code, delivery="eventbridge")
    assert bucket_notification() == {"EventBridgeConfiguration": {}}
    events = boto3.client("events", region_name=REGION)
    name = f"pypicloud-s3sync-{FUNCTION}"
    rule = events.describe_rule(Name=name)
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"],
        "detail": {"bucket": {"name": [BUCKET]}, "object": {"key": [{"prefix": PREFIX}]}}}
    [target] = events.list_targets_by_rule(Rule=name)["Targets"]
    assert target["Arn"].endswith(f":function:{FUNCTION}")
    [statement] = json.loads(boto3.client("lambda", region_name=REGION).get_policy(
        FunctionName=FUNCTION)["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]

    # Switching to direct delivery removes the EventBridge path it no longer needs.
    create(config, code=code, delivery="direct")
    assert name not in {r["Name"] for r in events.list_rules()["Rules"]}
    assert [e["Id"] for e in bucket_notification()["LambdaFunctionConfigurations"]] == [
        ENTRY_ID]

    create(config, code=code, delivery="eventbridge")
    delete(config)
    assert snapshot() == before


def test_notification_retried_while_permission_propagates(bucket, tmp_path, code):
    """AWS rejects the notification until the new permission has propagated.

    moto accepts it at once, so the first PutBucketNotificationConfiguration gets the
    error AWS documents for this case; every other call is moto's.
    """
    config = make_config(tmp_path)
    opts = deploy.DeployOptions.from_config(config)
    clients = clients_for(config, opts)
    plan = deploy.plan_create(config, opts, clients, code=code)
    refusals = iter([True, True])

    def not_yet(model, **_):
        if next(refusals, False):
            raise ClientError({"Error": {
                "Code": "InvalidArgument",
                "Message": "Unable to validate the following destination configurations"}},
                model.name)

    clients.client("s3").meta.events.register(
        "before-call.s3.PutBucketNotificationConfiguration", not_yet)
    slept = []
    results = deploy.apply(plan, clients, sleep=slept.append)
    assert slept == [1, 2]
    assert results[-1].attempts == 3
    assert bucket_notification()["LambdaFunctionConfigurations"][0]["Id"] == ENTRY_ID


# S3 validates the whole document on each write: "After Amazon S3 receives this request,
# it first verifies that any Amazon Simple Notification Service (Amazon SNS) or Amazon
# Simple Queue Service (Amazon SQS) destination exists [...] In the case of Lambda
# destinations, Amazon S3 verifies that the Lambda function permissions grant Amazon S3
# permission to invoke the function from the Amazon S3 bucket", and "The PUT notification
# is an atomic operation" (the S3 API Reference, PutBucketNotificationConfiguration);
# its SkipDestinationValidation "Skips validation of Amazon SQS, Amazon SNS, and Lambda
# destinations".  moto checks none of it: moto_gaps.validates_destinations does.

def test_delete_removes_our_entry_past_a_stale_foreign_destination(
        bucket, tmp_path, code, monkeypatch):
    """Another team's deleted queue stays in the bucket's document.  Delete only takes
    our entry out, which validates nothing new, so it must not be blocked by theirs
    (nor retried for a minute as if it were our permission propagating)."""
    moto_gaps.validates_destinations(monkeypatch)
    config = make_config(tmp_path)
    create(config, code=code)
    stale = stale_foreign_queue()
    slept: list[float] = []
    opts = deploy.DeployOptions.from_config(config)
    clients = clients_for(config, opts)
    deploy.apply(deploy.plan_delete(config, opts, clients), clients, sleep=slept.append)
    assert slept == []
    assert bucket_notification() == {"QueueConfigurations": [{
        "Id": "team-b-uploads", "QueueArn": stale, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "team-b/"}]}}}]}
    assert FUNCTION not in {f["FunctionName"] for f in boto3.client(
        "lambda", region_name=REGION).list_functions()["Functions"]}


def test_switching_to_eventbridge_removes_our_entry_past_a_stale_foreign_destination(
        bucket, tmp_path, code, monkeypatch):
    """Moving delivery to EventBridge takes our entry out and turns EventBridge on:
    no new SQS, SNS or Lambda destination, so nothing for S3 to validate."""
    moto_gaps.validates_destinations(monkeypatch)
    config = make_config(tmp_path)
    create(config, code=code)
    stale_foreign_queue()
    create(config, code=code, delivery="eventbridge")
    after = bucket_notification()
    assert "LambdaFunctionConfigurations" not in after
    assert [e["Id"] for e in after["QueueConfigurations"]] == ["team-b-uploads"]
    assert after["EventBridgeConfiguration"] == {}


def test_a_stale_foreign_destination_stops_create_at_once_naming_it(
        bucket, tmp_path, code, monkeypatch):
    """Adding our entry makes S3 validate every destination, and another team's deleted
    queue fails that whatever we do.  create says which destination and what to do in
    one line, at once: retrying is for our own permission, not for their queue."""
    moto_gaps.validates_destinations(monkeypatch)
    stale = stale_foreign_queue()
    before = bucket_notification()
    config = make_config(tmp_path)
    opts = deploy.DeployOptions.from_config(config)
    clients = clients_for(config, opts)
    plan = deploy.plan_create(config, opts, clients, code=code)
    slept: list[float] = []
    with pytest.raises(deploy.ApplyError) as failed:
        deploy.apply(plan, clients, sleep=slept.append)
    message = str(failed.value)
    assert slept == []
    assert len(message.splitlines()) == 1
    assert stale in message
    assert "remove" in message and "policy" in message
    assert bucket_notification() == before
    failure = awsfailure.classify(failed.value)
    assert failure.kind == "state" and stale in failure.message

    # Once that team's entry is gone, the same create goes through.
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={}, SkipDestinationValidation=True)
    create(config, code=code)
    assert [e["Id"] for e in bucket_notification()["LambdaFunctionConfigurations"]] == [
        ENTRY_ID]


def test_our_own_permission_propagating_is_still_retried_when_s3_names_it(
        bucket, tmp_path, code, monkeypatch):
    """The permission we just added may not have reached S3 yet: it then names our own
    function as the destination it could not validate, which is worth waiting for."""
    config = make_config(tmp_path)
    opts = deploy.DeployOptions.from_config(config)
    clients = clients_for(config, opts)
    plan = deploy.plan_create(config, opts, clients, code=code)
    ours = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION}"
    refusals = iter([True, True])

    def not_yet(model, **_):
        if next(refusals, False):
            raise ClientError({"Error": {
                "Code": "InvalidArgument", "Message": moto_gaps.UNVALIDATED,
                "ArgumentName1": ours,
                "ArgumentValue1": f"Not authorized to invoke function [{ours}]"}},
                model.name)

    clients.client("s3").meta.events.register(
        "before-call.s3.PutBucketNotificationConfiguration", not_yet)
    slept: list[float] = []
    deploy.apply(plan, clients, sleep=slept.append)
    assert len(slept) == 2
    assert bucket_notification()["LambdaFunctionConfigurations"][0]["Id"] == ENTRY_ID


# -- plan output and dry run ---------------------------------------------------------------

def test_dry_run_plan_is_json_safe_and_changes_nothing(bucket, tmp_path, code):
    config = make_config(tmp_path)
    before = snapshot()
    recorder = Recorder()
    opts = deploy.DeployOptions.from_config(config)
    plan = deploy.plan_create(config, opts, clients_for(config, opts, recorder), code=code)
    assert recorder.mutating == []
    assert snapshot() == before
    document = json.loads(json.dumps(plan.to_json()))
    [create_fn] = [s for s in document["steps"] if s["call"] == "lambda.create_function"]
    assert create_fn["params"]["Code"] == {"ZipFile": {"sha256": code.sha256,
                                                       "bytes": code.size}}
    assert create_fn["params"]["Environment"]["Variables"][deploy.ENV_VAR]["pypi.db"] == "redis"
    policy = [s for s in document["steps"] if s["call"] == "iam.put_role_policy"][0]
    assert policy["params"]["PolicyDocument"]["Version"] == "2012-10-17"
    lines = plan.describe().splitlines()
    assert lines[0].startswith("Plan to create pypicloud_s3_sync in us-east-1")
    assert [line[2] for line in lines[1:7]] == ["+", "+", "+", "+", "+", "~"]


def test_delete_with_nothing_deployed_is_empty(bucket, tmp_path):
    recorder = Recorder()
    plan = delete(make_config(tmp_path), recorder)
    assert plan.is_empty and recorder.mutating == []
    assert "Nothing to delete" in plan.describe()


def test_missing_bucket_is_a_clear_error(aws, tmp_path, code):
    with pytest.raises(deploy.DeployError, match="bucket packages does not exist"):
        create(make_config(tmp_path), code=code)


def test_on_failure_destination_and_retry_settings(bucket, tmp_path, code):
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="sync-failed")[
        "QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create(make_config(tmp_path), code=code, on_failure=dlq, retry_attempts=1,
           max_event_age=3600)
    invoke = boto3.client("lambda", region_name=REGION).get_function_event_invoke_config(
        FunctionName=FUNCTION)
    assert invoke["MaximumRetryAttempts"] == 1
    assert invoke["MaximumEventAgeInSeconds"] == 3600
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == dlq
    doc = iam.parse_document(boto3.client("iam").get_role_policy(
        RoleName=iam.role_name(FUNCTION, REGION), PolicyName=iam.POLICY_NAME)["PolicyDocument"])
    [statement] = [s for s in doc["Statement"] if s["Sid"] == "OnFailureDestination"]
    assert (statement["Action"], statement["Resource"]) == (["sqs:SendMessage"], dlq)
    assert create(make_config(tmp_path), code=code, on_failure=dlq, retry_attempts=1,
                  max_event_age=3600).is_empty


def test_changed_async_settings_are_applied_once_then_in_sync(bucket, tmp_path, code):
    """A second create that changes retries and adds a destination updates the one
    configuration the function has; the run after it plans nothing."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="sync-failed")[
        "QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create(make_config(tmp_path), code=code, retry_attempts=1)
    changed = create(make_config(tmp_path), code=code, on_failure=dlq, force=True)
    assert "async-config" in {step.resource for step in changed.steps}
    invoke = boto3.client("lambda", region_name=REGION).get_function_event_invoke_config(
        FunctionName=FUNCTION)
    assert invoke["MaximumRetryAttempts"] == deploy.DeployOptions().retry_attempts
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == dlq
    assert create(make_config(tmp_path), code=code, on_failure=dlq).is_empty


def test_function_creation_retried_while_new_role_propagates(bucket, tmp_path, code):
    """Lambda cannot assume a role for a few seconds after IAM created it; moto can at
    once, so the first CreateFunction gets the refusal AWS sends in that window."""
    config = make_config(tmp_path)
    opts = deploy.DeployOptions.from_config(config)
    clients = clients_for(config, opts)
    plan = deploy.plan_create(config, opts, clients, code=code)
    refusals = iter([True])

    def not_yet(model, **_):
        if next(refusals, False):
            raise ClientError({"Error": {
                "Code": "InvalidParameterValueException",
                "Message": "The role defined for the function cannot be assumed by Lambda."}},
                model.name)

    clients.client("lambda").meta.events.register("before-call.lambda.CreateFunction", not_yet)
    slept = []
    results = deploy.apply(plan, clients, sleep=slept.append)
    assert slept == [executor.ROLE_BACKOFF[0]]
    assert [r.attempts for r in results if r.step.operation == "create_function"] == [2]


def _queue_and_topic():
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="sync-failed")[
        "QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="sync-failed")[
        "TopicArn"]
    return queue, topic


VPC = {"subnet_ids": "subnet-1", "security_group_ids": "sg-1"}
ENI_REFUSAL = ("The provided execution role does not have permissions to call "
               "CreateNetworkInterface on EC2")


@pytest.mark.parametrize("case", ["vpc-create", "vpc-update", "sqs", "sns"])
def test_every_role_permission_refusal_is_retried_while_iam_propagates(
        bucket, tmp_path, code, monkeypatch, case):
    """Right after the role's policy changes, Lambda refuses what the new statements
    allow, not only a role it "cannot assume": the network interfaces of a VPC function
    (on CreateFunction and UpdateFunctionConfiguration) and the on-failure destination
    (on PutFunctionEventInvokeConfig).  IAM is eventually consistent, so create waits
    for each as it waits for a new role (moto_gaps.lambda_refuses_role cites them)."""
    queue, topic = _queue_and_topic()
    config = make_config(tmp_path)
    if case == "vpc-update":
        create(config, code=code)
    operation, message, options = {
        "vpc-create": ("create_function", ENI_REFUSAL, VPC),
        "vpc-update": ("update_function_configuration", ENI_REFUSAL,
                       {**VPC, "force": True}),
        "sqs": ("put_function_event_invoke_config",
                "The function's execution role does not have permissions to call "
                f"SendMessage on {queue}", {"on_failure": queue}),
        "sns": ("put_function_event_invoke_config",
                "The function's execution role does not have permissions to call "
                f"Publish on {topic}", {"on_failure": topic}),
    }[case]
    refused = moto_gaps.lambda_refuses_role(monkeypatch, operation, message, times=2)
    create(config, code=code, **options)
    assert len(refused) == 2
    lam = boto3.client("lambda", region_name=REGION)
    if case.startswith("vpc"):
        vpc = lam.get_function_configuration(FunctionName=FUNCTION)["VpcConfig"]
        assert vpc["SubnetIds"] == ["subnet-1"]
    else:
        invoke = lam.get_function_event_invoke_config(FunctionName=FUNCTION)
        assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == options[
            "on_failure"]


@pytest.mark.parametrize("given_role", [False, True])
def test_a_role_permission_that_never_comes_fails_after_the_bound_naming_it(
        bucket, tmp_path, code, monkeypatch, given_role):
    """A permission the role really lacks (a role given with -a, whose policy create
    never changes) is refused for good: after the same bounded wait, one line names the
    role and the permission to grant."""
    config = make_config(tmp_path)
    options = dict(VPC)
    role = iam.role_arn("123456789012", iam.role_name(FUNCTION, REGION), "aws")
    if given_role:
        role = boto3.client("iam").create_role(
            RoleName="platform", AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))[
            "Role"]["Arn"]
        options["role_arn"] = role
    moto_gaps.lambda_refuses_role(monkeypatch, "create_function", ENI_REFUSAL)
    opts = deploy.DeployOptions.from_config(config, **options)
    clients = clients_for(config, opts)
    plan = deploy.plan_create(config, opts, clients, code=code)
    slept: list[float] = []
    with pytest.raises(deploy.ApplyError) as failed:
        deploy.apply(plan, clients, sleep=slept.append)
    message = str(failed.value)
    assert len(message.splitlines()) == 1
    assert f"role {role} needs ec2:CreateNetworkInterface" in message
    assert "run the command again" in message
    assert len(slept) == len(executor.ROLE_BACKOFF)  # bounded
    assert FUNCTION not in {f["FunctionName"] for f in boto3.client(
        "lambda", region_name=REGION).list_functions()["Functions"]}
    assert "ec2:CreateNetworkInterface" in awsfailure.classify(failed.value).message


def test_two_regions_in_one_account_keep_their_own_roles(aws, tmp_path):
    """IAM is global: the second region's create must not rewrite the first one's role."""
    import boto3

    from pypicloud_s3sync.config import load_config
    from pypicloud_s3sync.provision import deploy

    def region_config(region: str, bucket: str):
        boto3.client("s3", region_name=region).create_bucket(
            Bucket=bucket, **({} if region == "us-east-1" else
                              {"CreateBucketConfiguration": {"LocationConstraint": region}}))
        ini = tmp_path / f"{region}.ini"
        ini.write_text("[app:main]\nuse = egg:pypicloud\npypi.storage = s3\n"
                       f"storage.bucket = {bucket}\n"
                       f"storage.region_name = {region}\npypi.db = redis\n"
                       "db.url = redis://cache.internal:6379/0\n")
        return load_config(str(ini))

    code = deploy.ZipBundle.from_path(write_zip(tmp_path / "code.zip"))
    policies = {}
    for region, bucket in (("us-east-1", "packages-use1"), ("eu-west-1", "packages-euw1")):
        config = region_config(region, bucket)
        options = deploy.DeployOptions.from_config(config)
        clients = deploy.AwsClients.from_config(config, options)
        deploy.apply(deploy.plan_create(config, options, clients, code=code), clients,
                     sleep=lambda _s: None)
        policies[region] = options.role_name(region)

    iam_client = boto3.client("iam")
    assert policies["us-east-1"] != policies["eu-west-1"]
    for region, bucket in (("us-east-1", "packages-use1"), ("eu-west-1", "packages-euw1")):
        document = json.dumps(iam_client.get_role_policy(
            RoleName=policies[region], PolicyName=iam.POLICY_NAME)["PolicyDocument"])
        assert f"arn:aws:s3:::{bucket}" in document


# -- the reconcile schedule (--reconcile-every) ----------------------------------------------

SCHEDULE_RULE = f"pypicloud-s3sync-{FUNCTION}-reconcile"
SCHEDULE_SID = f"pypicloud-s3sync-schedule-{BUCKET}"


def statements():
    policy = boto3.client("lambda", region_name=REGION).get_policy(FunctionName=FUNCTION)
    return {s["Sid"]: s for s in json.loads(policy["Policy"])["Statement"]}


def test_reconcile_schedule_lifecycle(bucket, tmp_path, code):
    """Create, change the interval in place, drop the option: each run does only that."""
    config = make_config(tmp_path)
    create(config, code=code)
    before = snapshot()
    events = boto3.client("events", region_name=REGION)

    create(config, code=code, reconcile_every="12h")
    scheduled = snapshot()
    assert scheduled == {**before, "rules": {SCHEDULE_RULE: None}, "functions": {
        FUNCTION: {**before["functions"][FUNCTION], "statements": sorted(
            before["functions"][FUNCTION]["statements"] + [SCHEDULE_SID])}}}
    rule = events.describe_rule(Name=SCHEDULE_RULE)
    assert (rule["ScheduleExpression"], rule["State"]) == ("rate(12 hours)", "ENABLED")
    found = events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"]
    assert {"Key": tags.MANAGED_TAG, "Value": tags.MANAGED_VALUE} in found
    [target] = events.list_targets_by_rule(Rule=SCHEDULE_RULE)["Targets"]
    assert target["Arn"].endswith(f":function:{FUNCTION}")
    assert "Input" not in target  # EventBridge's own scheduled-event shape reaches the handler
    statement = statements()[SCHEDULE_SID]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]
    # The bucket's delivery is untouched by the schedule.
    assert [e["Id"] for e in bucket_notification()["LambdaFunctionConfigurations"]] == [
        ENTRY_ID]

    plan = create(config, code=code, reconcile_every="30m")
    assert plan.steps[0].details == {"from": "rate(12 hours)", "to": "rate(30 minutes)"}
    assert events.describe_rule(Name=SCHEDULE_RULE)["ScheduleExpression"] == "rate(30 minutes)"
    assert events.describe_rule(Name=SCHEDULE_RULE)["Arn"] == rule["Arn"]
    assert events.list_targets_by_rule(Rule=SCHEDULE_RULE)["Targets"] == [target]
    assert statements()[SCHEDULE_SID] == statement
    assert snapshot() == scheduled

    # A constant input the operator added (for deep runs) is theirs: no drift, kept.
    deep = json.dumps({"detail-type": "Scheduled Event", "source": "aws.events",
                       "detail": {"deep": True}})
    events.put_targets(Rule=SCHEDULE_RULE, Targets=[{**target, "Input": deep}])
    recorder = Recorder()
    assert create(config, recorder, code, reconcile_every="30m").is_empty
    assert recorder.mutating == []
    opts = deploy.DeployOptions.from_config(config, reconcile_every="30m")
    report = deploy.status(config, opts, clients_for(config, opts), code=code)
    assert report.in_sync, report.describe()
    rows = {row.resource: row for row in report.rows}
    assert (rows["reconcile-schedule"].desired, rows["reconcile-schedule"].actual) == (
        "rate(30 minutes)", "rate(30 minutes)")
    assert "reconcile-schedule" in report.describe()

    # The option gone (ini unset, flag absent): status shows drift, create removes it all.
    opts = deploy.DeployOptions.from_config(config)
    report = deploy.status(config, opts, clients_for(config, opts), code=code)
    assert not report.in_sync
    create(config, code=code)
    assert snapshot() == before


def test_reconcile_schedule_from_the_ini_and_the_flag_wins(bucket, tmp_path, code):
    config = make_config(tmp_path, **{"s3sync.reconcile_every": "1d"})
    assert deploy.DeployOptions.from_config(config).reconcile_schedule == "rate(1 day)"
    assert deploy.DeployOptions.from_config(
        config, reconcile_every="6h").reconcile_schedule == "rate(6 hours)"
    assert deploy.DeployOptions.from_config(
        config, reconcile_every="off").reconcile_schedule is None
    assert deploy.DeployOptions.from_config(
        config, reconcile_every="cron(0 3 * * ? *)").reconcile_schedule == "cron(0 3 * * ? *)"
    for bad in ("1w", "0d", "daily", "cron(0 3 * *)"):
        with pytest.raises(ConfigError, match=r"reconcile_every = .* is not valid"):
            deploy.DeployOptions.from_config(config, reconcile_every=bad)

    create(config, code=code)
    rule = boto3.client("events", region_name=REGION).describe_rule(Name=SCHEDULE_RULE)
    assert rule["ScheduleExpression"] == "rate(1 day)"


def test_delete_removes_the_schedule_with_everything_else(bucket, tmp_path, code):
    config = make_config(tmp_path)
    before = snapshot()
    create(config, code=code, reconcile_every="1d", delivery="eventbridge")
    assert set(statements()) == {SCHEDULE_SID, f"pypicloud-s3sync-events-{BUCKET}"}

    plan = delete(config)  # no option given: delete removes the schedule anyway
    assert f"delete EventBridge rule {SCHEDULE_RULE}" in plan.describe()
    assert snapshot() == before


def test_a_foreign_rule_with_the_schedule_name_is_refused(bucket, tmp_path, code):
    config = make_config(tmp_path)
    boto3.client("events", region_name=REGION).put_rule(
        Name=SCHEDULE_RULE, ScheduleExpression="rate(1 hour)")
    recorder = Recorder()
    with pytest.raises(deploy.DeployError, match="not created by pypicloud-s3sync"):
        create(config, recorder, code, reconcile_every="1d")
    assert recorder.mutating == []


def test_role_lets_the_scheduled_reconcile_list_only_the_prefix(bucket, tmp_path, code):
    config = make_config(tmp_path)
    create(config, code=code, reconcile_every="1d")
    doc = iam.parse_document(boto3.client("iam").get_role_policy(
        RoleName=iam.role_name(FUNCTION, REGION), PolicyName=iam.POLICY_NAME)["PolicyDocument"])
    listing = [s for s in doc["Statement"] if "s3:ListBucket" in s["Action"]]
    assert listing == [{
        "Sid": "ListPackages", "Effect": "Allow", "Action": ["s3:ListBucket"],
        "Resource": f"arn:aws:s3:::{BUCKET}",
        "Condition": {"StringLikeIfExists": {"s3:prefix": [f"{PREFIX}*"]}}}]
    assert json.loads(function_env()[deploy.ENV_VAR])["storage.bucket"] == BUCKET


def test_a_runtime_aws_is_retiring_is_refused_for_a_new_function_and_warned_about(
        bucket, tmp_path, code, monkeypatch):
    import datetime

    from pypicloud_s3sync.bundle import runtimes

    config = make_config(tmp_path)
    monkeypatch.setattr(runtimes, "today", lambda: datetime.date(2027, 8, 1))
    recorder = Recorder()
    with pytest.raises(ConfigError, match=r"runtime python3\.11: AWS stopped creating "
                                          r"functions with python3\.11 on 2027-07-31.*"
                                          r"python3\.12, python3\.13, python3\.14"):
        create(config, recorder, code, runtime="python3.11")
    assert recorder.mutating == []
    # Half a year before the deprecation, the plan says so and goes ahead.
    monkeypatch.setattr(runtimes, "today", lambda: datetime.date(2027, 3, 1))
    plan = create(config, code=code, runtime="python3.11")
    assert any("AWS deprecates python3.11 on 2027-06-30" in w for w in plan.warnings)
    assert boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=FUNCTION)["Runtime"] == "python3.11"


SQL = {"pypi.db": "sql", "db.url": "postgresql://pypicloud@db.internal/pypicloud"}


def test_reserved_concurrency_is_a_planned_resource(bucket, tmp_path, code):
    lam = boto3.client("lambda", region_name=REGION)
    config = make_config(tmp_path, **SQL)
    first = create(config, code=code, reserved_concurrency="5")
    assert "concurrency" in {step.resource for step in first.steps}
    assert lam.get_function_concurrency(FunctionName=FUNCTION)[
        "ReservedConcurrentExecutions"] == 5
    assert any("at most 5 containers x 1 connection = 5 connections" in n for n in first.notes)
    assert not [w for w in first.warnings if "not capped" in w]
    again = create(config, code=code, reserved_concurrency="5")
    assert again.is_empty
    opts = deploy.DeployOptions.from_config(config, reserved_concurrency="5")
    report = deploy.status(config, opts, clients_for(config, opts), code=code)
    assert [(r.desired, r.actual, r.in_sync) for r in report.rows
            if r.resource == "concurrency"] == [("reserved 5", "reserved 5", True)]
    lower = create(config, code=code, reserved_concurrency="3")
    assert [(s.action, s.params["ReservedConcurrentExecutions"]) for s in lower.steps] == [
        ("update", 3)]
    assert lam.get_function_concurrency(FunctionName=FUNCTION)[
        "ReservedConcurrentExecutions"] == 3
    assert create(config, code=code, reserved_concurrency="3").is_empty


def test_reserved_concurrency_off_removes_the_cap_and_no_option_leaves_it(
        bucket, tmp_path, code):
    """``off`` is "no cap" (the help says so), so the cap goes; leaving the option out
    manages nothing, so a cap set by hand stays and status shows it as such."""
    lam = boto3.client("lambda", region_name=REGION)
    config = make_config(tmp_path)
    create(config, code=code, reserved_concurrency="5")
    off = create(config, code=code, reserved_concurrency="off")
    assert (f"- remove the reserved concurrency (5) of {FUNCTION}: --reserved-concurrency off"
            in off.describe())
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName=FUNCTION)
    assert create(config, code=code, reserved_concurrency="off").is_empty

    lam.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=7)
    assert create(config, code=code).is_empty
    opts = deploy.DeployOptions.from_config(config)
    report = deploy.status(config, opts, clients_for(config, opts), code=code)
    assert report.in_sync
    assert [(r.desired, r.actual) for r in report.rows if r.resource == "concurrency"] == [
        ("not managed (no --reserved-concurrency)", "reserved 7, left as it is")]
    assert lam.get_function_concurrency(FunctionName=FUNCTION)[
        "ReservedConcurrentExecutions"] == 7


def test_a_sql_cache_without_a_cap_is_warned_about(bucket, tmp_path, code):
    plan = create(make_config(tmp_path, **SQL), code=code)
    [warning] = [w for w in plan.warnings if "not capped" in w]
    assert "--reserved-concurrency N (s3sync.reserved_concurrency)" in warning
    assert "max_connections" in warning
    assert "concurrency" not in {step.resource for step in plan.steps}
    redis = create(make_config(tmp_path, name="redis.ini"), code=code)
    assert not [w for w in redis.warnings if "not capped" in w]
    # SQLite has no server whose connections could run out (the demo's cache).
    sqlite = create(make_config(tmp_path, name="sqlite.ini", **{
        "pypi.db": "sql", "db.url": f"sqlite:///{tmp_path / 'cache.sqlite'}"}), code=code)
    assert not [w for w in sqlite.warnings if "not capped" in w]


@pytest.mark.parametrize(("given", "expected"),
                         [("8", 8), ("off", "off"), ("None", "off"), ("", None)])
def test_reserved_concurrency_values(given, expected):
    assert deploy.DeployOptions.build(reserved_concurrency=given).reserved_concurrency == (
        expected)


@pytest.mark.parametrize("given", ["0", "-1", "many"])
def test_reserved_concurrency_refuses_what_would_stop_the_function(given):
    from pypicloud_s3sync.provision.errors import OptionsError

    with pytest.raises(OptionsError, match="reserved_concurrency"):
        deploy.DeployOptions.build(reserved_concurrency=given)
