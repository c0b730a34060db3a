"""What the cache holds after each kind of bucket change, on every backend and both event
encodings.

Each test changes a moto bucket through pypicloud's own S3 storage code, takes the
notifications moto itself produced (S3 -> SQS), delivers them to
``pypicloud_s3sync.handler.handle_event`` (as Lambda's SQS event, or re-encoded the way
AWS sends a direct S3 invocation), and then checks what pypicloud's own cache holds.

Every backend gets the SQS encoding; the direct-invocation encoding runs on SQLite only.
The encoding is read down to bucket and key before any cache is touched, so running it
on every backend again would repeat the same parse four more times.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pypicloud_s3sync.function import handler

from ..support.services import CACHE_BACKENDS
from ..support.sync_harness import SyncBucket, cached, deliver

BUCKET = "packages"
PREFIX = "pkgs/"


@dataclass
class Env:
    bucket: SyncBucket
    settings: dict[str, str]
    encoding: str
    handler: Any = handler

    def deliver(self, *deliveries: Any) -> list[Any]:
        return deliver(handler, deliveries, self.encoding)

    def cached(self) -> dict[str, dict[str, Any]]:
        return cached(self.settings)


def function_settings(cache_settings: dict[str, str], **storage: str) -> dict[str, str]:
    """What ``ppc-create-s3-sync`` puts in PYPICLOUD_SETTINGS: cache and storage keys."""
    return {**cache_settings, "pypi.storage": "s3", "storage.region_name": "us-east-1",
            **storage}


CASES = [(backend, "moto") for backend in CACHE_BACKENDS] + [("sqlite", "aws")]


@pytest.fixture(params=CASES, ids="-".join)
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(cache backend, event encoding)."""
    return request.param


@pytest.fixture
def cache_backend(case: tuple[str, str]) -> str:
    return case[0]


@pytest.fixture
def encoding(case: tuple[str, str]) -> str:
    return case[1]


@pytest.fixture
def env(aws: None, cache_backend: str, cache_settings: Any, encoding: str,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    settings = function_settings(cache_settings(cache_backend), **{
        "storage.bucket": BUCKET, "storage.prefix": PREFIX})
    bucket = SyncBucket.create(settings)
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(settings))
    handler.reset()
    yield Env(bucket, settings, encoding)
    handler.reset()


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The per-record lines (not the metrics line, see test_metrics)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith("{") and not line.startswith('{"_aws"')]


def test_plain_create(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    key, created = env.bucket.put_package("alpha", "1.0", summary="First", requires_python=">=3.8")
    assert env.deliver(created) == [{"batchItemFailures": []} if env.encoding == "moto" else None]
    entry = env.cached()["alpha-1.0.tar.gz"]
    assert (entry["name"], entry["version"], entry["summary"]) == ("alpha", "1.0", "First")
    assert entry["requires_python"] == ">=3.8"
    assert entry["path"] == key and key.startswith(PREFIX)
    assert len(entry["hash_sha256"]) == 64
    [line] = [x for x in log_lines(capsys) if x.get("key") == key]
    assert line["action"] == "saved" and isinstance(line["ms"], float) and line["reason"]


def test_local_version(env: Env) -> None:
    key, created = env.bucket.put_package("beta", "1.0+local")
    assert "+" in key
    env.deliver(created)
    assert env.cached()["beta-1.0+local.tar.gz"]["version"] == "1.0+local"


def test_key_with_space(env: Env) -> None:
    key, created = env.bucket.put_package("gamma pkg", "2.0", filename="gamma pkg-2.0.tar.gz")
    assert " " in key
    env.deliver(created)
    assert env.cached()["gamma pkg-2.0.tar.gz"]["version"] == "2.0"


def test_key_with_non_ascii(env: Env) -> None:
    key, created = env.bucket.put_package("naïve", "3.0", summary="ascii summary")
    env.deliver(created)
    entry = env.cached()["naïve-3.0.tar.gz"]
    assert entry["version"] == "3.0" and entry["path"] == key


def test_delete(env: Env) -> None:
    key, created = env.bucket.put_package("delta", "1.0")
    env.deliver(created)
    assert "delta-1.0.tar.gz" in env.cached()
    env.deliver(env.bucket.delete(key))
    assert env.cached() == {}


def test_delete_of_entry_the_web_app_created(
    env: Env, pypicloud_factory: Any, cache_backend: str
) -> None:
    server = pypicloud_factory(cache=cache_backend, bucket=BUCKET, prefix=PREFIX,
                               create_bucket=False)
    server.upload("webapp", "1.0")
    assert server.simple("webapp") == ["webapp-1.0.tar.gz"]
    *_, upload_event = [d for d in env.bucket.drain() if not d.is_test_event]
    [key] = env.bucket.keys()
    env.deliver(env.bucket.delete(key))
    assert server.simple("webapp") == []
    assert env.cached() == {}
    # A late redelivery of the upload's own event changes nothing: the object is gone.
    env.deliver(upload_event)
    assert server.simple("webapp") == []


def test_delete_arriving_before_its_create(env: Env) -> None:
    """The upload's entry is in the cache (the web app wrote it); the object is deleted
    and its two events arrive the wrong way round: the entry must go all the same."""
    key, created = env.bucket.put_package("epsilon", "1.0")
    seed_cache(env.settings, "epsilon", "1.0", key)
    assert set(env.cached()) == {"epsilon-1.0.tar.gz"}
    deleted = env.bucket.delete(key)
    env.deliver(deleted, created)
    assert env.cached() == {}


def seed_cache(settings: dict[str, str], name: str, version: str, key: str) -> None:
    """An entry written through pypicloud's own cache, as its server does on upload."""
    from pypicloud_s3sync.function.sync import committing, save_package

    from ..support.pypicloud_app import build_cache
    from ..support.sync_harness import close_cache

    cache = build_cache({**settings, "pypi.storage": "file", "storage.dir": "/tmp"})
    try:
        with committing(cache):
            save_package(cache, cache.new_package(
                name, version, key.rsplit("/", 1)[-1], path=key))
    finally:
        close_cache(cache)


def test_lifecycle_expiry(env: Env) -> None:
    """A lifecycle rule expired the object; S3 says so with its own event name."""
    key, created = env.bucket.put_package("expiring", "1.0")
    env.deliver(created)
    assert "expiring-1.0.tar.gz" in env.cached()
    expired = env.bucket.delete(key)  # moto runs no lifecycle: AWS's record names it
    for record in expired.body["Records"]:
        record["eventName"] = "LifecycleExpiration:Delete"
    env.deliver(expired)
    assert env.cached() == {}


def test_put_delete_put_with_the_delete_event_last(env: Env) -> None:
    key, first = env.bucket.put_package("zeta", "1.0", summary="first")
    deleted = env.bucket.delete(key)
    _, second = env.bucket.put_package("zeta", "1.0", summary="second")
    env.deliver(first, second, deleted)
    assert env.cached()["zeta-1.0.tar.gz"]["summary"] == "second"


def test_overwrite_with_new_metadata(env: Env) -> None:
    key, first = env.bucket.put_package("eta", "1.0", summary="old", requires_python=">=2.7")
    env.deliver(first)
    assert env.cached()["eta-1.0.tar.gz"]["requires_python"] == ">=2.7"
    _, second = env.bucket.put_package("eta", "1.0", summary="new")
    env.deliver(second)
    entry = env.cached()["eta-1.0.tar.gz"]
    assert entry["summary"] == "new"
    assert "requires_python" not in entry, "stale metadata survived the overwrite"


def test_non_package_key_created_and_deleted(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    created = env.bucket.put_raw(PREFIX + "index.html", b"<html/>")
    deleted = env.bucket.delete(PREFIX + "index.html")
    env.deliver(created, deleted)
    assert env.cached() == {}
    lines = [x for x in log_lines(capsys) if x.get("key") == PREFIX + "index.html"]
    assert [x["action"] for x in lines] == ["skipped", "skipped"]
    assert [x["reason"] for x in lines] == ["not a package file"] * 2


def test_key_outside_the_prefix(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    created = env.bucket.put_raw("elsewhere/theta-1.0.tar.gz", name="theta", version="1.0")
    env.deliver(created)
    assert env.cached() == {}
    [line] = [x for x in log_lines(capsys) if x.get("key") == "elsewhere/theta-1.0.tar.gz"]
    assert line["action"] == "skipped"
    assert line["reason"] == f"outside storage.prefix {PREFIX!r}"


def test_s3_test_event_is_acknowledged(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    [test_event] = env.bucket.test_events
    assert test_event.is_test_event
    event = test_event.event("moto") if env.encoding == "moto" else test_event.body
    answer = handler.handle_event(event, None)
    assert answer == ({"batchItemFailures": []} if env.encoding == "moto" else None)
    assert env.cached() == {}
    assert any("s3:TestEvent" in x["reason"] for x in log_lines(capsys))


def test_record_for_another_bucket(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.bucket.s3.create_bucket(Bucket="someone-elses")
    env.bucket.notify("someone-elses")
    env.bucket.drain()
    created = env.bucket.put_raw(PREFIX + "iota-1.0.tar.gz", bucket="someone-elses",
                                 name="iota", version="1.0")
    env.deliver(created)
    assert env.cached() == {}
    [line] = [x for x in log_lines(capsys) if x.get("key") == PREFIX + "iota-1.0.tar.gz"]
    assert line["action"] == "skipped" and "someone-elses" in line["reason"]
