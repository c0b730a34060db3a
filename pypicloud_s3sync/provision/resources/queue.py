"""``--delivery sqs``: the queue the bucket sends its events to and the dead-letter queue
where an event goes once it has failed ``--max-receives`` times.

Both keep a message for 14 days (1209600 s, SQS's most).  The dead-letter queue must: "The
expiration of a message is always based on its original enqueue timestamp. When a
message is moved to a dead-letter queue, the enqueue timestamp is unchanged" (SQS
developer guide, "Using dead-letter queues"), so a dead letter lives at most as long as
its retention counted from the upload.  The queue does too, rather than SQS's default of
4 days: a queue is what keeps events while the function cannot take them (deleted, its
mapping disabled, throttled to nothing) for days, and a shorter retention only drops
them sooner without giving the dead-letter queue a day more.

The visibility timeout is six times the function's: "set the source queue's visibility
timeout to at least six times the timeout that you configure on your function" (Lambda
developer guide, "Using Lambda with Amazon SQS"); create sets it from ``--timeout`` and
status shows a queue changed below it as drift.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import tags
from ..aws import error_code
from ..awsfailure import kind as failure_kind
from ..errors import FUNCTION_NAME, DeployError, Fix
from ..names import dead_letter_queue_name, queue_name
from ..plan import OK, WARN, Check, Step
from .base import Grantee, Planning
from .cfn import DEAD_LETTER_QUEUE, QUEUE, Resources, api, resource, unrendered
from .grants import allow
from .sqs import drain_note, draining, held, in_use

KIND = "queue"
DLQ_KIND = "dead-letter-queue"
#: SQS's longest retention: 14 days.
RETENTION = 1209600
#: The visibility timeout, in multiples of the function's timeout.
VISIBILITY_FACTOR = 6
#: The attributes we set, and so compare; everything else SQS returns is its own.
COMPARED = ("MessageRetentionPeriod", "VisibilityTimeout", "RedrivePolicy", "KmsMasterKeyId")
#: How far back status looks for the age of the oldest message, in seconds.
AGE_WINDOW = 900


def read(p: Planning) -> None:
    """Both queues, whatever the delivery, so that switching away removes them.

    A sync that does not use the queue may run with an operator policy written before
    ``--delivery sqs`` existed: SQS refusing it the look reads as no queue, said in a
    note, rather than stopping a status or create that needs no queue at all.
    """
    from botocore.exceptions import ClientError

    a, sqs = p.actual, p.clients.client("sqs")
    try:
        a.queue_url, a.queue, a.queue_tags = _read_one(sqs, queue_name(p.fname))
        (a.dead_letter_queue_url, a.dead_letter_queue,
         a.dead_letter_queue_tags) = _read_one(sqs, dead_letter_queue_name(p.fname))
    except ClientError as exc:
        if p.options.delivery == "sqs" or failure_kind(exc) != "denied":
            raise
        a.queue_url, a.queue, a.queue_tags = "", None, {}
        a.dead_letter_queue_url, a.dead_letter_queue, a.dead_letter_queue_tags = "", None, {}
        p.notes.append(
            f"could not look for a queue left by --delivery sqs (SQS refused "
            f"{exc.operation_name}): if this sync ever used it, grant the operator policy's "
            "queue statements (docs: 'What the commands need') so that a re-run removes it")


def _read_one(sqs: Any, name: str) -> tuple[str, dict[str, str] | None, dict[str, str]]:
    from botocore.exceptions import ClientError

    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue",
                               "QueueDoesNotExist"):
            return "", None, {}
        raise
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return url, attributes, sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}


def name(p: Planning) -> str:
    return queue_name(p.fname)


def desired(p: Planning, dead_letter: bool) -> dict[str, str]:
    """CreateQueue's attributes for one of the two queues."""
    o = p.options
    attributes = {"MessageRetentionPeriod": str(RETENTION)}
    if not dead_letter:
        attributes["VisibilityTimeout"] = str(VISIBILITY_FACTOR * o.timeout)
        attributes["RedrivePolicy"] = json.dumps({
            "deadLetterTargetArn": p.desired.dead_letter_queue_arn,
            "maxReceiveCount": o.max_receives})
    if o.queue_kms_key_arn:
        attributes["KmsMasterKeyId"] = o.queue_kms_key_arn
    return attributes


def _comparable(attributes: dict[str, Any], dead_letter: bool) -> dict[str, Any]:
    """What we set, in one shape: SQS returns the redrive policy as text whose count
    may be a string.  The dead-letter queue's visibility timeout and redrive policy are
    SQS's own (nothing reads it through a mapping)."""
    keys = [k for k in COMPARED
            if not (dead_letter and k in ("VisibilityTimeout", "RedrivePolicy"))]
    found: dict[str, Any] = {key: attributes.get(key) or None for key in keys}
    if found.get("RedrivePolicy"):
        policy = json.loads(found["RedrivePolicy"])
        found["RedrivePolicy"] = (policy.get("deadLetterTargetArn"),
                                  int(policy.get("maxReceiveCount") or 0))
    return found


def _describe(attributes: dict[str, Any], dead_letter: bool) -> str:
    have = _comparable(attributes, dead_letter)
    parts = [f"retention {have['MessageRetentionPeriod']} s"]
    if have.get("VisibilityTimeout"):
        parts.append(f"visibility {have['VisibilityTimeout']} s")
    if have.get("RedrivePolicy"):
        parts.append(f"dead letter after {have['RedrivePolicy'][1]} receives")
    parts.append(f"key {have['KmsMasterKeyId']}" if have["KmsMasterKeyId"] else "no KMS key")
    return ", ".join(parts)


def plan(p: Planning) -> None:
    """The dead-letter queue before the queue whose redrive policy names it; without
    ``--delivery sqs``, ours removed after the new path is in place (last), unless they
    still hold events."""
    if not in_use(p):
        _remove(p, shown=True, last=True)
        return
    if draining(p):
        p.notes.append(drain_note(p))
        # In sync: nothing create could do now; the next create once they are empty.
        for kind, queue, held_by in (
                (KIND, name(p), p.actual.queue),
                (DLQ_KIND, dead_letter_queue_name(p.fname), p.actual.dead_letter_queue)):
            if held_by is not None:
                p.row(kind, queue, "kept until empty (--delivery is not sqs)",
                      f"kept: holds {held(held_by)} event(s)", True)
        return
    key = p.options.queue_kms_key_arn
    if key:
        p.notes.append(
            f"the queues are encrypted with {key}: its key policy (which create cannot "
            "change) must allow the service principal s3.amazonaws.com kms:GenerateDataKey "
            "and kms:Decrypt, or S3 cannot send events to the queue (SQS developer guide, "
            "'Enable compatibility between event sources from AWS services and encrypted "
            "queues'); the function's role gets kms:Decrypt on it")
    _one(p, DLQ_KIND, dead_letter_queue_name(p.fname), p.actual.dead_letter_queue,
         p.actual.dead_letter_queue_tags, p.actual.dead_letter_queue_url, dead_letter=True)
    _one(p, KIND, name(p), p.actual.queue, p.actual.queue_tags, p.actual.queue_url,
         dead_letter=False)


def _one(p: Planning, kind: str, queue: str, have: dict[str, str] | None,
         have_tags: dict[str, str], url: str, dead_letter: bool) -> None:
    want = desired(p, dead_letter)
    if have is not None and not tags.managed(have_tags):
        raise DeployError(
            f"SQS queue {queue} exists but was not created by pypicloud-s3sync "
            f"(no {tags.MANAGED_TAG} tag)",
            Fix(*FUNCTION_NAME, "delete or rename it, or choose another function name "
                                "with {}"))
    shown = _describe(want, dead_letter)
    if have is None:
        p.row(kind, queue, shown, "missing", False)
        p.call(kind, "create", queue, f"create SQS queue {queue} ({shown}, tagged "
                                      f"{tags.MANAGED_TAG})", "sqs.create_queue",
               {"QueueName": queue, "Attributes": want,
                "tags": {tags.MANAGED_TAG: tags.MANAGED_VALUE}})
        return
    wanted, held_now = _comparable(want, dead_letter), _comparable(have, dead_letter)
    changed = [key for key in wanted if wanted[key] != held_now[key]]
    p.row(kind, queue, shown, _describe(have, dead_letter), not changed)
    if changed:
        # "" takes a KMS key off again (SSE-SQS then, SQS's default).
        update = {key: want.get(key, "") for key in changed}
        p.call(kind, "update", queue,
               f"update SQS queue {queue} ({', '.join(changed)}): {shown}",
               "sqs.set_queue_attributes", {"QueueUrl": url, "Attributes": update},
               details={"changed": changed})


def _remove(p: Planning, *, shown: bool, last: bool) -> None:
    """Delete our queues (the queue before the dead-letter queue its policy names);
    a queue of our name that is not ours is left alone."""
    a = p.actual
    for kind, queue, have, have_tags, url in (
            (KIND, name(p), a.queue, a.queue_tags, a.queue_url),
            (DLQ_KIND, dead_letter_queue_name(p.fname), a.dead_letter_queue,
             a.dead_letter_queue_tags, a.dead_letter_queue_url)):
        dead_letter = kind == DLQ_KIND
        if have is None:
            continue
        if not tags.managed(have_tags):
            p.notes.append(f"SQS queue {queue} was not created by pypicloud-s3sync; left alone")
            continue
        count = held(have)
        if shown:
            p.row(kind, queue, "none (--delivery is not sqs)", _describe(have, dead_letter),
                  False)
        if count:
            p.warnings.append(f"SQS queue {queue} holds {count} event(s); deleting it "
                              "deletes them")
        p.call(kind, "delete", queue,
               f"delete SQS queue {queue}" + (": --delivery is no longer sqs, and the new "
                                              "path is in place" if shown else ""),
               "sqs.delete_queue", {"QueueUrl": url}, last=last)


def teardown(p: Planning) -> None:
    _remove(p, shown=False, last=False)


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``DeadLetterQueue`` and ``DeliveryQueue``: create's attributes as properties."""
    logical = {dead_letter_queue_name(p.fname): DEAD_LETTER_QUEUE, name(p): QUEUE}
    found: Resources = {}
    for step in created:
        if api(step) != "sqs.create_queue":
            raise unrendered(KIND, step)
        attributes = step.params["Attributes"]
        properties: dict[str, Any] = {"QueueName": step.params["QueueName"]}
        for key, value in attributes.items():
            properties[key] = json.loads(value) if key == "RedrivePolicy" else (
                value if key == "KmsMasterKeyId" else int(value))
        properties["Tags"] = [{"Key": k, "Value": v} for k, v in step.params["tags"].items()]
        found[logical[step.params["QueueName"]]] = resource("AWS::SQS::Queue", properties)
    return found


#: Read on every plan (so that switching away removes them), made with our tag, kept
#: as generated, deleted.  SQS authorizes each call on the queue's ARN.
OPERATOR_ACTIONS = ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl", "sqs:ListQueueTags", "sqs:SetQueueAttributes",
                    "sqs:TagQueue"]


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    return [allow("DeliveryQueues", OPERATOR_ACTIONS,
                  [s.arn("sqs", queue_name(s.function_name)),
                   s.arn("sqs", dead_letter_queue_name(s.function_name))])]


def checks(p: Planning) -> list[Check]:
    """How many events wait, how old the oldest is, how many failed for good: the
    rows say the queues are as configured, not whether they empty."""
    a = p.actual
    if p.options.delivery != "sqs" or a.queue is None:
        return []
    found = []
    waiting = int(a.queue.get("ApproximateNumberOfMessages") or 0)
    in_flight = int(a.queue.get("ApproximateNumberOfMessagesNotVisible") or 0)
    found.append(Check("queue-depth", OK, f"{waiting} event(s) waiting, {in_flight} being "
                                          f"processed in {name(p)}"))
    found.append(_age_check(p))
    if a.dead_letter_queue is not None:
        dead = int(a.dead_letter_queue.get("ApproximateNumberOfMessages") or 0)
        dlq = dead_letter_queue_name(p.fname)
        if dead:
            found.append(Check(
                "dead-letters", WARN,
                f"{dead} event(s) in {dlq} failed {p.options.max_receives} times",
                f"read why in the log (aws logs tail /aws/lambda/{p.fname} --since 1d "
                "--filter-pattern failed), fix the cause, then 'ppc-s3sync redrive "
                "CONFIG' sends them back through the function"))
        else:
            found.append(Check("dead-letters", OK, f"{dlq} is empty"))
    return found


def _age_check(p: Planning) -> Check:
    """CloudWatch's ApproximateAgeOfOldestMessage: SQS itself has no attribute for it."""
    from datetime import UTC, datetime, timedelta

    from ..alarms import DEFAULT_LAG

    now = datetime.now(UTC)
    points = p.clients.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": name(p)}],
        # To a minute past now: the call sends whole seconds, and the latest datapoint
        # is the one that matters.
        StartTime=now - timedelta(seconds=AGE_WINDOW), EndTime=now + timedelta(minutes=1),
        Period=300,
        Statistics=["Maximum"]).get("Datapoints") or []
    if not points:
        return Check("oldest-event", OK, "no age of the oldest message in CloudWatch for "
                                         f"the last {AGE_WINDOW // 60} minutes (an idle "
                                         "queue publishes none)")
    age = max(point["Maximum"] for point in points)
    limit = p.options.lag_threshold or DEFAULT_LAG
    if age > limit:
        return Check("oldest-event", WARN,
                      f"the oldest event in {name(p)} has waited {age:g} s (above {limit:g})",
                      "the event-source-mapping check says whether the function reads the "
                      "queue; raise --max-concurrency if it reads but cannot keep up")
    return Check("oldest-event", OK, f"the oldest event has waited {age:g} s")
