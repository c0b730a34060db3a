"""The function's metrics, as CloudWatch would read them from its log.

CloudWatch turns a log line in embedded metric format (EMF) into metrics; moto does not,
so these tests check the documents against what the EMF specification requires (every
declared metric and dimension has a value at the root, at most 100 values per metric)
and against what the invocation did.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pypicloud_s3sync.function import handler
from pypicloud_s3sync.function.metrics import MAX_VALUES, InvocationMetrics

from ..support.sync_harness import SyncBucket, cached

BUCKET = "packages"


@pytest.fixture
def function(aws: None, cache_settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = {**cache_settings("sqlite"), "storage.bucket": BUCKET,
                "storage.region_name": "us-east-1"}
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(settings))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "pypicloud-s3sync-packages")
    handler.reset()
    yield SyncBucket.create(settings), settings
    handler.reset()


def emf_documents(out: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    for doc in docs:
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert isinstance(doc["_aws"]["Timestamp"], int)
        for dimension_set in directive["Dimensions"]:
            assert all(isinstance(doc[name], str) for name in dimension_set)
        for metric in directive["Metrics"]:
            value = doc[metric["Name"]]
            assert isinstance(value, int | float) or (
                isinstance(value, list) and 0 < len(value) <= MAX_VALUES)
    return docs


def test_one_invocation_reports_its_outcomes_and_lag(
    function: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket, settings = function
    key, created = bucket.put_package("alpha", "1.0")
    _, other = bucket.put_package("beta", "1.0")
    handler.handle_event(other.event("moto"), None)
    deleted = bucket.delete(bucket.put_package("beta", "1.0")[0])
    readme = bucket.put_raw("README.txt", b"not a package")
    capsys.readouterr()
    batch = {"Records": [created.sqs_record("m1"), deleted.sqs_record("m2"),
                         readme.sqs_record("m3"),
                         {"eventSource": "aws:sqs", "messageId": "m4", "body": "{not json"}]}
    handler.handle_event(batch, None)

    (doc,) = emf_documents(capsys.readouterr().out)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "pypicloud-s3sync"
    assert directive["Dimensions"] == [["FunctionName"]]
    assert doc["FunctionName"] == "pypicloud-s3sync-packages"
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Saved": "Count", "Cleared": "Count", "Skipped": "Count", "Failed": "Count",
        "LagSeconds": "Seconds"}
    assert (doc["Saved"], doc["Cleared"], doc["Skipped"], doc["Failed"]) == (1, 1, 1, 1)
    assert len(doc["LagSeconds"]) == 2 and all(lag >= 0 for lag in doc["LagSeconds"])
    assert set(cached(settings)) == {"alpha-1.0.tar.gz"}


def test_lag_is_measured_from_the_events_time(
    function: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket, _ = function
    _, created = bucket.put_package("alpha", "1.0")
    event = created.aws_body()
    sent = datetime.now(UTC) - timedelta(minutes=5)
    event["Records"][0]["eventTime"] = sent.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    capsys.readouterr()
    handler.handle_event(event, None)
    (doc,) = emf_documents(capsys.readouterr().out)
    assert doc["Saved"] == 1
    (lag,) = doc["LagSeconds"]
    assert 300 <= lag < 3600


def test_a_failed_invocation_still_reports(
    function: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, settings = function
    _, created = bucket.put_package("alpha", "1.0")
    # The connection to S3 breaks on every attempt.
    runtime = handler.runtime()

    def refuse(**_: Any) -> None:
        raise ConnectionResetError("connection reset by peer")

    runtime.s3.meta.events.register("before-send.s3.HeadObject", refuse)
    capsys.readouterr()
    with pytest.raises(handler.SyncError):
        handler.handle_event(created.aws_body(), None)
    (doc,) = emf_documents(capsys.readouterr().out)
    assert (doc["Saved"], doc["Failed"]) == (0, 1)
    assert "LagSeconds" not in doc


def test_a_test_event_is_counted_skipped_and_lags_beyond_100_are_split() -> None:
    metrics = InvocationMetrics()
    metrics.add("skipped")
    now = datetime.now(UTC).isoformat()
    for _ in range(MAX_VALUES + 5):
        metrics.add("saved", now)
    first, second = metrics.documents("f", 0)
    assert (first["Saved"], first["Skipped"], len(first["LagSeconds"])) == (105, 1, 100)
    assert len(second["LagSeconds"]) == 5 and "Saved" not in second
    assert [m["Name"] for m in second["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == [
        "LagSeconds"]
    assert InvocationMetrics().documents("f", 0) == []
