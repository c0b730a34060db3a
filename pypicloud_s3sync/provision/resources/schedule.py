"""``--reconcile-every``: an EventBridge schedule that invokes the function for a
reconcile (the expression's parsing is in :mod:`..schedule`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import tags
from ..aws import read_or_none
from ..errors import FUNCTION_NAME, DeployError, Fix
from ..names import SCHEDULE_PRINCIPAL, statement_id
from ..plan import Check, Step
from ..schedule import schedule_rule_name
from ..tags import tag_dict
from .base import Grantee, Planning
from .cfn import Resources, api, unrendered
from .eventbridge import RULE_CALLS, add_rule, delete_rule, rule_statement, rule_targets
from .permissions import invoke_statement, permission, permission_resource

KIND = "reconcile-schedule"


def read(p: Planning) -> None:
    """Read whether wanted or not, so that dropping the option removes it."""
    a, events, rule_name = p.actual, p.clients.client("events"), name(p)
    schedule = read_or_none(events.describe_rule, Name=rule_name)
    if not schedule:
        return
    a.schedule = schedule
    a.schedule_tags = tag_dict(
        events.list_tags_for_resource(ResourceARN=schedule["Arn"]).get("Tags"))
    a.schedule_targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]


def name(p: Planning) -> str:
    return schedule_rule_name(p.fname)


def plan(p: Planning) -> None:
    """Permission first (the rule may fire at once), then rule and target; without the
    option, remove exactly what we made."""
    a, d, o = p.actual, p.desired, p.options
    rule = name(p)
    arn = f"arn:{d.partition}:events:{p.clients.region}:{d.account}:rule/{rule}"
    sid = statement_id(SCHEDULE_PRINCIPAL, p.config.target.bucket)
    expression = o.reconcile_schedule
    if a.schedule is not None and not tags.managed(a.schedule_tags):
        raise DeployError(
            f"EventBridge rule {rule} exists but was not created by pypicloud-s3sync",
            Fix(*FUNCTION_NAME, "delete or rename it, or choose another function name "
                                "with {}"),
        )
    if expression is None:
        if a.schedule is not None:
            p.row(KIND, rule, "none", a.schedule.get("ScheduleExpression") or "a rule", False)
            _delete(p)
        permission(p, "events.amazonaws.com", arn, False, None, sid=sid)
        return
    have = a.schedule.get("ScheduleExpression") if a.schedule else None
    rule_ok = have == expression and a.schedule.get("State") == "ENABLED"
    p.row(KIND, rule, expression,
          (have or "a rule without schedule") if a.schedule else "missing", rule_ok)
    permission(p, "events.amazonaws.com", arn, True, None, sid=sid)
    if not rule_ok:
        p.call(KIND, "update" if a.schedule else "create", rule,
               f"{'update' if a.schedule else 'create'} EventBridge rule {rule}: reconcile "
               f"{p.fname} on {expression}", "events.put_rule",
               {"Name": rule, "ScheduleExpression": expression, "State": "ENABLED",
                "Description": "pypicloud-s3sync: reconcile the pypicloud cache with its "
                "bucket on a schedule",
                "Tags": [{"Key": tags.MANAGED_TAG, "Value": tags.MANAGED_VALUE}]},
               details={"from": have, "to": expression} if a.schedule else {})
    # We set no Input (EventBridge's own scheduled-event document is what the handler
    # recognises), but one an operator added by hand, e.g. {"detail": {"deep": true}}
    # for deep runs, is theirs and stays.
    rule_targets(p, KIND, "reconcile-target", rule, a.schedule_targets)


def _delete(p: Planning) -> None:
    delete_rule(p, KIND, name(p), p.actual.schedule_targets, " (scheduled reconcile)")


def teardown(p: Planning) -> None:
    if p.actual.schedule is None:
        return
    if tags.managed(p.actual.schedule_tags):
        _delete(p)
    else:
        p.notes.append(f"EventBridge rule {name(p)} is not ours; left alone")


#: Logical ids of the template form.
PERMISSION, RULE = "ScheduleInvokePermission", "ScheduleRule"


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``ScheduleRule`` and the permission it waits for."""
    found: Resources = {}
    for step in created:
        if api(step) == "lambda.add_permission":
            found[PERMISSION] = permission_resource(step)
        elif api(step) in RULE_CALLS:
            add_rule(found, step, RULE, PERMISSION)
        else:
            raise unrendered(KIND, step)
    return found


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """Its invoke permission and its rule."""
    return [invoke_statement(s), rule_statement(s, schedule_rule_name(s.function_name))]


def checks(p: Planning) -> list[Check]:
    """None: its rows are the whole of what status knows of it."""
    return []
