"""Our tag, which alone says a resource is ours to change or delete (anyone may make one
of our names), and AWS's two shapes of a resource's tags."""

from __future__ import annotations

from collections.abc import Mapping

MANAGED_TAG = "pypicloud-s3sync:managed"
MANAGED_VALUE = "true"


def managed(tags: Mapping[str, str]) -> bool:
    return tags.get(MANAGED_TAG) == MANAGED_VALUE


def tag_dict(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` as IAM and EventBridge return tags, as a dict."""
    return {t["Key"]: t["Value"] for t in tag_list or []}


__all__ = ["MANAGED_TAG", "MANAGED_VALUE", "managed", "tag_dict"]
