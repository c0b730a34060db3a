"""The queue and dead-letter queue as ``--delivery sqs`` names and links them, made by
hand for tests of what reads them (the function's poller, redrive, the sync page)."""

from __future__ import annotations

import json
from typing import Any

from pypicloud_s3sync.provision.names import dead_letter_queue_name, queue_name

FUNCTION = "pypicloud_s3_sync"


def make_queues(sqs: Any, function: str = FUNCTION, max_receives: int = 5,
                **attributes: str) -> tuple[str, str]:
    """The queue's and the dead-letter queue's URLs; the queue's RedrivePolicy names the
    dead-letter queue, as create sets it.  ``attributes`` go on the queue too."""
    dead = sqs.create_queue(QueueName=dead_letter_queue_name(function))["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"]
                                        )["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=queue_name(function), Attributes={
        **attributes, "RedrivePolicy": json.dumps({
            "deadLetterTargetArn": dead_arn, "maxReceiveCount": str(max_receives)})})["QueueUrl"]
    return url, dead


def bodies(sqs: Any, url: str) -> list[str]:
    """Every message body in the queue, sorted (each hidden once read, so none twice)."""
    found: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                          VisibilityTimeout=300).get("Messages", []):
        found += [m["Body"] for m in messages]
    return sorted(found)
