"""Read what exists before a plan: each kind reads its own (its module's ``read``), and
this reads the facts no single kind owns, which the guards check before any kind plans.

The bucket is read first because create and status refuse a missing one before reading
anything else, while delete goes on without it (what is outside the bucket can still be
removed); the kinds then read in :data:`~.resources.READ_ORDER`, and the stack that made
the resources is found in their tags last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .aws import error_code, read_or_none
from .errors import DeployError
from .resources import READ_ORDER

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .aws import AwsClients
    from .resources.base import Planning


def read(p: Planning, *, need_bucket: bool = True) -> None:
    """Fill ``p.actual`` with Get/List calls only; raises for an unreadable bucket, and
    for a missing one unless ``need_bucket`` is False (delete)."""
    _read_bucket(p, need_bucket)
    p.actual.db_secret = _read_db_secret(p.config, p.clients)
    for kind in READ_ORDER:
        kind.read(p)
    p.actual.stack = p.actual.find_stack()


def _read_bucket(p: Planning, need_bucket: bool) -> None:
    """The bucket's region (the plan's must match) and whether it exists."""
    from botocore.exceptions import ClientError

    bucket = p.config.target.bucket
    try:
        p.actual.bucket_region = bucket_region(
            p.clients.client("s3").get_bucket_location(Bucket=bucket)
            .get("LocationConstraint"))
    except ClientError as exc:
        if error_code(exc) != "NoSuchBucket":
            raise
        if need_bucket:
            raise DeployError(
                f"bucket {bucket} does not exist in this account "
                f"(region {p.clients.region}); check storage.bucket, or start pypicloud "
                "once so that it creates the bucket"
            ) from exc
        p.actual.bucket_missing = True


def _read_db_secret(config: PypicloudConfig, clients: AwsClients) -> str | None:
    """The secret's value, when it is one this plan can use: a malformed reference or
    one in another region is the guard's to report, without a read."""
    from ..function.dbsecret import SecretError, parse_ref, read_value
    from .actual import MISSING

    reference = config.option("db_url_secret")
    if not reference:
        return None
    try:
        ref = parse_ref(str(reference))
    except SecretError:
        return None
    if ref.region != clients.region:
        return None
    try:
        value = read_or_none(read_value, ref=ref,
                             client=lambda service, _region: clients.client(service))
    except SecretError:
        return ""  # binary: the guard reports it as no URL
    if value is None:
        return MISSING
    return value


def bucket_region(location_constraint: str | None) -> str:
    """The region GetBucketLocation means: none is us-east-1, and ``EU`` is eu-west-1."""
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(
        location_constraint, location_constraint or "us-east-1")


__all__ = ["bucket_region", "read"]
