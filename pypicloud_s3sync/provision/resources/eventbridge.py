"""EventBridge rules pointed at the function, shared by the delivery rule and the
schedule: the rule's one target, and its removal in the order EventBridge requires."""

from __future__ import annotations

from typing import Any

from ..names import TARGET_ID
from .base import Planning


def rule_targets(p: Planning, resource: str, row: str, name: str,
                 current: list[dict[str, Any]]) -> None:
    """Point rule ``name`` at the function alone.  Only Id and Arn are compared, so an
    Input an operator added to our target by hand (a deep reconcile, say) is kept."""
    targets = [{"Id": TARGET_ID, "Arn": p.desired.function_arn}]
    have = [{"Id": t["Id"], "Arn": t["Arn"]} for t in current]
    ok = have == targets
    p.row(row, name, p.desired.function_arn, ", ".join(t["Arn"] for t in have) or "missing",
          ok)
    if not ok:
        p.call(resource, "update", name, f"point rule {name} at {p.fname}",
               "events.put_targets", {"Rule": name, "Targets": targets})


def delete_rule(p: Planning, resource: str, name: str, current: list[dict[str, Any]],
                what: str = "") -> None:
    """Remove rule ``name``: its targets first, as EventBridge requires."""
    if current:
        p.call(resource, "delete", name, f"remove the targets of EventBridge rule {name}",
               "events.remove_targets", {"Rule": name, "Ids": [t["Id"] for t in current]})
    p.call(resource, "delete", name, f"delete EventBridge rule {name}{what}",
           "events.delete_rule", {"Name": name})


__all__ = ["delete_rule", "rule_targets"]
