"""``--alarm-topic``: CloudWatch alarms that tell an operator the sync broke or fell behind.

Opt-in, because an alarm needs somewhere to send it.  With a topic, create keeps three
metric alarms, each notifying the topic when they go to ALARM and when they come back
to OK:

``errors``
    Lambda's own ``AWS/Lambda`` ``Errors`` for the function: one failed invocation in
    five minutes.  A failure Lambda retries is still an error here: a retried event that
    then succeeds clears the alarm on the next quiet period.
``lag``
    The function's own ``LagSeconds`` (:mod:`..function.metrics`, same namespace and
    dimension): the slowest write in five minutes took more than ``--alarm-lag``
    seconds from the S3 event to the cache.
``dropped``
    Lambda's own ``AWS/Lambda`` ``AsyncEventsDropped`` for the function: at least one
    event in five minutes that Lambda gave up on, past ``--max-event-age`` or its
    retries ("events can exceed the maximum event age or exhaust the maximum retry
    attempts", Lambda Developer Guide, Types of metrics for Lambda functions).  Without
    an ``--on-failure`` destination that event is gone: the cache misses a change until
    a reconcile finds it, and nothing else would tell anyone.

Missing data is not breaching: a sync that had no uploads in a period is healthy, not
INSUFFICIENT_DATA for ever.  Each alarm carries our tag, so delete and a create without
the option remove only alarms we made; one of the same name made by anyone else is
refused (create) or left alone (delete).  Only the fields we set are compared, so a
re-run with the same settings plans nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..function import metrics
from . import tags
from .errors import OptionsError
from .names import MAX_ALARM_NAME, bounded
from .tags import tag_dict

TOPIC_FLAG, TOPIC_SETTING = "--alarm-topic", "s3sync.alarm_topic"
LAG_FLAG, LAG_SETTING = "--alarm-lag", "s3sync.alarm_lag"
ALARM_TOPIC = TOPIC_FLAG, TOPIC_SETTING
#: Seconds of lag above which the lag alarm fires when ``--alarm-lag`` is not given:
#: well past a healthy sync's seconds, well inside Lambda's retries of a failed event.
DEFAULT_LAG = 900.0
#: The period every alarm judges, in seconds.
PERIOD = 300
KINDS = ("errors", "lag", "dropped")
#: ``--delivery sqs`` adds two on its queues (see :func:`desired`); read and removed
#: like the others, so that a switch away from sqs removes them.
QUEUE_KINDS = ("queue-age", "dead-letters")
ALL_KINDS = KINDS + QUEUE_KINDS
#: The first thing to do when an alarm fires, said in full: an installed wheel has no
#: docs.  Status says it for a firing alarm, and the activity check for a lag above it.
ALARM_RUNBOOK = {
    "errors": "read the failed invocations' log lines: aws logs tail /aws/lambda/{fname} "
              "--since 1h --filter-pattern failed; fix the cause each names, then run "
              "'ppc-s3sync reconcile CONFIG' for what the retries gave up on",
    "lag": "look for throttles (raise --reserved-concurrency), errors being retried, or a "
           "replication backlog in the activity check",
    "dropped": "events were dropped after their retries or --max-event-age, so the cache "
               "misses those changes: run 'ppc-s3sync reconcile CONFIG' now; the errors "
               "alarm's log lines (aws logs tail /aws/lambda/{fname} --since 6h "
               "--filter-pattern failed) and the --on-failure destination's records say why",
    "queue-age": "'ppc-s3sync status CONFIG' says whether the mapping reads the queue and "
                 "what its last poll found; raise --max-concurrency if it cannot keep up",
    "dead-letters": "read why they failed: aws logs tail /aws/lambda/{fname} --since 1d "
                    "--filter-pattern failed; fix the cause, then 'ppc-s3sync redrive "
                    "CONFIG' sends them through the function again",
}
#: The fields of an alarm we set and compare; everything else AWS returns is its own.
COMPARED = ("AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions",
            "Namespace", "MetricName", "Statistic", "Dimensions", "Period",
            "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
            "TreatMissingData")
_OFF = ("", "off", "none")
_TOPIC = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):[A-Za-z0-9_.-]{1,256}$")
_SYMBOLS = {"GreaterThanOrEqualToThreshold": ">=", "GreaterThanThreshold": ">"}


def parse_topic(value: Any) -> str | None:
    """The topic's ARN; None (no alarms) for nothing or ``off``."""
    if value is None or str(value).strip().lower() in _OFF:
        return None
    text = str(value).strip()
    if not _TOPIC.match(text):
        raise OptionsError(
            f"alarm_topic = {text!r} is not valid: give an SNS topic ARN "
            "(arn:aws:sns:REGION:ACCOUNT:NAME), or off for no alarms")
    return text


def parse_lag(value: Any) -> float | None:
    """Seconds, above 0; None for nothing (the default applies when alarms are on)."""
    if value is None or str(value).strip() == "":
        return None
    try:
        lag = float(value)
    except (TypeError, ValueError):
        lag = math.nan
    if not math.isfinite(lag) or lag <= 0:
        raise OptionsError(
            f"alarm_lag = {value!r} is not valid: give the seconds of lag above which "
            f"to alarm, a number above 0 (default {DEFAULT_LAG:g})")
    return lag


def topic_region(topic: str) -> str:
    match = _TOPIC.match(topic)
    return match.group(1) if match else ""


def alarm_name(function_name: str, kind: str) -> str:
    """Stable per function, within CloudWatch's 255 characters."""
    return bounded(f"pypicloud-s3sync-{function_name}-{kind}", MAX_ALARM_NAME)


def alarm_names(function_name: str) -> list[str]:
    return [alarm_name(function_name, kind) for kind in ALL_KINDS]


def desired(function_name: str, topic: str, lag: float,
            queues: tuple[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """PutMetricAlarm's parameters for each alarm, by kind; ``queues`` (the queue's and
    the dead-letter queue's names, ``--delivery sqs``) adds the queue's two.

    ``queue-age``: SQS's ``ApproximateAgeOfOldestMessage`` above the lag threshold, the
    queue's own measure of how far behind the function is, which keeps growing while
    the function is down (when the function's own ``LagSeconds`` stops, since nothing
    is written).  ``dead-letters``: any message visible in the dead-letter queue
    (``ApproximateNumberOfMessagesVisible`` > 0): an event failed ``--max-receives``
    times and waits for a redrive.
    """
    common = {
        "ActionsEnabled": True, "AlarmActions": [topic], "OKActions": [topic],
        "Period": PERIOD, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
        "TreatMissingData": "notBreaching",
        "Tags": [{"Key": tags.MANAGED_TAG, "Value": tags.MANAGED_VALUE}],
    }
    return {
        "errors": {
            "AlarmName": alarm_name(function_name, "errors"),
            "AlarmDescription": f"pypicloud-s3sync: function {function_name} failed at "
            f"least one invocation in {PERIOD // 60} minutes; its log says which key and "
            f"why: aws logs tail /aws/lambda/{function_name} --since 1h --filter-pattern "
            "failed",
            "Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum",
            "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
            "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            **common,
        },
        "lag": {
            "AlarmName": alarm_name(function_name, "lag"),
            "AlarmDescription": f"pypicloud-s3sync: function {function_name} wrote a "
            f"package to the cache more than {lag:g} s after its S3 event; "
            "'ppc-s3sync status' counts its throttles and errors",
            "Namespace": metrics.NAMESPACE, "MetricName": metrics.LAG,
            "Statistic": "Maximum",
            "Dimensions": [{"Name": metrics.DIMENSION, "Value": function_name}],
            "Threshold": float(lag), "ComparisonOperator": "GreaterThanThreshold",
            **common,
        },
        "dropped": {
            "AlarmName": alarm_name(function_name, "dropped"),
            "AlarmDescription": f"pypicloud-s3sync: Lambda dropped at least one event for "
            f"function {function_name} in {PERIOD // 60} minutes (past its retries or "
            "maximum event age); the cache misses those changes until "
            "'ppc-s3sync reconcile' runs",
            "Namespace": "AWS/Lambda", "MetricName": "AsyncEventsDropped", "Statistic": "Sum",
            "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
            "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            **common,
        },
        **({} if queues is None else _queue_alarms(function_name, queues, lag, common)),
    }


def _queue_alarms(function_name: str, queues: tuple[str, str], lag: float,
                  common: dict[str, Any]) -> dict[str, dict[str, Any]]:
    queue, dead_letters = queues
    return {
        "queue-age": {
            "AlarmName": alarm_name(function_name, "queue-age"),
            "AlarmDescription": f"pypicloud-s3sync: the oldest event in queue {queue} has "
            f"waited more than {lag:g} s for function {function_name}; 'ppc-s3sync "
            "status' shows whether the mapping reads it",
            "Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage",
            "Statistic": "Maximum", "Dimensions": [{"Name": "QueueName", "Value": queue}],
            "Threshold": float(lag), "ComparisonOperator": "GreaterThanThreshold",
            **common,
        },
        "dead-letters": {
            "AlarmName": alarm_name(function_name, "dead-letters"),
            "AlarmDescription": f"pypicloud-s3sync: events for function {function_name} "
            f"failed every receive and wait in {dead_letters}; fix the cause in the log, "
            "then 'ppc-s3sync redrive CONFIG'",
            "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
            "Statistic": "Maximum",
            "Dimensions": [{"Name": "QueueName", "Value": dead_letters}],
            "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold",
            **common,
        },
    }


def compared_fields(alarm: dict[str, Any]) -> dict[str, Any]:
    """What we set, in one shape for both sides: DescribeAlarms returns many more fields
    (state, timestamps, ARNs) that must not count as drift."""
    found = {key: alarm.get(key) for key in COMPARED}
    if found["Threshold"] is not None:
        found["Threshold"] = float(found["Threshold"])
    for key in ("AlarmActions", "OKActions"):
        found[key] = sorted(found[key] or [])
    return found


def summary(alarm: dict[str, Any]) -> str:
    """One line for a status row: metric, rule, topic."""
    symbol = _SYMBOLS.get(alarm.get("ComparisonOperator", ""),
                          alarm.get("ComparisonOperator", "?"))
    actions = ", ".join(alarm.get("AlarmActions") or []) or "no topic"
    threshold = alarm.get("Threshold")  # absent on an alarm changed to a band or math
    return (f"{alarm.get('Namespace')} {alarm.get('MetricName')} "
            f"{alarm.get('Statistic')} {symbol} "
            f"{'?' if threshold is None else format(threshold, 'g')} per "
            f"{alarm.get('Period')} s -> {actions}")


def ours(alarm_tags: Mapping[str, Mapping[str, str]], name: str) -> bool:
    """Our tag, not the name, says whose an alarm is: anyone may have made one of our
    name, and deleting theirs would silence their monitoring without a word."""
    return tags.managed(alarm_tags.get(name, {}))


def read(cloudwatch: Any, function_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our alarms by name, and their tags (read for every plan, so that dropping the
    option or deleting the sync removes them)."""
    found = {alarm["AlarmName"]: alarm for alarm in cloudwatch.describe_alarms(
        AlarmNames=alarm_names(function_name))["MetricAlarms"]}
    tags = {name: tag_dict(cloudwatch.list_tags_for_resource(
        ResourceARN=alarm["AlarmArn"]).get("Tags")) for name, alarm in found.items()}
    return found, tags


__all__ = ["ALARM_TOPIC", "ALL_KINDS", "DEFAULT_LAG", "KINDS", "QUEUE_KINDS", "alarm_name",
           "alarm_names",
           "compared_fields", "desired", "ours", "parse_lag", "parse_topic", "read", "summary",
           "topic_region"]
