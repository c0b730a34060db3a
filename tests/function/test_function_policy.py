"""The function's role allows exactly the AWS calls the function makes, on every backend.

Each test runs the handler as Lambda would (``PYPICLOUD_SETTINGS`` exactly as create
writes it, cold start included) through every path an event or a schedule can take,
traces every AWS call (tests/support/aws_trace.py), and asks moto's IAM evaluator whether the
inline policy create attaches (``iam.role_policy`` for the same config) allows each
one.  It also checks the reverse: every action the policy grants was needed by some
traced call, or iam.py says why the function's own code never makes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.function import handler
from pypicloud_s3sync.provision import iam
from pypicloud_s3sync.provision.deploy import DeployOptions
from pypicloud_s3sync.provision.desired import function_environment

from ..support import aws_trace
from ..support.pypicloud_app import create_dynamo_tables, write_ini
from ..support.sync_harness import SyncBucket, cached

BUCKET = "packages"
REGION = "us-east-1"
FUNCTION = "pypicloud_s3_sync"
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

#: The table-name variants of a DynamoDB cache (the other backends have no tables).
TABLE_VARIANTS = {
    "default": {},
    "namespace": {"db.namespace": "prod-"},
    "tablenames": {"db.tablenames": "pkgs pkg-summaries"},
}


@pytest.fixture
def tracer(aws: None) -> Iterator[aws_trace.Tracer]:
    handler.reset()
    with aws_trace.tracing() as tracer:
        yield tracer
    handler.reset()


def function_under_policy(tmp_path: Path, settings: dict[str, str],
                          monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Any]:
    """(the inline policy create attaches, the config) for pypicloud settings."""
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, settings)
    config = load_config(str(ini))
    options = DeployOptions.from_config(config)
    monkeypatch.setenv(handler.SETTINGS_VAR,
                       json.dumps(function_environment(config, options), sort_keys=True))
    policy = iam.role_policy(config, account=aws_trace.ACCOUNT, region=REGION,
                             function_name=FUNCTION)
    return policy, config


def run_every_path(bucket: SyncBucket, prefix: str,
                   invoke: Callable[[dict[str, Any]], Any] | None = None,
                   tracer: aws_trace.Tracer | None = None) -> dict[str, list[aws_trace.Call]]:
    """Drive the handler through each path; returns the AWS calls of each (if traced).

    ``invoke(event)`` runs one invocation (default: ``handler.handle_event``); changes
    to the bucket happen between invocations, never inside one.
    """
    paths: dict[str, list[aws_trace.Call]] = {}
    invoke = invoke or (lambda event: handler.handle_event(event, None))

    def path(name: str, event: dict[str, Any]) -> Any:
        if tracer is None:
            return invoke(event)
        with tracer.recording() as calls:
            result = invoke(event)
        paths[name] = calls
        return result

    _, created = bucket.put_package("alpha", "1.0")
    path("cold start + save", created.event("aws"))
    _, again = bucket.put_package("alpha", "1.0", summary="Rewritten")
    path("overwrite", again.event("aws"))
    key, beta = bucket.put_package("beta", "1.0")
    invoke(beta.event("aws"))
    path("delete", bucket.delete(key).event("aws"))
    never, _ = bucket.put_package("gamma", "1.0")
    path("delete of a key never cached", bucket.delete(never).event("aws"))
    if prefix:
        outside = bucket.put_raw("elsewhere/delta/delta-1.0.tar.gz", name="delta",
                                 version="1.0")
        path("key outside storage.prefix", outside.event("aws"))
    # Drift for the schedule: one package never announced, one cache entry whose
    # object went away without an event.
    bucket.put_package("epsilon", "1.0")
    zeta, saved = bucket.put_package("zeta", "1.0")
    invoke(saved.event("aws"))
    bucket.delete(zeta)
    report = path("scheduled reconcile", SCHEDULED)
    assert report["added"] == ["epsilon-1.0.tar.gz"] and report["removed"] == ["zeta-1.0.tar.gz"]
    bucket.put_package("alpha", "1.0", summary="Changed behind the cache's back")
    report = path("scheduled reconcile (deep)", {**SCHEDULED, "detail": {"deep": True}})
    assert report["updated"] == ["alpha-1.0.tar.gz"]
    return paths


#: What every path leaves in the cache.
EXPECTED_CACHE = {"alpha-1.0.tar.gz", "epsilon-1.0.tar.gz"}


def check_policy(policy: dict[str, Any], paths: dict[str, list[aws_trace.Call]],
                 prefix: str) -> None:
    requests = aws_trace.iam_requests(c for calls in paths.values() for c in calls)
    # moto's evaluator passes StringLike conditions unchecked; the listing's s3:prefix
    # must be storage.prefix itself for the ListPackages condition to hold on AWS.
    assert {dict(r.conditions).get("s3:prefix") for r in requests
            if r.action == "s3:ListBucket"} == {prefix}
    refused = aws_trace.denied(policy, requests)
    assert not refused, "the role refuses calls the function makes:\n" + aws_trace.describe(
        refused)
    unused = [grant for grant in aws_trace.unused_grants(policy, requests)
              if grant.split(": ")[1].split(" on ")[0] not in iam.UNTRACED_ACTIONS]
    assert not unused, f"granted but never needed by a traced path: {unused}"


@pytest.mark.parametrize("prefix", ["pkgs/", ""], ids=["prefix", "no-prefix"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql", "redis"])
def test_every_call_of_every_path_is_allowed_by_the_role(
    tracer: aws_trace.Tracer, cache_settings: Any, backend: str, prefix: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = {**cache_settings(backend), "storage.bucket": BUCKET}
    if prefix:
        settings["storage.prefix"] = prefix
    policy, _ = function_under_policy(tmp_path, settings, monkeypatch)
    bucket = SyncBucket.create(settings)
    paths = run_every_path(bucket, prefix, tracer=tracer)
    check_policy(policy, paths, prefix)
    # The SQL and Redis functions call S3 alone, and only for keys that can be packages.
    assert {c.name for calls in paths.values() for c in calls} == {
        "s3.HeadObject", "s3.ListObjectsV2"}
    assert paths.get("key outside storage.prefix", []) == []
    assert set(cached(settings)) == EXPECTED_CACHE


@pytest.mark.parametrize("prefix", ["pkgs/", ""], ids=["prefix", "no-prefix"])
@pytest.mark.parametrize("tables", sorted(TABLE_VARIANTS))
def test_every_dynamodb_call_is_allowed_on_the_cache_tables_only(
    tracer: aws_trace.Tracer, restore_dynamo_models: None, tables: str, prefix: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = {"pypi.db": "dynamo", "db.region_name": REGION, "storage.bucket": BUCKET,
                **TABLE_VARIANTS[tables]}
    if prefix:
        settings["storage.prefix"] = prefix
    create_dynamo_tables(settings)  # the pypicloud server's first start
    policy, config = function_under_policy(tmp_path, settings, monkeypatch)
    assert not iam.has_wildcard_resource(policy, ("dynamodb",))
    bucket = SyncBucket.create(settings)
    paths = run_every_path(bucket, prefix, tracer=tracer)
    check_policy(policy, paths, prefix)
    if os.environ.get("PPC_S3SYNC_SHOW_TRACE"):
        for path, calls in paths.items():
            print(path, [r.action + " " + r.resource.split(":")[-1]
                         for r in aws_trace.iam_requests(calls)])

    names = iam.dynamo_table_names(config)
    requests = aws_trace.iam_requests(c for calls in paths.values() for c in calls)
    touched = {r.resource.split(":table/")[1] for r in requests if r.action.startswith("dynamodb")}
    assert touched == {*names, f"{names[0]}/index/name-index"}
    # Bootstrap checks the two tables and never lists or creates any.
    cold = [c.name for c in paths["cold start + save"]]
    assert cold.count("dynamodb.DescribeTable") == 2
    assert not {"dynamodb.ListTables", "dynamodb.CreateTable"} & {
        c.name for calls in paths.values() for c in calls}
    assert set(cached(settings)) == EXPECTED_CACHE


def test_a_missing_table_stops_the_bootstrap_with_how_to_create_it(
    tracer: aws_trace.Tracer, restore_dynamo_models: None, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    settings = {"pypi.db": "dynamo", "db.region_name": REGION, "storage.bucket": BUCKET,
                "db.namespace": "typo-"}
    function_under_policy(tmp_path, settings, monkeypatch)
    with tracer.recording() as calls, pytest.raises(Exception) as info:
        handler.handle_event({"Records": []}, None)
    message = str(info.value)
    assert "\n" not in message
    assert "typo-DynamoPackage" in message and "start the pypicloud server" in message
    assert "db.tablenames" in message
    assert calls  # it did ask DynamoDB
    assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []


@pytest.mark.parametrize("backend", ["redis", "dynamo"])
@pytest.mark.parametrize("extras", [{}, {"subnet_ids": ["subnet-1", "subnet-2"],
                                         "security_group_ids": ["sg-1"], "on_failure":
                                         "arn:aws:sqs:us-east-1:123456789012:dead-letters"}],
                         ids=["plain", "vpc-on-failure"])
def test_the_role_policy_passes_parliament(backend: str, extras: dict[str, Any],
                                           tmp_path: Path) -> None:
    config = aws_trace.lint_config(tmp_path, backend, bucket=BUCKET, region=REGION,
                                   prefix="pkgs/")
    policy = iam.role_policy(config, account=aws_trace.ACCOUNT, region=REGION,
                      function_name=FUNCTION, **extras)
    assert aws_trace.parliament_findings(policy) == []


def test_every_untraced_grant_says_why() -> None:
    assert all(reason.strip() and "\n" not in reason
               for reason in iam.UNTRACED_ACTIONS.values())


def test_the_index_the_policy_names_is_pypicloud_s() -> None:
    from pypicloud.cache.dynamo import DynamoPackage, PackageSummary

    assert [i.name for i in DynamoPackage.meta_.global_indexes] == [iam.DYNAMO_NAME_INDEX]
    assert not PackageSummary.meta_.global_indexes
