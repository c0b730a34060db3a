"""Merge our entry into a bucket's notification configuration without touching the rest.

``PutBucketNotificationConfiguration`` replaces the whole document, so the only safe
write is read, change our one entry, write everything back.  These functions work on
the plain dicts boto3 returns, so they are easy to reason about and to test, and the
planner can show exactly what will be written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

#: Keys of a notification configuration that hold lists of destinations.
KINDS = {
    "LambdaFunctionConfigurations": ("LambdaFunctionArn", "Lambda function"),
    "QueueConfigurations": ("QueueArn", "SQS queue"),
    "TopicConfigurations": ("TopicArn", "SNS topic"),
}
EVENTBRIDGE = "EventBridgeConfiguration"
#: The events the handler understands; one entry covers both families.
OUR_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
_OUR_FAMILIES = ("s3:ObjectCreated:", "s3:ObjectRemoved:")


def entry_id(function_name: str) -> str:
    """Our entry's Id: stable, so re-runs replace it instead of adding a second one."""
    return f"pypicloud-s3sync-{function_name}"


def clean(config: dict[str, Any] | None) -> dict[str, Any]:
    """The configuration as it can be written back: no response metadata, no empty lists."""
    config = copy.deepcopy(config or {})
    config.pop("ResponseMetadata", None)
    for key in list(config):
        if key in KINDS and not config[key]:
            del config[key]
    return config


def our_entry(function_arn: str, function_name: str, prefix: str,
              queue_arn: str = "") -> dict[str, Any]:
    """Our entry: to the function (direct), or to the queue (``--delivery sqs``)."""
    entry: dict[str, Any] = {"Id": entry_id(function_name)}
    if queue_arn:
        entry["QueueArn"] = queue_arn
    else:
        entry["LambdaFunctionArn"] = function_arn
    entry["Events"] = list(OUR_EVENTS)
    if prefix:
        entry["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    return entry


def _unqualified(arn: str) -> str:
    """``...:function:name:alias`` -> ``...:function:name``."""
    parts = arn.split(":")
    return ":".join(parts[:7]) if len(parts) > 7 else arn


#: The lists our entry may be in: the function's (direct) or the queue's (sqs).
OUR_KINDS = ("LambdaFunctionConfigurations", "QueueConfigurations")


def is_ours(entry: dict[str, Any], function_name: str, function_arn: str,
            queue_arn: str = "") -> bool:
    """Our stable Id, or an entry (e.g. left by pypicloud's old script) aimed at our
    function, or at our queue."""
    if entry.get("Id") == entry_id(function_name):
        return True
    arn = entry.get("LambdaFunctionArn")
    if arn and _unqualified(arn) == function_arn:
        return True
    return bool(queue_arn) and entry.get("QueueArn") == queue_arn


def find_ours(config: dict[str, Any], function_name: str, function_arn: str,
              queue_arn: str = "") -> list[dict]:
    return [
        entry for key in OUR_KINDS for entry in config.get(key, [])
        if is_ours(entry, function_name, function_arn, queue_arn)
    ]


def without_ours(config: dict[str, Any], function_name: str, function_arn: str,
                 queue_arn: str = "") -> dict:
    """The configuration minus our entries; everything else exactly as it was."""
    result = clean(config)
    for key in OUR_KINDS:
        kept = [entry for entry in result.get(key, [])
                if not is_ours(entry, function_name, function_arn, queue_arn)]
        if kept:
            result[key] = kept
        else:
            result.pop(key, None)
    return result


def with_ours(config: dict[str, Any], entry: dict[str, Any], function_name: str,
              function_arn: str, queue_arn: str = "") -> dict[str, Any]:
    """The configuration with our entry in place of any previous one of ours."""
    result = without_ours(config, function_name, function_arn, queue_arn)
    key = "QueueConfigurations" if "QueueArn" in entry else "LambdaFunctionConfigurations"
    result.setdefault(key, []).append(copy.deepcopy(entry))
    return result


def with_eventbridge(config: dict[str, Any], enabled: bool) -> dict[str, Any]:
    result = clean(config)
    if enabled:
        result[EVENTBRIDGE] = {}
    else:
        result.pop(EVENTBRIDGE, None)
    return result


def _filter_values(entry: dict[str, Any]) -> tuple[str, str]:
    prefix = suffix = ""
    for rule in entry.get("Filter", {}).get("Key", {}).get("FilterRules", []):
        name = rule.get("Name", "").lower()
        if name == "prefix":
            prefix = rule.get("Value", "")
        elif name == "suffix":
            suffix = rule.get("Value", "")
    return prefix, suffix


def same_entry(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equal as S3 would apply them (filter-rule name case and event order do not matter)."""
    if a is None or b is None:
        return a is b
    return (
        a.get("Id") == b.get("Id")
        and a.get("LambdaFunctionArn") == b.get("LambdaFunctionArn")
        and a.get("QueueArn") == b.get("QueueArn")
        and sorted(a.get("Events", [])) == sorted(b.get("Events", []))
        and _filter_values(a) == _filter_values(b)
    )


@dataclass(frozen=True)
class Overlap:
    """A foreign entry S3 would reject next to ours (same events, overlapping prefix)."""

    kind: str
    id: str
    destination: str
    events: tuple[str, ...]
    prefix: str
    suffix: str

    def describe(self) -> str:
        where = f"prefix '{self.prefix}'" if self.prefix else "no prefix filter"
        if self.suffix:
            where += f", suffix '{self.suffix}'"
        return (
            f"{self.kind} notification '{self.id}' -> {self.destination} "
            f"({', '.join(self.events)}; {where})"
        )


def overlaps(config: dict[str, Any], prefix: str, function_name: str,
             function_arn: str, queue_arn: str = "") -> list[Overlap]:
    """Foreign entries whose events and key filter overlap ours.

    S3 refuses two entries for the same event type whose prefixes could both match one
    key (one prefix starts with the other; no prefix matches everything).  Our entry has
    no suffix, so a foreign suffix does not separate them.
    """
    found = []
    for key, (arn_key, kind) in KINDS.items():
        for entry in config.get(key, []) or []:
            if key in OUR_KINDS and is_ours(entry, function_name, function_arn, queue_arn):
                continue
            events = [e for e in entry.get("Events", [])
                      if e == "s3:*" or e.startswith(_OUR_FAMILIES)]
            if not events:
                continue
            their_prefix, their_suffix = _filter_values(entry)
            if prefix.startswith(their_prefix) or their_prefix.startswith(prefix):
                found.append(Overlap(
                    kind=kind, id=entry.get("Id", "?"), destination=entry.get(arn_key, "?"),
                    events=tuple(events), prefix=their_prefix, suffix=their_suffix,
                ))
    return found


# -- S3's validation of the destinations ------------------------------------------------

#: S3's refusal when it could not check a destination of the document: "After Amazon S3
#: receives this request, it first verifies that any [SNS or SQS] destination exists, and
#: that the bucket owner has permission to publish to it [...] In the case of Lambda
#: destinations, Amazon S3 verifies that the Lambda function permissions grant Amazon S3
#: permission to invoke the function" (PutBucketNotificationConfiguration).  Each failing
#: destination's ARN comes as ``ArgumentName1``, ``2``... and its reason as
#: ``ArgumentValue1``...
UNVALIDATED = "Unable to validate the following destination configurations"
#: How long (seconds between tries) a write that adds our entry waits for the invoke
#: permission added just before it to reach S3: about a minute.
VALIDATION_BACKOFF = (1, 2, 4, 8, 15, 30)


def unvalidated(error: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The destinations (ARN, S3's reason) that S3 could not validate, from botocore's
    ``response["Error"]``; None for any other error, ``[]`` when S3 named none."""
    if error.get("Code") != "InvalidArgument" or UNVALIDATED not in str(
            error.get("Message", "")):
        return None
    names = sorted((key for key in error if key.startswith("ArgumentName")),
                   key=lambda key: int(key[len("ArgumentName"):] or 0))
    return [(str(error[key]), str(error.get(key.replace("Name", "Value", 1), "")))
            for key in names]


def foreign(failed: list[tuple[str, str]], function_arn: str) -> list[tuple[str, str]]:
    """The failed destinations that are not ours (our function, or the queue of the
    same sync, ``function_arn`` naming either): waiting never fixes those."""
    return [(arn, why) for arn, why in failed if _unqualified(arn) != function_arn]


def blocked_message(bucket: str, failed: list[tuple[str, str]]) -> str:
    """One line: which of the others' destinations S3 refused, and what to do about it."""
    named = "; ".join(f"{arn} ({why})" if why else arn for arn, why in failed)
    return (f"bucket {bucket}'s notifications also send to {named}, which S3 could not "
            "validate; S3 checks every destination whenever the document is written, so "
            "that entry blocks ours: remove it from the bucket's notifications, or fix "
            "that destination's policy so S3 may send to it")


def adds_destination(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether ``after`` has an SQS, SNS or Lambda entry that ``before`` has not.

    Only then is there anything new for S3 to validate: a write that only removes
    entries (or switches EventBridge, which S3 does not validate) may skip the check,
    so that an entry of someone else's that no longer validates cannot block it.
    """
    return any(entry not in (before.get(key) or [])
               for key in KINDS for entry in after.get(key) or [])
