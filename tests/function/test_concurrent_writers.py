"""Eight function containers on one SQL cache, all writing the same four keys at once.

Each worker is a separate process with its own warm handler (its own connection pool),
as Lambda's concurrent containers are.  In every round the test changes each hot key in
a moto bucket (a new upload or a delete) and then releases all eight workers at the
same moment: two of them apply each key's event, and some also get an older event of
the same key again, so every change is delivered once or twice and out of order.
Simultaneous writers of one filename are exactly what made pypicloud's SELECT-then-INSERT
merge fail with a duplicate key, and concurrent deletes warn about vanished rows.

What an operator would check: no invocation failed, nothing warned, and afterwards the
cache holds what the bucket holds.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import sys
import warnings
from typing import Any

import pytest

from ..support.sync_harness import Delivery, SyncBucket, cached

BUCKET = "packages"
WORKERS = 8
HOT_KEYS = 4
ROUNDS = 8


def _worker(settings: dict[str, str], tasks: Any, results: Any, barrier: Any) -> None:
    """One container: bootstrap once, then one invocation per event it is handed."""
    os.environ["PYPICLOUD_SETTINGS"] = json.dumps(settings)
    from pypicloud_s3sync.function import handler

    captured = io.StringIO()
    sys.stdout = captured  # the handler's log lines
    seen: list[str] = []
    warnings.simplefilter("always")
    warnings.showwarning = lambda message, category, *_a, **_k: seen.append(
        f"{category.__name__}: {message}")
    handler.reset()
    handler.runtime()
    while True:
        events = tasks.get()
        if events is None:
            break
        failures = []
        barrier.wait()
        for event in events:
            try:
                handler.handle_event(event, None)
            except Exception as exc:  # noqa: BLE001 - reported to the test
                failures.append(f"{type(exc).__name__}: {exc}")
        results.put((failures, captured.getvalue().splitlines(), list(seen)))
        captured.seek(0)
        captured.truncate()
        seen.clear()
    handler.reset()


@pytest.fixture
def hot_bucket(request: pytest.FixtureRequest, aws_env: None, moto_server: str,
               cache_settings: Any, monkeypatch: pytest.MonkeyPatch
               ) -> tuple[SyncBucket, dict[str, str]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    settings = {**cache_settings(request.param), "storage.bucket": BUCKET,
                "storage.region_name": "us-east-1", "storage.endpoint_url": moto_server}
    bucket = SyncBucket.create(settings, endpoint_url=moto_server)
    cached(settings)  # the server's first start creates pypicloud's tables
    return bucket, settings


@pytest.mark.slow
@pytest.mark.parametrize("hot_bucket", ["postgresql", "mysql"], indirect=True)
def test_concurrent_containers_never_fail_on_each_other(
    hot_bucket: tuple[SyncBucket, dict[str, str]]
) -> None:
    bucket, settings = hot_bucket
    rng = random.Random(17)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    queues = [context.Queue() for _ in range(WORKERS)]
    workers = [context.Process(target=_worker, args=(settings, queues[i], results, barrier),
                               daemon=True) for i in range(WORKERS)]
    for worker in workers:
        worker.start()
    history: dict[int, list[Delivery]] = {k: [] for k in range(HOT_KEYS)}
    present: dict[int, str] = {}
    failures: list[str] = []
    lines: list[dict[str, Any]] = []
    seen: list[str] = []
    try:
        for round_no in range(ROUNDS):
            for k in range(HOT_KEYS):
                if k in present and rng.random() < 0.5:
                    delivery = bucket.delete(present.pop(k))
                else:
                    present[k], delivery = bucket.put_package(
                        f"hot{k}", "1.0", summary=f"round {round_no}")
                history[k].append(delivery)
            for i, queue in enumerate(queues):
                k = i % HOT_KEYS
                events = [history[k][-1]]
                if rng.random() < 0.5:  # an older change of the same key, again
                    events.insert(rng.randrange(2), rng.choice(history[k]))
                queue.put([d.event("aws") for d in events])
            for _ in range(WORKERS):
                round_failures, round_lines, round_seen = results.get(timeout=60)
                failures += round_failures
                lines += [json.loads(line) for line in round_lines if line.startswith("{")]
                seen += round_seen
    finally:
        for queue in queues:
            queue.put(None)
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()

    assert failures == []
    assert [line for line in lines if line.get("action") == "failed"] == []
    assert seen == []
    listed = bucket.keys()
    in_bucket = {key.rsplit("/", 1)[1]: key for key in listed}
    now = cached(settings)
    assert set(now) == set(in_bucket)
    for filename, key in in_bucket.items():
        head = bucket.s3.head_object(Bucket=BUCKET, Key=key)
        assert now[filename]["summary"] == head["Metadata"]["summary"], filename
        assert now[filename]["path"] == key
