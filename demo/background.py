"""What AWS would be doing while the demo (and ``ppc-s3sync verify``) waits: S3's
replication between the buckets and Lambda's polling of each region's queue.

moto does neither, so each runs here in a thread of its own from :meth:`Background.start`
to :meth:`Background.stop`:

* the replicator (``demo/replicator.py``) copies new versions and delete markers by
  each source bucket's replication configuration, the one ``ppc-s3sync create`` wrote:
  the rules create made are what moves the objects, so a missing rule or one without
  delete markers would show here as it would on AWS;
* per region, the tests' stand-in for Lambda's SQS poller (``tests/support/sqs_poller.py``)
  reads the queue named by the function's event source mapping (create's
  ``--delivery sqs``) and hands each batch to the deployed bundle, run by
  :class:`~pypicloud_s3sync.bundle.localrun.LocalFunction` in an isolated interpreter.

Threads rather than steps the demo drives: verify uploads, waits and deletes on its own
schedule, so everything it waits for must happen without the demo's help, as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from demo.replicator import Replicator
from tests.support.sqs_poller import QueuePoller, poll_until


@dataclass
class RegionPoller:
    """One region's queue read as Lambda reads it, each batch run by ``function``;
    what the function did (its ``action`` log lines) is kept in ``actions``."""

    region: str
    function_name: str
    function: Any
    endpoint: str
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        lam = boto3.client("lambda", endpoint_url=self.endpoint, region_name=self.region)
        [mapping] = lam.list_event_source_mappings(
            FunctionName=self.function_name)["EventSourceMappings"]
        sqs = boto3.client("sqs", endpoint_url=self.endpoint, region_name=self.region)
        url = sqs.get_queue_url(QueueName=mapping["EventSourceArn"].rsplit(":", 1)[-1])
        self.poller = QueuePoller(sqs, url["QueueUrl"], self._invoke,
                                  batch_size=mapping["BatchSize"], region=self.region)

    def _invoke(self, event: dict[str, Any]) -> tuple[bool, Any]:
        answer = self.function.invoke(event)
        for line in self.function.logs:
            with contextlib.suppress(ValueError, TypeError):
                entry = json.loads(line)
                if "action" in entry:
                    detail = entry.get("key") or entry.get("reason") or ""
                    self.actions.append(f"{entry['action']} {detail}".strip())
        self.function.logs.clear()
        if "error" in answer:
            self.errors.append(f"the function failed in {self.region}: {answer['error']}")
            return False, answer["error"]
        return True, answer["result"]

    def idle(self) -> bool:
        """Nothing visible or in flight in the queue."""
        return self.poller.counts() == (0, 0)


class Background:
    """The replicator and every region's poller, each in its own thread."""

    def __init__(self, buckets: Mapping[str, Any], pollers: list[RegionPoller],
                 interval: float = 0.1) -> None:
        self.replicator = Replicator(buckets, interval)
        self.pollers = pollers
        self.interval = interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def _failed(self, region: RegionPoller) -> Callable[[Exception], None]:
        def report(exc: Exception) -> None:
            self.errors.append(f"polling {region.region}: {type(exc).__name__}: {exc}")
        return report

    def start(self) -> Background:
        self.replicator.start()
        for region in self.pollers:
            thread = threading.Thread(
                target=poll_until, name=f"poller-{region.region}", daemon=True,
                args=(region.poller, self._stop, self.interval, self._failed(region)))
            thread.start()
            self._threads.append(thread)
        return self

    def check(self) -> None:
        """Raise what went wrong in any thread, so that the demo stops at once."""
        problems = ([f"replicator: {exc!r}" for exc in self.replicator.errors] + self.errors
                    + [e for region in self.pollers for e in region.errors])
        if problems:
            raise RuntimeError("; ".join(problems))

    def stop(self) -> None:
        self._stop.set()
        self.replicator.stop()
        for thread in self._threads:
            thread.join(10)
        self._threads.clear()
