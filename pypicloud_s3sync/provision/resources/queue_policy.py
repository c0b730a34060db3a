"""``--delivery sqs``: the queue's access policy, which lets this one bucket, and nothing
else, send it events.

S3 sends as the service principal ``s3.amazonaws.com``; the conditions name the bucket
and its account, as the S3 user guide's walkthrough does ("Walkthrough: Configuring a
bucket for notifications (SNS topic or SQS queue)": the policy "grants Amazon S3
permission to publish a message to the queue", with ``aws:SourceArn`` the bucket's ARN
and ``aws:SourceAccount`` the bucket owner's account, so that no other bucket's events
can be confused with ours).  S3 checks it when the notification is written, so it comes
before the bucket's entry.

The policy is the queue's ``Policy`` attribute, read with the queue; it is a resource of
its own in CloudFormation (``AWS::SQS::QueuePolicy``) and here.  It goes with the queue.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import iam
from ..names import queue_name
from ..plan import Check, Step
from .base import Grantee, Planning
from .cfn import QUEUE, QUEUE_POLICY, Resources, api, resource, unrendered
from .grants import allow
from .sqs import draining, in_use, ours, queue_url

KIND = "queue-policy"
SID = "BucketSendsEvents"


def read(p: Planning) -> None:
    """Nothing of its own: the policy is an attribute the queue's read returns."""


def name(p: Planning) -> str:
    return queue_name(p.fname)


def document(p: Planning) -> dict[str, Any]:
    bucket, d = p.config.target.bucket, p.desired
    return {"Version": iam.POLICY_VERSION, "Statement": [{
        "Sid": SID, "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": d.queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:{d.partition}:s3:::{bucket}"},
                      "StringEquals": {"aws:SourceAccount": d.account}}}]}


def plan(p: Planning) -> None:
    """With ``--delivery sqs``: set on our queue (new or ours), compared as IAM would."""
    if not in_use(p) or draining(p):
        return
    queue = p.actual.queue
    if queue is not None and not ours(p):
        return  # the queue kind refuses it
    want = document(p)
    have = (queue or {}).get("Policy")
    in_sync = bool(have) and iam.same_policy(have, want)
    bucket = p.config.target.bucket
    p.row(KIND, name(p), f"only bucket {bucket} may send",
          "as desired" if in_sync else ("missing" if not have else "differs"), in_sync)
    if not in_sync:
        p.call(KIND, "update" if have else "create", name(p),
               f"{'replace' if have else 'set'} the policy of SQS queue {name(p)}: only "
               f"bucket {bucket} (account {p.desired.account}) may send it events",
               "sqs.set_queue_attributes",
               {"QueueUrl": queue_url(p),
                "Attributes": {"Policy": json.dumps(want)}},
               details={"queue": p.desired.queue_arn})


def teardown(p: Planning) -> None:
    """Nothing: the policy goes with the queue."""


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``DeliveryQueuePolicy`` on the stack's queue."""
    found: Resources = {}
    for step in created:
        if api(step) != "sqs.set_queue_attributes":
            raise unrendered(KIND, step)
        found[QUEUE_POLICY] = resource("AWS::SQS::QueuePolicy", {
            "Queues": [{"Ref": QUEUE}],
            "PolicyDocument": json.loads(step.params["Attributes"]["Policy"])})
    return found


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    return [allow("DeliveryQueuePolicy", ["sqs:SetQueueAttributes"],
                  s.arn("sqs", queue_name(s.function_name)))]


def checks(p: Planning) -> list[Check]:
    """None: its row says all status knows of it."""
    return []
