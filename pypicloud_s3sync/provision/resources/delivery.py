"""How events reach the function: S3's notification straight to it (``direct``), or
EventBridge delivery on the bucket and our rule (``eventbridge``), each with its invoke
permission.

S3 has no call that changes one notification entry, so the bucket's whole document is
put back with ours added, replaced or removed and everyone else's kept; EventBridge
delivery is turned off again only if our rule recorded that we turned it on and no other
rule listens to the bucket.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import notifications, tags
from ..aws import read_or_none
from ..desired import DESCRIPTION
from ..errors import DELIVERY_EVENTBRIDGE, FUNCTION_NAME, DeployError, Fix
from ..names import delivery_rule_name, statement_id
from ..plan import Check, Step
from ..tags import tag_dict
from .base import Grantee, Planning
from .bucket_notification import notification_resources
from .cfn import QUEUE_POLICY, Resources, api, unrendered
from .eventbridge import RULE_CALLS, add_rule, delete_rule, rule_statement, rule_targets
from .grants import allow, on_bucket
from .permissions import invoke_statement, permission, permission_resource

KIND = "notification"
#: Rule tag that remembers whether we switched the bucket's EventBridge delivery on.
BUCKET_EVENTBRIDGE_TAG = "pypicloud-s3sync:bucket-eventbridge"


def read(p: Planning) -> None:
    """The bucket's notification document (unless the bucket is gone) and our rule, read
    whatever the delivery so that switching it removes the other path; the other rules
    on the bucket only when ours says we turned its EventBridge delivery on, since only
    then might teardown turn it off."""
    a, bucket, events = p.actual, p.config.target.bucket, p.clients.client("events")
    if not a.bucket_missing:
        a.notification = notifications.clean(
            p.clients.client("s3").get_bucket_notification_configuration(Bucket=bucket))
    rule_name = delivery_rule_name(p.fname)
    rule = read_or_none(events.describe_rule, Name=rule_name)
    if not rule:
        return
    a.rule = rule
    a.rule_tags = tag_dict(events.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags"))
    a.rule_targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    if a.rule_tags.get(BUCKET_EVENTBRIDGE_TAG) == "enabled-by-us":
        a.other_bucket_rules = _other_bucket_rules(events, rule_name, bucket)


def _other_bucket_rules(events: Any, own_rule: str, bucket: str) -> list[str]:
    found = []
    for page in events.get_paginator("list_rules").paginate():
        for rule in page.get("Rules", []):
            if rule["Name"] == own_rule:
                continue
            pattern = rule.get("EventPattern") or ""
            if "aws.s3" in pattern and bucket in pattern:
                found.append(rule["Name"])
    return found


def name(p: Planning) -> str:
    return notifications.entry_id(p.fname)


def event_pattern(p: Planning) -> dict[str, Any]:
    """Our rule's pattern: created and deleted objects of this bucket under the prefix."""
    target = p.config.target
    detail: dict[str, Any] = {"bucket": {"name": [target.bucket]}}
    if target.prefix:
        detail["object"] = {"key": [{"prefix": target.prefix}]}
    return {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"],
            "detail": detail}


def plan(p: Planning) -> None:
    """The bucket's entry for ``direct`` (to the function) or ``sqs`` (to the queue), or
    EventBridge delivery and our rule; one write of the bucket's document switches from
    one path to the other, so no event goes nowhere.  What the new path needs is made
    before that write (the invoke permission S3 checks, the rule, the queue and its
    policy, made by their kinds earlier); what only the old one used goes after it."""
    o, a, d, target = p.options, p.actual, p.desired, p.config.target
    direct, sqs = o.delivery == "direct", o.delivery == "sqs"
    entry_wanted = direct or sqs
    queue = d.queue_arn
    current = a.notification
    ours_now = notifications.find_ours(current, p.fname, d.function_arn, queue)
    entry = notifications.our_entry(d.function_arn, p.fname, target.prefix,
                                    queue if sqs else "")
    s3_source = f"arn:{d.partition}:s3:::{target.bucket}"
    if direct:  # S3 validates it on write: before the notification
        permission(p, "s3.amazonaws.com", s3_source, True, d.account)
    eb_on = notifications.EVENTBRIDGE in current
    if entry_wanted:
        clashes = notifications.overlaps(current, target.prefix, p.fname, d.function_arn,
                                         queue)
        if clashes:
            if p.strict:
                raise DeployError(
                    f"bucket {target.bucket} already sends overlapping events to "
                    f"{clashes[0].describe()}; S3 does not allow two notifications for "
                    "the same events and prefix",
                    Fix(*DELIVERY_EVENTBRIDGE, "use {} (no overlap rule), or narrow "
                                               "that notification's prefix"),
                )
            p.row(KIND, name(p), "our entry", "conflict: " + clashes[0].describe(), False)
            return
        in_sync = len(ours_now) == 1 and notifications.same_entry(ours_now[0], entry)
        want = notifications.with_ours(current, entry, p.fname, d.function_arn, queue)
    else:
        in_sync = not ours_now
        want = notifications.without_ours(current, p.fname, d.function_arn, queue)
    eb_by_us = a.rule_tags.get(BUCKET_EVENTBRIDGE_TAG) == "enabled-by-us"
    if not entry_wanted:
        want = notifications.with_eventbridge(want, True)
    elif a.rule is not None and eb_by_us and not a.other_bucket_rules:
        want = notifications.with_eventbridge(want, False)
    if entry_wanted:
        where = f"queue {queue.rsplit(':', 1)[-1]}" if sqs else "the function"
        p.row(KIND, name(p), f"{', '.join(notifications.OUR_EVENTS)} prefix "
                             f"'{target.prefix}' to {where}",
              "as desired" if in_sync else ("missing" if not ours_now else "differs"),
              in_sync)
    else:
        p.row("bucket-eventbridge", target.bucket, "EventBridge delivery on",
              "on" if eb_on else "off", eb_on)
        # The permission, then the rule, before the bucket's switch: the rule's tag is
        # what tells delete that we turned the switch on, so it must exist first, or an
        # apply stopped in between leaves the switch on with nothing to say it is ours.
        permission(p, "events.amazonaws.com", d.rule_arn, True, None)
        _rule(p, wanted=True, enabled_by_us=(not eb_on) or eb_by_us)
    if want != current:
        what = []
        if entry_wanted and not in_sync:
            old = (f"; our previous entry ({_destination(ours_now[0])}) is replaced in the "
                   "same write, so events keep arriving" if ours_now else "")
            what.append(f"{'replace' if ours_now else 'add'} our entry {entry['Id']} "
                        f"({', '.join(entry['Events'])}, prefix '{target.prefix}') to "
                        f"{_destination(entry)}{old}")
        if not entry_wanted and ours_now:
            what.append(f"remove our entry {name(p)} (in the same write that turns "
                        "EventBridge delivery on, so events keep arriving)"
                        if not eb_on else f"remove our entry {name(p)}")
        if notifications.EVENTBRIDGE in want and not eb_on:
            what.append("turn on EventBridge delivery")
        if notifications.EVENTBRIDGE not in want and eb_on:
            what.append("turn off EventBridge delivery (we turned it on)")
        kept = sum(len(want.get(k, [])) for k in notifications.KINDS) - (
            1 if entry_wanted else 0)
        _put_notifications(p, what, kept, want, current, queue if sqs else d.function_arn)
    # The old path, once the new one is in place: the function's S3 permission (direct),
    # the rule and its permission (eventbridge).  The queue's kinds remove theirs last.
    if not direct:
        permission(p, "s3.amazonaws.com", s3_source, False, d.account)
    if entry_wanted:
        _rule(p, wanted=False, enabled_by_us=False)
        permission(p, "events.amazonaws.com", d.rule_arn, False, None)


def _destination(entry: dict[str, Any]) -> str:
    if "QueueArn" in entry:
        return f"queue {entry['QueueArn'].rsplit(':', 1)[-1]}"
    return f"function {entry.get('LambdaFunctionArn', '?').rsplit(':', 1)[-1]}"


def _put_notifications(p: Planning, what: list[str], kept: int, want: dict[str, Any],
                       before: dict[str, Any], ours: str) -> None:
    """Put the bucket's whole notification configuration; the summary says what changes
    and that the others are kept.

    S3 validates every destination of the document on each write, so one of someone
    else's that no longer validates (a deleted queue) would block any change; a write
    that adds no destination skips that check (``SkipDestinationValidation``).  The
    step names our destination (the function, or the queue) as ``ours``: the executor
    waits only for our own permission to reach S3, never for another team's
    destination to be fixed.
    """
    bucket = p.config.target.bucket
    params: dict[str, Any] = {"Bucket": bucket, "NotificationConfiguration": want}
    if not notifications.adds_destination(before, want):
        params["SkipDestinationValidation"] = True
    p.call(KIND, "update", bucket,
           f"bucket {bucket} notifications: {'; '.join(what)}; {kept} other "
           f"entr{'y' if kept == 1 else 'ies'} kept as they are",
           "s3.put_bucket_notification_configuration", params,
           details={"before": before, "ours": ours})


def _rule(p: Planning, wanted: bool, enabled_by_us: bool) -> None:
    a, rule = p.actual, delivery_rule_name(p.fname)
    pattern = event_pattern(p)
    if not wanted:
        if a.rule is not None and tags.managed(a.rule_tags):
            delete_rule(p, "eventbridge-rule", rule, a.rule_targets)
        return
    have_pattern = json.loads(a.rule["EventPattern"]) if a.rule else None
    rule_ok = a.rule is not None and have_pattern == pattern and (
        a.rule.get("State") == "ENABLED")
    p.row("eventbridge-rule", rule, json.dumps(pattern, sort_keys=True),
          json.dumps(have_pattern, sort_keys=True) if a.rule else "missing", rule_ok)
    if a.rule is not None and not tags.managed(a.rule_tags):
        raise DeployError(
            f"EventBridge rule {rule} exists but was not created by pypicloud-s3sync",
            Fix(*FUNCTION_NAME, "delete or rename it, or choose another function name "
                                "with {}"),
        )
    if not rule_ok:
        rule_tags = {tags.MANAGED_TAG: tags.MANAGED_VALUE,
                BUCKET_EVENTBRIDGE_TAG: a.rule_tags.get(
                    BUCKET_EVENTBRIDGE_TAG,
                    "enabled-by-us" if enabled_by_us else "already-on")}
        p.call("eventbridge-rule", "update" if a.rule else "create", rule,
               f"{'update' if a.rule else 'create'} EventBridge rule {rule} for bucket "
               f"{p.config.target.bucket} prefix '{p.config.target.prefix}'",
               "events.put_rule",
               {"Name": rule, "EventPattern": json.dumps(pattern, sort_keys=True),
                "State": "ENABLED", "Description": DESCRIPTION,
                "Tags": [{"Key": k, "Value": v} for k, v in rule_tags.items()]})
    rule_targets(p, "eventbridge-rule", "eventbridge-target", rule, a.rule_targets)


def teardown(p: Planning) -> None:
    """Our entry out of the bucket's document (the others kept), EventBridge delivery
    off if we turned it on and nobody else listens, and our rule."""
    a, d, target = p.actual, p.desired, p.config.target
    if a.bucket_missing:
        p.notes.append(f"bucket {target.bucket} does not exist: its notification "
                       "configuration could not be reached (our entry and the EventBridge "
                       "switch went with the bucket)")
    ours = notifications.find_ours(a.notification, p.fname, d.function_arn, d.queue_arn)
    want = notifications.without_ours(a.notification, p.fname, d.function_arn, d.queue_arn)
    eb_by_us = a.rule is not None and a.rule_tags.get(BUCKET_EVENTBRIDGE_TAG) == "enabled-by-us"
    if eb_by_us and notifications.EVENTBRIDGE in want:
        others = a.other_bucket_rules
        if others:
            p.notes.append(f"EventBridge delivery on {target.bucket} stays on: rule(s) "
                           f"{', '.join(others)} use it")
        else:
            want = notifications.with_eventbridge(want, False)
    elif a.rule is not None and notifications.EVENTBRIDGE in want:
        p.notes.append(f"EventBridge delivery on {target.bucket} stays on: it was on "
                       "before the sync was created")
    if want != a.notification:
        kept = sum(len(want.get(k, [])) for k in notifications.KINDS)
        what = [f"remove our entry {', '.join(e.get('Id', '?') for e in ours)}"] if ours else []
        if notifications.EVENTBRIDGE in a.notification and notifications.EVENTBRIDGE not in want:
            what.append("turn off EventBridge delivery (we turned it on)")
        _put_notifications(p, what, kept, want, a.notification, d.function_arn)
    if a.rule is not None:
        rule = delivery_rule_name(p.fname)
        if tags.managed(a.rule_tags):
            delete_rule(p, "eventbridge-rule", rule, a.rule_targets)
        else:
            p.notes.append(f"EventBridge rule {rule} is not ours; left alone")


#: Logical ids of the template form.
S3_PERMISSION, RULE_PERMISSION, RULE = (
    "S3InvokePermission", "DeliveryRuleInvokePermission", "DeliveryRule")


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """The invoke permission, the delivery rule, and the bucket's notification as a
    custom resource (:mod:`.bucket_notification`), which waits for S3's permission."""
    bucket = p.config.target.bucket
    permissions = {statement_id("s3", bucket): S3_PERMISSION,
                   statement_id("events", bucket): RULE_PERMISSION}
    found: Resources = {}
    for step in created:
        if api(step) == "lambda.add_permission":
            found[permissions[step.params["StatementId"]]] = permission_resource(step)
        elif api(step) in RULE_CALLS:
            add_rule(found, step, RULE, RULE_PERMISSION)
        elif api(step) == "s3.put_bucket_notification_configuration":
            checked = {"direct": S3_PERMISSION, "sqs": QUEUE_POLICY}
            found.update(notification_resources(p, checked.get(p.options.delivery)))
        else:
            raise unrendered(KIND, step)
    return found


#: The bucket's notification document, read and put back whole (merged, never replaced).
OPERATOR_BUCKET_ACTIONS = ["s3:GetBucketNotification", "s3:PutBucketNotification"]


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """Its invoke permission, the bucket's notifications, its rule, and EventBridge's
    list of rules, which names no resource (``"*"`` only): turning EventBridge delivery
    off again first looks for other rules on the bucket."""
    return [invoke_statement(s), on_bucket(s, OPERATOR_BUCKET_ACTIONS),
            rule_statement(s, delivery_rule_name(s.function_name)),
            allow("ListRules", ["events:ListRules"], "*")]


def checks(p: Planning) -> list[Check]:
    """None: whether events arrive is the path's activity check, beyond this kind."""
    return []
