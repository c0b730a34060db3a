"""EventBridge rules pointed at the function, shared by the delivery rule and the
schedule: the rule's one target, its removal in the order EventBridge requires, and the
rule as a template holds it."""

from __future__ import annotations

import json
from typing import Any

from ..names import TARGET_ID
from ..plan import Step
from .base import Grantee, Planning
from .cfn import Resources, api, resource
from .grants import allow

#: The calls that make a rule, and so one ``AWS::Events::Rule``.
RULE_CALLS = ("events.put_rule", "events.put_targets")


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


def add_rule(found: Resources, step: Step, logical: str, permission: str) -> None:
    """A :data:`RULE_CALLS` step into rule ``logical``: the rule made only after its
    invoke ``permission`` (it may fire at once), its targets the rule's own property."""
    if api(step) == "events.put_rule":
        params = dict(step.params)
        if "EventPattern" in params:
            params["EventPattern"] = json.loads(params["EventPattern"])
        found[logical] = resource("AWS::Events::Rule", params, DependsOn=permission)
    else:
        found[logical]["Properties"]["Targets"] = step.params["Targets"]


__all__ = ["RULE_CALLS", "add_rule", "delete_rule", "rule_targets"]


#: Each rule is read on every plan (so that dropping its option removes it), made with
#: our tag and its one target, and removed target first.
OPERATOR_ACTIONS = [
    "events:DeleteRule", "events:DescribeRule", "events:ListTagsForResource",
    "events:ListTargetsByRule", "events:PutRule", "events:PutTargets",
    "events:RemoveTargets", "events:TagResource",
]


def rule_statement(s: Grantee, name: str) -> dict[str, Any]:
    """Both rules' kinds grant under one ``Rules`` Sid, by the rule's name."""
    return allow("Rules", OPERATOR_ACTIONS, [s.arn("events", f"rule/{name}")])
