"""Envelope parsing: every shape S3 events arrive in, taken from moto where moto can
produce it (S3 -> SQS, S3 -> SNS -> SQS, S3 -> EventBridge -> SQS), and AWS's
documented forms where moto differs (key encoding, sequencer)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pypicloud_s3sync.function.events import (
    CREATED,
    REMOVED,
    decode_key,
    iter_keys,
    parse_event,
    sequencer_key,
)

KEY = "pkgs/ab12/my pkg/my pkg-1.0+local.tar.gz"


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def _bodies(sqs: Any, url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in messages]


def _sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {"Records": [{"eventSource": "aws:sqs", "messageId": f"m{i}", "body": body}
                        for i, body in enumerate(bodies)]}


@pytest.fixture
def clients(aws: None) -> tuple[Any, Any]:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="packages")
    return s3, boto3.client("sqs", region_name="us-east-1")


def test_decode_key_handles_aws_and_moto_forms() -> None:
    assert decode_key("pkgs/ab12/my+pkg/my+pkg-1.0%2Blocal.tar.gz") == KEY  # AWS
    assert decode_key("pkgs%2Fab12%2Fmy+pkg%2Fmy+pkg-1.0%2Blocal.tar.gz") == KEY  # moto
    assert decode_key("na%C3%AFve-1.0.tar.gz") == "naïve-1.0.tar.gz"


def test_sequencer_orders_one_key_like_aws() -> None:
    # Shorter sequencers are right-padded before comparing.
    assert sequencer_key("0A1B2C3D4E5F678901") > sequencer_key("0A1B2C3D4E5F6789")
    assert sequencer_key("0055AED6DCD90281E6") < sequencer_key("0055AED6DCD90281E7")


def test_moto_s3_to_sqs(clients: tuple[Any, Any]) -> None:
    s3, sqs = clients
    url, arn = _queue(sqs, "direct")
    s3.put_bucket_notification_configuration(Bucket="packages", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*",
                                                              "s3:ObjectRemoved:*"]}]})
    s3.put_object(Bucket="packages", Key=KEY, Body=b"x")
    s3.delete_object(Bucket="packages", Key=KEY)
    parsed = parse_event(_sqs_event(_bodies(sqs, url)))
    assert parsed.sqs_message_ids == ["m0", "m1", "m2"]
    assert [s.reason.split()[0] for s in parsed.skipped] == ["s3:TestEvent"]
    assert [(r.key, r.action, r.message_id) for r in parsed.records] == [
        (KEY, CREATED, "m1"), (KEY, REMOVED, "m2")]
    assert parsed.records[0].raw_key != KEY  # moto really encoded it


def test_moto_s3_to_sns_to_sqs(clients: tuple[Any, Any]) -> None:
    import boto3

    s3, sqs = clients
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="s3-events")["TopicArn"]
    url, arn = _queue(sqs, "via-sns")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    s3.put_bucket_notification_configuration(Bucket="packages", NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket="packages", Key=KEY, Body=b"x")
    bodies = _bodies(sqs, url)
    assert all(json.loads(b)["Type"] == "Notification" for b in bodies)
    parsed = parse_event(_sqs_event(bodies))
    assert [(r.bucket, r.key, r.action) for r in parsed.records] == [
        ("packages", KEY, CREATED)]
    # SNS -> Lambda directly wraps the same message in a record with "Sns".
    direct = {"Records": [{"EventSource": "aws:sns", "Sns": json.loads(b)} for b in bodies]}
    parsed_direct = parse_event(direct)
    assert parsed_direct.sqs_message_ids is None
    assert [r.key for r in parsed_direct.records] == [KEY]


def test_moto_s3_to_eventbridge_to_sqs(clients: tuple[Any, Any]) -> None:
    import boto3

    s3, sqs = clients
    events = boto3.client("events", region_name="us-east-1")
    url, arn = _queue(sqs, "via-eventbridge")
    events.put_rule(Name="s3", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="s3", Targets=[{"Id": "q", "Arn": arn}])
    s3.put_bucket_notification_configuration(
        Bucket="packages", NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.put_object(Bucket="packages", Key=KEY, Body=b"x")
    s3.delete_object(Bucket="packages", Key=KEY)
    bodies = _bodies(sqs, url)
    kinds = {json.loads(b)["detail-type"] for b in bodies}
    assert {"Object Created", "Object Deleted"} <= kinds
    parsed = parse_event(_sqs_event(bodies))
    # EventBridge gets every event type (moto sends "Object Tags Added" too): skipped.
    assert len(parsed.skipped) == len(kinds - {"Object Created", "Object Deleted"})
    # moto sends the key unencoded; decoding turns its "+" into a space, so the raw
    # spelling rides along for the sync to try when the decoded key is not found.
    assert sorted(r.action for r in parsed.records) == [CREATED, REMOVED]
    assert all(KEY in (r.key, *r.alt_keys) for r in parsed.records)
    # Direct EventBridge -> Lambda delivers the event itself.
    created = next(b for b in bodies if json.loads(b)["detail-type"] == "Object Created")
    [record] = parse_event(json.loads(created)).records
    assert KEY in (record.key, *record.alt_keys)


def test_eventbridge_key_keeps_the_raw_spelling_as_fallback() -> None:
    event = {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
             "detail": {"bucket": {"name": "packages"},
                        "object": {"key": "my+pkg-1.0%2Blocal.tar.gz", "sequencer": "00A"},
                        "reason": "PutObject"}}
    [record] = parse_event(event).records
    assert record.key == "my pkg-1.0+local.tar.gz"
    assert record.alt_keys == ("my+pkg-1.0%2Blocal.tar.gz",)
    assert record.sequencer == "00A" and record.event_name == "Object Created:PutObject"


def test_aws_direct_s3_event_with_sequencer() -> None:
    event = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
        "s3": {"bucket": {"name": "packages"},
               "object": {"key": "pkgs/ab12/my+pkg/my+pkg-1.0%2Blocal.tar.gz",
                          "sequencer": "0055AED6DCD90281E5"}}}]}
    parsed = parse_event(event)
    assert parsed.sqs_message_ids is None
    [record] = parsed.records
    assert (record.key, record.action, record.sequencer) == (KEY, REMOVED,
                                                             "0055AED6DCD90281E5")


@pytest.mark.parametrize("event, reason", [
    ({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "packages"}, "s3:TestEvent"),
    ({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]},
     "malformed S3 record"),
    ({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectTagging:Put",
                   "s3": {"bucket": {"name": "b"}, "object": {"key": "k.whl"}}}]},
     "does not create or remove"),
    ({"detail-type": "Object Restore Completed", "source": "aws.s3",
      "detail": {"bucket": {"name": "b"}, "object": {"key": "k.whl"}}},
     "does not create or remove"),
    ({"hello": "world"}, "not an S3, SNS, SQS or EventBridge event"),
    (["not", "an", "object"], "not an object"),
])
def test_odd_payloads_are_skipped_with_a_reason(event: Any, reason: str) -> None:
    parsed = parse_event(event)
    assert parsed.records == []
    assert [s for s in parsed.skipped if reason in s.reason], parsed.skipped


def test_bad_sqs_body_is_marked_unreadable_and_the_batch_goes_on() -> None:
    good = json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": "b"},
                                           "object": {"key": "a-1.0.tar.gz"}}}]})
    parsed = parse_event(_sqs_event(["{not json", good]))
    assert parsed.sqs_message_ids == ["m0", "m1"]
    assert [(s.message_id, s.reason.split(" (")[0]) for s in parsed.skipped] == [
        ("m0", "SQS message body is not JSON")]
    assert parsed.skipped[0].unreadable
    assert [r.message_id for r in parsed.records] == ["m1"]


def test_records_group_by_key_in_first_seen_order() -> None:
    def record(key: str, name: str) -> dict[str, Any]:
        return {"eventSource": "aws:s3", "eventName": name,
                "s3": {"bucket": {"name": "b"}, "object": {"key": key}}}

    parsed = parse_event({"Records": [record("b-1.whl", "ObjectCreated:Put"),
                                      record("a-1.whl", "ObjectCreated:Put"),
                                      record("b-1.whl", "ObjectRemoved:Delete")]})
    groups = [(key, [r.action for r in records]) for key, records in iter_keys(parsed.records)]
    assert groups == [(("b", "b-1.whl"), [CREATED, REMOVED]), (("b", "a-1.whl"), [CREATED])]
