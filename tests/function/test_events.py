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


@pytest.mark.parametrize(("given", "kept"), [
    ("2026-11-30T12:00:00.000Z", "2026-11-30T12:00:00.000Z"),
    ("", None), (None, None), (1764504000, None),
], ids=["iso-time", "empty", "null", "a-number"])
def test_each_record_keeps_when_s3_made_the_change_for_the_lag_metric(
        given: Any, kept: str | None) -> None:
    """The lag metric is the time from the event's own timestamp to the cache write: a
    record keeps it as the event says it, and anything that is not a time string is no
    time at all (no lag is reported for it rather than a wrong one)."""
    s3 = {"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": given,
        "s3": {"bucket": {"name": "packages"}, "object": {"key": "pkgs/a-1.0.tar.gz"}}}]}
    eventbridge = {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
                   "time": given, "detail": {"bucket": {"name": "packages"},
                                             "object": {"key": "pkgs/a-1.0.tar.gz"}}}
    for event in (s3, eventbridge):
        [record] = parse_event(event).records
        assert record.event_time == kept, event


@pytest.mark.parametrize("event_name", ["LifecycleExpiration:Delete",
                                        "LifecycleExpiration:DeleteMarkerCreated"])
def test_lifecycle_expiry_removes_like_a_delete(event_name: str) -> None:
    """AWS's documented record for an object a lifecycle rule expired."""
    event = {"Records": [{
        "eventVersion": "2.3", "eventSource": "aws:s3", "eventName": event_name,
        "s3": {"bucket": {"name": "packages"},
               "object": {"key": "pkgs/ab12/my+pkg/my+pkg-1.0%2Blocal.tar.gz",
                          "sequencer": "0055AED6DCD90281E5"}}}]}
    [record] = parse_event(event).records
    assert (record.key, record.action, record.event_name) == (KEY, REMOVED, event_name)


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


def _s3(key: Any, bucket: Any = "b", name: str = "ObjectCreated:Put",
        **obj: Any) -> dict[str, Any]:
    return {"eventSource": "aws:s3", "eventName": name,
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, **obj}}}


def _bridge(detail_type: str, key: Any = "k-1.0.tar.gz", source: str = "aws.s3",
            **detail: Any) -> dict[str, Any]:
    return {"detail-type": detail_type, "source": source,
            "detail": {"bucket": {"name": "b"}, "object": {"key": key}, **detail}}


def test_every_skip_and_record_names_its_message_and_what_it_was() -> None:
    """One SQS batch of every odd thing an operator could find in the log: each skip and
    record carries the SQS message it came from, and the skip says exactly why."""
    from pypicloud_s3sync.function.events import Record, Skipped

    bodies: list[Any] = [
        json.dumps(["a", "list"]),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}),
        json.dumps({"Message": "not from SNS"}),
        json.dumps({"Type": "Notification", "Message": "[1]"}),
        json.dumps({"Records": ["text", {"Sns": "not an object"},
                                {"Sns": {"Message": "{bad"}}]}),
        json.dumps({"Records": [_s3(""), _s3("k.whl", bucket=""), _s3("k.whl", bucket=5),
                                _s3("k.whl", name="ObjectTagging:Put"),
                                _s3("k.whl", name=""),
                                {"eventSource": "aws:s3", "eventName": "s3:ObjectCreated:Put"}]}),
        json.dumps({"Records": [_s3("a+b-1.0.tar.gz", name="s3:ObjectRemoved:Delete")]}),
        json.dumps(_bridge("Object Created", source="aws.ec2")),
        json.dumps(_bridge("Object Created", key="")),
        json.dumps(_bridge("Object Tags Added")),
        json.dumps(_bridge("Object Deleted")),
        {"Records": [_s3("dict-1.0.tar.gz", sequencer="00B")]},  # a body already parsed
    ]
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": f"m{i}", "body": body}
                         for i, body in enumerate(bodies)]}
    parsed = parse_event(event)
    assert parsed.sqs_message_ids == [f"m{i}" for i in range(len(bodies))]
    malformed = "malformed S3 record (TypeError('bucket name and key must be non-empty strings'))"
    assert parsed.skipped == [
        Skipped("payload is not a JSON object", "m0", unreadable=True),
        Skipped("s3:TestEvent (sent when a notification configuration is saved)", "m1",
                bucket="b", event_name="s3:TestEvent"),
        Skipped("not an S3, SNS, SQS or EventBridge event", "m2", unreadable=True),
        Skipped("payload is not a JSON object", "m3", unreadable=True),
        Skipped("record is not an object", "m4", unreadable=True),
        Skipped("payload is not a JSON object", "m4", unreadable=True),
        Skipped("SNS message is not JSON (Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1))", "m4", unreadable=True),
        Skipped(malformed, "m5", event_name="ObjectCreated:Put", unreadable=True),
        Skipped(malformed, "m5", event_name="ObjectCreated:Put", unreadable=True),
        Skipped(malformed, "m5", event_name="ObjectCreated:Put", unreadable=True),
        Skipped("ObjectTagging:Put does not create or remove objects", "m5", key="k.whl",
                bucket="b", event_name="ObjectTagging:Put"),
        Skipped("unnamed event does not create or remove objects", "m5", key="k.whl",
                bucket="b"),
        Skipped("malformed S3 record (KeyError('s3'))", "m5", event_name="ObjectCreated:Put",
                unreadable=True),
        Skipped("not an S3, SNS, SQS or EventBridge event", "m7", unreadable=True),
        Skipped("malformed EventBridge event (TypeError('bucket name and key must be "
                "non-empty strings'))", "m8", event_name="Object Created", unreadable=True),
        Skipped("EventBridge 'Object Tags Added' does not create or remove objects", "m9",
                key="k-1.0.tar.gz", bucket="b", event_name="Object Tags Added"),
    ]
    assert parsed.records == [
        Record(bucket="b", key="a b-1.0.tar.gz", action=REMOVED,
               event_name="ObjectRemoved:Delete", raw_key="a+b-1.0.tar.gz", message_id="m6"),
        Record(bucket="b", key="k-1.0.tar.gz", action=REMOVED, event_name="Object Deleted",
               raw_key="k-1.0.tar.gz", message_id="m10"),
        Record(bucket="b", key="dict-1.0.tar.gz", action=CREATED,
               event_name="ObjectCreated:Put", raw_key="dict-1.0.tar.gz", sequencer="00B",
               message_id="m11"),
    ]


def test_what_is_not_an_object_is_named() -> None:
    assert parse_event(["a"]).skipped[0].reason == "event is a list, not an object"
    assert parse_event(None).skipped[0].reason == "event is a NoneType, not an object"


def test_only_a_schedules_event_is_taken_for_a_reconcile() -> None:
    from pypicloud_s3sync.function.events import is_scheduled_event

    assert is_scheduled_event({"detail-type": "Scheduled Event", "source": "aws.events"})
    assert not is_scheduled_event({"detail-type": "Object Created", "source": "aws.s3"})
    assert not is_scheduled_event([{"detail-type": "Scheduled Event"}])
    assert not is_scheduled_event({})


def test_an_sns_body_and_a_record_without_names_are_reported_as_such() -> None:
    from pypicloud_s3sync.function.events import Skipped

    unnamed = {"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"},
                                               "object": {"key": "k.whl"}}}
    event = {"Records": [
        {"eventSource": "aws:sqs", "body": json.dumps({"Type": "Notification",
                                                       "Message": "{bad"})},
        {"eventSource": "aws:sqs", "messageId": "m1", "body": json.dumps(
            {"Records": [unnamed]})},
    ]}
    parsed = parse_event(event)
    assert parsed.sqs_message_ids == ["", "m1"]
    assert parsed.skipped == [
        Skipped("SNS message is not JSON (Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1))", "", unreadable=True),
        Skipped("unnamed event does not create or remove objects", "m1", key="k.whl",
                bucket="b"),
    ]
