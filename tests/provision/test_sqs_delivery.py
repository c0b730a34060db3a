"""``--delivery sqs`` on moto: the queue, its dead-letter queue and policy, the mapping,
the role's grant, every switch between the three deliveries, status and the options.

moto keeps queues, queue policies and event source mappings, but it never polls a queue
(no mapping ever invokes anything), does not enforce a queue's policy on S3's sends
(``moto_gaps.validates_destinations`` makes S3's write check it, as S3 does), publishes
no SQS metrics to CloudWatch, and never refuses a mapping for the role's permissions
(``moto_gaps.lambda_refuses_role``).  ``account.consume_our_queues`` stands in for the
poller where a test needs a queue emptied.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from pypicloud_s3sync.provision import alarms as alarms_module
from pypicloud_s3sync.provision import deploy, names, tags
from pypicloud_s3sync.provision.errors import DeployError, OptionsError
from pypicloud_s3sync.provision.plan import FAIL, WARN

from ..support import account, moto_gaps
from ..support.deploy_helpers import BUCKET, REGION, clients_for, make_config, write_zip

FUNCTION = "pypicloud_s3_sync"
QUEUE, DLQ = names.queue_name(FUNCTION), names.dead_letter_queue_name(FUNCTION)
ACCOUNT = "123456789012"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"
DELIVERIES = ("direct", "eventbridge", "sqs")


@pytest.fixture(autouse=True)
def _moto(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)
    moto_gaps.validates_destinations(monkeypatch)
    moto_gaps.mapping_checks_visibility(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)


@pytest.fixture
def code(tmp_path):
    return deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


def plan(config, code, **options) -> deploy.Plan:
    opts = deploy.DeployOptions.from_config(config, force=True, **options)
    return deploy.plan_create(config, opts, clients_for(config, opts), code=code)


def create(config, code, **options) -> deploy.Plan:
    made = plan(config, code, **options)
    opts = deploy.DeployOptions.from_config(config, **options)
    deploy.apply(made, clients_for(config, opts), sleep=lambda s: None)
    return made


def status(config, code, **options) -> deploy.StatusReport:
    opts = deploy.DeployOptions.from_config(config, **options)
    return deploy.status(config, opts, clients_for(config, opts), code=code)


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def queue_attributes(name: str = QUEUE) -> dict[str, str]:
    sqs = client("sqs")
    return sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"],
                                    AttributeNames=["All"])["Attributes"]


def paths() -> list[str]:
    """The delivery paths that exist, as an operator would find them in the console."""
    notification = client("s3").get_bucket_notification_configuration(Bucket=BUCKET)
    found = []
    if any(e["LambdaFunctionArn"].endswith(f":function:{FUNCTION}")
           for e in notification.get("LambdaFunctionConfigurations", [])):
        found.append("direct")
    rules = [r["Name"] for r in client("events").list_rules()["Rules"]]
    if "EventBridgeConfiguration" in notification and names.delivery_rule_name(
            FUNCTION) in rules:
        found.append("eventbridge")
    if any(e["QueueArn"] == QUEUE_ARN for e in notification.get("QueueConfigurations", [])):
        found.append("sqs")
    return found


def leftovers() -> list[str]:
    """What of any path is still there: the queues, the mapping, the rule, the
    permissions."""
    found = [q.rsplit("/", 1)[-1] for q in client("sqs").list_queues().get("QueueUrls", [])]
    found += ["mapping" for _ in client("lambda").list_event_source_mappings()[
        "EventSourceMappings"]]
    found += [r["Name"] for r in client("events").list_rules()["Rules"]]
    try:
        policy = json.loads(client("lambda").get_policy(FunctionName=FUNCTION)["Policy"])
        found += [s["Principal"]["Service"] for s in policy["Statement"]]
    except client("lambda").exceptions.ResourceNotFoundException:
        pass
    return sorted(found)


#: What each path leaves in the account, and nothing else.
OWN = {"direct": ["s3.amazonaws.com"],
       "eventbridge": ["events.amazonaws.com", names.delivery_rule_name(FUNCTION)],
       "sqs": sorted([QUEUE, DLQ, "mapping"])}


@pytest.mark.parametrize("before,after", [(a, b) for a in DELIVERIES for b in DELIVERIES
                                          if a != b])
def test_a_switch_builds_the_new_path_before_it_removes_the_old_one(config, code, before,
                                                                    after):
    """Switching the delivery is one plan: whatever the new path needs (the invoke
    permission, the rule, the queue with its policy and mapping) is made before the one
    write of the bucket's document that moves our events to it, and the old path's
    pieces go after that write, so at no moment do events go nowhere; after it exactly
    one path exists, with nothing of the old one left."""
    create(config, code, delivery=before)
    account.consume_our_queues(client)  # what the mapping would have read meanwhile
    assert paths() == [before] and leftovers() == sorted(OWN[before])

    switch = plan(config, code, delivery=after)
    calls = [f"{s.action} {s.service}.{s.operation}" for s in switch.steps]
    [write] = [i for i, c in enumerate(calls) if "put_bucket_notification_configuration" in c]
    assert all(i < write for i, c in enumerate(calls) if c.startswith("create")), calls
    assert all(i > write for i, c in enumerate(calls) if c.startswith("delete")), calls
    assert any(c.startswith("delete") for c in calls), calls  # the old path does go
    opts = deploy.DeployOptions.from_config(config, delivery=after)
    deploy.apply(switch, clients_for(config, opts), sleep=lambda s: None)

    assert paths() == [after]
    assert leftovers() == sorted(OWN[after])
    assert plan(config, code, delivery=after).is_empty
    assert status(config, code, delivery=after).in_sync


def test_the_queue_keeps_events_14_days_and_redrives_after_max_receives(config, code):
    """Both queues keep a message for SQS's longest, 14 days (1209600 s): "The expiration
    of a message is always based on its original enqueue timestamp. When a message is
    moved to a dead-letter queue, the enqueue timestamp is unchanged" (SQS developer
    guide, dead-letter queues), so the dead-letter queue cannot keep longer than that;
    the queue sends an event there after --max-receives failed receives."""
    create(config, code, delivery="sqs", max_receives="7")
    queue, dead = queue_attributes(), queue_attributes(DLQ)
    assert queue["MessageRetentionPeriod"] == dead["MessageRetentionPeriod"] == "1209600"
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead["QueueArn"], "maxReceiveCount": 7}
    sqs = client("sqs")
    assert sqs.list_queue_tags(QueueUrl=sqs.get_queue_url(QueueName=DLQ)["QueueUrl"])[
        "Tags"] == {tags.MANAGED_TAG: tags.MANAGED_VALUE}


def test_the_visibility_timeout_is_six_times_the_functions_and_follows_it(config, code):
    """"set the source queue's visibility timeout to at least six times the timeout
    that you configure on your function" (Lambda developer guide, SQS event source):
    create sets it from --timeout before the mapping, which Lambda refuses on a queue
    whose visibility timeout is shorter than the function's (``mapping_checks_visibility``),
    a change of --timeout changes it, and a queue lowered by hand is drift that status
    shows and create puts back."""
    create(config, code, delivery="sqs", timeout="900")  # Lambda's longest
    assert queue_attributes()["VisibilityTimeout"] == "5400"
    create(config, code, delivery="sqs", timeout="120")
    assert queue_attributes()["VisibilityTimeout"] == "720"
    create(config, code, delivery="sqs", timeout="30")
    assert queue_attributes()["VisibilityTimeout"] == "180"
    sqs = client("sqs")
    sqs.set_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"],
                             Attributes={"VisibilityTimeout": "30"})
    report = status(config, code, delivery="sqs", timeout="30")
    [row] = [r for r in report.rows if r.resource == "queue"]
    assert not row.in_sync and "visibility 30 s" in row.actual and "180 s" in row.desired
    create(config, code, delivery="sqs", timeout="30")
    assert queue_attributes()["VisibilityTimeout"] == "180"


def test_lambda_refuses_a_mapping_on_a_queue_shorter_than_the_function(config, code):
    """The moto gap itself: a queue kept at SQS's default 30 s cannot be mapped to a
    function of 60 s, so the order and value create uses are what let it pass."""
    create(config, code)
    sqs = client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="short")["QueueUrl"],
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with pytest.raises(client("lambda").exceptions.InvalidParameterValueException,
                       match="visibility timeout"):
        client("lambda").create_event_source_mapping(EventSourceArn=arn,
                                                     FunctionName=FUNCTION)


def test_only_this_bucket_may_send_to_the_queue(config, code):
    """The queue's policy names S3 and this bucket's ARN and account: S3 checks it when
    the bucket's entry is written (``validates_destinations``), so create succeeding
    shows it was in place first; it would refuse another bucket."""
    create(config, code, delivery="sqs")
    policy = json.loads(queue_attributes()["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == QUEUE_ARN
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{BUCKET}"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert moto_gaps._destination_refusal(QUEUE_ARN, f"arn:aws:s3:::{BUCKET}") is None
    assert moto_gaps._destination_refusal(QUEUE_ARN, "arn:aws:s3:::someone-else")


def test_the_mapping_reports_failures_per_event_and_caps_a_sql_cache(tmp_path, code):
    """The function returns batchItemFailures, so the mapping asks for them; a SQL
    cache gets MaximumConcurrency 2 ("Limits the number of concurrent instances that the
    Amazon SQS event source can invoke", 2 to 1000, Lambda API reference) unless
    --max-concurrency says otherwise, and ``off`` removes the cap."""
    config = make_config(tmp_path, **{"pypi.db": "sql",
                                      "db.url": "postgresql://cache.internal/pypi"})
    create(config, code, delivery="sqs", batch_size="50", batch_window="5")
    [mapping] = client("lambda").list_event_source_mappings(FunctionName=FUNCTION)[
        "EventSourceMappings"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (50, 5)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    create(config, code, delivery="sqs", batch_size="50", batch_window="5",
           max_concurrency="off")
    [mapping] = client("lambda").list_event_source_mappings(FunctionName=FUNCTION)[
        "EventSourceMappings"]
    assert not (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")


@pytest.mark.parametrize("given,why", [
    ({"batch_size": "20"}, "batch_window"),
    ({"max_concurrency": "1"}, "2 to 1000"),
    ({"max_receives": "0"}, "1 to 1000"),
    ({"batch_window": "301"}, "0 to 300"),
])
def test_values_lambda_or_sqs_refuse_are_refused_before_anything_is_read(config, given, why):
    """"when you set BatchSize to a value greater than 10, you must set
    MaximumBatchingWindowInSeconds to at least 1" (botocore's Lambda model); the other
    ranges are the APIs' own."""
    with pytest.raises(OptionsError, match=why):
        deploy.DeployOptions.from_config(config, delivery="sqs", **given)


def test_a_customer_key_encrypts_both_queues_and_the_plan_says_what_its_policy_needs(
        config, code):
    """S3 sends to an SSE-KMS queue only when the key's policy lets it use the key (SQS
    developer guide, "Enable compatibility between event sources from AWS services and
    encrypted queues"); create cannot change a key policy, so the plan says so, and the
    role may decrypt with the key to receive."""
    key = client("kms").create_key()["KeyMetadata"]["Arn"]
    made = create(config, code, delivery="sqs", queue_kms_key_arn=key)
    assert queue_attributes()["KmsMasterKeyId"] == queue_attributes(DLQ)["KmsMasterKeyId"] == key
    [note] = [n for n in made.notes if key in n]
    assert "kms:GenerateDataKey" in note and "s3.amazonaws.com" in note
    assert "encrypted queues" in note
    iam = client("iam")
    role = iam.list_roles(PathPrefix="/pypicloud-s3sync/")["Roles"][0]["RoleName"]
    document = iam.get_role_policy(RoleName=role, PolicyName="pypicloud-s3sync")[
        "PolicyDocument"]
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["DeliveryQueueKey"]["Resource"] == key
    assert statements["DeliveryQueue"]["Resource"] == QUEUE_ARN
    assert set(statements["DeliveryQueue"]["Action"]) == {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


def test_lambda_refusing_the_mapping_for_the_role_is_waited_for_then_named(
        config, code, monkeypatch):
    """Lambda refuses a mapping whose role cannot read the queue ("The provided
    execution role does not have permissions to call ReceiveMessage on SQS"), also while
    IAM has not yet shown it the role's new policy: create retries that, and when it
    lasts, says which permission the role lacks."""
    message = "The provided execution role does not have permissions to call ReceiveMessage on SQS"
    refused = moto_gaps.lambda_refuses_role(monkeypatch, "create_event_source_mapping",
                                            message, times=2)
    create(config, code, delivery="sqs")
    assert len(refused) == 2
    assert client("lambda").list_event_source_mappings()["EventSourceMappings"]

    account.reset_account()
    client("s3").create_bucket(Bucket=BUCKET)
    moto_gaps.lambda_refuses_role(monkeypatch, "create_event_source_mapping", message)
    with pytest.raises(deploy.ApplyError, match="needs sqs:ReceiveMessage"):
        create(config, code, delivery="sqs")


def test_a_queue_of_our_name_that_is_not_ours_is_refused_and_left_alone(config, code):
    client("sqs").create_queue(QueueName=QUEUE)
    with pytest.raises(DeployError, match=f"SQS queue {QUEUE} exists but was not created"):
        create(config, code, delivery="sqs")
    opts = deploy.DeployOptions.from_config(config)
    made = deploy.plan_delete(config, opts, clients_for(config, opts))
    assert any(f"SQS queue {QUEUE} was not created by pypicloud-s3sync" in n
               for n in made.notes)
    deploy.apply(made, clients_for(config, opts), sleep=lambda s: None)
    assert client("sqs").get_queue_url(QueueName=QUEUE)


def test_a_switch_away_keeps_a_queue_that_still_holds_events(config, code):
    """Deleting a queue deletes what it holds: a switch away from sqs moves the bucket's
    events to the new path at once, but keeps the queue, its mapping and the role's
    grant while events wait in it (or in the dead-letter queue), and says so; the next
    create after they are read removes them."""
    create(config, code, delivery="sqs")
    sqs = client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=DLQ)["QueueUrl"],
                     MessageBody="a failed event")
    made = create(config, code, delivery="direct")
    assert paths() == ["direct"]
    assert any("still hold" in note for note in made.notes), made.notes
    assert {QUEUE, DLQ, "mapping"} <= set(leftovers())
    account.consume_our_queues(client)
    create(config, code, delivery="direct")
    assert leftovers() == OWN["direct"]


def test_status_shows_the_queue_path(config, code):
    """How many events wait, whether any failed for good, and whether the mapping is
    on, each with its fix; moto publishes no SQS metrics, so the age of the oldest
    event is reported as not available."""
    create(config, code, delivery="sqs")
    account.consume_our_queues(client)
    sqs = client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"],
                     MessageBody="waiting")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=DLQ)["QueueUrl"],
                     MessageBody="failed")
    checks = {c.name: c for c in status(config, code, delivery="sqs").checks}
    assert "1 event(s) waiting" in checks["queue-depth"].detail
    assert checks["dead-letters"].status == WARN and "redrive" in checks["dead-letters"].fix
    assert "no age of the oldest message" in checks["oldest-event"].detail
    assert checks["mapping-state"].detail == "the mapping is Enabled"

    lam = client("lambda")
    [mapping] = lam.list_event_source_mappings()["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    report = status(config, code, delivery="sqs")
    check = {c.name: c for c in report.checks}["mapping-state"]
    assert check.status == FAIL and "ppc-create-s3-sync" in check.fix
    assert not report.in_sync and not report.healthy
    create(config, code, delivery="sqs")
    [mapping] = lam.list_event_source_mappings()["EventSourceMappings"]
    assert mapping["State"] == "Enabled"


def test_queue_alarms_come_and_go_with_the_queue(config, code):
    """With --alarm-topic, sqs delivery adds an alarm on the age of the queue's oldest
    event and one on any event in the dead-letter queue; a switch away removes them."""
    topic = client("sns").create_topic(Name="ops")["TopicArn"]
    create(config, code, delivery="sqs", alarm_topic=topic, alarm_lag="600")
    alarms = {a["AlarmName"]: a for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
    age = alarms[f"pypicloud-s3sync-{FUNCTION}-queue-age"]
    assert (age["Namespace"], age["MetricName"], age["Threshold"]) == (
        "AWS/SQS", "ApproximateAgeOfOldestMessage", 600.0)
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": QUEUE}]
    dead = alarms[f"pypicloud-s3sync-{FUNCTION}-dead-letters"]
    assert (dead["MetricName"], dead["ComparisonOperator"], dead["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible", "GreaterThanThreshold", 0.0)
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": DLQ}]
    account.consume_our_queues(client)
    create(config, code, delivery="direct", alarm_topic=topic, alarm_lag="600")
    left = {a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert left == {f"pypicloud-s3sync-{FUNCTION}-{kind}" for kind in alarms_module.KINDS}


def test_status_warns_of_an_old_event_and_a_failing_poll(config, code, monkeypatch):
    """The age of the oldest event is CloudWatch's ApproximateAgeOfOldestMessage (SQS
    has no attribute for it; published here as SQS would, since moto publishes no SQS
    metric), judged against --alarm-lag; a poll Lambda reports as a PROBLEM names what
    to do."""
    from datetime import UTC, datetime

    create(config, code, delivery="sqs")
    client("cloudwatch").put_metric_data(Namespace="AWS/SQS", MetricData=[{
        "MetricName": "ApproximateAgeOfOldestMessage", "Value": 4000.0,
        "Timestamp": datetime.now(UTC),
        "Dimensions": [{"Name": "QueueName", "Value": QUEUE}]}])
    moto_gaps.mapping_reports(monkeypatch, "PROBLEM: Function call failed")
    checks = {c.name: c for c in status(config, code, delivery="sqs", alarm_lag="600").checks}
    assert checks["oldest-event"].status == WARN, checks["oldest-event"]
    assert "4000 s (above 600)" in checks["oldest-event"].detail
    assert checks["mapping-result"].status == WARN
    assert "PROBLEM: Function call failed" in checks["mapping-result"].detail
    assert "role" in checks["mapping-result"].fix



def test_a_sync_that_never_used_the_queue_runs_on_a_policy_without_queue_grants(config, code):
    """An operator who upgrades keeps the policy written before ``--delivery sqs``
    existed: it grants nothing on SQS and no ``lambda:ListEventSourceMappings``, and IAM
    refuses what no statement allows ("By default, all requests are implicitly denied",
    IAM user guide, "Policy evaluation logic").  moto's own enforcement judges every
    IAM action against ``*`` and so cannot hold the scoped policy, so each of those calls
    is refused before it leaves botocore, as IAM would answer it.  Status and create of a
    direct sync still work, the plan says it could not look for a leftover queue, and
    asking for ``--delivery sqs`` itself stops on the refusal."""
    from botocore.exceptions import ClientError

    refused = []

    def iam_says_no(model: Any, **_: Any) -> None:
        if model.service_model.service_name == "sqs" or "EventSourceMapping" in model.name:
            refused.append(model.name)
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": (
                f"not authorized to perform: {model.service_model.signing_name}:{model.name}")}},
                model.name)

    def clients(**options: Any) -> tuple[deploy.DeployOptions, deploy.AwsClients]:
        opts = deploy.DeployOptions.from_config(config, **options)
        return opts, clients_for(config, opts, iam_says_no)

    opts, aws = clients(force=True)
    made = deploy.plan_create(config, opts, aws, code=code)
    deploy.apply(made, aws, sleep=lambda s: None)
    assert any("could not look for a queue left by --delivery sqs" in note
               for note in made.notes), made.notes
    opts, aws = clients()
    report = deploy.status(config, opts, aws, code=code)
    assert report.in_sync, report.describe()
    assert paths() == ["direct"]
    assert set(refused) == {"GetQueueUrl"}  # never the mapping: no queue was found
    opts, aws = clients(delivery="sqs")
    with pytest.raises(ClientError, match="sqs:GetQueueUrl"):
        deploy.plan_create(config, opts, aws, code=code)
