"""S3 replication, standing in for S3's own because moto does not replicate.

moto stores a bucket's replication configuration and never acts on it.  The demo and
the tests need objects to travel between regions' buckets as S3 would carry them, so
this copies them, honouring each source bucket's stored configuration the way the S3
user guide describes replication (live replication, "Replicating objects"):

* Only rules whose ``Status`` is ``Enabled`` act, and only on keys their filter
  matches (``Filter.Prefix``, ``Filter.And.Prefix``, or the first schema's top-level
  ``Prefix``); a tag filter matches no object here (nothing it copies is tagged).
* "If there are two or more rules with the same destination bucket, then objects are
  replicated according to the rule with the highest priority.  The higher the number,
  the higher the priority."
* Delete markers are replicated only when the rule says
  ``DeleteMarkerReplication: {Status: Enabled}``, or the rule uses the first schema
  (no ``Filter``), which always replicates them.  A delete that names a version is
  never replicated ("If you specify an object version ID to delete ..., Amazon S3
  deletes that object version in the source bucket, but it doesn't replicate the
  deletion in the destination buckets").
* Replicas keep the source object's metadata; a replica is not replicated again
  (objects "that are replicas that were created by another replication rule" are
  not replicated), which is what keeps a two-way setup from looping.
* Objects that existed before the replicator started are not copied (existing objects
  need S3 Batch Replication).
* Both buckets must be versioned, or nothing is replicated.

What it does not do: keep the source's version IDs on replicas (moto assigns new
ones), set ``ReplicationStatus``, honour the rule's IAM role, KMS, Replication Time
Control or replica modification sync.  It is imported by the demo (two_regions.py)
and by the tests (tests/support/replicator.py): it lives with the demo because it is
the demo's stand-in first, and the tests hold it to the same S3 guide sentences.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any


def _rule_matches(rule: dict[str, Any], key: str) -> bool:
    if rule.get("Status") != "Enabled":
        return False
    filt = rule.get("Filter")
    if filt is None:
        return key.startswith(rule.get("Prefix") or "")
    if "Tag" in filt or (filt.get("And") or {}).get("Tags"):
        return False
    prefix = filt.get("Prefix", (filt.get("And") or {}).get("Prefix", "")) or ""
    return key.startswith(prefix)


def _deletes_markers(rule: dict[str, Any]) -> bool:
    if rule.get("Filter") is None:
        return True
    return (rule.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled"


def winning_rules(rules: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """For each destination bucket, the matching rule of highest priority."""
    chosen: dict[str, dict[str, Any]] = {}
    for rule in rules:
        if not _rule_matches(rule, key):
            continue
        bucket = (rule.get("Destination") or {}).get("Bucket", "").rsplit(":", 1)[-1]
        if bucket not in chosen or rule.get("Priority", 0) > chosen[bucket].get("Priority", 0):
            chosen[bucket] = rule
    return chosen


class Replicator:
    """Copies new versions and delete markers between ``clients``' buckets (bucket name
    -> an S3 client for it), by each source's replication configuration."""

    def __init__(self, clients: Mapping[str, Any], interval: float = 0.05) -> None:
        self.clients = dict(clients)
        self.interval = interval
        self.seen: set[tuple[str, str, str]] = set()
        self.replicas: set[tuple[str, str, str]] = set()
        self.copied: list[tuple[str, str, str, str]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []
        for bucket in self.clients:  # what exists now is not replicated
            self.seen.update((bucket, key, version) for key, version, _, _ in
                             self._versions(bucket))

    def _versions(self, bucket: str) -> list[tuple[str, str, bool, Any]]:
        """(key, version id, is a delete marker, last modified) of every version."""
        found = []
        pages = self.clients[bucket].get_paginator("list_object_versions").paginate(
            Bucket=bucket)
        for page in pages:
            found += [(v["Key"], v["VersionId"], False, v["LastModified"])
                      for v in page.get("Versions", [])]
            found += [(m["Key"], m["VersionId"], True, m["LastModified"])
                      for m in page.get("DeleteMarkers", [])]
        return sorted(found, key=lambda item: item[3])

    def _rules(self, bucket: str) -> list[dict[str, Any]]:
        from botocore.exceptions import ClientError

        try:
            config = self.clients[bucket].get_bucket_replication(Bucket=bucket)
        except ClientError:
            return []
        return config["ReplicationConfiguration"]["Rules"]

    def _versioned(self, bucket: str) -> bool:
        return self.clients[bucket].get_bucket_versioning(Bucket=bucket).get(
            "Status") == "Enabled"

    def step(self) -> int:
        """One pass over every bucket; the number of versions replicated."""
        done = 0
        for bucket in self.clients:
            new = [v for v in self._versions(bucket) if (bucket, v[0], v[1]) not in self.seen]
            if not new:
                continue
            rules = self._rules(bucket) if self._versioned(bucket) else []
            for key, version, marker, _ in new:
                self.seen.add((bucket, key, version))
                if (bucket, key, version) in self.replicas:
                    continue
                for target, rule in winning_rules(rules, key).items():
                    if target in self.clients and self._versioned(target):
                        done += self._replicate(bucket, key, version, marker, target, rule)
        return done

    def _replicate(self, bucket: str, key: str, version: str, marker: bool, target: str,
                   rule: dict[str, Any]) -> int:
        from botocore.exceptions import ClientError

        client = self.clients[target]
        try:
            if marker:
                if not _deletes_markers(rule):
                    return 0
                made = client.delete_object(Bucket=target, Key=key)
            else:
                made = client.copy_object(
                    Bucket=target, Key=key, MetadataDirective="COPY",
                    CopySource={"Bucket": bucket, "Key": key, "VersionId": version})
        except ClientError:  # the source version was deleted meanwhile: nothing to copy
            return 0
        replica = made.get("VersionId")
        if replica:
            self.replicas.add((target, key, replica))
        self.copied.append((bucket, target, key, "delete marker" if marker else "version"))
        return 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - kept for the caller to look at
                self.errors.append(exc)
            self._stop.wait(self.interval)

    def start(self) -> Replicator:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="replicator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
