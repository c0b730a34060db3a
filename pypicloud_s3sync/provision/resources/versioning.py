"""The bucket's versioning, which replication needs on both buckets: only in a plan of
several inis (with peers), and turned on only when the operator says so.

S3 refuses a replication rule from or to a bucket whose versioning is not ``Enabled``,
and versioning "can never be turned off again, only suspended": a bucket versioned once
keeps every object's old versions (and their storage cost) unless a lifecycle rule
expires them.  So create refuses an unversioned (or suspended) bucket unless
``--allow-versioning`` is given, and delete leaves versioning on, since nothing can
undo it.  The bucket is not ours (pypicloud made it), so it has no form in our stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ALLOW_VERSIONING, DeployError, Fix
from ..plan import Check, Step
from .base import Grantee, Planning
from .cfn import Resources
from .grants import on_bucket

KIND = "versioning"
ENABLED = "Enabled"


def name(p: Planning) -> str:
    return p.config.target.bucket


def read(p: Planning) -> None:
    """GetBucketVersioning of the bucket ("" when it was never enabled), only with
    peers: one ini alone reads nothing more than before."""
    if not p.peers or p.actual.bucket_missing:
        return
    answer = p.clients.client("s3").get_bucket_versioning(Bucket=name(p))
    p.actual.bucket_versioning = answer.get("Status") or ""


def plan(p: Planning) -> None:
    if not p.peers:
        return
    state = p.actual.bucket_versioning or ""
    bucket = name(p)
    if state == ENABLED:
        p.row(KIND, bucket, ENABLED, ENABLED)
        return
    shown = state.lower() or "never enabled"
    if not p.options.allow_versioning:
        raise DeployError(
            f"bucket {bucket} versioning is {shown}: replication needs it on both buckets "
            "(S3 refuses a rule from or to a bucket without it), and once on it can never "
            "be turned off again, only suspended (old versions stay, and cost, unless a "
            "lifecycle rule expires them)",
            Fix(*ALLOW_VERSIONING, "give {} to turn it on"))
    p.row(KIND, bucket, ENABLED, shown)
    p.call(KIND, "update", bucket,
           f"turn on versioning of bucket {bucket} (replication needs it; it can never be "
           "turned off again, only suspended)", "s3.put_bucket_versioning",
           {"Bucket": bucket, "VersioningConfiguration": {"Status": ENABLED}})


def teardown(p: Planning) -> None:
    """Nothing to undo: versioning cannot be turned off."""
    if p.peers and p.actual.bucket_versioning == ENABLED:
        p.notes.append(f"bucket {name(p)} stays versioned: S3 can only suspend "
                       "versioning, never turn it off, and suspending it would stop "
                       "replication into it for the other regions")


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """None: the bucket is pypicloud's, not our stack's, and export plans one ini
    (no peers), where this kind plans nothing."""
    return {}


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """Reading the bucket's versioning and turning it on, only for several inis."""
    if not s.replicates:
        return []
    return [on_bucket(s, ["s3:GetBucketVersioning", "s3:PutBucketVersioning"])]


def checks(p: Planning) -> list[Check]:
    """None: status's path checks already judge the bucket's versioning."""
    return []
