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
import urllib.request
from typing import Any

from . import notifications

#: The handler string of the custom resource's function.
HANDLER = "pypicloud_s3sync.provision.bucket_resource.handle"
DIRECT, EVENTBRIDGE = "direct", "eventbridge"
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
    config = notifications.clean(current)
    if previous is not None:
        config = notifications.without_ours(config, previous["FunctionName"],
                                            previous["FunctionArn"])
    if properties.get("Delivery", DIRECT) == EVENTBRIDGE:
        config = notifications.without_ours(config, name, arn)
        return notifications.with_eventbridge(config, True)
    clashes = notifications.overlaps(config, prefix, name, arn)
    if clashes:
        raise RefusedError(overlap_message(bucket, clashes[0]))
    return notifications.with_ours(config, notifications.our_entry(arn, name, prefix),
                                   name, arn)


def apply_request(event: dict[str, Any], s3: Any) -> str:
    """Carry out one Create/Update/Delete; returns the PhysicalResourceId."""
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
                                          properties["FunctionArn"])
        if want != current:
            s3.put_bucket_notification_configuration(Bucket=bucket,
                                                     NotificationConfiguration=want)
        return physical_id(properties)
    bucket = properties["BucketName"]
    previous = None
    old = event.get("OldResourceProperties")
    if kind == "Update" and old and old.get("BucketName") == bucket:
        previous = old
    current = notifications.clean(s3.get_bucket_notification_configuration(Bucket=bucket))
    want = desired_configuration(current, properties, previous)
    if want != current:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=want)
    return physical_id(properties)


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


def handle(event: dict[str, Any], context: Any = None, s3: Any = None) -> None:
    """Lambda entry point: any exception becomes FAILED with its reason, never silence."""
    physical = event.get("PhysicalResourceId") or event.get("LogicalResourceId") or "none"
    try:
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        physical = apply_request(event, s3)
    except Exception as exc:  # noqa: BLE001 - reported to CloudFormation, not raised
        respond(event, "FAILED", physical, f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, RefusedError) else str(exc))
        return
    respond(event, "SUCCESS", physical)
