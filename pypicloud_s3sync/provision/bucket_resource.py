"""The bucket-notification custom resource of the CloudFormation template.

CloudFormation can only set a notification on a bucket it creates, and then owns the
bucket's whole configuration.  An existing bucket's notifications belong to other teams
too, so the template hands this one entry to a small function of ours that does what
``create`` does: read the configuration, merge our entry by Id (:mod:`.notifications`),
write everything back.  Foreign entries are kept exactly as read; an overlapping one is
refused with create's message; Delete removes only our entry.

It answers CloudFormation's custom resource protocol: every request ends with a PUT of
SUCCESS or FAILED to the pre-signed ``ResponseURL``, whatever went wrong, so a stack is
never left waiting an hour for an answer.  It runs from the function's own zip and
imports nothing but :mod:`.notifications`, the standard library and boto3.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from . import notifications

#: The handler string of the custom resource's function.
HANDLER = "pypicloud_s3sync.provision.bucket_resource.handle"
DIRECT, EVENTBRIDGE, SQS = "direct", "eventbridge", "sqs"
#: CloudFormation shows at most this much of a failure's reason.
MAX_REASON = 1000


class RefusedError(Exception):
    """A state the resource must not change (an overlapping foreign notification)."""


def overlap_message(bucket: str, clash: notifications.Overlap) -> str:
    """The words ``create`` uses for the same refusal, so both front ends read alike."""
    return (f"bucket {bucket} already sends overlapping events to {clash.describe()}; "
            "S3 does not allow two notifications for the same events and prefix")


def physical_id(properties: dict[str, Any]) -> str:
    """Stable while bucket and function stay the same: CloudFormation then sends an Update,
    and a change of either makes a new resource (and a Delete for the old one)."""
    return f"{properties['BucketName']}/{notifications.entry_id(properties['FunctionName'])}"


def desired_configuration(current: dict[str, Any], properties: dict[str, Any],
                          previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bucket's configuration with our entry merged in (or EventBridge turned on).

    ``previous`` is the resource's old properties on an Update of the same bucket: its
    entry is ours to move, never an overlap.
    """
    bucket, name = properties["BucketName"], properties["FunctionName"]
    arn, prefix = properties["FunctionArn"], properties.get("Prefix", "")
    queue = properties.get("QueueArn", "") if properties.get("Delivery") == SQS else ""
    config = notifications.clean(current)
    if previous is not None:
        config = notifications.without_ours(config, previous["FunctionName"],
                                            previous["FunctionArn"],
                                            previous.get("QueueArn", ""))
    if properties.get("Delivery", DIRECT) == EVENTBRIDGE:
        config = notifications.without_ours(config, name, arn)
        return notifications.with_eventbridge(config, True)
    clashes = notifications.overlaps(config, prefix, name, arn, queue)
    if clashes:
        raise RefusedError(overlap_message(bucket, clashes[0]))
    return notifications.with_ours(config, notifications.our_entry(arn, name, prefix, queue),
                                   name, arn, queue)


def destination(properties: dict[str, Any]) -> str:
    """Our entry's destination, which S3 validates: the queue (sqs) or the function."""
    if properties.get("Delivery") == SQS and properties.get("QueueArn"):
        return str(properties["QueueArn"])
    return str(properties["FunctionArn"])


def apply_request(event: dict[str, Any], s3: Any,
                  wait: Callable[[float], bool] = lambda seconds: False) -> str:
    """Carry out one Create/Update/Delete; returns the PhysicalResourceId.  ``wait``
    sleeps before a retry and says whether there was time for it."""
    kind = event["RequestType"]
    properties = event.get("ResourceProperties") or {}
    if kind == "Delete":
        given = event.get("PhysicalResourceId", "")
        if "BucketName" not in properties or given != physical_id(properties):
            return given  # a Create that failed: it never wrote anything
        bucket = properties["BucketName"]
        try:
            current = s3.get_bucket_notification_configuration(Bucket=bucket)
        except s3.exceptions.NoSuchBucket:
            return physical_id(properties)  # the bucket went first: nothing of ours left
        current = notifications.clean(current)
        want = notifications.without_ours(current, properties["FunctionName"],
                                          properties["FunctionArn"],
                                          properties.get("QueueArn", ""))
        put(s3, bucket, current, want, destination(properties), wait)
        return physical_id(properties)
    bucket = properties["BucketName"]
    previous = None
    old = event.get("OldResourceProperties")
    if kind == "Update" and old and old.get("BucketName") == bucket:
        previous = old
    current = notifications.clean(s3.get_bucket_notification_configuration(Bucket=bucket))
    want = desired_configuration(current, properties, previous)
    put(s3, bucket, current, want, destination(properties), wait)
    return physical_id(properties)


def put(s3: Any, bucket: str, current: dict[str, Any], want: dict[str, Any], ours: str,
        wait: Callable[[float], bool]) -> None:
    """Write ``want`` as ``create`` does: without S3's validation of the destinations
    when it adds none (so that a stale entry of someone else's cannot block the removal
    of ours, and the stack's Delete); else retrying while S3 names only our function,
    whose permission the stack has just added, as long as ``wait`` allows; and at once
    refused, naming it, when S3 names a destination of someone else's."""
    if want == current:
        return
    params: dict[str, Any] = {"Bucket": bucket, "NotificationConfiguration": want}
    if not notifications.adds_destination(current, want):
        params["SkipDestinationValidation"] = True
    for delay in (*notifications.VALIDATION_BACKOFF, None):
        try:
            s3.put_bucket_notification_configuration(**params)
            return
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError, not imported
            failed = notifications.unvalidated(
                (getattr(exc, "response", None) or {}).get("Error", {}))
            if failed is None:
                raise
            others = notifications.foreign(failed, ours)
            if others:
                raise RefusedError(notifications.blocked_message(bucket, others)) from exc
            if delay is None or not wait(delay):
                raise


def respond(event: dict[str, Any], status: str, physical: str, reason: str = "") -> None:
    """PUT the answer to the pre-signed URL (no Content-Type: the signature has none)."""
    body = json.dumps({
        "Status": status,
        "Reason": reason[:MAX_REASON] or status,
        "PhysicalResourceId": physical,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": {},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": "",
                                              "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - AWS's URL
        answer.read()


#: Time kept for answering CloudFormation after the last retry (milliseconds).
ANSWER_MARGIN_MS = 15_000


def waiter(context: Any, sleep: Callable[[float], None]) -> Callable[[float], bool]:
    """Sleep before a retry only when the invocation has time left for it and for the
    answer after it, so that a stack never waits an hour for one that timed out."""
    def wait(seconds: float) -> bool:
        left = getattr(context, "get_remaining_time_in_millis", None)
        if left is not None and left() < seconds * 1000 + ANSWER_MARGIN_MS:
            return False
        sleep(seconds)
        return True
    return wait


def handle(event: dict[str, Any], context: Any = None, s3: Any = None,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """Lambda entry point: any exception becomes FAILED with its reason, never silence."""
    physical = event.get("PhysicalResourceId") or event.get("LogicalResourceId") or "none"
    try:
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        physical = apply_request(event, s3, waiter(context, sleep))
    except Exception as exc:  # noqa: BLE001 - reported to CloudFormation, not raised
        respond(event, "FAILED", physical, f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, RefusedError) else str(exc))
        return
    respond(event, "SUCCESS", physical)
