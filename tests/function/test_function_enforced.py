"""The function under IAM enforcement: a moto server that refuses what the policy refuses.

The function runs with the credentials of an IAM user that holds exactly the inline
policy create attaches to the function's role, against a moto server with IAM
enforcement switched on (``/moto-api/reset-auth``), through every path of
tests/function/test_function_policy.py; the cache must end right.  Enforcement is on only
while the function runs: the test's own uploads and deletes use moto's default
credentials in between.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pypicloud_s3sync.function import handler

from ..support import moto_gaps
from ..support.pypicloud_app import create_dynamo_tables
from ..support.sync_harness import SyncBucket, cached
from .test_function_policy import (
    BUCKET,
    EXPECTED_CACHE,
    REGION,
    function_under_policy,
    run_every_path,
)

PREFIX = "pkgs/"


def set_enforcement(server: str, count: str) -> None:
    """``0``: every request from now on is checked; ``inf``: none is."""
    import requests

    reply = requests.post(f"{server}/moto-api/reset-auth", data=count.encode(),
                          headers={"Content-Type": "text/plain"}, timeout=10)
    reply.raise_for_status()


def as_function(env: pytest.MonkeyPatch, key: dict[str, str]) -> None:
    """The environment Lambda gives the function: its credentials, a fresh process
    (boto3's default session would keep the credentials it resolved first)."""
    import boto3

    env.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    env.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    env.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture
def function_user(moto_server: str) -> Iterator[Any]:
    """``grant(policy)`` -> the access key of a new IAM user holding ``policy``."""
    import boto3

    iam = boto3.client("iam", endpoint_url=moto_server, region_name=REGION)

    def grant(policy: dict[str, Any]) -> dict[str, str]:
        iam.create_user(UserName="s3sync-function")
        iam.put_user_policy(UserName="s3sync-function", PolicyName="pypicloud-s3sync",
                            PolicyDocument=json.dumps(moto_gaps.for_moto_user(policy)))
        return iam.create_access_key(UserName="s3sync-function")["AccessKey"]

    yield grant
    with contextlib.suppress(Exception):
        set_enforcement(moto_server, "inf")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql", "redis", "dynamo"])
def test_the_function_works_holding_only_its_policy(
    moto_server: str, function_user: Any, cache_settings: Any, backend: str,
    restore_dynamo_models: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if backend == "dynamo":
        host, port = moto_server.removeprefix("http://").rsplit(":", 1)
        settings = {"pypi.db": "dynamo", "db.region_name": REGION, "db.host": host,
                    "db.port": port, "db.secure": "false", "db.namespace": "prod-"}
        create_dynamo_tables(settings)  # the pypicloud server's first start
    else:
        settings = cache_settings(backend)
    settings.update({"storage.bucket": BUCKET, "storage.prefix": PREFIX,
                     "storage.endpoint_url": moto_server})
    bucket = SyncBucket.create(settings, endpoint_url=moto_server)
    policy, _ = function_under_policy(tmp_path, settings, monkeypatch)
    key = function_user(policy)
    handler.reset()

    refused: list[str] = []

    def invoke(event: dict[str, Any]) -> Any:
        with monkeypatch.context() as env:
            as_function(env, key)
            set_enforcement(moto_server, "0")
            try:
                return handler.handle_event(event, None)
            except Exception as exc:
                refused.append(str(exc))
                raise
            finally:
                set_enforcement(moto_server, "inf")

    try:
        run_every_path(bucket, PREFIX, invoke=invoke)
    finally:
        handler.reset()
    assert refused == []
    assert set(cached(settings)) == EXPECTED_CACHE


@pytest.mark.slow
def test_enforcement_is_really_on(moto_server: str, function_user: Any,
                                  cache_settings: Any, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same run fails once the policy lacks a grant the function needs."""
    settings = {**cache_settings("redis"), "storage.bucket": BUCKET,
                "storage.prefix": PREFIX, "storage.endpoint_url": moto_server}
    bucket = SyncBucket.create(settings, endpoint_url=moto_server)
    policy, _ = function_under_policy(tmp_path, settings, monkeypatch)
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "ReadPackages"]
    key = function_user(policy)
    _, created = bucket.put_package("alpha", "1.0")
    as_function(monkeypatch, key)
    handler.reset()
    set_enforcement(moto_server, "0")
    try:
        with pytest.raises(handler.SyncError, match="403|Forbidden|AccessDenied"):
            handler.handle_event(created.event("aws"), None)
    finally:
        set_enforcement(moto_server, "inf")
        handler.reset()
    assert cached(settings) == {}
