"""A burst of events against a PostgreSQL cache that allows only a few connections.

The server's limit is real: the function connects as a role with ``CONNECTION LIMIT``.
Each worker process is one function container (its own warm handler and pooled
connection); they share one queue of events, as Lambda's containers share a burst.
With as many workers as ``--reserved-concurrency`` would allow (the cap, modelled), no
invocation fails and the cache ends equal to the bucket.  The uncapped run, with more
workers than the limit, shows what the cap prevents.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from ..support.sync_harness import SyncBucket, cached

BUCKET = "packages"
LIMIT = 3
PACKAGES = 24


def _container(settings: dict[str, str], events: Any, results: Any, done: Any) -> None:
    """One container: bootstrap on first use (again after a failed one), as Lambda does."""
    import io
    import sys

    os.environ["PYPICLOUD_SETTINGS"] = json.dumps(settings)
    sys.stdout = io.StringIO()
    from pypicloud_s3sync.function import handler

    handler.reset()
    failures = []
    while (event := events.get()) is not None:
        try:
            handler.handle_event(event, None)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            failures.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
    results.put(failures)
    done.wait()  # hold the connection until every container is done
    handler.reset()


def _burst(settings: dict[str, str], events: list[dict[str, Any]], workers: int) -> list[str]:
    context = multiprocessing.get_context("fork")
    queue, results, done = context.Queue(), context.Queue(), context.Event()
    procs = [context.Process(target=_container, args=(settings, queue, results, done),
                             daemon=True) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for event in events:
        queue.put(event)
    for _ in procs:
        queue.put(None)
    failures = [f for _ in procs for f in results.get(timeout=120)]
    done.set()
    for proc in procs:
        proc.join(timeout=30)
    return failures


@pytest.fixture
def limited(aws_env: None, moto_server: str, cache_settings: Any, postgres_db: Any,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SyncBucket, dict[str, str]]]:
    """The bucket, and function settings that connect as a role limited to LIMIT."""
    from sqlalchemy import create_engine, text

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    admin = {**cache_settings("postgresql"), "storage.bucket": BUCKET,
             "storage.region_name": "us-east-1", "storage.endpoint_url": moto_server}
    bucket = SyncBucket.create(admin, endpoint_url=moto_server)
    cached(admin)  # the server's first start creates pypicloud's tables
    role = f"s3sync_limited_{uuid.uuid4().hex[:8]}"
    engine = create_engine(postgres_db.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {LIMIT}"))
        conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
                          f"public TO {role}"))
    parts = urlsplit(postgres_db.url)
    url = parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}").geturl()
    try:
        yield bucket, {**admin, "db.url": url}
    finally:
        with engine.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        engine.dispose()


@pytest.mark.slow
def test_a_capped_burst_stays_within_the_connection_limit(limited: Any) -> None:
    bucket, settings = limited
    events = [bucket.put_package(f"burst{i}", "1.0")[1].event("aws") for i in range(PACKAGES)]

    assert _burst(settings, events, workers=LIMIT) == []
    assert set(cached(settings)) == {f"burst{i}-1.0.tar.gz" for i in range(PACKAGES)}

    # Uncapped, the containers past the limit cannot even open the cache.
    failures = _burst(settings, events, workers=2 * LIMIT)
    assert failures and all("too many connections" in f for f in failures), failures
