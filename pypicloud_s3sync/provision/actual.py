"""Read what exists in the account: the planner's "actual" side, with Get/List calls only.

Everything is read up front into one :class:`Actual`, so planning is a pure comparison
and a dry run provably changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import alarms, dbstore, iam, notifications
from .aws import error_code, read_or_none
from .errors import DeployError
from .plan import ENV_VAR
from .tags import tag_dict

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .aws import AwsClients
    from .dbstore import SecretState, StoredSecret
    from .options import DeployOptions


#: ``Actual.db_secret`` of a secret that does not exist.
MISSING = "\0missing"

#: Rule tag that remembers whether we switched the bucket's EventBridge delivery on.
BUCKET_EVENTBRIDGE_TAG = "pypicloud-s3sync:bucket-eventbridge"
#: The tag CloudFormation puts on what a stack made (the function always; IAM roles not).
STACK_TAG = "aws:cloudformation:stack-name"


@dataclass
class Actual:
    """What exists now, read once per plan with Get/List calls only."""

    role: dict[str, Any] | None = None
    role_policy: dict[str, Any] | None = None
    role_inline: list[str] = field(default_factory=list)
    role_attached: list[str] = field(default_factory=list)
    function: dict[str, Any] | None = None
    function_tags: dict[str, str] = field(default_factory=dict)
    #: The CloudFormation stack that made these resources, from their tags: a stack
    #: undoes by-hand changes on its next update, so create and delete leave them alone.
    stack: str | None = None
    invoke_config: dict[str, Any] | None = None
    #: The function's reserved concurrency; None when it has none.
    reserved_concurrency: int | None = None
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)
    notification: dict[str, Any] = field(default_factory=dict)
    #: The region the bucket is in (GetBucketLocation), which the plan's must match.
    bucket_region: str | None = None
    #: True when the bucket does not exist (read for delete only: create and status
    #: refuse a missing bucket).
    bucket_missing: bool = False
    rule: dict[str, Any] | None = None
    rule_tags: dict[str, str] = field(default_factory=dict)
    rule_targets: list[dict[str, Any]] = field(default_factory=list)
    #: The reconcile schedule rule (``--reconcile-every``), read whether wanted or not
    #: so that dropping the option removes it.
    schedule: dict[str, Any] | None = None
    schedule_tags: dict[str, str] = field(default_factory=dict)
    schedule_targets: list[dict[str, Any]] = field(default_factory=list)
    #: Whether the role given with ``-a`` exists; None when it was not looked up (no
    #: ``-a``, not a role ARN, or another account's role, which we cannot read).
    given_role_exists: bool | None = None
    #: Other EventBridge rules that mention the bucket (they still need its delivery);
    #: listed only when our rule says we turned that delivery on.
    other_bucket_rules: list[str] = field(default_factory=list)
    #: The value of ``s3sync.db_url_secret`` (read once, never shown); None when there
    #: is none to read, and :data:`MISSING` when the secret does not exist.
    db_secret: str | None = field(default=None, repr=False)
    #: The secret create keeps db.url in (``--store-db-password``, or the one the
    #: deployed function names by our naming), and its state (None: missing).
    stored: StoredSecret | None = None
    stored_state: SecretState | None = field(default=None, repr=False)
    #: Our CloudWatch alarms by name (read whether wanted or not, so that dropping
    #: ``--alarm-topic`` removes them), and each one's tags.
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarm_tags: dict[str, dict[str, str]] = field(default_factory=dict)


def read_actual(config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
                role_name: str | None, rule_name: str,
                schedule_rule_name: str | None = None, *,
                need_bucket: bool = True) -> Actual:
    """Read every resource the sync owns or touches; raises for unreadable buckets, and
    for a missing one unless ``need_bucket`` is False (delete: what is outside the
    bucket can still be removed)."""
    from botocore.exceptions import ClientError

    actual = Actual()
    iam_client = clients.client("iam")
    if role_name:
        role = read_or_none(iam_client.get_role, RoleName=role_name)
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
    if options.role_arn:
        actual.given_role_exists = _given_role_exists(iam_client, options.role_arn,
                                                      clients.account)
    lam = clients.client("lambda")
    function = read_or_none(lam.get_function, FunctionName=options.function_name)
    if function:
        actual.function = function["Configuration"]
        actual.function_tags = _function_tags(lam, function)
        actual.invoke_config = read_or_none(lam.get_function_event_invoke_config,
                                     FunctionName=options.function_name)
        # Read whether managed or not: status reports a cap set by hand.
        actual.reserved_concurrency = lam.get_function_concurrency(
            FunctionName=options.function_name).get("ReservedConcurrentExecutions")
        policy = read_or_none(lam.get_policy, FunctionName=options.function_name)
        if policy:
            for statement in json.loads(policy["Policy"]).get("Statement", []):
                actual.statements[statement.get("Sid", "")] = statement
    actual.stored = _stored_secret(options, clients, actual.function)
    if actual.stored is not None:
        actual.stored_state = dbstore.read_state(actual.stored, clients)
    s3 = clients.client("s3")
    try:
        actual.bucket_region = bucket_region(
            s3.get_bucket_location(Bucket=config.target.bucket).get("LocationConstraint"))
        actual.notification = notifications.clean(
            s3.get_bucket_notification_configuration(Bucket=config.target.bucket)
        )
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket" and not need_bucket:
            actual.bucket_missing = True
        elif error_code(exc) == "NoSuchBucket":
            raise DeployError(
                f"bucket {config.target.bucket} does not exist in this account "
                f"(region {clients.region}); check storage.bucket, or start pypicloud "
                "once so that it creates the bucket"
            ) from exc
        else:
            raise
    events = clients.client("events")
    rule = read_or_none(events.describe_rule, Name=rule_name)
    if rule:
        actual.rule = rule
        actual.rule_tags = tag_dict(
            events.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags"))
        actual.rule_targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
        if actual.rule_tags.get(BUCKET_EVENTBRIDGE_TAG) == "enabled-by-us":
            actual.other_bucket_rules = _other_bucket_rules(events, rule_name,
                                                            config.target.bucket)
    actual.db_secret = _read_db_secret(config, clients)
    schedule = (read_or_none(events.describe_rule, Name=schedule_rule_name)
                if schedule_rule_name else None)
    if schedule:
        actual.schedule = schedule
        actual.schedule_tags = tag_dict(
            events.list_tags_for_resource(ResourceARN=schedule["Arn"]).get("Tags"))
        actual.schedule_targets = events.list_targets_by_rule(
            Rule=schedule_rule_name)["Targets"]
    actual.alarms, actual.alarm_tags = alarms.read(clients.client("cloudwatch"),
                                                   options.function_name)
    actual.stack = next((tags[STACK_TAG] for tags in (
        actual.function_tags, tag_dict((actual.role or {}).get("Tags")), actual.rule_tags,
        actual.schedule_tags) if tags.get(STACK_TAG)), None)
    return actual


def _function_tags(lam: Any, function: dict[str, Any]) -> dict[str, str]:
    """The function's tags, which tell ours from anyone's.

    GetFunction "returns tag data only if you have explicit allow permissions for
    lambda:ListTags" (botocore's GetFunctionResponse, ``Tags``), and leaves the field out
    otherwise, as it does for a function without tags: so a missing field is asked again
    with ListTags, whose refusal names the permission instead of making our own function
    look foreign (create would refuse it, delete would leave it).
    """
    if "Tags" in function:
        return function["Tags"] or {}
    return lam.list_tags(Resource=function["Configuration"]["FunctionArn"]).get("Tags") or {}


def _stored_secret(options: DeployOptions, clients: AwsClients,
                   function: dict[str, Any] | None) -> StoredSecret | None:
    """The secret to compare (create with ``--store-db-password``) or to remove (the
    deployed function names one of ours)."""
    if options.store_db_password:
        return dbstore.StoredSecret.for_function(
            options.store_db_password, options.function_name, clients.region,
            clients.account, clients.partition)
    variables = ((function or {}).get("Environment") or {}).get("Variables") or {}
    try:
        settings = json.loads(variables.get(ENV_VAR, "{}"))
    except ValueError:
        return None
    reference = settings.get("s3sync.db_url_secret") if isinstance(settings, dict) else None
    return dbstore.from_reference(reference, options.function_name, clients.region,
                                  clients.account, clients.partition)


def _read_db_secret(config: PypicloudConfig, clients: AwsClients) -> str | None:
    """The secret's value, when it is one this plan can use: a malformed reference or
    one in another region is the planner's to report, without a read."""
    from ..function.dbsecret import SecretError, parse_ref, read_value

    reference = config.option("db_url_secret")
    if not reference:
        return None
    try:
        ref = parse_ref(str(reference))
    except SecretError:
        return None
    if ref.region != clients.region:
        return None
    try:
        value = read_or_none(read_value, ref=ref,
                             client=lambda service, _region: clients.client(service))
    except SecretError:
        return ""  # binary: the planner reports it as no URL
    if value is None:
        return MISSING
    return value


def bucket_region(location_constraint: str | None) -> str:
    """The region GetBucketLocation means: none is us-east-1, and ``EU`` is eu-west-1."""
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(
        location_constraint, location_constraint or "us-east-1")


def parse_role_arn(arn: str) -> tuple[str, str] | None:
    """``(account, role name)`` of an IAM role ARN, or None if ``arn`` is not one."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    return parts[4], parts[5].rsplit("/", 1)[-1]


def _given_role_exists(iam_client: Any, arn: str, account: str) -> bool | None:
    parsed = parse_role_arn(arn)
    if parsed is None or parsed[0] != account:
        return None
    return read_or_none(iam_client.get_role, RoleName=parsed[1]) is not None


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
