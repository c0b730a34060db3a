"""One correction to moto, so tests see what AWS returns.

moto 5.2.5 stores a bucket's ``EventBridgeConfiguration`` but leaves it out of
``GetBucketNotificationConfiguration``; AWS returns it.  Code that merges notification
configurations (ours) must see it to keep it, so without this correction every test of
"EventBridge settings survive" would test moto's gap instead of our code.  The patch
adds the stored element to moto's own response and does nothing when moto already
returns it; ``moto_returns_eventbridge()`` lets a test notice when moto fixed this.
"""

from __future__ import annotations

from typing import Any

_PATCHED = False


def _has_eventbridge(response: Any) -> bool:
    config = response.backend.get_bucket_notification_configuration(response.bucket_name)
    return config is not None and getattr(config, "event_bridge", None) is not None


def apply() -> None:
    """Make moto's S3 GetBucketNotificationConfiguration include EventBridgeConfiguration."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.core.responses import ActionResult
    from moto.s3.responses import S3Response

    original = S3Response.serialized

    def serialized(self: Any, action_result: ActionResult) -> Any:
        result = action_result.result
        if (self.data.get("Action") == "GetBucketNotificationConfiguration"
                and isinstance(result, dict) and "EventBridgeConfiguration" not in result
                and _has_eventbridge(self)):
            action_result = ActionResult({**result, "EventBridgeConfiguration": {}})
        return original(self, action_result)

    S3Response.serialized = serialized
    _PATCHED = True
