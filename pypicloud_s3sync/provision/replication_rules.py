"""Reading a bucket's replication rules as S3 applies them: what the rules of ours are
planned with, what status's path check judges, and what verify's diagnosis names.

S3's two rule schemas differ: the first has a top-level ``Prefix`` and always
replicates delete markers; the second filters (``Filter.Prefix``, ``Filter.And``, or a
tag) and replicates delete markers only with ``DeleteMarkerReplication`` enabled.
pypicloud tags no object, so a tag filter replicates none of the packages.
"""

from __future__ import annotations

from typing import Any


def rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a rule replicates, or None for a tag filter."""
    filt = rule.get("Filter")
    if filt is None:  # the first schema: a top-level prefix
        return str(rule.get("Prefix", ""))
    if "Tag" in filt or (filt.get("And") or {}).get("Tags"):
        return None
    return str(filt.get("Prefix", (filt.get("And") or {}).get("Prefix", "")) or "")


def covers(rule: dict[str, Any], prefix: str) -> bool:
    """Whether every key under ``prefix`` matches the rule."""
    theirs = rule_prefix(rule)
    return theirs is not None and prefix.startswith(theirs)


def replicates_deletes(rule: dict[str, Any]) -> bool:
    """The first schema (no Filter) always replicates delete markers."""
    if rule.get("Filter") is None:
        return True
    return (rule.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled"


def destination(rule: dict[str, Any]) -> str:
    """The bucket a rule replicates to (its ARN's last part)."""
    return str((rule.get("Destination") or {}).get("Bucket", "")).rsplit(":", 1)[-1]


__all__ = ["covers", "destination", "replicates_deletes", "rule_prefix"]
