"""Property: whatever S3 did to a few keys, and however its notifications arrive
(shuffled, duplicated, batched or one by one, in AWS's or moto's encoding), after the
handler has seen each of them at least once the cache holds exactly what the bucket
holds, with the latest metadata."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypicloud_s3sync.function import handler

from ..support.sync_harness import SyncBucket, cached

BUCKET = "packages"
_names = itertools.count()


@pytest.fixture
def prop_env(aws: None, cache_backend: str, cache_settings: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SyncBucket, dict[str, str]]]:
    function_settings = {**cache_settings(cache_backend), "storage.bucket": BUCKET,
                         "storage.region_name": "us-east-1", "storage.prefix": "p/"}
    bucket = SyncBucket.create(function_settings)
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(function_settings))
    handler.reset()
    yield bucket, function_settings
    handler.reset()


operations = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["put", "delete", "deliver"]), st.integers(0, 3)),
    min_size=1, max_size=9)


@pytest.mark.slow
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(ops=operations, data=st.data())
def test_any_delivery_converges_to_the_bucket(
    prop_env: tuple[SyncBucket, dict[str, str]], ops: list[tuple[int, str, int]],
    data: st.DataObject,
) -> None:
    bucket, function_settings = prop_env
    run = next(_names)  # fresh package names per example: examples never interfere
    names = [f"prop{run}x{i}" for i in range(3)]
    truth: dict[str, str] = {}  # filename -> summary
    keys: dict[str, str] = {}
    pending: list[Any] = []  # notifications not delivered yet
    everything: list[Any] = []

    def deliver_some(chosen: list[Any]) -> None:
        """Deliver ``chosen`` (shuffled, with duplicates), one by one or as a batch."""
        duplicates = data.draw(st.lists(st.sampled_from(everything), max_size=3))
        order = data.draw(st.permutations(chosen + duplicates))
        if order and data.draw(st.booleans()):  # one SQS batch
            batch = {"Records": [d.sqs_record(f"m{i}") for i, d in enumerate(order)]}
            assert handler.handle_event(batch, None) == {"batchItemFailures": []}
        else:
            for delivery in order:
                encoding = data.draw(st.sampled_from(["moto", "aws"]))
                handler.handle_event(delivery.event(encoding), None)

    for index, op, version_tag in ops:
        name = names[index]
        filename = f"{name}-1.0.tar.gz"
        if op == "deliver":
            if pending:
                # The cache sees an intermediate state, so later overwrites must
                # replace it (stale metadata) and later deletes must remove it.
                chosen = data.draw(st.lists(st.sampled_from(pending), unique_by=id))
                deliver_some(chosen)
                pending = [d for d in pending if all(d is not c for c in chosen)]
            continue
        if op == "delete" and filename in truth:
            delivery = bucket.delete(keys[filename])
            del truth[filename]
        else:  # put, or overwrite when it exists already
            summary = f"summary {version_tag}"
            keys[filename], delivery = bucket.put_package(
                name, "1.0", summary=summary,
                **({"requires_python": ">=3.9"} if version_tag % 2 else {}))
            truth[filename] = summary
        pending.append(delivery)
        everything.append(delivery)
    if pending:
        deliver_some(pending)

    mine = {f: e for f, e in cached(function_settings).items()
            if f.split("-")[0] in names}
    assert {f: e["summary"] for f, e in mine.items()} == truth
    for filename, entry in mine.items():
        assert entry["path"] == keys[filename]
        odd = int(truth[filename].split()[1]) % 2
        assert ("requires_python" in entry) == bool(odd), "stale or missing metadata"
