"""Read what exists in the account: the planner's "actual" side, with Get/List calls only.

Everything is read up front into one :class:`Actual`, so planning is a pure comparison
and a dry run provably changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import iam, notifications
from .plan import DeployError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import PypicloudConfig
    from .deploy import AwsClients, DeployOptions


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _missing(exc: Exception) -> bool:
    return _error_code(exc) in (
        "NoSuchEntity", "ResourceNotFoundException", "NoSuchEntityException",
        "NoSuchBucket",
    )


def _read(call: Callable[..., Any], **kwargs: Any) -> Any:
    """A read that returns None for "does not exist" and raises anything else."""
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


@dataclass
class Actual:
    """What exists now, read once per plan with Get/List calls only."""

    role: dict[str, Any] | None = None
    role_policy: dict[str, Any] | None = None
    role_inline: list[str] = field(default_factory=list)
    role_attached: list[str] = field(default_factory=list)
    function: dict[str, Any] | None = None
    function_tags: dict[str, str] = field(default_factory=dict)
    invoke_config: dict[str, Any] | None = None
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)
    notification: dict[str, Any] = field(default_factory=dict)
    rule: dict[str, Any] | None = None
    rule_tags: dict[str, str] = field(default_factory=dict)
    rule_targets: list[dict[str, Any]] = field(default_factory=list)
    #: The reconcile schedule rule (``--reconcile-every``), read whether wanted or not
    #: so that dropping the option removes it.
    schedule: dict[str, Any] | None = None
    schedule_tags: dict[str, str] = field(default_factory=dict)
    schedule_targets: list[dict[str, Any]] = field(default_factory=list)


def _tags(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list or []}


def read_actual(config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
                role_name: str | None, rule_name: str,
                schedule_rule_name: str | None = None) -> Actual:
    """Read every resource the sync owns or touches; raises for unreadable buckets."""
    from botocore.exceptions import ClientError

    actual = Actual()
    iam_client = clients.client("iam")
    if role_name:
        role = _read(iam_client.get_role, RoleName=role_name)
        if role:
            actual.role = role["Role"]
            actual.role_inline = iam_client.list_role_policies(RoleName=role_name)["PolicyNames"]
            actual.role_attached = [
                p["PolicyArn"] for p in
                iam_client.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
            ]
            if iam.POLICY_NAME in actual.role_inline:
                doc = iam_client.get_role_policy(RoleName=role_name, PolicyName=iam.POLICY_NAME)
                actual.role_policy = iam.parse_document(doc["PolicyDocument"])
    lam = clients.client("lambda")
    function = _read(lam.get_function, FunctionName=options.function_name)
    if function:
        actual.function = function["Configuration"]
        actual.function_tags = function.get("Tags") or {}
        actual.invoke_config = _read(lam.get_function_event_invoke_config,
                                     FunctionName=options.function_name)
        policy = _read(lam.get_policy, FunctionName=options.function_name)
        if policy:
            for statement in json.loads(policy["Policy"]).get("Statement", []):
                actual.statements[statement.get("Sid", "")] = statement
    s3 = clients.client("s3")
    try:
        actual.notification = notifications.clean(
            s3.get_bucket_notification_configuration(Bucket=config.target.bucket)
        )
    except ClientError as exc:
        if _error_code(exc) == "NoSuchBucket":
            raise DeployError(
                f"bucket {config.target.bucket} does not exist in this account "
                f"(region {clients.region}); check storage.bucket, or start pypicloud "
                "once so that it creates the bucket"
            ) from exc
        raise
    events = clients.client("events")
    rule = _read(events.describe_rule, Name=rule_name)
    if rule:
        actual.rule = rule
        actual.rule_tags = _tags(
            events.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags"))
        actual.rule_targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    schedule = _read(events.describe_rule, Name=schedule_rule_name) if schedule_rule_name else None
    if schedule:
        actual.schedule = schedule
        actual.schedule_tags = _tags(
            events.list_tags_for_resource(ResourceARN=schedule["Arn"]).get("Tags"))
        actual.schedule_targets = events.list_targets_by_rule(
            Rule=schedule_rule_name)["Targets"]
    return actual
