"""Per-message failures of an SQS batch: a failed key sends back only the messages that
carry it.

Lambda's developer guide, "Handling errors for an SQS event source in Lambda"
(services-sqs-errorhandling), "Implementing partial batch responses": "When your Lambda
function encounters an error while processing a batch, all messages in that batch become
visible in the queue again by default", and with ReportBatchItemFailures ("Success and
failure conditions") "Lambda treats a batch as a complete success if your function
returns ... An empty batchItemFailures list" and retries only the messages whose
``itemIdentifier`` it returns.  So a raised error fails the whole batch, an empty list
acknowledges all of it, and each message sent back counts towards the queue's
``maxReceiveCount`` (then the dead-letter queue).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pypicloud_s3sync.function import handler

from ..support.sync_harness import SyncBucket, cached

BUCKET = "packages"


@pytest.fixture
def settings(aws: None, cache_settings: Any, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[dict[str, str]]:
    values = {**cache_settings("sqlite"), "storage.bucket": BUCKET,
              "storage.region_name": "us-east-1"}
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(values))
    handler.reset()
    yield values
    handler.reset()


def _refuse(denied: set[str]) -> None:
    """S3 answers 403 to the function's HEAD of these keys, as for an object whose KMS
    key the role may not use; moto has no per-object refusal in-process."""

    def before_call(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") in denied:
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "HeadObject")

    handler.runtime().s3.meta.events.register("before-parameter-build.s3.HeadObject", before_call)


def _failed(answer: Any) -> list[str]:
    return sorted(f["itemIdentifier"] for f in answer["batchItemFailures"])


def _sent_back(batch: dict[str, Any]) -> list[str]:
    """The messages Lambda makes visible again: the reported ones, or every one of the
    batch when the handler raised."""
    try:
        return _failed(handler.handle_event(batch, None))
    except handler.SyncError:
        return sorted(r["messageId"] for r in batch["Records"])


def test_a_key_that_fails_alone_sends_back_only_its_own_messages(
    settings: dict[str, str]
) -> None:
    """The refused key comes first; the messages after it are applied and acknowledged,
    and a message of two records fails when either of its records fails."""
    bucket = SyncBucket.create(settings)
    bad_key, bad = bucket.put_package("bad", "1.0")
    _, one = bucket.put_package("one", "1.0")
    _, two = bucket.put_package("two", "1.0")
    _, three = bucket.put_package("three", "1.0")
    handler.handle_event({"Service": "Amazon S3", "Event": "s3:TestEvent"}, None)
    _refuse({bad_key})
    both = {"eventSource": "aws:sqs", "messageId": "both", "body": json.dumps(
        {"Records": [three.body["Records"][0], bad.body["Records"][0]]})}
    batch = {"Records": [bad.sqs_record("bad"), one.sqs_record("one"), both,
                         two.sqs_record("two")]}
    assert _failed(handler.handle_event(batch, None)) == ["bad", "both"]
    assert set(cached(settings)) == {"one-1.0.tar.gz", "two-1.0.tar.gz", "three-1.0.tar.gz"}


def test_two_refused_keys_then_good_ones_still_report_only_messages_not_applied(
    settings: dict[str, str]
) -> None:
    """After two failures in a row the rest are reported failed untried: they go back to
    the queue (nothing is lost), and none of them is acknowledged unapplied."""
    bucket = SyncBucket.create(settings)
    bad1, first = bucket.put_package("bad1", "1.0")
    bad2, second = bucket.put_package("bad2", "1.0")
    _, good = bucket.put_package("good", "1.0")
    handler.handle_event({"Service": "Amazon S3", "Event": "s3:TestEvent"}, None)
    _refuse({bad1, bad2})
    batch = {"Records": [first.sqs_record("b1"), second.sqs_record("b2"),
                         good.sqs_record("g")]}
    failed = _sent_back(batch)
    applied = set(cached(settings))
    assert {"b1", "b2"} <= set(failed)
    # Every message is either reported failed or applied.
    assert ("g" in failed) != ("good-1.0.tar.gz" in applied)


def test_cache_down_for_all_fails_the_whole_batch(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing applied, the handler raises: Lambda then makes every message visible
    again, the same as reporting all of them."""
    settings = {"pypi.db": "redis", "db.url": "redis://127.0.0.1:1/0",
                "storage.bucket": BUCKET, "storage.region_name": "us-east-1"}
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(settings))
    handler.reset()
    try:
        bucket = SyncBucket.create(settings)
        _, one = bucket.put_package("one", "1.0")
        _, two = bucket.put_package("two", "1.0")
        with pytest.raises(handler.SyncError):
            handler.handle_event({"Records": [one.sqs_record("a"), two.sqs_record("b")]},
                                 None)
    finally:
        handler.reset()


def test_an_unreadable_message_is_logged_with_its_message_id_and_no_key(
    settings: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The log line is how the operator finds the message in the dead-letter queue."""
    answer = handler.handle_event({"Records": [
        {"eventSource": "aws:sqs", "messageId": "poison-1", "body": "{cut off"}]}, None)
    assert _failed(answer) == ["poison-1"]
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()
              if '"poison-1"' in x]
    assert line["action"] == "failed" and "key" not in line
    assert "names no key (message poison-1)" in line["reason"]
    assert "dead-letter queue" in line["reason"]
