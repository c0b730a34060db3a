"""The EventBridge rule create deploys matches what S3 sends for our packages, and
nothing else: S3's real event shapes go through the deployed pattern.

moto does not implement TestEventPattern, but its PutEvents matches each event against
every rule of the bus and delivers to an SQS target.  So the deployed rule's pattern, as
create put it and DescribeRule reads it back, is given to a rule of the test's own, on a
bus of its own, with a queue as target (our rule's target is the function, which moto
cannot run), and the queue says which events matched.
"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from pypicloud_s3sync.provision import deploy
from pypicloud_s3sync.provision.names import delivery_rule_name

from ..support import moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REGION, clients_for, make_config, write_zip

FUNCTION = "pypicloud_s3_sync"
ACCOUNT = "123456789012"


def s3_event(detail_type: str, bucket: str, key: str, reason: str) -> dict[str, str]:
    """PutEvents' entry for an event as S3 sends it to EventBridge (Amazon S3 User
    Guide, "EventBridge event message structure")."""
    return {
        "Source": "aws.s3", "DetailType": detail_type,
        "Resources": [f"arn:aws:s3:::{bucket}"],
        "Detail": json.dumps({
            "version": "0", "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                       "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R", "requester": ACCOUNT,
            "source-ip-address": "192.0.2.1", "reason": reason}),
    }


@pytest.fixture
def deployed_pattern(aws: None, tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    config = make_config(tmp_path)
    options = deploy.DeployOptions.from_config(config, delivery="eventbridge")
    clients = clients_for(config, options)
    code = deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))
    deploy.apply(deploy.plan_create(config, options, clients, code=code), clients,
                 sleep=lambda s: None)
    return boto3.client("events", region_name=REGION).describe_rule(
        Name=delivery_rule_name(FUNCTION))["EventPattern"]


def matched(pattern: str, entries: list[dict[str, str]]) -> list[str]:
    """The keys of the entries that ``pattern`` lets through, in the order sent."""
    events, sqs = (boto3.client(s, region_name=REGION) for s in ("events", "sqs"))
    queue = sqs.create_queue(QueueName=f"seen-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events.create_event_bus(Name="observed")
    events.put_rule(Name="observer", EventBusName="observed", EventPattern=pattern,
                    State="ENABLED")
    events.put_targets(Rule="observer", EventBusName="observed",
                       Targets=[{"Id": "seen", "Arn": arn}])
    for entry in entries:
        sent = events.put_events(Entries=[{**entry, "EventBusName": "observed"}])
        assert sent["FailedEntryCount"] == 0
    seen = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return seen
        seen += [json.loads(m["Body"])["detail"]["object"]["key"] for m in got]
        sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


def test_the_deployed_rule_matches_created_and_deleted_packages_under_the_prefix(
        deployed_pattern: str) -> None:
    ours = [s3_event("Object Created", BUCKET, f"{PREFIX}a/a-1.0.tar.gz", "PutObject"),
            s3_event("Object Created", BUCKET, f"{PREFIX}b/b-1.0.whl",
                     "CompleteMultipartUpload"),
            s3_event("Object Created", BUCKET, f"{PREFIX}c/c-1.0.tar.gz", "CopyObject"),
            s3_event("Object Deleted", BUCKET, f"{PREFIX}a/a-1.0.tar.gz", "DeleteObject")]
    assert matched(deployed_pattern, ours) == [
        f"{PREFIX}a/a-1.0.tar.gz", f"{PREFIX}b/b-1.0.whl", f"{PREFIX}c/c-1.0.tar.gz",
        f"{PREFIX}a/a-1.0.tar.gz"]


def test_the_deployed_rule_lets_nothing_else_through(deployed_pattern: str) -> None:
    """Another bucket, another prefix and S3's other event types reach no function of
    ours: each would cost an invocation and, for another bucket, write another index."""
    others = [s3_event("Object Created", "other-packages", f"{PREFIX}a/a-1.0.tar.gz",
                       "PutObject"),
              s3_event("Object Created", BUCKET, "logs/2026/access.log", "PutObject"),
              s3_event("Object Deleted", BUCKET, "a/a-1.0.tar.gz", "DeleteObject"),
              s3_event("Object Restore Completed", BUCKET, f"{PREFIX}a/a-1.0.tar.gz",
                       "RestoreObject"),
              s3_event("Object Tags Added", BUCKET, f"{PREFIX}a/a-1.0.tar.gz",
                       "PutObjectTagging"),
              {**s3_event("Object Created", BUCKET, f"{PREFIX}a/a-1.0.tar.gz", "PutObject"),
               "Source": "custom.uploader"}]
    assert matched(deployed_pattern, others) == []
