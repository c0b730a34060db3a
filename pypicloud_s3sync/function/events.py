"""Unwrap whatever envelope an S3 event arrives in into plain (bucket, key) records.

S3 can reach the function directly, through SNS, through SQS (raw or SNS-wrapped), or
through EventBridge, and after a notification configuration is saved it sends an
``s3:TestEvent``.  This module only reads shapes: it does no I/O, never raises for a
strange payload (it reports it as skipped with the reason), and remembers which SQS
message every record came from so the handler can name exactly the failed messages.

Keys are decoded here, once.  S3 notifications form-encode keys (space -> ``+``,
``+`` -> ``%2B``; AWS keeps ``/``, moto encodes it as ``%2F``): ``unquote_plus`` undoes
both.  EventBridge is not documented as clearly (moto sends the key as is), so for an
EventBridge key that decoding would change, the raw spelling is kept as a fallback the
sync tries when the decoded key is not in the bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

#: What an event tells us about the key; the object's state decides the outcome anyway.
CREATED = "created"
REMOVED = "removed"

#: EventBridge detail-types that change whether an object exists.
EVENTBRIDGE_ACTIONS = {"Object Created": CREATED, "Object Deleted": REMOVED}

#: EventBridge's detail-type for events from a schedule rule (a reconcile, not a key).
SCHEDULED_DETAIL_TYPE = "Scheduled Event"


def is_scheduled_event(event: Any) -> bool:
    """True for an EventBridge schedule's event (or a constant input shaped like one)."""
    return isinstance(event, dict) and event.get("detail-type") == SCHEDULED_DETAIL_TYPE

#: S3 notification event-name families that change whether an object exists.
S3_ACTIONS = {"ObjectCreated": CREATED, "ObjectRemoved": REMOVED,
              "LifecycleExpiration": REMOVED}


@dataclass(frozen=True)
class Record:
    """One S3 change: which object, and where the notification came from."""

    bucket: str
    key: str
    action: str
    event_name: str
    raw_key: str
    sequencer: str | None = None
    message_id: str | None = None
    #: Other spellings of the key to try when ``key`` is not in the bucket (EventBridge).
    alt_keys: tuple[str, ...] = ()
    #: When S3 made the change (ISO 8601, as the event says it), for the lag metric.
    event_time: str | None = None


@dataclass(frozen=True)
class Skipped:
    """Something in the event that is not a change to apply, and why."""

    reason: str
    message_id: str | None = None
    key: str | None = None
    bucket: str | None = None
    event_name: str | None = None
    #: Not readable as an event at all (as opposed to an event with nothing to apply):
    #: an SQS message like that is reported failed, so the queue keeps it for inspection.
    unreadable: bool = False


@dataclass
class ParsedEvent:
    """The records of one invocation, plus what the handler must answer.

    ``sqs_message_ids`` is not None for an SQS batch: the handler then returns
    ``batchItemFailures`` naming the messages whose records failed.
    """

    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    sqs_message_ids: list[str] | None = None


def decode_key(raw: str) -> str:
    """The object key from a notification's form-encoded key (AWS's and moto's forms)."""
    return unquote_plus(raw)


def parse_event(event: Any) -> ParsedEvent:
    """Every record in ``event``, whichever envelope it came in."""
    parsed = ParsedEvent()
    if not isinstance(event, Mapping):
        parsed.skipped.append(Skipped(f"event is a {type(event).__name__}, not an object"))
        return parsed
    records = event.get("Records")
    if isinstance(records, list) and records and all(
        isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records
    ):
        parsed.sqs_message_ids = []
        for message in records:
            message_id = str(message.get("messageId", ""))
            parsed.sqs_message_ids.append(message_id)
            _parse_body(message.get("body"), message_id, parsed, "SQS message body")
        return parsed
    _parse_payload(event, None, parsed)
    return parsed


def _parse_body(body: Any, message_id: str | None, parsed: ParsedEvent, what: str) -> None:
    try:
        payload = json.loads(body) if isinstance(body, str | bytes) else body
    except ValueError as exc:
        parsed.skipped.append(Skipped(f"{what} is not JSON ({exc})", message_id,
                                      unreadable=True))
        return
    _parse_payload(payload, message_id, parsed)


def _parse_payload(payload: Any, message_id: str | None, parsed: ParsedEvent) -> None:
    if not isinstance(payload, Mapping):
        parsed.skipped.append(Skipped("payload is not a JSON object", message_id,
                                      unreadable=True))
        return
    if payload.get("Event") == "s3:TestEvent":
        parsed.skipped.append(Skipped(
            "s3:TestEvent (sent when a notification configuration is saved)",
            message_id, bucket=payload.get("Bucket"), event_name="s3:TestEvent"))
        return
    if payload.get("Type") == "Notification" and "Message" in payload:
        _parse_body(payload["Message"], message_id, parsed, "SNS message")
        return
    if "detail-type" in payload and payload.get("source") == "aws.s3":
        _parse_eventbridge(payload, message_id, parsed)
        return
    records = payload.get("Records")
    if not isinstance(records, list):
        parsed.skipped.append(Skipped("not an S3, SNS, SQS or EventBridge event", message_id,
                                      unreadable=True))
        return
    for record in records:
        if not isinstance(record, Mapping):
            parsed.skipped.append(Skipped("record is not an object", message_id, unreadable=True))
        elif "Sns" in record:
            sns = record["Sns"]
            body = sns.get("Message") if isinstance(sns, Mapping) else None
            _parse_body(body, message_id, parsed, "SNS message")
        else:
            _parse_s3_record(record, message_id, parsed)


def _bucket_and_key(body: Mapping[str, Any]) -> tuple[str, str]:
    """``bucket.name`` and the (still encoded) ``object.key`` that S3 notifications and
    EventBridge details both carry; KeyError or TypeError when either is missing or empty."""
    bucket = body["bucket"]["name"]
    raw_key = body["object"]["key"]
    if not (isinstance(bucket, str) and isinstance(raw_key, str) and bucket and raw_key):
        raise TypeError("bucket name and key must be non-empty strings")
    return bucket, raw_key


def _parse_s3_record(record: Mapping[str, Any], message_id: str | None,
                     parsed: ParsedEvent) -> None:
    event_name = str(record.get("eventName", ""))
    if event_name.startswith("s3:"):
        event_name = event_name[3:]
    try:
        s3 = record["s3"]
        bucket, raw_key = _bucket_and_key(s3)
    except (KeyError, TypeError) as exc:
        parsed.skipped.append(Skipped(f"malformed S3 record ({exc!r})", message_id,
                                      event_name=event_name or None, unreadable=True))
        return
    key = decode_key(raw_key)
    action = S3_ACTIONS.get(event_name.split(":", 1)[0])
    if action is None:
        parsed.skipped.append(Skipped(
            f"{event_name or 'unnamed event'} does not create or remove objects",
            message_id, key=key, bucket=bucket, event_name=event_name or None))
        return
    sequencer = s3["object"].get("sequencer")
    parsed.records.append(Record(
        bucket=bucket, key=key, action=action, event_name=event_name, raw_key=raw_key,
        sequencer=str(sequencer) if sequencer else None, message_id=message_id,
        event_time=_text(record.get("eventTime"))))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_eventbridge(payload: Mapping[str, Any], message_id: str | None,
                       parsed: ParsedEvent) -> None:
    detail_type = str(payload.get("detail-type"))
    try:
        detail = payload["detail"]
        bucket, raw_key = _bucket_and_key(detail)
    except (KeyError, TypeError) as exc:
        parsed.skipped.append(Skipped(f"malformed EventBridge event ({exc!r})", message_id,
                                      event_name=detail_type, unreadable=True))
        return
    key = decode_key(raw_key)
    action = EVENTBRIDGE_ACTIONS.get(detail_type)
    if action is None:
        parsed.skipped.append(Skipped(f"EventBridge {detail_type!r} does not create or "
                                      "remove objects", message_id, key=key, bucket=bucket,
                                      event_name=detail_type))
        return
    sequencer = detail["object"].get("sequencer")
    reason = detail.get("reason")
    parsed.records.append(Record(
        bucket=bucket, key=key, action=action,
        event_name=f"{detail_type}:{reason}" if reason else detail_type,
        raw_key=raw_key, sequencer=str(sequencer) if sequencer else None,
        message_id=message_id, alt_keys=(raw_key,) if raw_key != key else (),
        event_time=_text(payload.get("time"))))


def iter_keys(records: list[Record]) -> Iterator[tuple[tuple[str, str], list[Record]]]:
    """Records grouped by (bucket, key), in order of first appearance.

    The sync reads each key's state once, so duplicates and several changes to one key
    in the same invocation cost one HEAD.
    """
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.bucket, record.key), []).append(record)
    yield from groups.items()


__all__ = [
    "CREATED",
    "REMOVED",
    "ParsedEvent",
    "Record",
    "Skipped",
    "decode_key",
    "iter_keys",
    "parse_event",
]
