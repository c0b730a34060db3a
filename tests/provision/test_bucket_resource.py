"""The bucket-notification custom resource, called as CloudFormation calls it.

Each test sends a Create, Update or Delete request like CloudFormation's, with a
pre-signed ``ResponseURL`` pointing at a local HTTP server that records the answer, and
checks the bucket (moto) as an operator would: other teams' entries exactly as they
were, ours added, moved or removed, and every request answered.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from pypicloud_s3sync.provision import bucket_resource, deploy, iam, notifications

from ..support import moto_gaps
from ..support.deploy_helpers import (
    BUCKET,
    REGION,
    clients_for,
    foreign_destinations,
    make_config,
    stale_foreign_queue,
    write_zip,
)

FUNCTION = "pypicloud_s3_sync"
ENTRY_ID = notifications.entry_id(FUNCTION)


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


@pytest.fixture
def responses():
    """A stand-in for CloudFormation's pre-signed S3 URL: records every PUT."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "content_type": self.headers["Content-Type"],
                             "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def bucket(aws, tmp_path):
    """The bucket, our function (S3 checks a destination exists) and its ARN."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    role = boto3.client("iam").create_role(
        RoleName="sync", AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))["Role"]
    return boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role["Arn"], Handler="x.y",
        Code={"ZipFile": write_zip(tmp_path / "ours.zip").read_bytes()})["FunctionArn"]


def properties(function_arn, prefix="pkgs/", delivery="direct", bucket=BUCKET):
    return {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:token",
            "BucketName": bucket, "FunctionName": FUNCTION, "FunctionArn": function_arn,
            "Prefix": prefix, "Delivery": delivery}


def call(url, kind, props, physical=None, old=None, sleep=None, s3=None):
    """One request as CloudFormation sends it; returns the recorded answer's body.
    ``sleep`` stands in for the handler's waits between retries (none by default)."""
    server, received = url
    event = {"RequestType": kind, "ResponseURL": f"{server}/answer?X-Amz-Signature=abc",
             "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/sync/guid",
             "RequestId": f"request-{len(received)}", "ResourceType":
             "Custom::BucketNotification", "LogicalResourceId": "BucketNotification",
             "ResourceProperties": props}
    if physical is not None:
        event["PhysicalResourceId"] = physical
    if old is not None:
        event["OldResourceProperties"] = old
    count = len(received)
    bucket_resource.handle(copy.deepcopy(event), None,
                           s3 or boto3.client("s3", region_name=REGION),
                           sleep=sleep or (lambda seconds: None))
    assert len(received) == count + 1, "every request is answered exactly once"
    answer = received[-1]
    assert answer["path"] == "/answer?X-Amz-Signature=abc"
    assert answer["content_type"] == ""  # the URL is signed without one
    body = answer["body"]
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        assert body[key] == event[key]
    return body


def bucket_notification():
    result = boto3.client("s3", region_name=REGION).get_bucket_notification_configuration(
        Bucket=BUCKET)
    result.pop("ResponseMetadata")
    return result


def ours(config):
    return [e for e in config.get("LambdaFunctionConfigurations", []) if e["Id"] == ENTRY_ID]


def test_create_update_delete_touch_only_our_entry(bucket, tmp_path, responses):
    foreign = foreign_destinations(tmp_path)
    boto3.client("s3", region_name=REGION).put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration=foreign)
    before = bucket_notification()

    created = call(responses, "Create", properties(bucket))
    assert created["Status"] == "SUCCESS"
    physical = created["PhysicalResourceId"]
    during = bucket_notification()
    [entry] = ours(during)
    assert entry == notifications.our_entry(bucket, FUNCTION, "pkgs/") | {
        "Events": entry["Events"]}
    assert sorted(entry["Events"]) == notifications.OUR_EVENTS
    for kind in ("QueueConfigurations", "TopicConfigurations", "EventBridgeConfiguration"):
        assert during[kind] == before[kind]
    assert [e for e in during["LambdaFunctionConfigurations"] if e["Id"] != ENTRY_ID] == (
        before["LambdaFunctionConfigurations"])

    # A new prefix moves our entry; the resource stays the same one.
    updated = call(responses, "Update", properties(bucket, prefix="wheels/"), physical,
                   old=properties(bucket))
    assert (updated["Status"], updated["PhysicalResourceId"]) == ("SUCCESS", physical)
    [entry] = ours(bucket_notification())
    assert entry["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "wheels/"}]

    # Re-sending the same Update (CloudFormation retries) changes nothing.
    again = call(responses, "Update", properties(bucket, prefix="wheels/"), physical,
                 old=properties(bucket, prefix="wheels/"))
    assert again["Status"] == "SUCCESS"
    assert len(ours(bucket_notification())) == 1

    deleted = call(responses, "Delete", properties(bucket, prefix="wheels/"), physical)
    assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", physical)
    assert bucket_notification() == before


def test_overlap_is_refused_with_creates_message(bucket, tmp_path, responses):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="everything")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    boto3.client("s3", region_name=REGION).put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [
            {"Id": "mirror-all", "QueueArn": arn, "Events": ["s3:ObjectCreated:Put"]}]})
    before = bucket_notification()

    answer = call(responses, "Create", properties(bucket))
    assert answer["Status"] == "FAILED"
    assert "'mirror-all'" in answer["Reason"]
    assert bucket_notification() == before

    config = make_config(tmp_path)
    options = deploy.DeployOptions.from_config(config, force=True)
    with pytest.raises(deploy.DeployError) as refused:
        deploy.plan_create(config, options, clients_for(config, options),
                           code=deploy.ZipBundle.from_path(write_zip(tmp_path / "f.zip")))
    assert str(refused.value).startswith(answer["Reason"])

    # CloudFormation rolls the failed Create back with a Delete: nothing to undo.
    rollback = call(responses, "Delete", properties(bucket), answer["PhysicalResourceId"])
    assert rollback["Status"] == "SUCCESS"
    assert bucket_notification() == before


def test_eventbridge_delivery_turns_it_on_and_delete_leaves_it(bucket, responses):
    created = call(responses, "Create", properties(bucket, delivery="eventbridge"))
    assert created["Status"] == "SUCCESS"
    assert bucket_notification() == {"EventBridgeConfiguration": {}}
    # Switching to direct keeps EventBridge on (others may listen) and adds our entry.
    switched = call(responses, "Update", properties(bucket), created["PhysicalResourceId"],
                    old=properties(bucket, delivery="eventbridge"))
    assert switched["Status"] == "SUCCESS"
    assert len(ours(bucket_notification())) == 1
    call(responses, "Delete", properties(bucket), created["PhysicalResourceId"])
    assert bucket_notification() == {"EventBridgeConfiguration": {}}


def test_moving_to_another_bucket_is_a_new_resource(bucket, responses):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="mirror")
    first = call(responses, "Create", properties(bucket))
    moved = call(responses, "Update", properties(bucket, bucket="mirror"),
                 first["PhysicalResourceId"], old=properties(bucket))
    assert moved["Status"] == "SUCCESS", moved["Reason"]
    assert moved["PhysicalResourceId"] != first["PhysicalResourceId"]
    # CloudFormation then deletes the old physical resource, with its old properties.
    call(responses, "Delete", properties(bucket), first["PhysicalResourceId"])
    assert ours(bucket_notification()) == []
    mirror = s3.get_bucket_notification_configuration(Bucket="mirror")
    assert [e["Id"] for e in mirror["LambdaFunctionConfigurations"]] == [ENTRY_ID]


def test_any_failure_is_answered_failed_with_its_reason(aws, responses):
    answer = call(responses, "Create", properties("arn:aws:lambda:us-east-1:1:function:x",
                                                  bucket="no-such-bucket"))
    assert answer["Status"] == "FAILED"
    assert "NoSuchBucket" in answer["Reason"]
    # Missing properties (a hand-edited template) fail the same way, never hang.
    broken = call(responses, "Create", {"ServiceToken": "x"})
    assert broken["Status"] == "FAILED" and "BucketName" in broken["Reason"]
    assert broken["PhysicalResourceId"]
    assert call(responses, "Delete", {"ServiceToken": "x"},
                broken["PhysicalResourceId"])["Status"] == "SUCCESS"


# S3 validates the whole document on each write: "After Amazon S3 receives this request,
# it first verifies that any Amazon Simple Notification Service (Amazon SNS) or Amazon
# Simple Queue Service (Amazon SQS) destination exists [...] In the case of Lambda
# destinations, Amazon S3 verifies that the Lambda function permissions grant Amazon S3
# permission to invoke the function from the Amazon S3 bucket"; "The PUT notification is
# an atomic operation"; SkipDestinationValidation "Skips validation of Amazon SQS, Amazon
# SNS, and Lambda destinations" (the S3 API Reference, PutBucketNotificationConfiguration).
# moto checks none of it: moto_gaps.validates_destinations does.

def allow_s3(function_arn):
    """The invoke permission the stack's S3InvokePermission gives our function."""
    boto3.client("lambda", region_name=REGION).add_permission(
        FunctionName=function_arn, StatementId="s3", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{BUCKET}",
        SourceAccount="123456789012")


def test_stack_delete_removes_ours_past_a_stale_foreign_destination(
        bucket, responses, monkeypatch):
    """Another team's deleted queue must not make the stack's Delete fail (the stack
    would end DELETE_FAILED, with our entry left behind): removing ours adds nothing
    for S3 to validate."""
    moto_gaps.validates_destinations(monkeypatch)
    allow_s3(bucket)
    created = call(responses, "Create", properties(bucket))
    assert created["Status"] == "SUCCESS", created["Reason"]
    stale = stale_foreign_queue()
    deleted = call(responses, "Delete", properties(bucket), created["PhysicalResourceId"])
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert ours(bucket_notification()) == []
    assert [e["QueueArn"] for e in bucket_notification()["QueueConfigurations"]] == [stale]


def test_stack_create_past_a_stale_foreign_destination_fails_at_once_naming_it(
        bucket, responses, monkeypatch):
    """Adding ours makes S3 validate every destination; another team's deleted queue
    fails whatever we wait for, so the answer comes at once and names it."""
    moto_gaps.validates_destinations(monkeypatch)
    allow_s3(bucket)
    stale = stale_foreign_queue()
    before = bucket_notification()
    slept = []
    answer = call(responses, "Create", properties(bucket), sleep=slept.append)
    assert answer["Status"] == "FAILED"
    assert stale in answer["Reason"] and "remove" in answer["Reason"]
    assert slept == []
    assert bucket_notification() == before


def test_stack_create_waits_for_our_permission_to_reach_s3(bucket, responses, monkeypatch):
    """The stack adds the invoke permission just before the custom resource runs; until
    it reaches S3, S3 names our own function as the destination it could not validate.
    The resource waits for it as create does, so the stack need not fail and roll back."""
    moto_gaps.validates_destinations(monkeypatch)
    slept = []

    def sleep(seconds):  # the permission arrives while the resource waits
        slept.append(seconds)
        if len(slept) == 2:
            allow_s3(bucket)

    answer = call(responses, "Create", properties(bucket), sleep=sleep)
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert len(slept) == 2
    assert len(ours(bucket_notification())) == 1


def test_stack_create_stops_waiting_for_our_permission_within_its_bound(
        bucket, responses, monkeypatch):
    """A permission that never comes ends in FAILED with S3's refusal, after a bounded
    wait that fits in the resource function's timeout with time left to answer."""
    moto_gaps.validates_destinations(monkeypatch)
    slept = []
    answer = call(responses, "Create", properties(bucket), sleep=slept.append)
    assert answer["Status"] == "FAILED"
    assert moto_gaps.UNVALIDATED in answer["Reason"]
    assert ours(bucket_notification()) == []
    assert 0 < len(slept) <= len(notifications.VALIDATION_BACKOFF)
