"""Events per second of the handler through the queue (batches of 10) against direct
delivery (one record per invocation), side by side, on every cache backend.

``--delivery sqs`` hands the function up to 10 messages per invocation (the event source
mapping's default batch size); S3's direct notification hands it one record.  Both
contenders are the same warm ``pypicloud_s3sync.handler.handle_event`` on the same
workload: N/2 packages, each created and then deleted, in rounds of 10 packages (10
creates, then 10 deletes), the contenders taking turns round by round so that load
from other processes falls on both alike.  Only the invocations are timed: SQS's own
receive and delete are Lambda's pollers' work, not the function's (and moto's speed
says nothing about SQS's).

S3 and DynamoDB are moto in process; PostgreSQL, MariaDB and Redis are the real local
servers, in databases of our own.

Run: ``.venv/bin/python benchmarks/queue_delivery.py [-n 400] [--backends sqlite redis]``
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.handler_throughput import (  # noqa: E402 - after the path
    BACKENDS,
    BUCKET,
    DEVNULL,
    REGION,
    TEST_EVENT,
    cache_settings,
    close,
    fresh_cache,
    is_cached,
    key_for,
    s3_event,
)

#: Messages per invocation through the queue: the event source mapping's default.
BATCH = 10
CONTENDERS = ("direct", "queue")


def sqs_batch(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The events as Lambda's SQS event carries them: each S3 event a message body."""
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": uuid.uuid4().hex,
        "body": json.dumps(event), "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:pypicloud-s3sync-bench",
        "awsRegion": REGION,
    } for event in events]}


def deliver(handler: Any, label: str, events: list[dict[str, Any]]) -> float:
    """Seconds the function spent on these events, delivered the ``label`` way."""
    with contextlib.redirect_stdout(DEVNULL):
        if label == "direct":
            started = time.perf_counter()
            for event in events:
                handler.handle_event(event, None)
            return time.perf_counter() - started
        batch = sqs_batch(events)
        started = time.perf_counter()
        answer = handler.handle_event(batch, None)
        seconds = time.perf_counter() - started
    if answer != {"batchItemFailures": []}:
        raise RuntimeError(f"the queue path failed messages: {answer}")
    return seconds


def bench_backend(backend: str, n: int) -> dict[str, float]:
    import boto3
    from moto import mock_aws

    from pypicloud_s3sync import compat
    from pypicloud_s3sync.function import handler

    compat.apply()
    rounds = max(n // 2 // BATCH, 1)
    elapsed = dict.fromkeys(CONTENDERS, 0.0)
    with cache_settings(backend) as settings, mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        close(fresh_cache(settings))  # tables exist before anyone is timed
        os.environ[handler.SETTINGS_VAR] = json.dumps({
            **settings, "storage.bucket": BUCKET, "storage.region_name": REGION})
        handler.reset()
        with contextlib.redirect_stdout(DEVNULL):
            handler.handle_event(TEST_EVENT, None)  # warm container: bootstrap done
        try:
            for round_no in range(rounds):
                for label in CONTENDERS:
                    names = [f"{label}{round_no * BATCH + i}" for i in range(BATCH)]
                    keys = [key_for(name, f"{name}-1.0.tar.gz") for name in names]
                    for name, key in zip(names, keys, strict=True):
                        s3.put_object(Bucket=BUCKET, Key=key, Body=b"0123456789", Metadata={
                            "name": name, "version": "1.0", "summary": "bench"})
                    elapsed[label] += deliver(handler, label, [
                        s3_event("ObjectCreated:Put", key) for key in keys])
                    if round_no == 0:
                        assert is_cached(settings, f"{names[0]}-1.0.tar.gz"), label
                    for key in keys:
                        s3.delete_object(Bucket=BUCKET, Key=key)
                    elapsed[label] += deliver(handler, label, [
                        s3_event("ObjectRemoved:Delete", key) for key in keys])
                    if round_no == 0:
                        assert not is_cached(settings, f"{names[0]}-1.0.tar.gz"), label
        finally:
            handler.reset()
    return {label: 2 * BATCH * rounds / seconds for label, seconds in elapsed.items()}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.options import benchmark_parser

    parser = benchmark_parser(
        __doc__, n=400, backends=BACKENDS,
        n_help="events per contender and backend (N/2 packages, each created and deleted)")
    args = parser.parse_args(argv)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION=REGION)
    print(f"{args.n} events per contender: direct (1 per invocation) and queue "
          f"({BATCH} per invocation); events/s, higher is better")
    print(f"{'backend':<11} {'direct':>8} {'queue':>8}   {'queue/direct':>12}")
    # Each backend in a process of its own, as each function runs in its own container.
    spawn = multiprocessing.get_context("spawn")
    for backend in args.backends:
        with spawn.Pool(1) as pool:
            res = pool.apply(bench_backend, (backend, args.n))
        print(f"{backend:<11} {res['direct']:8.1f} {res['queue']:8.1f}   "
              f"{res['queue'] / res['direct']:11.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
