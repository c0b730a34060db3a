"""The stand-in for S3's replication (moto stores the rules and never replicates)
behaves as the S3 user guide describes replication, so that what verify reports on moto
is what S3 would make of the same rules.  Each test quotes the sentence it holds the
replicator to (see demo/replicator.py)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from ..support import moto_gaps
from ..support.replicator import Replicator

SOURCE, DEST = "source-bucket", "dest-bucket"


@pytest.fixture
def s3(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    moto_gaps.apply(monkeypatch)  # moto reads its stored rules back without their filters
    client = boto3.client("s3", region_name="us-east-1")
    for bucket in (SOURCE, DEST):
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket,
                                     VersioningConfiguration={"Status": "Enabled"})
    return client


def rule(rule_id: str, priority: int, *, prefix: str = "", markers: bool = True,
         status: str = "Enabled", dest: str = DEST) -> dict[str, Any]:
    return {"ID": rule_id, "Priority": priority, "Status": status,
            "Filter": {"Prefix": prefix},
            "DeleteMarkerReplication": {"Status": "Enabled" if markers else "Disabled"},
            "Destination": {"Bucket": f"arn:aws:s3:::{dest}"}}


def rules(s3: Any, bucket: str, *given: dict[str, Any]) -> None:
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/replication", "Rules": list(given)})


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_an_enabled_rule_copies_matching_keys_with_their_metadata(s3: Any) -> None:
    """"Replicas keep the source's user metadata"; only keys the filter matches travel,
    and only under an enabled rule."""
    rules(s3, SOURCE, rule("pkgs", 1, prefix="pkgs/"), rule("off", 2, prefix="other/",
                                                            status="Disabled"))
    replicator = Replicator({SOURCE: s3, DEST: s3})
    s3.put_object(Bucket=SOURCE, Key="pkgs/a.whl", Body=b"1", Metadata={"name": "a"})
    s3.put_object(Bucket=SOURCE, Key="other/b.whl", Body=b"2")
    s3.put_object(Bucket=SOURCE, Key="c.whl", Body=b"3")
    replicator.step()
    assert keys(s3, DEST) == ["pkgs/a.whl"]
    assert s3.head_object(Bucket=DEST, Key="pkgs/a.whl")["Metadata"] == {"name": "a"}


def test_objects_from_before_are_not_replicated(s3: Any) -> None:
    """Existing objects need S3 Batch Replication."""
    s3.put_object(Bucket=SOURCE, Key="old.whl", Body=b"1")
    rules(s3, SOURCE, rule("all", 1))
    Replicator({SOURCE: s3, DEST: s3}).step()
    assert keys(s3, DEST) == []


def test_the_highest_priority_rule_decides_about_delete_markers(s3: Any) -> None:
    """"If there are two or more rules with the same destination bucket, then objects
    are replicated according to the rule with the highest priority.  The higher the
    number, the higher the priority."""
    rules(s3, SOURCE, rule("markers", 1), rule("no-markers", 2, markers=False))
    replicator = Replicator({SOURCE: s3, DEST: s3})
    s3.put_object(Bucket=SOURCE, Key="a.whl", Body=b"1")
    replicator.step()
    s3.delete_object(Bucket=SOURCE, Key="a.whl")
    replicator.step()
    assert keys(s3, DEST) == ["a.whl"]  # the marker stayed behind

    rules(s3, SOURCE, rule("markers", 2), rule("no-markers", 1, markers=False))
    s3.put_object(Bucket=SOURCE, Key="b.whl", Body=b"2")
    replicator.step()
    s3.delete_object(Bucket=SOURCE, Key="b.whl")
    replicator.step()
    assert keys(s3, DEST) == ["a.whl"]


def test_a_delete_by_version_id_and_a_replica_travel_no_further(s3: Any) -> None:
    """"If you specify an object version ID to delete in a DELETE request, Amazon S3
    deletes that object version in the source bucket, but it doesn't replicate the
    deletion"; and a replica is not replicated again, even by a rule back."""
    rules(s3, SOURCE, rule("there", 1))
    rules(s3, DEST, rule("back", 1, dest=SOURCE))
    replicator = Replicator({SOURCE: s3, DEST: s3})
    version = s3.put_object(Bucket=SOURCE, Key="a.whl", Body=b"1")["VersionId"]
    replicator.step()
    replicator.step()
    assert len(s3.list_object_versions(Bucket=SOURCE)["Versions"]) == 1
    s3.delete_object(Bucket=SOURCE, Key="a.whl", VersionId=version)
    replicator.step()
    assert keys(s3, SOURCE) == [] and keys(s3, DEST) == ["a.whl"]
