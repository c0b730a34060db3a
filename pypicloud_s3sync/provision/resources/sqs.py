"""What the kinds of ``--delivery sqs`` share: whether the queue path is wanted, and how
many events its queues still hold.

The path is wanted with ``--delivery sqs``, and also while a queue of ours still holds
events after a switch away from it: deleting a queue deletes its messages, so the queue,
its mapping and the role's grant to read it stay until the queue is empty, and a later
create removes them (the plan says so).  The queue, its policy, the mapping and the
role all ask here, so that they keep or remove the path together.
"""

from __future__ import annotations

from typing import Any

from .. import tags
from ..names import queue_name
from .base import Planning

#: The attributes that count a queue's events: waiting, being processed, delayed.
HELD = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed")


def held(attributes: dict[str, Any] | None) -> int:
    """Events a queue holds (0 for a missing one), as SQS approximates them."""
    return sum(int((attributes or {}).get(key) or 0) for key in HELD)


def ours(p: Planning) -> bool:
    """Our main queue exists and carries our tag."""
    return p.actual.queue is not None and tags.managed(p.actual.queue_tags)


def draining(p: Planning) -> int:
    """Events still in our queues after a switch away from ``sqs`` (0: none, or the
    delivery is ``sqs``): while there are any, the path stays."""
    if p.options.delivery == "sqs":
        return 0
    count = 0
    if ours(p):
        count += held(p.actual.queue)
    if p.actual.dead_letter_queue is not None and tags.managed(
            p.actual.dead_letter_queue_tags):
        count += held(p.actual.dead_letter_queue)
    return count


def in_use(p: Planning) -> bool:
    """The queue path is wanted: ``--delivery sqs``, or our queues still hold events."""
    return p.options.delivery == "sqs" or draining(p) > 0


def queue_url(p: Planning) -> str:
    """Our queue's URL: as read, or, for a queue this plan makes, the one SQS will give
    it (``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME``), so that the steps after its
    creation can name it in a plan made before it exists."""
    if p.actual.queue_url:
        return p.actual.queue_url
    domain = "amazonaws.com.cn" if p.desired.partition == "aws-cn" else "amazonaws.com"
    return (f"https://sqs.{p.clients.region}.{domain}/{p.desired.account}/"
            f"{queue_name(p.fname)}")


def drain_note(p: Planning) -> str:
    return (f"the queues of --delivery sqs still hold {draining(p)} event(s): the queue, "
            f"its mapping and the role's grant to read it stay until they are empty "
            "(run 'ppc-s3sync redrive CONFIG' for what is in the dead-letter queue); run "
            "create again then to remove them")


__all__ = ["HELD", "drain_note", "draining", "held", "in_use", "ours", "queue_url"]
