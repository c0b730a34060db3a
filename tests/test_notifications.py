"""S3's overlap rule and the merge, on the documents S3 returns (no AWS needed)."""

from __future__ import annotations

import pytest

from pypicloud_s3sync.provision import notifications

ARN = "arn:aws:lambda:us-east-1:123456789012:function:sync"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:q"


def queue(events, prefix=None, suffix=None, id_="theirs"):
    rules = []
    if prefix is not None:
        rules.append({"Name": "Prefix", "Value": prefix})  # AWS capitalises on read
    if suffix is not None:
        rules.append({"Name": "Suffix", "Value": suffix})
    entry = {"Id": id_, "QueueArn": QUEUE, "Events": events}
    if rules:
        entry["Filter"] = {"Key": {"FilterRules": rules}}
    return {"QueueConfigurations": [entry]}


@pytest.mark.parametrize(
    ("config", "ours", "clash"),
    [
        (queue(["s3:ObjectCreated:*"]), "pkgs/", True),              # no filter: everything
        (queue(["s3:ObjectCreated:Put"], "pkgs/sub/"), "pkgs/", True),  # nested prefix
        (queue(["s3:ObjectRemoved:Delete"], "pk"), "pkgs/", True),    # shorter prefix
        (queue(["s3:ObjectCreated:*"], "pkgs/", ".iso"), "pkgs/", True),  # suffix: still
        (queue(["s3:ObjectCreated:*"], "images/"), "pkgs/", False),   # disjoint prefixes
        (queue(["s3:ObjectRestore:*"]), "pkgs/", False),              # other event type
        (queue(["s3:ObjectCreated:*"], "images/"), "", True),         # we take everything
    ],
)
def test_overlap_rule(config, ours, clash):
    found = notifications.overlaps(config, ours, "sync", ARN)
    assert bool(found) is clash
    if clash:
        assert "'theirs'" in found[0].describe() and QUEUE in found[0].describe()


def test_merge_replaces_only_our_entry_and_legacy_entries_for_our_function():
    legacy = {"Id": "NjA3ZmUx", "LambdaFunctionArn": ARN, "Events": ["s3:ObjectCreated:*"]}
    other = {"Id": "thumbs", "LambdaFunctionArn": ARN + "-other",
             "Events": ["s3:ObjectCreated:*"]}
    current = {"LambdaFunctionConfigurations": [legacy, other], **queue(["s3:ObjectRemoved:*"]),
               "EventBridgeConfiguration": {}, "ResponseMetadata": {"RequestId": "x"}}
    ours = notifications.our_entry(ARN, "sync", "pkgs/")
    merged = notifications.with_ours(current, ours, "sync", ARN)
    assert merged["LambdaFunctionConfigurations"] == [other, ours]
    assert merged["QueueConfigurations"] == current["QueueConfigurations"]
    assert merged["EventBridgeConfiguration"] == {}
    assert "ResponseMetadata" not in merged
    assert notifications.overlaps(current, "pkgs/", "sync", ARN)[0].id == "thumbs"
    back = notifications.without_ours(merged, "sync", ARN)
    assert back["LambdaFunctionConfigurations"] == [other]


def test_same_entry_ignores_filter_name_case_and_event_order():
    ours = notifications.our_entry(ARN, "sync", "pkgs/")
    as_read = {**ours, "Events": list(reversed(ours["Events"])),
               "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "pkgs/"}]}}}
    assert notifications.same_entry(ours, as_read)
    assert not notifications.same_entry(ours, notifications.our_entry(ARN, "sync", "other/"))
