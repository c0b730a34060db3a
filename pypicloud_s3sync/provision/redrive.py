"""Move the dead-letter queue's messages back to the delivery queue (``ppc-s3sync redrive``).

With ``--delivery sqs`` a message the function failed ``maxReceiveCount`` times moves to
the dead-letter queue: the function was down for longer than that many visibility
timeouts, or one key kept failing (S3 refused it).  Once the cause is fixed, moving
the messages back lets the function apply them; nothing else would.

Each batch is sent to the queue first and deleted from the dead-letter queue only once
sent, so a crash in between leaves a message in both queues, never in neither.  The
duplicate is harmless: the function applies a key from the object's state in S3 at the
time, not from the event, so a second delivery of the same event changes nothing.  A
second run finds the dead-letter queue empty and moves 0.

SQS has a server-side move for this (``StartMessageMoveTask``); moto does not implement
it, so nothing could test it here, and the receive/send/delete loop needs only the
permissions the function's own queue already names (see :data:`OPERATOR_ACTIONS`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import MAKE_QUEUES, AwsError, DeployError, Fix
from .names import queue_name

if TYPE_CHECKING:
    from .aws import AwsClients

#: SQS's limit on messages per ReceiveMessage, SendMessageBatch and DeleteMessageBatch.
BATCH = 10
#: "The total size of all messages sent in a single SendMessageBatch call cannot exceed
#: 1,048,576 bytes (1 MiB)" (SQS developer guide, "Amazon SQS batch actions").
MAX_BATCH_BYTES = 1_048_576
#: Seconds a received dead-letter message stays hidden while it is sent and deleted;
#: one that could not be sent shows up again after it, for the next run.
VISIBILITY = 60
#: Long polling asks every SQS server, so an empty answer means the queue is empty
#: (a short poll samples some of them and may answer empty for a queue that is not).
WAIT_SECONDS = 1

#: What the caller needs, on the queue and the dead-letter queue.  "setting permissions
#: for SendMessage, DeleteMessage, or ChangeMessageVisibility sets permissions for the
#: corresponding batch versions of the actions" (SQS developer guide, "Amazon SQS batch
#: actions").
OPERATOR_ACTIONS = {
    "queue": ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"),
    "dead_letter_queue": ("sqs:GetQueueUrl", "sqs:GetQueueAttributes",
                          "sqs:ReceiveMessage", "sqs:DeleteMessage"),
}

#: The command line says which command makes the queues, the admin API which setting.
NOT_SQS = "no --delivery sqs sync for this config: {0}"


@dataclass
class RedriveReport:
    """What a run found and moved."""

    queue: str
    dead_letter_queue: str
    #: Messages the dead-letter queue held when the run began (SQS's approximate count).
    found: int
    moved: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "dead_letter_queue": self.dead_letter_queue,
                "found": self.found, "moved": self.moved, "dry_run": self.dry_run}

    def describe(self) -> str:
        if self.dry_run:
            return (f"{self.found} message{'s' * (self.found != 1)} in "
                    f"{self.dead_letter_queue} would be moved back to {self.queue}.")
        return (f"Moved {self.moved} message{'s' * (self.moved != 1)} from "
                f"{self.dead_letter_queue} back to {self.queue}.")


def _queue_url(sqs: Any, name: str, owner: str | None = None) -> str | None:
    from botocore.exceptions import ClientError

    kwargs = {"QueueName": name, **({"QueueOwnerAWSAccountId": owner} if owner else {})}
    try:
        return sqs.get_queue_url(**kwargs)["QueueUrl"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise


def _count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return (int(attributes.get("ApproximateNumberOfMessages", 0))
            + int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)))


def find_queues(clients: AwsClients, function_name: str) -> tuple[str, str]:
    """(queue URL, dead-letter queue URL): the dead-letter queue is the one the queue's
    redrive policy names, whatever it is called; a config without the queue is told
    how to make it."""
    sqs = clients.client("sqs")
    url = _queue_url(sqs, queue_name(function_name))
    if url is None:
        raise DeployError(NOT_SQS, Fix(*MAKE_QUEUES))
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]
                                      ).get("Attributes", {}).get("RedrivePolicy")
    target = json.loads(policy).get("deadLetterTargetArn") if policy else None
    if not target:
        raise DeployError(f"queue {queue_name(function_name)} has no dead-letter queue "
                          "(RedrivePolicy): {0}", Fix(*MAKE_QUEUES))
    _, _, _, _, owner, name = target.split(":", 5)
    dead = _queue_url(sqs, name, owner)
    if dead is None:
        raise DeployError(f"the dead-letter queue {name} of {queue_name(function_name)} "
                          "does not exist: {0}", Fix(*MAKE_QUEUES))
    return url, dead


def _sendable(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The messages in SendMessageBatch calls of at most 10 and 1 MiB each."""
    groups: list[list[dict[str, Any]]] = [[]]
    size = 0
    for message in messages:
        length = len(message["Body"].encode())
        if groups[-1] and size + length > MAX_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(message)
        size += length
    return [group for group in groups if group]


def _entry(index: int, message: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        entry["MessageAttributes"] = message["MessageAttributes"]
    return entry


def redrive(clients: AwsClients, function_name: str, *, dry_run: bool = False,
            progress: Callable[[str], None] | None = None) -> RedriveReport:
    """Move every message of the sync's dead-letter queue back to its queue.

    Messages this run sent are not moved twice: should the function fail them into the
    dead-letter queue again before the run ends, the run stops at the first of them.
    A message SQS would not take stays in the dead-letter queue and the run raises
    :class:`~.errors.AwsError` after moving the rest it could.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from .awsfailure import translate

    try:
        return _redrive(clients, function_name, dry_run, progress)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, clients.endpoint_sources) from exc


def _redrive(clients: AwsClients, function_name: str, dry_run: bool,
             progress: Callable[[str], None] | None) -> RedriveReport:
    sqs = clients.client("sqs")
    url, dead = find_queues(clients, function_name)
    report = RedriveReport(queue_name(function_name), dead.rstrip("/").rsplit("/", 1)[-1],
                           _count(sqs, dead), dry_run=dry_run)
    if dry_run:
        return report
    sent_ids: set[str] = set()
    refused: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=dead, MaxNumberOfMessages=BATCH, VisibilityTimeout=VISIBILITY,
            WaitTimeSeconds=WAIT_SECONDS, MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in sent_ids]
        if not fresh:
            break
        for group in _sendable(fresh):
            answer = sqs.send_message_batch(
                QueueUrl=url, Entries=[_entry(n, m) for n, m in enumerate(group)])
            sent = answer.get("Successful", [])
            sent_ids.update(entry["MessageId"] for entry in sent)
            refused += [f"{group[int(f['Id'])]['MessageId']}: {f.get('Code')} "
                        f"{f.get('Message', '')}".strip() for f in answer.get("Failed", [])]
            done = [group[int(entry["Id"])] for entry in sent]
            if done:
                deleted = sqs.delete_message_batch(QueueUrl=dead, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(done)])
                # A message sent but not deleted comes back after VISIBILITY: the next
                # run sends it again, a duplicate the function applies idempotently.
                report.moved += len(deleted.get("Successful", []))
        if progress is not None:
            progress(f"moved {report.moved} of about {report.found}")
    if refused:
        raise AwsError(f"SQS refused {len(refused)} message(s), left in "
                       f"{report.dead_letter_queue} (moved {report.moved}): {refused[0]}")
    return report
