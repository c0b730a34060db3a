"""The buckets a bucket replicates to, as a plan of several inis hands them to the kinds.

A plan for one ini has none, and then no kind that works between regions plans
anything: one region alone is provisioned exactly as before.  Only the first ini that
names a bucket gets its peers, so a bucket shared by several servers is planned once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    """Another region's bucket, and the prefix its pypicloud keeps packages under."""

    bucket: str
    region: str
    prefix: str = ""
    partition: str = "aws"

    @property
    def arn(self) -> str:
        """The bucket's ARN (S3 ARNs carry no region or account)."""
        return f"arn:{self.partition}:s3:::{self.bucket}"


__all__ = ["Peer"]
