"""Lambda's SQS event source mapping, in small: poll a queue, invoke, delete what succeeded.

moto keeps queues (visibility timeouts, receive counts, redrive policies to a
dead-letter queue) but runs no Lambda runtime, so nothing would ever read the queue in
a test.  This poller stands in for Lambda's pollers, doing what Lambda's developer
guide says they do ("Using Lambda with Amazon SQS", with-sqs.html, and "Handling errors
for an SQS event source in Lambda", services-sqs-errorhandling.html):

* "With Amazon SQS event source mappings, Lambda polls the queue and invokes your
  function synchronously with an event.  Each event can contain a batch of multiple
  messages from the queue.  Lambda receives these events one batch at a time, and
  invokes your function once for each batch."  Here: ReceiveMessage of up to
  ``batch_size`` (10, the default BatchSize) messages, one invocation per batch, shaped
  as the guide's example SQS event.
* "When Lambda receives a batch, the messages stay in the queue but are hidden for the
  length of the queue's visibility timeout.  If your function successfully processes
  all messages in the batch, Lambda deletes the messages from the queue."  Here:
  DeleteMessageBatch of every message not reported failed.
* "When your Lambda function encounters an error while processing a batch, all messages
  in that batch become visible in the queue again by default" and, with
  ReportBatchItemFailures, only the reported ones do; the guide's "Success and failure
  conditions" make an empty list a complete success and an empty, unknown or badly
  named ``itemIdentifier`` a complete failure.  Here: nothing is deleted for those, and
  the messages come back when the queue's visibility timeout runs out (SQS's own doing,
  and with it the receive count that sends a message to the dead-letter queue).

What it does not do: scale its concurrency, back off, or batch by window; a test
calls ``poll_once`` or ``drain`` and waits for the visibility timeout itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Lambda's default (and, for standard queues without a batching window, largest) batch.
BATCH_SIZE = 10


@dataclass
class Invocation:
    """What the function made of one batch: its answer, or that it failed as a whole."""

    message_ids: list[str]
    failed: list[str]
    error: Any = None


@dataclass
class QueuePoller:
    """Reads ``queue_url`` and hands each batch to ``invoke(event) -> (ok, answer)``.

    ``invoke`` returns ``(True, response)`` for a function that answered and
    ``(False, error)`` for one that raised, timed out or failed its init.
    """

    sqs: Any
    queue_url: str
    invoke: Callable[[dict[str, Any]], tuple[bool, Any]]
    batch_size: int = BATCH_SIZE
    region: str = "us-east-1"
    history: list[Invocation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The messages as Lambda's SQS event carries them."""
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"], "attributes": m.get("Attributes", {}),
            "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn, "awsRegion": self.region,
        } for m in messages]}

    def poll_once(self) -> Invocation | None:
        """One batch: received, invoked, its succeeded messages deleted.  None when the
        queue had nothing visible."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return None
        ids = [m["MessageId"] for m in messages]
        ok, answer = self.invoke(self.event(messages))
        failed = self._failed(ids, ok, answer)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                for n, m in enumerate(done[start:start + 10])])
        invocation = Invocation(ids, sorted(failed), None if ok else answer)
        self.history.append(invocation)
        return invocation

    @staticmethod
    def _failed(ids: list[str], ok: bool, answer: Any) -> set[str]:
        if not ok:
            return set(ids)
        if not isinstance(answer, dict) or not answer.get("batchItemFailures"):
            return set()  # an empty or null list, or no response: all succeeded
        reported = set()
        for item in answer["batchItemFailures"]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in ids:
                return set(ids)  # a complete failure, as Lambda reads it
            reported.add(identifier)
        return reported

    def drain(self, timeout: float = 60, idle: float = 0) -> int:
        """Poll until a receive finds nothing visible and, ``idle`` seconds later (a
        visibility timeout, for messages sent back), still nothing; the batches run."""
        deadline = time.monotonic() + timeout
        ran = 0
        while time.monotonic() < deadline:
            if self.poll_once() is not None:
                ran += 1
                continue
            if idle:
                time.sleep(idle)
                if self.poll_once() is not None:
                    ran += 1
                    continue
            return ran
        raise TimeoutError(f"the queue was not drained in {timeout} s")

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages, as SQS counts them."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            ])["Attributes"]
        return (int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]))


def poll_until(poller: QueuePoller, stop: threading.Event, interval: float,
               failed: Callable[[Exception], None]) -> None:
    """Poll as Lambda's pollers keep doing, in a thread of its own, until ``stop``: a
    pause only when the queue had nothing, and an error handed to ``failed`` rather
    than ending the thread, which would silently stop the region's sync."""
    while not stop.is_set():
        try:
            if poller.poll_once() is None:
                stop.wait(interval)
        except Exception as exc:  # noqa: BLE001 - handed to failed
            failed(exc)
            stop.wait(interval)
