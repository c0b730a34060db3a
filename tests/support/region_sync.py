"""Every region's sync running, in-process, while a test drives the regions: the
replicator standing in for S3's replication, and each region's queue read by Lambda's
poller in small (sqs_poller) handing batches to our handler, built from the environment
the deployed function has now (moto runs no function: no Docker here)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from pypicloud_s3sync.provision.names import queue_name

from .replicator import Replicator
from .sqs_poller import QueuePoller, poll_until
from .topology import Region, function_environment

FUNCTION = "pypicloud_s3_sync"


@dataclass
class RegionFunction:
    """The region's function, as Lambda would run it: a warm container reused while the
    function's environment stays the same, a new one when it changes (or failed)."""

    region: Region
    runtime: Any = None
    environment: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> tuple[bool, Any]:
        from pypicloud_s3sync.function.handler import Runtime

        env = function_environment(self.region, FUNCTION)
        try:
            if self.runtime is None or env != self.environment:
                self.close()
                self.environment = env
                process = {**os.environ, **env, "AWS_REGION": self.region.name}
                self.runtime = Runtime.from_settings(json.loads(env["PYPICLOUD_SETTINGS"]),
                                                     process)
            return True, self.runtime.handle(event)
        except Exception as exc:  # noqa: BLE001 - a failed invocation, as Lambda reports it
            self.failures.append(f"{type(exc).__name__}: {exc}")
            self.close()
            return False, str(exc)

    def warm(self) -> None:
        """Start the container before the first event, as a warm Lambda has it."""
        self.invoke({"Records": []})

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None


class RegionSync:
    """Replication and every region's sync in background threads, between
    :meth:`start` and :meth:`stop` (a context manager)."""

    def __init__(self, regions: Sequence[Region], interval: float = 0.05) -> None:
        self.regions = list(regions)
        self.interval = interval
        self.replicator = Replicator({r.bucket: r.s3() for r in self.regions}, interval)
        self.functions = [RegionFunction(region) for region in self.regions]
        self.pollers = []
        for region, function in zip(self.regions, self.functions, strict=True):
            sqs = boto3.client("sqs", region_name=region.name)
            url = sqs.get_queue_url(QueueName=queue_name(FUNCTION))["QueueUrl"]
            self.pollers.append(QueuePoller(sqs, url, function.invoke, region=region.name))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self) -> RegionSync:
        for poller in self.pollers:  # what was queued before (create's test event) goes
            poller.drain(timeout=30)
        for function in self.functions:
            function.warm()
        self.replicator.start()
        for poller in self.pollers:
            thread = threading.Thread(target=poll_until, args=(
                poller, self._stop, self.interval, self.errors.append), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.replicator.stop()
        for thread in self._threads:
            thread.join(10)
        for function in self.functions:
            function.close()
        assert self.replicator.errors == [] and self.errors == [], (self.replicator.errors,
                                                                   self.errors)

    def __enter__(self) -> RegionSync:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
