"""A bucket that tells us what S3 sent: drive S3 (through pypicloud's own storage code),
collect the notifications moto itself produced, and hand them to the handler.

Every mutating call returns the notification it caused, so a test can deliver events in
any order, twice, or never.  ``encoding`` picks the form the handler receives:

* ``"moto"``: the SQS message moto's S3 -> SQS notification put on the queue, delivered
  as Lambda's SQS event (moto form-encodes keys *and* ``/``);
* ``"aws"``: the same record re-encoded the way AWS documents it (``/`` kept, space ->
  ``+``, ``+`` -> ``%2B``), with a sequencer, delivered as a direct S3 invocation.
"""

from __future__ import annotations

import copy
import io
import json
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from .pypicloud_app import build_cache, sdist_bytes

QUEUE = "s3sync-events"
ALL_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


@dataclass
class Delivery:
    """One notification as moto produced it, deliverable in either encoding."""

    body: dict[str, Any]
    message_id: str
    sequence: int

    @property
    def is_test_event(self) -> bool:
        return self.body.get("Event") == "s3:TestEvent"

    @property
    def key(self) -> str | None:
        from urllib.parse import unquote_plus

        records = self.body.get("Records") or []
        return unquote_plus(records[0]["s3"]["object"]["key"]) if records else None

    def sqs_record(self, message_id: str | None = None) -> dict[str, Any]:
        return {"eventSource": "aws:sqs", "messageId": message_id or self.message_id,
                "body": json.dumps(self.body)}

    def aws_body(self) -> dict[str, Any]:
        """The record re-encoded as AWS sends it, with a sequencer as AWS adds one."""
        body = copy.deepcopy(self.body)
        for record in body.get("Records", []):
            obj = record["s3"]["object"]
            obj["key"] = quote_plus(self.key, safe="/")
            obj["sequencer"] = f"{self.sequence:016X}"
        return body

    def event(self, encoding: str) -> dict[str, Any]:
        if encoding == "moto":
            return {"Records": [self.sqs_record()]}
        if encoding == "aws":
            return self.aws_body()
        raise ValueError(encoding)


@dataclass
class SyncBucket:
    """A moto bucket with S3 -> SQS notifications and pypicloud's storage on top."""

    settings: dict[str, str]
    s3: Any
    sqs: Any
    queue_url: str
    storage: Any
    test_events: list[Delivery] = field(default_factory=list)
    _sequence: int = 0

    @property
    def bucket(self) -> str:
        return self.settings["storage.bucket"]

    @classmethod
    def create(cls, settings: dict[str, str], endpoint_url: str | None = None) -> SyncBucket:
        import boto3
        from pypicloud.storage import get_storage_impl
        from pypicloud.util import EnvironSettings

        kwargs = {"region_name": "us-east-1", "endpoint_url": endpoint_url}
        s3 = boto3.client("s3", **kwargs)
        sqs = boto3.client("sqs", **kwargs)
        bucket = settings["storage.bucket"]
        s3.create_bucket(Bucket=bucket)
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        storage_settings = {"pypi.storage": "s3", "storage.region_name": "us-east-1",
                            **{k: v for k, v in settings.items() if k.startswith("storage.")}}
        storage = get_storage_impl(EnvironSettings(storage_settings, {}))(None)
        made = cls(settings=settings, s3=s3, sqs=sqs, queue_url=queue_url, storage=storage)
        made.notify(bucket)
        made.test_events = made.drain()
        return made

    def notify(self, bucket: str) -> None:
        """Send ``bucket``'s events to our queue (S3 answers with an s3:TestEvent)."""
        arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn, "Events": ALL_EVENTS}]},
        )

    def drain(self) -> list[Delivery]:
        """Every notification on the queue, oldest first, removed from the queue."""
        found: list[Delivery] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                self._sequence += 1
                found.append(Delivery(json.loads(message["Body"]), message["MessageId"],
                                      self._sequence))
                self.sqs.delete_message(QueueUrl=self.queue_url,
                                        ReceiptHandle=message["ReceiptHandle"])

    def _one(self) -> Delivery:
        """The notification of the change just made.

        moto 5.2 announces a multipart upload twice (``ObjectCreated:Put`` and then
        ``ObjectCreated:CompleteMultipartUpload``; AWS sends only the latter), so for
        several records of one key the last one is the change's own.
        """
        found = [d for d in self.drain() if not d.is_test_event]
        assert found and len({d.key for d in found}) == 1, [d.body for d in found]
        return found[-1]

    # -- changes to the bucket, each returning the notification it caused -------------

    def put_package(self, name: str, version: str, summary: str = "A test package",
                    filename: str | None = None, expect_event: bool = True,
                    **metadata: str) -> tuple[str, Delivery | None]:
        """Upload as pypicloud does (its S3 storage: multipart, metadata, hashes as
        ``cache.upload`` computes them); returns the key and the notification."""
        import hashlib

        from pypicloud.models import Package

        filename = filename or f"{name}-{version}.tar.gz"
        data = sdist_bytes(name, version, summary)
        metadata.setdefault("hash_sha256", hashlib.sha256(data).hexdigest())
        metadata.setdefault("hash_md5", hashlib.md5(data).hexdigest())
        package = Package(name, version, filename, summary=summary, **metadata)
        self.storage.upload(package, io.BytesIO(data))
        return self.storage.get_path(package), self._one() if expect_event else None

    def put_raw(self, key: str, body: bytes = b"data", bucket: str | None = None,
                **metadata: str) -> Delivery:
        self.s3.put_object(Bucket=bucket or self.bucket, Key=key, Body=body,
                           Metadata=metadata)
        return self._one()

    def delete(self, key: str, bucket: str | None = None) -> Delivery:
        self.s3.delete_object(Bucket=bucket or self.bucket, Key=key)
        return self._one()

    def keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return [item["Key"] for item in listed]


def deliver(handler: Any, deliveries: Iterable[Delivery], encoding: str) -> list[Any]:
    """Each delivery as its own invocation, in the given order; returns the answers."""
    return [handler.handle_event(d.event(encoding), None) for d in deliveries]


def cached(settings: dict[str, str]) -> dict[str, dict[str, Any]]:
    """What pypicloud's own cache (built fresh from the settings) holds, by filename."""
    cache = build_cache({**settings, "pypi.storage": "file", "storage.dir": "/tmp"})
    result = {}
    try:
        for name in cache.distinct():
            for package in cache.all(name):
                result[package.filename] = {
                    "name": package.name, "version": package.version,
                    "summary": package.summary, **package.get_metadata(),
                    "path": package.data.get("path"),
                }
    finally:
        close_cache(cache)
    return result


def close_cache(cache: Any) -> None:
    """Release SQL connections, so that the next test can drop its tables."""
    if hasattr(cache, "dbmaker"):
        cache.db.close()
        cache.dbmaker.kw["bind"].dispose()


def filenames(keys: Iterable[str]) -> set[str]:
    return {posixpath.basename(k) for k in keys}
