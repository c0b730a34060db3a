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


def test_our_entry_is_exactly_what_s3_gets() -> None:
    assert notifications.entry_id("sync") == "pypicloud-s3sync-sync"
    assert notifications.our_entry(ARN, "sync", "pkgs/") == {
        "Id": "pypicloud-s3sync-sync", "LambdaFunctionArn": ARN,
        "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "pkgs/"}]}}}
    assert "Filter" not in notifications.our_entry(ARN, "sync", "")


@pytest.mark.parametrize(("entry", "ours"), [
    ({"Id": "pypicloud-s3sync-sync", "LambdaFunctionArn": ARN + "-other"}, True),
    ({"Id": "x", "LambdaFunctionArn": ARN + ":live"}, True),  # an alias of our function
    ({"Id": "x", "LambdaFunctionArn": ARN}, True),
    ({"Id": "x", "LambdaFunctionArn": ARN + "2"}, False),
    ({"Id": "x", "LambdaFunctionArn": ARN + "2:live"}, False),
    ({"Id": "x"}, False),
    ({"Id": "x", "LambdaFunctionArn": ""}, False),
])
def test_which_entries_are_ours(entry, ours) -> None:
    config = {"LambdaFunctionConfigurations": [entry, {"Id": "y", "LambdaFunctionArn": "z"}]}
    assert notifications.find_ours(config, "sync", ARN) == ([entry] if ours else [])
    assert notifications.is_ours(entry, "sync", ARN) is ours


def test_merges_never_change_what_they_were_given() -> None:
    import copy

    theirs = {"Id": "thumbs", "LambdaFunctionArn": ARN + "-other", "Events": ["s3:*"]}
    current = {"LambdaFunctionConfigurations": [theirs], "TopicConfigurations": [],
               "ResponseMetadata": {"RequestId": "x"}}
    before = copy.deepcopy(current)
    ours = notifications.our_entry(ARN, "sync", "")
    merged = notifications.with_ours(current, ours, "sync", ARN)
    ours["Events"].append("s3:ObjectRestore:*")  # the caller's dict is not shared
    assert merged == {"LambdaFunctionConfigurations": [
        theirs, notifications.our_entry(ARN, "sync", "")]}
    assert notifications.with_eventbridge(current, True) == {
        "LambdaFunctionConfigurations": [theirs], "EventBridgeConfiguration": {}}
    assert notifications.with_eventbridge(
        {**current, "EventBridgeConfiguration": {}}, False) == {
        "LambdaFunctionConfigurations": [theirs]}
    assert notifications.without_ours(merged, "sync", ARN) == {
        "LambdaFunctionConfigurations": [theirs]}
    assert current == before
    assert notifications.clean(None) == {}
    only_ours = {"LambdaFunctionConfigurations": [notifications.our_entry(ARN, "sync", "")],
                 "QueueConfigurations": queue(["s3:*"])["QueueConfigurations"]}
    assert notifications.without_ours(only_ours, "sync", ARN) == {
        "QueueConfigurations": only_ours["QueueConfigurations"]}
    assert notifications.with_ours({}, ours, "sync", ARN) == {
        "LambdaFunctionConfigurations": [ours]}


def test_same_entry_compares_everything_s3_applies() -> None:
    ours = notifications.our_entry(ARN, "sync", "pkgs/")

    def with_rules(*rules):
        return {**ours, "Filter": {"Key": {"FilterRules": list(rules)}}}

    assert notifications.same_entry(None, None)
    assert not notifications.same_entry(ours, None)
    assert not notifications.same_entry(None, ours)
    assert not notifications.same_entry(ours, {**ours, "Id": "other"})
    assert not notifications.same_entry(ours, {**ours, "LambdaFunctionArn": ARN + "2"})
    assert not notifications.same_entry(ours, {**ours, "Events": ["s3:ObjectCreated:*"]})
    assert notifications.same_entry(ours, with_rules({"Name": "PREFIX", "Value": "pkgs/"}))
    assert not notifications.same_entry(ours, with_rules(
        {"Name": "prefix", "Value": "pkgs/"}, {"Name": "suffix", "Value": ".whl"}))
    assert notifications.same_entry(
        with_rules({"Name": "Suffix", "Value": ".whl"}, {"Name": "prefix", "Value": "pkgs/"}),
        with_rules({"Name": "prefix", "Value": "pkgs/"}, {"Name": "suffix", "Value": ".whl"}))
    assert not notifications.same_entry(ours, with_rules({"Name": "prefix"}))
    assert not notifications.same_entry(ours, with_rules({"Value": "pkgs/"}))
    assert notifications.same_entry({**ours, "Filter": {}}, notifications.our_entry(
        ARN, "sync", ""))


def test_an_overlap_names_the_entry_its_destination_and_the_shared_events() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:t"
    config = {
        "LambdaFunctionConfigurations": [notifications.our_entry(ARN, "sync", "")],
        "TopicConfigurations": [{"TopicArn": topic, "Events": [
            "s3:ObjectRestore:*", "s3:ObjectRemoved:Delete", "s3:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "Suffix", "Value": ".whl"}]}}}],
        "QueueConfigurations": None,
    }
    [found] = notifications.overlaps(config, "pkgs/", "sync", ARN)
    assert found == notifications.Overlap(
        kind="SNS topic", id="?", destination=topic,
        events=("s3:ObjectRemoved:Delete", "s3:*"), prefix="", suffix=".whl")
    assert found.describe() == (f"SNS topic notification '?' -> {topic} "
                                "(s3:ObjectRemoved:Delete, s3:*; no prefix filter, "
                                "suffix '.whl')")
    [found] = notifications.overlaps(queue(["s3:ObjectCreated:Put"], "pk"), "pkgs/", "s", ARN)
    assert found.describe() == (f"SQS queue notification 'theirs' -> {QUEUE} "
                                "(s3:ObjectCreated:Put; prefix 'pk')")
    lam = {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": ARN + "2",
                                             "Events": ["s3:ObjectCreated:*"]}]}
    [found] = notifications.overlaps(lam, "", "sync", ARN)
    assert (found.kind, found.destination) == ("Lambda function", ARN + "2")


def test_entries_with_parts_missing_are_read_as_s3_means_them() -> None:
    """Hand-written documents (the console, scripts) leave out what S3 would add."""
    ours = notifications.our_entry(ARN, "sync", "")
    assert notifications.find_ours({}, "sync", ARN) == []
    assert notifications.with_eventbridge({}, False) == {}
    assert notifications.same_entry({"Id": "x"}, {"Id": "x"})
    no_value = {**ours, "Filter": {"Key": {"FilterRules": [{"Name": "prefix"},
                                                           {"Name": "suffix"}]}}}
    assert notifications.same_entry(no_value, ours)
    assert notifications.overlaps({"QueueConfigurations": [{"Id": "q", "QueueArn": QUEUE}]},
                                  "", "sync", ARN) == []


def test_our_entry_aimed_at_an_older_arn_is_still_ours() -> None:
    """Our Id marks the entry even when it points at a function since replaced."""
    stale = {**notifications.our_entry(ARN + "-old", "sync", ""), "Id": "pypicloud-s3sync-sync"}
    config = {"LambdaFunctionConfigurations": [stale]}
    assert notifications.overlaps(config, "", "sync", ARN) == []
    assert notifications.without_ours(config, "sync", ARN) == {}
    ours = notifications.our_entry(ARN, "sync", "")
    assert notifications.with_ours(config, ours, "sync", ARN) == {
        "LambdaFunctionConfigurations": [ours]}


def test_an_overlap_after_an_entry_that_does_not_overlap_is_found() -> None:
    config = {"QueueConfigurations": [
        {"Id": "restore", "QueueArn": QUEUE, "Events": ["s3:ObjectRestore:*"]},
        {"Id": "created", "QueueArn": QUEUE, "Events": ["s3:ObjectCreated:*"]}]}
    assert [o.id for o in notifications.overlaps(config, "", "sync", ARN)] == ["created"]


# -- S3's validation of the destinations -------------------------------------------------
# "After Amazon S3 receives this request, it first verifies that any Amazon Simple
# Notification Service (Amazon SNS) or Amazon Simple Queue Service (Amazon SQS)
# destination exists [...]"; SkipDestinationValidation "Skips validation of Amazon SQS,
# Amazon SNS, and Lambda destinations" (PutBucketNotificationConfiguration).

def test_a_write_that_only_removes_or_switches_eventbridge_adds_nothing_to_validate():
    ours = notifications.our_entry(ARN, "sync", "pkgs/")
    theirs = queue(["s3:ObjectRemoved:*"], "audit/")
    both = notifications.with_ours(theirs, ours, "sync", ARN)
    removed = notifications.without_ours(both, "sync", ARN)
    assert not notifications.adds_destination(both, removed)
    assert not notifications.adds_destination(
        both, notifications.with_eventbridge(removed, True))
    assert notifications.adds_destination(theirs, both)
    moved = notifications.with_ours(both, notifications.our_entry(ARN, "sync", "wheels/"),
                                    "sync", ARN)
    assert notifications.adds_destination(both, moved)  # a changed entry is new to S3


def test_the_destinations_s3_could_not_validate_are_read_from_its_error():
    error = {"Code": "InvalidArgument", "Message": notifications.UNVALIDATED,
             "ArgumentName2": QUEUE, "ArgumentValue2": "queue gone",
             "ArgumentName1": ARN, "ArgumentValue1": "not authorized"}
    failed = notifications.unvalidated(error)
    assert failed == [(ARN, "not authorized"), (QUEUE, "queue gone")]
    assert notifications.foreign(failed, ARN) == [(QUEUE, "queue gone")]
    assert notifications.foreign([(f"{ARN}:live", "x")], ARN) == []  # an alias of ours
    assert notifications.unvalidated({"Code": "InvalidArgument",
                                      "Message": notifications.UNVALIDATED}) == []
    assert notifications.unvalidated({"Code": "InvalidArgument",
                                      "Message": "The ARN is not well formed"}) is None
