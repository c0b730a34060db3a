"""Outcome counts and replication lag of each invocation, as CloudWatch metrics.

Written in CloudWatch's embedded metric format (EMF): one JSON object on the log stream,
which CloudWatch Logs turns into metrics on its own.  That costs no AWS call per event
(``PutMetricData`` would be one, and a permission), and no library: the format is a
documented JSON shape, and Powertools' Metrics would add its import to every cold start
for the same few lines.

Namespace ``pypicloud-s3sync``, one dimension ``FunctionName`` (Lambda's
``AWS_LAMBDA_FUNCTION_NAME``; ``local`` outside Lambda).  Metrics: ``Saved``,
``Cleared``, ``Skipped`` and ``Failed`` (records, unit Count) and ``LagSeconds`` (per
record written: from the S3 event's ``eventTime`` to the cache write, unit Seconds).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime

NAMESPACE = "pypicloud-s3sync"
DIMENSION = "FunctionName"
#: Log actions counted, and the metric each one is counted in.
COUNTS = {"saved": "Saved", "cleared": "Cleared", "skipped": "Skipped", "failed": "Failed"}
LAG = "LagSeconds"
#: EMF takes at most 100 values per metric in one document.
MAX_VALUES = 100


def event_age(event_time: str | None, now: float) -> float | None:
    """Seconds from an event's ISO 8601 time (S3's ``eventTime``, EventBridge's
    ``time``) to ``now``; None when the event carried no readable time.  Never negative:
    a clock a little behind S3's is not a lag."""
    if not event_time:
        return None
    try:
        sent = datetime.fromisoformat(event_time).timestamp()
    except ValueError:
        return None
    return max(0.0, now - sent)


class InvocationMetrics:
    """What one invocation did to its records; written once, at its end."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(COUNTS.values(), 0)
        self.lags: list[float] = []

    def add(self, action: str, event_time: str | None = None) -> None:
        """Count one record's outcome; a record written to the cache adds its lag."""
        name = COUNTS.get(action)
        if name is None:
            return
        self.counts[name] += 1
        if action in ("saved", "cleared"):
            lag = event_age(event_time, time.time())
            if lag is not None:
                self.lags.append(round(lag, 3))

    def documents(self, function_name: str, now_ms: int) -> list[dict]:
        """The EMF documents: counts and the first lags, then the rest of the lags."""
        if not any(self.counts.values()):
            return []
        chunks = [self.lags[i:i + MAX_VALUES] for i in range(0, len(self.lags), MAX_VALUES)]
        docs = [self._document(function_name, now_ms, self.counts,
                               chunks[0] if chunks else None)]
        docs += [self._document(function_name, now_ms, {}, chunk) for chunk in chunks[1:]]
        return docs

    @staticmethod
    def _document(function_name: str, now_ms: int, counts: dict[str, int],
                  lags: list[float] | None) -> dict:
        metrics = [{"Name": name, "Unit": "Count"} for name in counts]
        values: dict[str, object] = dict(counts)
        if lags:
            metrics.append({"Name": LAG, "Unit": "Seconds"})
            values[LAG] = lags
        return {"_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [[DIMENSION]], "Metrics": metrics}]},
            DIMENSION: function_name, **values}

    def emit(self, write: Callable[[str], object] | None = None) -> None:
        """Write the documents to the log, one line each.

        Straight to standard output, not through the logger: the operator's log level
        must not switch metrics off.
        """
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        docs = self.documents(name, int(time.time() * 1000))
        if not docs:
            return
        out = write or sys.stdout.write
        out("".join(json.dumps(doc, separators=(",", ":")) + "\n" for doc in docs))
        if write is None:
            sys.stdout.flush()


__all__ = ["COUNTS", "DIMENSION", "LAG", "NAMESPACE", "InvocationMetrics", "event_age"]
