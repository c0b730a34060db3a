"""The handler as a Lambda function sees it: bootstrap from PYPICLOUD_SETTINGS, warm reuse,
one HEAD per key, cache-only settings, EventBridge keys, concurrent writers."""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pypicloud_s3sync.function import handler
from pypicloud_s3sync.function.sync import sync_key

from ..support.sync_harness import SyncBucket, cached, deliver

BUCKET = "packages"


@pytest.fixture
def use_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def use(settings: dict[str, Any] | str | None) -> None:
        handler.reset()
        if settings is None:
            monkeypatch.delenv(handler.SETTINGS_VAR, raising=False)
        else:
            value = settings if isinstance(settings, str) else json.dumps(settings)
            monkeypatch.setenv(handler.SETTINGS_VAR, value)

    yield use
    handler.reset()


@pytest.fixture
def sqlite_settings(cache_settings: Any) -> dict[str, str]:
    return {**cache_settings("sqlite"), "storage.bucket": BUCKET,
            "storage.region_name": "us-east-1"}


@pytest.mark.parametrize("value, message", [
    (None, "PYPICLOUD_SETTINGS is not set"),
    ("", "PYPICLOUD_SETTINGS is not set"),
    ("{pypi.db: sql", "PYPICLOUD_SETTINGS is not valid JSON"),
    ('["pypi.db"]', "PYPICLOUD_SETTINGS must be a JSON object"),
    ({"pypi.db": "sql", "db.url": {"nested": 1}}, "db.url must be a string"),
    ({"pypi.db": "sql"}, "needs db.url"),
    ({"pypi.db": "nosuchcache", "db.url": "x"}, "pypi.db = nosuchcache"),
    ({"pypi.db": "redis", "db.url": "redis://127.0.0.1:1/0", "pypi.storage": "file"},
     "pypi.storage = file"),
    ({"pypi.db": "redis", "db.url": "redis://127.0.0.1:1/0", "s3sync.verify_after": "soon"},
     "s3sync.verify_after"),
])
def test_bad_settings_fail_with_the_variable_named(
    aws: None, use_settings: Any, value: Any, message: str
) -> None:
    use_settings(value)
    with pytest.raises(handler.HandlerConfigError) as info:
        handler.handle_event({"Records": []}, None)
    assert message in str(info.value)
    assert "PYPICLOUD_SETTINGS" in str(info.value)


def test_garbage_is_collected_again_after_a_bootstrap_failed_or_not(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """The bootstrap pauses the cyclic collector; a container must never be left without."""
    use_settings({"pypi.db": "sql"})
    with pytest.raises(handler.HandlerConfigError):
        handler.handle_event({"Records": []}, None)
    assert gc.isenabled()
    use_settings(sqlite_settings)
    handler.handle_event({"Records": []}, None)
    assert gc.isenabled()
    # What the bootstrap built lives as long as the container: out of the collector's way.
    assert gc.get_freeze_count() > 0


def test_seed_contract_only_cache_settings(
    aws: None, use_settings: Any, cache_settings: Any
) -> None:
    """The original function's settings (pypi.db + db.*): each record's own bucket is
    read, and there is no prefix filter."""
    settings = cache_settings("sqlite")
    assert set(settings) == {"pypi.db", "db.url"}
    one = SyncBucket.create({"storage.bucket": "region-one"})
    two = SyncBucket.create({"storage.bucket": "region-two", "storage.prefix": "deep/er/"})
    _, first = one.put_package("alpha", "1.0")
    _, second = two.put_package("beta", "2.0")
    use_settings(settings)
    deliver(handler, [first, second], "aws")
    assert set(cached(settings)) == {"alpha-1.0.tar.gz", "beta-2.0.tar.gz"}
    assert handler.runtime().bucket is None and handler.runtime().prefix == ""


def test_bootstrap_never_creates_or_heads_the_bucket(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    import botocore.handlers

    s3 = boto3.client("s3", region_name="us-east-1")
    use_settings({**sqlite_settings, "storage.bucket": "not-created-yet"})
    calls: list[str] = []
    # Hooked into every botocore session made from now on, so the client the bootstrap
    # builds reports its calls from its very first one.
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [
        *botocore.handlers.BUILTIN_HANDLERS,
        ("before-call.s3", lambda model, **_: calls.append(model.name))])
    handler.handle_event({"Service": "Amazon S3", "Event": "s3:TestEvent"}, None)
    assert handler.runtime().s3 is not None
    assert calls == []
    assert "not-created-yet" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_warm_invocations_reuse_cache_and_client_and_head_once_per_key(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = SyncBucket.create(sqlite_settings)
    key, created = bucket.put_package("alpha", "1.0")
    _, other = bucket.put_package("beta", "1.0")
    # Verification would add a HEAD after a slow write (a busy test machine's fsync);
    # this test counts the plain path.
    use_settings({**sqlite_settings, "s3sync.verify_after": "off"})
    handler.handle_event({"Service": "Amazon S3", "Event": "s3:TestEvent"}, None)
    runtime = handler.runtime()
    heads: list[str] = []
    runtime.s3.meta.events.register(
        "before-parameter-build.s3.HeadObject", lambda params, **_: heads.append(params["Key"]))
    batch = {"Records": [created.sqs_record("a"), created.sqs_record("b"),
                         other.sqs_record("c"), created.sqs_record("d")]}
    assert handler.handle_event(batch, None) == {"batchItemFailures": []}
    assert handler.runtime() is runtime and handler.runtime().cache is runtime.cache
    assert sorted(heads) == sorted([key, other.key])
    assert set(cached(sqlite_settings)) == {"alpha-1.0.tar.gz", "beta-1.0.tar.gz"}
    # Every record gets its line; the ones after the first of a key say they were not
    # read again.
    lines = {x["message_id"]: x["reason"] for x in map(json.loads, capsys.readouterr().out
                                                         .splitlines()) if "message_id" in x}
    first = "object present; cached alpha 1.0"
    assert lines == {"a": first, "c": "object present; cached beta 1.0",
                     "b": f"{first} (same key as an earlier record; read once)",
                     "d": f"{first} (same key as an earlier record; read once)"}


def test_unreadable_sqs_messages_are_reported_failed_and_the_rest_applied(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A message that is no event stays on the queue (its redrive policy then keeps it
    in the dead-letter queue); a readable event with nothing to apply is acknowledged."""
    bucket = SyncBucket.create(sqlite_settings)
    _, created = bucket.put_package("alpha", "1.0")
    use_settings(sqlite_settings)
    tagging = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectTagging:Put",
                            "s3": {"bucket": {"name": BUCKET},
                                   "object": {"key": "x/alpha-1.0.tar.gz"}}}]}
    sns_garbage = {"Type": "Notification", "Message": "{truncated"}
    batch = {"Records": [
        {"eventSource": "aws:sqs", "messageId": "garbage", "body": "{not json"},
        created.sqs_record("good"),
        {"eventSource": "aws:sqs", "messageId": "sns", "body": json.dumps(sns_garbage)},
        {"eventSource": "aws:sqs", "messageId": "tagging", "body": json.dumps(tagging)},
        {"eventSource": "aws:sqs", "messageId": "hello", "body": '{"hello": "world"}'},
    ]}
    answer = handler.handle_event(batch, None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "garbage"},
                                            {"itemIdentifier": "sns"},
                                            {"itemIdentifier": "hello"}]}
    assert set(cached(sqlite_settings)) == {"alpha-1.0.tar.gz"}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    failed = {line["message_id"]: line["reason"] for line in lines
              if line.get("action") == "failed"}
    assert set(failed) == {"garbage", "sns", "hello"}
    assert "not JSON" in failed["garbage"] and "redrive policy" in failed["garbage"]
    # Only unreadable messages: every one is reported, nothing raises.
    only_garbage = {"Records": batch["Records"][:1]}
    assert handler.handle_event(only_garbage, None) == {
        "batchItemFailures": [{"itemIdentifier": "garbage"}]}


def test_eventbridge_key_with_plus_is_found(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """moto's EventBridge events carry the key unencoded; decoding would turn the local
    version's "+" into a space, so the raw spelling is tried and found."""
    import boto3

    bucket = SyncBucket.create(sqlite_settings)
    events = boto3.client("events", region_name="us-east-1")
    queue_url = bucket.sqs.create_queue(QueueName="eventbridge")["QueueUrl"]
    arn = bucket.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="s3", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="s3", Targets=[{"Id": "q", "Arn": arn}])
    bucket.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}})
    key, _ = bucket.put_package("gamma", "1.0+local", expect_event=False)
    use_settings(sqlite_settings)
    messages = bucket.sqs.receive_message(QueueUrl=queue_url,
                                          MaxNumberOfMessages=10)["Messages"]
    for message in messages:  # as EventBridge -> Lambda would invoke, one event each
        handler.handle_event(json.loads(message["Body"]), None)
    assert cached(sqlite_settings)["gamma-1.0+local.tar.gz"]["path"] == key


def test_each_outcome_says_what_it_did_to_the_cache(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """The action and reason of each case, as the log line shows them to an operator."""
    bucket = SyncBucket.create(sqlite_settings)
    key, _ = bucket.put_package("omega", "1.0")
    use_settings(sqlite_settings)
    runtime = handler.runtime()

    def outcome(key: str, *alt_keys: str) -> tuple[str, str, str, int]:
        # Every write counts as slow, so each is read again; a skip wrote nothing.
        done = sync_key(runtime.cache, runtime.s3, BUCKET, key, alt_keys=alt_keys,
                        verify_after=0)
        return done.action, done.reason, done.key, done.heads

    elsewhere = "elsewhere/omega-1.0.tar.gz"
    verified = " (verified after a slow write)"
    assert outcome(elsewhere, key) == (
        "saved", f"object present; cached omega 1.0{verified}", key, 3)
    assert outcome(elsewhere) == (
        "skipped", "object absent; the cached entry of that filename is another key's",
        elsewhere, 1)
    bucket.delete(key)
    assert outcome(key) == ("cleared", f"object absent; cache entry removed{verified}", key, 2)
    assert outcome(key) == ("skipped", "object absent; nothing cached", key, 1)
    bucket.put_raw("pkgs/README.tar.gz")
    assert outcome("pkgs/README.tar.gz") == (
        "skipped", "object is not a package pypicloud would list (no name/version metadata, "
        "unparsable filename); nothing cached", "pkgs/README.tar.gz", 1)
    assert cached(sqlite_settings) == {}


def test_the_cached_entry_is_dated_when_s3_stored_the_object(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """pypicloud shows each file's upload time and calls the newest the latest: the
    entry takes the object's Last-Modified, not the moment the function ran."""
    from ..support.pypicloud_app import build_cache
    from ..support.sync_harness import close_cache

    bucket = SyncBucket.create(sqlite_settings)
    key, _ = bucket.put_package("omega", "1.0")
    stored = bucket.s3.head_object(Bucket=BUCKET, Key=key)["LastModified"]
    use_settings(sqlite_settings)
    runtime = handler.runtime()
    assert sync_key(runtime.cache, runtime.s3, BUCKET, key).action == "saved"
    cache = build_cache({**sqlite_settings, "pypi.storage": "file", "storage.dir": "/tmp"})
    try:
        assert cache.fetch("omega-1.0.tar.gz").last_modified == stored
    finally:
        close_cache(cache)


@pytest.mark.parametrize(("failures", "error"), [
    (["IntegrityError"] * 2, None),
    (["IntegrityError"] * 3, "IntegrityError"),
    (["OperationalError"], "OperationalError"),
], ids=["lost-twice-then-saved", "lost-every-time", "not-a-conflict"])
def test_a_write_that_loses_a_race_is_applied_again_and_nothing_else_is(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str], failures: list[str],
    error: str | None,
) -> None:
    """The database answers our write with what it says when another container wrote
    the row first (a unique-key violation) or with another error: only the former is
    applied again from a new HEAD, at most MAX_ATTEMPTS times in all, and then the
    database's own error fails the event."""
    import sqlite3

    from sqlalchemy import event, exc

    bucket = SyncBucket.create(sqlite_settings)
    key, _ = bucket.put_package("tau", "1.0")
    use_settings(sqlite_settings)
    runtime = handler.runtime()
    answers = list(failures)
    heads: list[str] = []
    runtime.s3.meta.events.register("before-call.s3.HeadObject",
                                    lambda **_: heads.append(key))

    said = {"IntegrityError": "UNIQUE constraint failed: packages.filename",
            "OperationalError": "disk I/O error"}

    def database_answers(conn: Any, cursor: Any, statement: str, params: Any,
                         *_: Any) -> None:
        if statement.startswith(("INSERT", "UPDATE")) and answers:
            name = answers.pop(0)  # as SQLAlchemy raises the driver's error
            raise getattr(exc, name)(statement, params, getattr(sqlite3, name)(said[name]))

    engine = runtime.cache.dbmaker.kw["bind"]
    event.listen(engine, "before_cursor_execute", database_answers)
    try:
        if error is None:
            done = sync_key(runtime.cache, runtime.s3, BUCKET, key, verify_after=None)
            assert done.reason == ("object present; cached tau 1.0 (applied again after 2 "
                                   "concurrent write(s) of the same row)")
            assert "tau-1.0.tar.gz" in cached(sqlite_settings)
        else:
            with pytest.raises(getattr(exc, error)):
                sync_key(runtime.cache, runtime.s3, BUCKET, key, verify_after=None)
            assert cached(sqlite_settings) == {}
    finally:
        event.remove(engine, "before_cursor_execute", database_answers)
    assert len(heads) == len(failures) + (error is None)


def test_a_delete_of_a_key_spelled_two_ways_clears_the_entry_of_either(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """An EventBridge key whose "+" may be a space: once neither spelling exists, the
    entry recorded under the other spelling goes too."""
    bucket = SyncBucket.create(sqlite_settings)
    raw, _ = bucket.put_package("rho", "1.0+local")
    decoded = raw.replace("+", " ")
    use_settings(sqlite_settings)
    runtime = handler.runtime()
    # No verify-after window: how many HEADs it takes must not depend on whether this
    # machine wrote the entry within 50 ms.
    assert sync_key(runtime.cache, runtime.s3, BUCKET, decoded, alt_keys=(raw,),
                    verify_after=None).key == raw
    bucket.delete(raw)
    done = sync_key(runtime.cache, runtime.s3, BUCKET, decoded, alt_keys=(raw,),
                    verify_after=None)
    assert (done.action, done.heads) == ("cleared", 2)
    assert cached(sqlite_settings) == {}


def test_a_save_that_lost_to_another_containers_insert_is_applied_again(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """Another container inserts the same row between our SELECT and our INSERT (the
    merge pypicloud's save does): the key is applied again from a new HEAD, and the
    reason says so."""
    from sqlalchemy import event

    from ..support.pypicloud_app import build_cache

    bucket = SyncBucket.create(sqlite_settings)
    key, _ = bucket.put_package("sigma", "1.0")
    use_settings(sqlite_settings)
    runtime = handler.runtime()
    other = build_cache({**sqlite_settings, "pypi.storage": "file", "storage.dir": "/tmp"})
    engine = runtime.cache.dbmaker.kw["bind"]
    inserts: list[str] = []

    def other_container_first(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT") and not inserts:
            inserts.append(statement)
            other.save(other.new_package("sigma", "1.0", "sigma-1.0.tar.gz", path=key))
            other.db.commit()

    event.listen(engine, "before_cursor_execute", other_container_first)
    try:
        # No verify-after window: a loaded machine's slow write would add a HEAD and
        # "(verified after a slow write)" to the reason.
        done = sync_key(runtime.cache, runtime.s3, BUCKET, key, verify_after=None)
    finally:
        event.remove(engine, "before_cursor_execute", other_container_first)
        other.db.close()
    assert (done.action, done.heads) == ("saved", 2)
    assert done.reason == ("object present; cached sigma 1.0 (applied again after 1 "
                           "concurrent write(s) of the same row)")
    assert cached(sqlite_settings)["sigma-1.0.tar.gz"]["summary"] == "A test package"


def test_settings_are_read_as_pypicloud_reads_its_ini() -> None:
    """Values become the strings an ini would hold; null means "not set"; the messages
    say what to give."""
    read = handler.read_settings
    assert read({handler.SETTINGS_VAR: json.dumps({
        "pypi.db": "sql", "s3sync.admin.enabled": None, "pypi.allow_overwrite": True,
        "pypi.allow_delete": False, "db.pool_size": 3, "db.url": "sqlite://"})}) == {
        "pypi.db": "sql", "pypi.allow_overwrite": "true", "pypi.allow_delete": "false",
        "db.pool_size": "3", "db.url": "sqlite://"}
    with pytest.raises(handler.HandlerConfigError) as info:
        read({})
    assert str(info.value) == (
        'PYPICLOUD_SETTINGS is not set: give the function a JSON object of pypicloud '
        'settings, at least {"pypi.db": ..., "db.url": ...}')
    with pytest.raises(handler.HandlerConfigError) as info:
        read({handler.SETTINGS_VAR: '["pypi.db"]'})
    assert str(info.value) == "PYPICLOUD_SETTINGS must be a JSON object of settings, not list"


def test_slow_writes_are_verified_after_the_default_window_unless_set(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    from pypicloud_s3sync.function.sync import VERIFY_AFTER_SECONDS

    use_settings(sqlite_settings)
    assert handler.runtime().verify_after == VERIFY_AFTER_SECONDS
    use_settings({**sqlite_settings, "s3sync.verify_after": "off"})
    assert handler.runtime().verify_after is None


def test_a_schedule_event_is_a_reconcile_with_its_own_options(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """EventBridge's scheduled event runs a reconcile (a deep one re-reads each object)
    instead of being read as an S3 event."""
    bucket = SyncBucket.create(sqlite_settings)
    bucket.put_package("pi", "1.0")
    use_settings(sqlite_settings)
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    assert handler.handle_event(scheduled, None)["added"] == ["pi-1.0.tar.gz"]
    deep = handler.handle_event({**scheduled, "detail": {"deep": True}}, None)
    assert deep["in_sync"] is True and deep["s3_calls"]["HeadObject"] == 1


def test_a_non_package_at_the_key_leaves_the_other_spellings_entry_alone(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """An EventBridge key is tried as decoded and as sent ("%2B" kept).  When the decoded
    key exists but is no package, only its own filename is cleared: the other spelling
    was never read, and its object (a package pypicloud serves) is still there."""
    bucket = SyncBucket.create(sqlite_settings)
    sent = "pkgs/READ%2BME.tar.gz"
    bucket.put_raw(sent, name="readme", version="1.0")
    use_settings(sqlite_settings)
    runtime = handler.runtime()
    assert sync_key(runtime.cache, runtime.s3, BUCKET, sent, verify_after=None).action == "saved"
    decoded = "pkgs/READ+ME.tar.gz"
    bucket.put_raw(decoded)  # no metadata, no version in its name: pypicloud lists none

    outcome = sync_key(runtime.cache, runtime.s3, BUCKET, decoded, alt_keys=(sent,),
                       verify_after=None)

    assert (outcome.action, outcome.key) == ("skipped", decoded)
    assert outcome.reason.endswith("; nothing cached")
    assert cached(sqlite_settings)["READ%2BME.tar.gz"]["path"] == sent


def _race(runtime: Any, bucket: SyncBucket, key: str) -> None:
    """After our first HEAD, another writer deletes the object: a real interleaving of
    two invocations, staged with botocore's own event hooks."""
    done: list[bool] = []

    def delete_after_first_head(**_: Any) -> None:
        if not done:
            done.append(True)
            bucket.s3.delete_object(Bucket=BUCKET, Key=key)

    runtime.s3.meta.events.register("after-call.s3.HeadObject", delete_after_first_head)


def test_slow_write_is_verified_and_a_concurrent_delete_wins(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    bucket = SyncBucket.create(sqlite_settings)
    key, _ = bucket.put_package("delta", "1.0")
    use_settings({**sqlite_settings, "s3sync.verify_after": "0"})  # every write is "slow"
    runtime = handler.runtime()
    _race(runtime, bucket, key)
    outcome = sync_key(runtime.cache, runtime.s3, BUCKET, key, verify_after=0)
    assert outcome.action == "cleared" and outcome.heads == 4
    assert cached(sqlite_settings) == {}


def test_without_verification_the_same_race_leaves_a_stale_entry(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """Why the verification exists: the interleaving above, unverified, is wrong."""
    bucket = SyncBucket.create(sqlite_settings)
    key, _ = bucket.put_package("delta", "1.0")
    use_settings(sqlite_settings)
    runtime = handler.runtime()
    _race(runtime, bucket, key)
    outcome = sync_key(runtime.cache, runtime.s3, BUCKET, key, verify_after=None)
    assert outcome.action == "saved" and outcome.heads == 1
    assert "delta-1.0.tar.gz" in cached(sqlite_settings)
    assert bucket.keys() == []


def test_a_same_second_put_of_the_same_bytes_is_told_apart_by_its_version(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a versioned bucket (what status asks for), the object is put again with the
    same bytes and a new summary between our HEAD and our slow write, within the same
    second: the ETag (the bytes' MD5) and the Last-Modified agree, and only the version
    tells the states apart.  The cache must end with the newer summary.

    S3 (botocore's HeadObject model): ``LastModified`` comes in the ``Last-Modified``
    header, an HTTP date (whole seconds), and ``VersionId``, "Version ID of the object",
    in ``x-amz-version-id``; the S3 User Guide, "Retrieving the metadata of an object
    version": "By default, you get the metadata of the most recent version."  Two puts
    in one second are staged by holding moto's clock still, not by racing the machine.
    """
    import moto.s3.models

    bucket = SyncBucket.create(sqlite_settings)
    bucket.s3.put_bucket_versioning(Bucket=BUCKET,
                                    VersioningConfiguration={"Status": "Enabled"})
    now = moto.s3.models.utcnow()
    monkeypatch.setattr(moto.s3.models, "utcnow", lambda: now)
    key = "pkgs/delta/delta-1.0.tar.gz"

    def put(summary: str) -> None:
        bucket.s3.put_object(Bucket=BUCKET, Key=key, Body=b"the same bytes",
                             Metadata={"name": "delta", "version": "1.0",
                                       "summary": summary})

    put("first")
    use_settings(sqlite_settings)
    runtime = handler.runtime()
    done: list[bool] = []

    def put_again_after_first_head(**_: Any) -> None:
        if not done:
            done.append(True)
            put("second")

    runtime.s3.meta.events.register("after-call.s3.HeadObject", put_again_after_first_head)
    outcome = sync_key(runtime.cache, runtime.s3, BUCKET, key, verify_after=0)

    versions = bucket.s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
    assert len(versions) == 2 and len({v["LastModified"] for v in versions}) == 1
    assert len({v["ETag"] for v in versions}) == 1  # only the version tells them apart
    assert cached(sqlite_settings)["delta-1.0.tar.gz"]["summary"] == "second"
    assert outcome.reason == "object present; cached delta 1.0 (verified after a slow write)"


@pytest.mark.parametrize(("recorded", "other"), [
    ("a/omega/omega-1.0.tar.gz", "b/omega/omega-1.0.tar.gz"),
    ('a/Ωmega "x" 50%_\\/omega-1.0.tar.gz', 'a/Ωmega "x" 50%_/omega-1.0.tar.gz'),
    # A key without a folder names no project: DynamoDB deletes as the entry is stored.
    ("a/omega/omega-1.0.tar.gz", "omega-1.0.tar.gz"),
    ("omega-1.0.tar.gz", "a/omega/omega-1.0.tar.gz"),
], ids=["plain", "characters-json-escapes", "other-key-at-the-root", "recorded-at-the-root"])
def test_clear_filename_keeps_an_entry_of_another_key(
    aws: None, cache_backend: str, cache_settings: Any, recorded: str, other: str
) -> None:
    """A delete of key B must not remove the entry that records key A for the same
    filename; a delete of key A removes it; a second delete finds nothing.  Keys are
    compared exactly, also where the stored JSON escapes them."""
    from pypicloud_s3sync.function.sync import clear_filename, committing, save_package

    from ..support.pypicloud_app import build_cache
    from ..support.sync_harness import close_cache

    settings = {**cache_settings(cache_backend), "pypi.storage": "file", "storage.dir": "/tmp"}
    cache = build_cache(settings)
    try:
        with committing(cache):
            save_package(cache, cache.new_package("omega", "1.0", "omega-1.0.tar.gz",
                                                  path=recorded))
        with committing(cache):
            assert clear_filename(cache, "omega-1.0.tar.gz", other) == "other-path"
        assert "omega-1.0.tar.gz" in cached(settings)
        with committing(cache):
            assert clear_filename(cache, "omega-1.0.tar.gz", recorded) == "cleared"
        with committing(cache):
            assert clear_filename(cache, "omega-1.0.tar.gz", recorded) == "absent"
        assert cached(settings) == {}
        assert cache.distinct() == [], "the package summary was left behind"
    finally:
        close_cache(cache)


@pytest.mark.parametrize("path", ["a/Other-Folder/omega-1.0.tar.gz", None,
                                  "omega-1.0.tar.gz"],
                         ids=["key-folder-is-not-the-name", "entry-without-path",
                              "key-at-the-bucket-root"])
def test_clear_filename_clears_entries_the_key_does_not_describe(
    aws: None, cache_backend: str, cache_settings: Any, path: str | None
) -> None:
    """An entry whose project name is not the key's folder (uploaded by another tool),
    or that records no path (older pypicloud), is still cleared, summary and all."""
    from pypicloud_s3sync.function.sync import clear_filename, committing, save_package

    from ..support.pypicloud_app import build_cache
    from ..support.sync_harness import close_cache

    settings = {**cache_settings(cache_backend), "pypi.storage": "file", "storage.dir": "/tmp"}
    cache = build_cache(settings)
    key = path or "a/omega/omega-1.0.tar.gz"
    try:
        package = cache.new_package("omega", "1.0", "omega-1.0.tar.gz")
        if path is not None:
            package.data["path"] = path
        with committing(cache):
            save_package(cache, package)
        with committing(cache):
            assert clear_filename(cache, "omega-1.0.tar.gz", key) == "cleared"
        assert cached(settings) == {}
        assert cache.distinct() == [], "the package summary was left behind"
    finally:
        close_cache(cache)


def test_an_overwrite_in_the_key_value_cache_keeps_no_field_of_the_old_entry(
    aws: None, cache_settings: Any
) -> None:
    """Redis (pypicloud's HMSET) would keep the old version's requires_python under the
    new one; the save replaces the whole entry, as SQL and DynamoDB do."""
    from pypicloud_s3sync.function.sync import save_package

    from ..support.pypicloud_app import build_cache
    from ..support.sync_harness import close_cache

    settings = {**cache_settings("redis"), "pypi.storage": "file", "storage.dir": "/tmp"}
    cache = build_cache(settings)
    try:
        save_package(cache, cache.new_package("eta", "1.0", "eta-1.0.tar.gz",
                                              requires_python=">=2.7", path="a/eta-1.0.tar.gz"))
        save_package(cache, cache.new_package("eta", "1.0", "eta-1.0.tar.gz",
                                              path="a/eta-1.0.tar.gz"))
        assert "requires_python" not in cached(settings)["eta-1.0.tar.gz"]
    finally:
        close_cache(cache)


def test_writes_commit_even_when_the_session_read_before_the_block(tmp_path):
    """A cache whose SQL session already began (a read) before ``committing`` was first
    used must still commit the block's writes: nothing may be lost silently."""
    from datetime import UTC, datetime

    from pypicloud_s3sync.function.sync import committing, save_package

    from ..support.pypicloud_app import build_cache

    settings = {"pypi.storage": "file", "storage.dir": str(tmp_path / "files"),
                "pypi.db": "sql", "db.url": f"sqlite:///{tmp_path / 'cache.sqlite'}"}
    cache = build_cache(settings)
    assert cache.fetch("early-1.0.tar.gz") is None  # the session begins here
    package = cache.new_package("early", "1.0", "early-1.0.tar.gz",
                                datetime(2026, 1, 1, tzinfo=UTC), summary="x")
    with committing(cache):
        save_package(cache, package)
    assert [p.filename for p in build_cache(settings).all("early")] == ["early-1.0.tar.gz"]

    # Load the row (outside any block), then overwrite it inside one.
    cache = build_cache(settings)
    assert cache.fetch("early-1.0.tar.gz").summary == "x"
    newer = cache.new_package("early", "1.0", "early-1.0.tar.gz",
                              datetime(2026, 2, 1, tzinfo=UTC), summary="y")
    with committing(cache):
        save_package(cache, newer)
    assert build_cache(settings).fetch("early-1.0.tar.gz").summary == "y"


def test_a_scheduled_reconciles_answer_stays_small_and_the_log_has_every_name(capsys) -> None:
    """A first reconcile of a large index must not approach Lambda's 6 MB response."""
    names = [f"pkg{i:05d}-1.0.tar.gz" for i in range(2500)]
    report = {"bucket": "packages", "prefix": "", "deep": False, "dry_run": False,
              "objects": 2500, "cached": 0, "added": list(reversed(names)), "removed": [],
              "updated": [], "vanished": [], "not_packages": ["README.txt"], "ignored": 0,
              "duplicates": {}, "list_pages": 3, "s3_calls": {"ListObjectsV2": 3},
              "seconds": 1.0, "in_sync": False}
    handler._setup_logging()
    result = handler._small_result(report)
    assert result["added"] == names[:handler.RESULT_NAMES]
    assert result["counts"]["added"] == 2500 and result["counts"]["not_packages"] == 1
    assert result["not_packages"] == ["README.txt"] and result["truncated"] is True
    assert len(json.dumps(result)) < 10_000
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["added"], e["truncated"]) for e in logged if e["action"] == "reconcile"] == [
        (2500, True)]
    in_log = [n for line in logged if line["action"] == "reconcile-added"
              for n in line["filenames"]]
    assert sorted(result["added"] + in_log) == names


@pytest.fixture
def read_only_keys(aws: None) -> dict[str, str]:
    """Keys of an IAM user that may list the bucket but not read its objects."""
    import boto3

    iam = boto3.client("iam")
    iam.create_user(UserName="lister")
    iam.put_user_policy(UserName="lister", PolicyName="list-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="lister")["AccessKey"]
    return {"storage.aws_access_key_id": key["AccessKeyId"],
            "storage.aws_secret_access_key": key["SecretAccessKey"]}


def test_a_head_refused_with_403_fails_the_event_and_keeps_the_cache_entry(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str],
    read_only_keys: dict[str, str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only "not there" may clear an entry: AccessDenied means "we do not know"."""
    from moto.core import enable_iam_authentication

    bucket = SyncBucket.create(sqlite_settings)
    key, created = bucket.put_package("kappa", "1.0")
    use_settings(sqlite_settings)
    # The handler's clock (its only use of time) says the save took half a second.
    clock = iter([2.0, 2.5])
    with monkeypatch.context() as patch:
        patch.setattr(handler, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
        handler.handle_event(created.aws_body(), None)
    assert "kappa-1.0.tar.gz" in cached(sqlite_settings)
    [saved] = [json.loads(x) for x in capsys.readouterr().out.splitlines()
               if x.startswith('{"action": "saved"')]
    assert saved["ms"] == 500.0

    use_settings({**sqlite_settings, **read_only_keys})
    deleted_elsewhere = {"Records": [{**created.aws_body()["Records"][0],
                                      "eventName": "ObjectRemoved:Delete"}]}
    # This attempt took a quarter of a second.
    clock = iter([10.0, 10.25])
    with monkeypatch.context() as patch, enable_iam_authentication(), \
            pytest.raises(handler.SyncError) as info:
        patch.setattr(handler, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
        handler.handle_event(deleted_elsewhere, None)
    assert str(info.value).startswith(f"could not sync s3://{BUCKET}/{key}: ")
    assert "AccessDenied" in str(info.value)
    assert "kappa-1.0.tar.gz" in cached(sqlite_settings)
    assert bucket.keys() == [key]
    # The log line says the record failed, and why, as the error named it.
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()
              if x.startswith("{") and '"ObjectRemoved:Delete"' in x]
    assert (line["action"], line["ms"]) == ("failed", 250.0)
    assert line["reason"] == ("AccessDenied: An error occurred (AccessDenied) when calling "
                              "the HeadObject operation: Access Denied"), line


def test_an_object_that_changes_during_every_attempt_fails_the_event_for_a_retry(
    aws: None, use_settings: Any, sqlite_settings: dict[str, str]
) -> None:
    """Each verifying HEAD sees another upload: after the last attempt the event fails
    (Lambda redelivers it) instead of reporting a state nobody verified."""
    from pypicloud_s3sync.function.sync import MAX_ATTEMPTS, KeepsChanging

    bucket = SyncBucket.create(sqlite_settings)
    key, created = bucket.put_package("lambda", "1.0")
    use_settings({**sqlite_settings, "s3sync.verify_after": "0"})  # every write is "slow"
    runtime = handler.runtime()
    heads: list[str] = []

    def upload_again_after_each_head(**_: Any) -> None:
        heads.append(key)
        if len(heads) % 2:  # between an attempt's HEAD and its verification
            bucket.put_package("lambda", "1.0", summary=f"upload {len(heads)}",
                               expect_event=False)

    runtime.s3.meta.events.register("after-call.s3.HeadObject", upload_again_after_each_head)
    with pytest.raises(handler.SyncError) as info:
        handler.handle_event(created.aws_body(), None)
    assert isinstance(info.value.__cause__, KeepsChanging)
    assert key in str(info.value) and f"{MAX_ATTEMPTS} times" in str(info.value)
    assert len(heads) == 2 * MAX_ATTEMPTS


OMEGA = "omega-1.0.tar.gz"


@contextlib.contextmanager
def one_cached_entry(cache_settings: Any, backend: str,
                     path: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """pypicloud's cache on ``backend`` holding omega 1.0, recorded at ``path``; yields
    the cache and its settings (for :func:`cached`)."""
    from pypicloud_s3sync.function.sync import committing, save_package

    from ..support.pypicloud_app import build_cache
    from ..support.sync_harness import close_cache

    settings = {**cache_settings(backend), "pypi.storage": "file", "storage.dir": "/tmp"}
    cache = build_cache(settings)
    try:
        with committing(cache):
            save_package(cache, cache.new_package("omega", "1.0", OMEGA, path=path))
        yield cache, settings
    finally:
        close_cache(cache)


def record_calls(cache: Any, backend: str) -> list[str]:
    """The DynamoDB operations, or the SQL statements' first words, from now on."""
    calls: list[str] = []
    if backend == "dynamo":
        cache.engine.dynamo.client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.append(model.name))
    else:
        from sqlalchemy import event

        event.listen(cache.db.get_bind(), "before_cursor_execute",
                     lambda *args: calls.append(args[2].split()[0]))
    return calls


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql", "dynamo"])
@pytest.mark.parametrize("key", ["a/omega/omega-1.0.tar.gz", OMEGA],
                         ids=["in-its-project-folder", "at-the-root"])
def test_clearing_the_entry_of_its_own_key_is_one_delete_and_no_read(
    aws: None, backend: str, cache_settings: Any, key: str
) -> None:
    """The delete path the handler takes for every removed object: one statement or
    call, its condition doing the path check that a read would otherwise do.  A key
    at the bucket's root names no project, so DynamoDB deletes the entry as stored,
    still in one call (DynamoDB bills each DeleteItem).  The number of round trips is
    the promise here (``sync._clear_sql``: the read saved was "the one round trip per
    delete the handler made beyond the least possible"), so it is counted, beside the
    entry being gone."""
    from pypicloud_s3sync.function.sync import clear_filename, committing

    with one_cached_entry(cache_settings, backend, key) as (cache, settings):
        calls = record_calls(cache, backend)
        with committing(cache):
            assert clear_filename(cache, OMEGA, key) == "cleared"
        assert cached(settings) == {}
    if backend == "dynamo":
        # The Query (and the write it may lead to) is pypicloud's summary upkeep.
        assert calls.count("DeleteItem") == 1 and "GetItem" not in calls, calls
    else:
        assert len(calls) == 1, calls


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql", "dynamo"])
def test_an_entry_of_another_key_is_kept_at_the_cost_of_one_call_more_at_most(
    aws: None, backend: str, cache_settings: Any
) -> None:
    """Deleting a key whose filename's entry records another object's key (the same
    file uploaded under two prefixes): the entry stays, and DynamoDB learns that from
    the refused DeleteItem itself, SQL from one read after its DELETE matched nothing.
    The cost is the promise beside the kept entry: one round trip more than clearing
    our own entry, at most."""
    from pypicloud_s3sync.function.sync import clear_filename, committing

    theirs, ours = "b/omega/omega-1.0.tar.gz", "a/omega/omega-1.0.tar.gz"
    with one_cached_entry(cache_settings, backend, theirs) as (cache, settings):
        calls = record_calls(cache, backend)
        with committing(cache):
            assert clear_filename(cache, OMEGA, ours) == "other-path"
        assert cached(settings)[OMEGA]["path"] == theirs
    assert len(calls) == (1 if backend == "dynamo" else 2), calls


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
@pytest.mark.parametrize("then", ["kept", "deleted"])
def test_a_sql_entry_another_container_changes_between_delete_and_read(
    backend: str, then: str, cache_settings: Any
) -> None:
    """Another container writes the entry right after our conditional DELETE matched
    nothing, recording our key: the read that follows finds it ours and deletes it.
    If that container deletes it again before our DELETE, the answer is "absent" (the
    row is gone either way), not an error."""
    from sqlalchemy import event

    from pypicloud_s3sync.function.sync import clear_filename, committing

    theirs, ours = "b/omega/omega-1.0.tar.gz", "a/omega/omega-1.0.tar.gz"
    meanwhile = {"DELETE": f"UPDATE packages SET data = '{json.dumps({'path': ours})}' "
                           f"WHERE filename = '{OMEGA}'"}
    if then == "deleted":
        meanwhile["SELECT"] = f"DELETE FROM packages WHERE filename = '{OMEGA}'"
    statements: list[str] = []

    def other_container(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        verb = statement.split()[0]
        statements.append(verb)
        if verb in meanwhile and statements.count(verb) == 1:
            other = conn.connection.cursor()  # the same transaction: seen at once
            other.execute(meanwhile.pop(verb))
            other.close()

    with one_cached_entry(cache_settings, backend, theirs) as (cache, settings):
        event.listen(cache.db.get_bind(), "after_cursor_execute", other_container)
        with committing(cache):
            answer = clear_filename(cache, OMEGA, ours)
        assert answer == ("cleared" if then == "kept" else "absent")
        assert meanwhile == {}  # the other container's writes all happened in between
        assert cached(settings) == {}
