"""What the kinds' operator statements share: one statement per resource, however many
kinds call it.

Several kinds call the same resource (the function and its settings, the bucket's
notification document, the rules); each grants only the actions it calls, under that
resource's one Sid, and the operator's policy merges statements of the same Sid.  The
policy so reads as one statement per resource, and no kind lists another kind's actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Grantee

#: The statement every call on the function goes in.
FUNCTION_SID = "Function"
#: The statement every call on the bucket itself (not its objects) goes in.
BUCKET_SID = "BucketNotifications"


def allow(sid: str, actions: Sequence[str], resource: str | list[str],
          condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Allow statement, with the key order the printed policy has."""
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": list(actions),
                                 "Resource": resource}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def on_function(s: Grantee, actions: Sequence[str]) -> dict[str, Any]:
    return allow(FUNCTION_SID, actions, s.arn("lambda", f"function:{s.function_name}"))


def on_bucket(s: Grantee, actions: Sequence[str]) -> dict[str, Any]:
    """The bucket's ARN: S3's has neither region nor account."""
    return allow(BUCKET_SID, actions, f"arn:{s.partition}:s3:::{s.config.target.bucket}")
