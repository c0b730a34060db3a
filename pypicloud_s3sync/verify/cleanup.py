"""No canary outlives a run: every version and delete marker under the canary prefix of
every bucket, and every canary entry of every cache, removed.

Each bucket is purged by itself because S3 does not replicate a delete that names a
version ("If you specify an object version ID to delete in a DELETE request, Amazon S3
deletes that object version in the source bucket, but it doesn't replicate the
deletion in the destination buckets", S3 user guide, replication of delete
operations); it needs ``s3:ListBucketVersions`` and ``s3:DeleteObjectVersion``.  The
same purge runs first, removing what an interrupted run left, and last, in a
``finally``, where a second pass over the buckets catches a replica that replication
wrote while the first was under way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .sites import CacheUnreachable, Site, listed

if TYPE_CHECKING:
    from .overhead import Meter


@dataclass(frozen=True)
class Removed:
    """One thing the purge removed: an object version, a delete marker or a cache
    entry."""

    where: str
    what: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "what": self.what, "name": self.name}


def purge_bucket(site: Site) -> list[Removed]:
    """Every version and delete marker under the site's canary prefix, deleted by
    VersionId."""
    found: list[tuple[str, str, str]] = []
    pages = site.s3.get_paginator("list_object_versions").paginate(
        Bucket=site.bucket, Prefix=site.key_prefix)
    for page in pages:
        found += [(v["Key"], v["VersionId"], "version") for v in page.get("Versions", [])]
        found += [(m["Key"], m["VersionId"], "delete marker")
                  for m in page.get("DeleteMarkers", [])]
    for start in range(0, len(found), 1000):
        chunk = found[start:start + 1000]
        answer = site.s3.delete_objects(Bucket=site.bucket, Delete={
            "Objects": [{"Key": key, "VersionId": version} for key, version, _ in chunk],
            "Quiet": True})
        if answer.get("Errors"):
            error = answer["Errors"][0]
            raise RuntimeError(f"could not delete canary {error['Key']} version "
                               f"{error.get('VersionId')} in bucket {site.bucket}: "
                               f"{error.get('Code')} {error.get('Message')} (verify needs "
                               "s3:DeleteObjectVersion on the canary prefix)")
    return [Removed(site.bucket, what, key) for key, _, what in found]


def purge_cache(site: Site, meter: Meter) -> list[Removed]:
    """Every canary entry of the site's cache; nothing for a cache that cannot be read
    (the run names it as the broken link)."""
    from ..function.sync import clear_filename, committing

    try:
        entries = listed(site, meter)
    except CacheUnreachable:
        return []
    removed = []
    with committing(site.cache):
        for filename, key in entries.items():
            clear_filename(site.cache, filename, key)
            removed.append(Removed(f"cache of {site.bucket}", "entry", filename))
    return removed


def purge(sites: Iterable[Site], meter: Meter, *, passes: int = 2) -> list[Removed]:
    """Buckets (``passes`` times, see the module's text), then caches."""
    sites = list(sites)
    removed = []
    for _ in range(passes):
        removed += [item for site in sites for item in purge_bucket(site)]
    removed += [item for site in sites for item in purge_cache(site, meter)]
    return removed

