"""The backend goes away mid-stream: the invocation fails naming the key (or the SQS
batch names exactly the failed messages); once it is back, redelivery converges.

"Goes away" is real: SQL and Redis are reached through a TCP forwarder that we cut
(the client's connections are reset, new ones refused), DynamoDB and S3 are moto
servers that we stop and start again on the same port.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from pypicloud_s3sync.function import handler

from ..support.pypicloud_app import create_dynamo_tables
from ..support.sync_harness import SyncBucket, cached, deliver
from ..support.tcp_proxy import TcpProxy

BUCKET = "packages"


class MotoServer:
    """A moto server we can stop and start again on the same port (state is kept: the
    in-process backends outlive the HTTP server)."""

    def __init__(self) -> None:
        self.port = 0
        self.server: Any = None

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _through_proxy(url: str) -> tuple[str, TcpProxy]:
    parts = urlsplit(url)
    default_port = {"postgresql": 5432, "mysql+pymysql": 3306, "redis": 6379}[parts.scheme]
    proxy = TcpProxy(parts.hostname, parts.port or default_port).start()
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{proxy.port}")), proxy


@pytest.fixture
def outage(
    request: pytest.FixtureRequest, aws_env: None, cache_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[SyncBucket, dict[str, str], Callable[[], None], Callable[[], None]]]:
    """(bucket, function settings, take_down, bring_back) for the backend under test."""
    backend = request.param
    s3_server = MotoServer().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", s3_server.url)
    stoppable: Any
    if backend == "dynamo":
        dynamo_server = MotoServer().start()
        settings = {"pypi.db": "dynamo", "db.region_name": "us-east-1",
                    "db.host": "127.0.0.1", "db.port": str(dynamo_server.port),
                    "db.secure": "false"}
        create_dynamo_tables(settings)
        stoppable = dynamo_server
    else:
        settings = cache_settings(backend)
        settings["db.url"], stoppable = _through_proxy(settings["db.url"])
    settings.update({"storage.bucket": BUCKET, "storage.region_name": "us-east-1",
                     "storage.endpoint_url": s3_server.url})
    bucket = SyncBucket.create(settings, endpoint_url=s3_server.url)
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(settings))
    handler.reset()
    try:
        yield bucket, settings, stoppable.stop, stoppable.start
    finally:
        handler.reset()
        for server in {stoppable, s3_server}:
            with contextlib.suppress(Exception):  # already stopped
                server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["postgresql", "mysql", "redis", "dynamo"], indirect=True)
def test_backend_goes_away_mid_stream_then_redelivery_converges(outage: Any) -> None:
    bucket, settings, take_down, bring_back = outage
    key1, first = bucket.put_package("one", "1.0")
    key2, second = bucket.put_package("two", "1.0")
    key3, third = bucket.put_package("three", "1.0")
    junk = bucket.put_raw("README.txt", b"not a package")
    deliver(handler, [first], "moto")  # warm: cache and connections in use
    assert set(cached(settings)) == {"one-1.0.tar.gz"}
    deleted = bucket.delete(key1)

    take_down()
    # Direct invocation: fails loudly, naming the key, so Lambda retries it.
    with pytest.raises(handler.SyncError) as info:
        handler.handle_event(second.aws_body(), None)
    assert key2 in str(info.value) and "connect" in str(info.value).lower()
    # SQS batch: exactly the messages whose keys failed are reported; the skipped
    # non-package message is not.
    batch = {"Records": [junk.sqs_record("junk"), second.sqs_record("m2"),
                         third.sqs_record("m3"), deleted.sqs_record("m1")]}
    answer = handler.handle_event(batch, None)
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == [
        "m1", "m2", "m3"]
    # A batch with nothing that could succeed fails as a whole.
    with pytest.raises(handler.SyncError):
        handler.handle_event({"Records": [third.sqs_record("m3")]}, None)

    bring_back()
    redelivered = {"Records": [r for r in batch["Records"]
                               if r["messageId"] in {"m1", "m2", "m3"}]}
    assert handler.handle_event(redelivered, None) == {"batchItemFailures": []}
    assert set(cached(settings)) == {"two-1.0.tar.gz", "three-1.0.tar.gz"}
    assert {e["path"] for e in cached(settings).values()} == {key2, key3}


@pytest.mark.slow
def test_s3_goes_away_fails_loudly_and_writes_nothing(
    aws_env: None, cache_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_server = MotoServer().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", s3_server.url)
    settings = {**cache_settings("sqlite"), "storage.bucket": BUCKET,
                "storage.region_name": "us-east-1", "storage.endpoint_url": s3_server.url}
    bucket = SyncBucket.create(settings, endpoint_url=s3_server.url)
    key, created = bucket.put_package("one", "1.0")
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(settings))
    handler.reset()
    try:
        handler.handle_event({"Service": "Amazon S3", "Event": "s3:TestEvent"}, None)
        s3_server.stop()
        with pytest.raises(handler.SyncError) as info:
            handler.handle_event(created.aws_body(), None)
        assert key in str(info.value) and "Connect" in str(info.value)
        assert cached(settings) == {}
        s3_server.start()
        handler.handle_event(created.aws_body(), None)
        assert set(cached(settings)) == {"one-1.0.tar.gz"}
    finally:
        handler.reset()
        s3_server.stop()


def _kill_connections(admin_url: str, database_url: str) -> int:
    """End every server session on our test database, as a database restart or an idle
    timeout does to a frozen Lambda container's pooled connection."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                rows = conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
                return len(rows.fetchall())
            ids = [row[0] for row in conn.execute(text(
                "SELECT id FROM information_schema.processlist WHERE db = :name "
                "AND id <> CONNECTION_ID()"), {"name": name})]
            for session_id in ids:
                conn.execute(text(f"KILL {int(session_id)}"))
            return len(ids)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_pooled_connection_the_server_ended_is_replaced_without_failing_the_event(
    aws: None, backend: str, cache_settings: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    from ..support import services

    settings = {**cache_settings(backend), "storage.bucket": BUCKET,
                "storage.region_name": "us-east-1"}
    bucket = SyncBucket.create(settings)
    _, first = bucket.put_package("one", "1.0")
    # The second try is the whole sync again: the other spelling of an EventBridge key
    # and the verification of a slow write ("0": every write) included.
    key, _ = bucket.put_package("two", "1.0+local", expect_event=False)
    eventbridge = {"source": "aws.s3", "detail-type": "Object Created", "detail": {
        "bucket": {"name": BUCKET}, "object": {"key": key}}}
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps({**settings,
                                                         "s3sync.verify_after": "0"}))
    handler.reset()
    try:
        handler.handle_event(first.aws_body(), None)  # warm: a connection in the pool
        admin = services.POSTGRES_ADMIN if backend == "postgresql" else services.MYSQL_ADMIN
        assert _kill_connections(admin, settings["db.url"]) >= 1
        capsys.readouterr()
        assert handler.handle_event(eventbridge, None) is None  # no SyncError
        assert cached(settings)["two-1.0+local.tar.gz"]["path"] == key
        [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()
                  if x.startswith("{") and '"Object Created"' in x]
        assert line["action"] == "saved"
        assert line["reason"].endswith(
            f"(verified after a slow write) (found as {key!r})"), line
    finally:
        handler.reset()
