"""``--alarm-topic``: our CloudWatch alarms (errors, lag, dropped events), made or updated
with the option and removed (ours only) without it or on delete.  What they watch and
why is in :mod:`..alarms`, with the option's parsing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import alarms, tags
from ..alarms import (
    ALARM_RUNBOOK,
    ALARM_TOPIC,
    ALL_KINDS,
    DEFAULT_LAG,
    alarm_name,
    alarm_names,
    compared_fields,
    desired,
    ours,
    summary,
    topic_region,
)
from ..errors import FUNCTION_NAME, DeployError, Fix
from ..names import dead_letter_queue_name, queue_name
from ..plan import OK, WARN, Check, Step
from .base import Grantee, Planning
from .cfn import DEAD_LETTER_QUEUE, QUEUE, Resources, api, function_ref, resource, unrendered
from .grants import allow

KIND = "alarm"
#: The alarms' logical ids, by the kind :mod:`..alarms` names them with.
LOGICAL = {"errors": "ErrorsAlarm", "lag": "LagAlarm", "dropped": "DroppedAlarm",
           "queue-age": "QueueAgeAlarm", "dead-letters": "DeadLettersAlarm"}



def read(p: Planning) -> None:
    """Read whether wanted or not, so that dropping ``--alarm-topic`` removes them."""
    p.actual.alarms, p.actual.alarm_tags = alarms.read(p.clients.client("cloudwatch"),
                                                       p.fname)


def name(p: Planning) -> str:
    return ", ".join(alarm_names(p.fname))


def plan(p: Planning) -> None:
    """The rows and steps for each alarm: made or updated with ``--alarm-topic``,
    removed (ours only) without it."""
    options, found = p.options, p.actual.alarms
    topic = options.alarm_topic
    if topic is None:
        _remove_ours(p, shown=True)
        return
    region = topic_region(topic)
    if region != p.clients.region:
        raise DeployError(
            f"SNS topic {topic} is in {region}, but the function and its alarms would be "
            f"in {p.clients.region}; CloudWatch alarms notify topics in their own "
            "region only",
            Fix(*ALARM_TOPIC, f"give {{}} a topic in {p.clients.region}"))
    lag = options.lag_threshold or DEFAULT_LAG
    queues = ((queue_name(p.fname), dead_letter_queue_name(p.fname))
              if options.delivery == "sqs" else None)
    wanted = desired(p.fname, topic, lag, queues)
    for params in wanted.values():
        name = params["AlarmName"]
        alarm = found.get(name)
        want = summary(params)
        if alarm is not None and not ours(p.actual.alarm_tags, name):
            if p.strict:
                raise DeployError(
                    f"CloudWatch alarm {name} exists but was not created by "
                    f"pypicloud-s3sync (no {tags.MANAGED_TAG} tag)",
                    Fix(*FUNCTION_NAME, "delete or rename it, or choose another function "
                                        "name with {}"))
            p.row(KIND, name, want, "exists, not created by pypicloud-s3sync",
                        False)
            continue
        changed = ([] if alarm is None else
                   [key for key, value in compared_fields(params).items()
                    if compared_fields(alarm)[key] != value])
        have = "missing" if alarm is None else summary(alarm)
        if changed and have == want:
            have += f" (differs in {', '.join(changed)})"
        p.row(KIND, name, want, have, alarm is not None and not changed)
        if alarm is None or changed:
            verb = "update" if alarm is not None else "create"
            what = f" ({', '.join(changed)})" if changed else ""
            p.call(KIND, verb, name, f"{verb} CloudWatch alarm {name}{what}: {want}",
                   "cloudwatch.put_metric_alarm", params,
                   details={"changed": changed} if changed else {})
    _remove_ours(p, shown=True, keep={params["AlarmName"] for params in wanted.values()})


def teardown(p: Planning) -> None:
    """Remove our alarms, whatever the options say; leave anyone else's."""
    _remove_ours(p, shown=False)


def _remove_ours(p: Planning, *, shown: bool, keep: frozenset[str] | set[str] = frozenset()
                 ) -> None:
    """One delete step for the alarms of ours that exist, a note for one of our name
    that is not ours.  ``shown``: create without ``--alarm-topic`` also lists each as a
    drifted status row, and says why they go.

    One call for all of them: DeleteAlarms takes a list ("You can delete up to 100
    alarms in one operation", botocore's CloudWatch model), and "if you specify any
    incorrect alarm names, the alarms you specify with correct names are still deleted",
    so one alarm already gone keeps no other of ours.
    """
    why = (": --alarm-topic is no longer set" if not keep else
           ": --delivery is no longer sqs") if shown else ""
    gone = []
    for name in alarm_names(p.fname):
        alarm = p.actual.alarms.get(name)
        if alarm is None or name in keep:
            continue
        if not ours(p.actual.alarm_tags, name):
            p.notes.append(f"CloudWatch alarm {name} was not created by "
                           "pypicloud-s3sync; left alone")
            continue
        if shown:
            p.row(KIND, name, "none (no --delivery sqs)" if keep else "none (no --alarm-topic)",
                  summary(alarm), False)
        gone.append(name)
    if gone:
        listed = ", ".join(gone)
        p.call(KIND, "delete", listed,
               f"delete CloudWatch alarm{'s' if len(gone) > 1 else ''} {listed}{why}",
               "cloudwatch.delete_alarms", {"AlarmNames": gone})


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``ErrorsAlarm``, ``LagAlarm`` and ``DroppedAlarm``: create's fields, the function
    by reference."""
    logical = {alarm_name(p.fname, kind): name for kind, name in LOGICAL.items()}
    # Each dimension's value as the stack's own resource, so also a dependency.
    refs = {("FunctionName", p.fname): function_ref(),
            ("QueueName", queue_name(p.fname)): {"Fn::GetAtt": [QUEUE, "QueueName"]},
            ("QueueName", dead_letter_queue_name(p.fname)):
                {"Fn::GetAtt": [DEAD_LETTER_QUEUE, "QueueName"]}}
    found: Resources = {}
    for step in created:
        if api(step) != "cloudwatch.put_metric_alarm":
            raise unrendered(KIND, step)
        params = dict(step.params)
        params["Dimensions"] = [{**d, "Value": refs[d["Name"], d["Value"]]}
                                for d in params["Dimensions"]]
        found[logical[params["AlarmName"]]] = resource("AWS::CloudWatch::Alarm", params)
    return found


#: Each alarm is read on every plan (so that dropping the option removes it), made with
#: our tag, updated, deleted; CloudWatch authorizes each by the alarm's name.
OPERATOR_ACTIONS = ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
                    "cloudwatch:ListTagsForResource", "cloudwatch:PutMetricAlarm",
                    "cloudwatch:TagResource"]


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    return [allow("Alarms", OPERATOR_ACTIONS,
                  [s.arn("cloudwatch", f"alarm:{name}") for name in alarm_names(s.function_name)])]


def checks(p: Planning) -> list[Check]:
    """Each of our alarms' current state, read with the alarms themselves (no extra
    call): an alarm firing now is news the rows cannot give.  A missing or foreign alarm
    is a drifted row already."""
    if not p.options.alarm_topic:
        return []
    found = []
    for kind in ALL_KINDS:
        name = alarm_name(p.fname, kind)
        alarm = p.actual.alarms.get(name)
        if alarm is None or not ours(p.actual.alarm_tags, name):
            continue
        state = alarm.get("StateValue") or "INSUFFICIENT_DATA"
        check = f"{kind}-alarm"
        if state == "ALARM":
            found.append(Check(check, WARN, f"{name} is ALARM: {alarm.get('StateReason', '')}"
                               .rstrip(": "), ALARM_RUNBOOK[kind].format(fname=p.fname)))
        elif state == "OK":
            found.append(Check(check, OK, f"{name} is OK"))
        else:
            found.append(Check(check, OK, f"{name} is {state}: no data in its last period "
                                          "yet (missing data counts as not breaching)"))
    return found
