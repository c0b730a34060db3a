"""A sync's world for the property tests: an account seeded with what belongs to others,
the options a deploy can be given, and the account read back as an operator sees it.

Nothing here names a resource kind of ours: the snapshot lists every role, function,
rule, alarm, secret and parameter in the account, so a kind added later shows up in it
without a change here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pypicloud_s3sync.provision import iam
from pypicloud_s3sync.provision.peers import Peer

from .deploy_helpers import BUCKET, PREFIX

#: A boto3 client by service name, in the test's region (``AwsClients.client``).
Client = Callable[[str], Any]

#: What others keep next to the sync; delete must leave every one of them as it was.
FOREIGN_QUEUE = "audit"
FOREIGN_RULE = "someone-elses-rule"
FOREIGN_ALARM = "someone-elses-alarm"
FOREIGN_ROLE = "someone-elses-role"
FOREIGN_SECRET = "someone-elses-secret"
#: Another region's bucket, versioned by that region's plan, which a plan of several
#: inis hands ours as its peer.
PEER = Peer("packages-west", "us-west-2", PREFIX)


@dataclass(frozen=True)
class Seeded:
    """ARNs made while seeding, for the options that name one."""

    topic: str
    queue: str
    subnet: str
    security_group: str
    #: A customer managed key, for the option that encrypts with one.
    key: str = ""


def seed(client: Client) -> Seeded:
    """The bucket and everything around it that is not ours: a notification entry of
    another team (a prefix apart from ours), an EventBridge rule on another bucket, an
    alarm, a role and a secret; and the topic, queue and network the options name."""
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    # Versioned, as replication needs: once on it can never be turned off again, so
    # delete could not give back an account whose bucket was seeded unversioned.
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    versioned_bucket(PEER)
    sqs = client("sqs")
    queue = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName=FOREIGN_QUEUE)["QueueUrl"],
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{
            "Id": "audit-log", "QueueArn": queue, "Events": ["s3:ObjectRemoved:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "audit/"}]}}}]})
    events = client("events")
    events.put_rule(Name=FOREIGN_RULE, EventPattern=json.dumps(
        {"source": ["aws.s3"], "detail": {"bucket": {"name": ["elsewhere"]}}}))
    events.put_targets(Rule=FOREIGN_RULE, Targets=[{"Id": "audit", "Arn": queue}])
    topic = client("sns").create_topic(Name="ops")["TopicArn"]
    client("cloudwatch").put_metric_alarm(
        AlarmName=FOREIGN_ALARM, Namespace="AWS/Lambda", MetricName="Errors",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
    client("iam").create_role(RoleName=FOREIGN_ROLE,
                              AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))
    client("secretsmanager").create_secret(Name=FOREIGN_SECRET, SecretString="not ours")
    # Lambda takes subnet and group IDs as given: a real VPC in moto costs seconds per
    # fresh account (EC2 loads its images), and nothing here needs its routes.
    key = client("kms").create_key(Description="the operator's")["KeyMetadata"]["Arn"]
    return Seeded(topic=topic, queue=queue, subnet="subnet-0a1b2c3d4e5f60718",
                  security_group="sg-0a1b2c3d4e5f60718", key=key)


def versioned_bucket(peer: Peer) -> None:
    """The peer's bucket in its region, versioned (its own region's plan's doing)."""
    import boto3

    s3 = boto3.client("s3", region_name=peer.region)
    s3.create_bucket(Bucket=peer.bucket,
                     CreateBucketConfiguration={"LocationConstraint": peer.region})
    s3.put_bucket_versioning(Bucket=peer.bucket, VersioningConfiguration={"Status": "Enabled"})


def reset_account() -> None:
    """An empty account again, inside the test's moto (for loops over many states)."""
    from moto.core.base_backend import BackendDict

    BackendDict.reset()


#: Each option that makes or changes something, with the values a test may give it;
#: the first is the option left out.  A new option that makes something belongs here.
OPTIONS: dict[str, tuple[Any, ...]] = {
    "delivery": ("direct", "eventbridge", "sqs"),
    "queue_kms_key_arn": (None, "{key}"),
    "max_concurrency": (None, "3"),
    "reconcile_every": (None, "1d"),
    "alarm_topic": (None, "{topic}"),
    "reserved_concurrency": (None, "5"),
    "store_db_password": (None, "secretsmanager", "ssm"),
    "on_failure": (None, "{queue}"),
    "vpc": (False, True),
    # A plan of several inis: the bucket replicates to :data:`PEER`.
    "replication_time_control": (False, True),
    "peers": (False, True),
}

#: For each option that makes something: the option, a value that makes it and the
#: value that removes exactly that again (what the docs promise the operator can pass).
#: The queue's own options change a queue that only ``--delivery sqs`` makes, so they
#: are covered by the random choices of :data:`OPTIONS`, not here.
REMOVABLE: dict[str, tuple[str, Any, Any]] = {
    "delivery=eventbridge": ("delivery", "eventbridge", "direct"),
    "delivery=sqs": ("delivery", "sqs", "direct"),
    "reconcile_every": ("reconcile_every", "1d", "off"),
    "alarm_topic": ("alarm_topic", "{topic}", "off"),
    "reserved_concurrency": ("reserved_concurrency", "5", "off"),
    "store_db_password": ("store_db_password", "secretsmanager", "off"),
    "on_failure": ("on_failure", "{queue}", None),
    "vpc": ("vpc", True, False),
}


def deploy_options(choice: dict[str, Any], seeded: Seeded) -> dict[str, Any]:
    """``DeployOptions.from_config`` overrides for a choice of :data:`OPTIONS` values."""
    values: dict[str, Any] = {}
    for option, value in choice.items():
        if option == "peers":
            continue
        if option == "vpc":
            if value:
                values.update(subnet_ids=seeded.subnet,
                              security_group_ids=seeded.security_group)
            continue
        if isinstance(value, str):
            value = value.format(topic=seeded.topic, queue=seeded.queue, key=seeded.key)
        values[option] = value
    return values


def peers(choice: dict[str, Any]) -> tuple[Peer, ...]:
    """What a plan of several inis hands this one: :data:`PEER` with ``peers``."""
    return (PEER,) if choice.get("peers") else ()


def describe(choice: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(choice.items()) if v not in (None, False))


# -- the account as an operator reads it --------------------------------------------------

#: Values AWS makes up anew whenever a resource is made (IDs, dates, revisions).
_UNSTABLE = {"RoleId", "CreateDate", "RoleLastUsed", "LastModified", "RevisionId",
             "AlarmConfigurationUpdatedTimestamp", "StateUpdatedTimestamp",
             "StateReasonData", "StateReason", "StateValue", "StateTransitionedTimestamp",
             "ResponseMetadata", "LastModifiedDate", "CreatedDate", "VersionId",
             "LastChangedDate", "LastAccessedDate", "Version", "ARN"}
#: Secrets Manager appends six random characters to a secret's ARN.
_SECRET_SUFFIX = re.compile(r"(:secret:[^\"'\s]+?)-[A-Za-z0-9]{6}\b")
#: EC2 makes up the IDs of the network each fresh account is seeded with.
_NETWORK_ID = re.compile(r"\b(subnet|sg|vpc)-[0-9a-f]{8,17}\b")
#: KMS makes up the id of the key each fresh account is seeded with.
_KEY_ID = re.compile(r":key/[0-9a-f-]{36}\b")


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if k not in _UNSTABLE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str):
        return _KEY_ID.sub(":key/*", _NETWORK_ID.sub(
            r"\1-*", _SECRET_SUFFIX.sub(r"\1-??????", value)))
    return value


def _or_none(call: Any, **params: Any) -> Any:
    from botocore.exceptions import ClientError

    try:
        return call(**params)
    except ClientError:
        return None


def snapshot(client: Client, *, bucket: bool = True) -> dict[str, Any]:
    """Every resource the account holds that the sync could have made or touched;
    ``bucket=False`` leaves out the bucket's notifications (for a bucket that is gone)."""
    iam_client, lam, events = client("iam"), client("lambda"), client("events")
    cloudwatch, sm, ssm = client("cloudwatch"), client("secretsmanager"), client("ssm")
    roles = {}
    for role in iam_client.list_roles()["Roles"]:
        name = role["RoleName"]
        roles[name] = {
            "path": role["Path"],
            "trust": role["AssumeRolePolicyDocument"],
            "tags": iam_client.list_role_tags(RoleName=name)["Tags"],
            "inline": {p: iam.parse_document(iam_client.get_role_policy(
                RoleName=name, PolicyName=p)["PolicyDocument"])
                for p in iam_client.list_role_policies(RoleName=name)["PolicyNames"]},
            "attached": [p["PolicyArn"] for p in iam_client.list_attached_role_policies(
                RoleName=name)["AttachedPolicies"]],
        }
    functions = {}
    for fn in lam.list_functions()["Functions"]:
        name = fn["FunctionName"]
        got = lam.get_function(FunctionName=name)
        config = got["Configuration"]
        vpc = config.get("VpcConfig") or {}
        policy = _or_none(lam.get_policy, FunctionName=name)
        invoke = _or_none(lam.get_function_event_invoke_config, FunctionName=name)
        functions[name] = {
            **{k: config.get(k) for k in ("Runtime", "Handler", "Role", "Timeout",
                                          "MemorySize", "Description", "Environment",
                                          "KMSKeyArn", "Architectures", "CodeSha256")},
            "VpcConfig": {"SubnetIds": sorted(vpc.get("SubnetIds") or []),
                          "SecurityGroupIds": sorted(vpc.get("SecurityGroupIds") or [])},
            "tags": got.get("Tags") or {},
            "statements": sorted((json.loads(policy["Policy"])["Statement"] if policy
                                  else []), key=lambda s: s.get("Sid", "")),
            "invoke": invoke and {k: invoke.get(k) for k in (
                "MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")},
            "concurrency": lam.get_function_concurrency(FunctionName=name).get(
                "ReservedConcurrentExecutions"),
        }
    notification = (client("s3").get_bucket_notification_configuration(Bucket=BUCKET)
                    if bucket else None)
    rules = {}
    for rule in events.list_rules()["Rules"]:
        name = rule["Name"]
        rules[name] = {
            **{k: rule.get(k) for k in ("EventPattern", "ScheduleExpression", "State")},
            "tags": events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"],
            "targets": events.list_targets_by_rule(Rule=name)["Targets"],
        }
    alarms = {}
    for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
        alarms[alarm["AlarmName"]] = {
            **alarm, "tags": cloudwatch.list_tags_for_resource(
                ResourceARN=alarm["AlarmArn"])["Tags"]}
    secrets = {}
    for secret in sm.list_secrets()["SecretList"]:
        secrets[secret["Name"]] = {
            "tags": secret.get("Tags") or [],
            "value": sm.get_secret_value(SecretId=secret["ARN"])["SecretString"]}
    parameters = {}
    for parameter in ssm.describe_parameters()["Parameters"]:
        name = parameter["Name"]
        parameters[name] = {
            "value": ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"],
            "tags": ssm.list_tags_for_resource(ResourceType="Parameter",
                                               ResourceId=name)["TagList"]}
    sqs = client("sqs")
    queues = {}
    for url in sqs.list_queues().get("QueueUrls") or []:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"]
        queues[url.rsplit("/", 1)[-1]] = {
            # What a queue is, not what it holds: S3 sends a test event to every queue
            # of the document on each write, ours or not.
            **{k: v for k, v in attributes.items()
               if not k.endswith("Timestamp") and not k.startswith("ApproximateNumber")},
            "tags": sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}}
    mappings = sorted(({k: m.get(k) for k in (
        "EventSourceArn", "FunctionArn", "State", "BatchSize", "MaximumBatchingWindowInSeconds",
        "FunctionResponseTypes", "ScalingConfig")}
        for m in lam.list_event_source_mappings()["EventSourceMappings"]),
        key=lambda m: json.dumps(m, sort_keys=True))
    replication = (_or_none(client("s3").get_bucket_replication, Bucket=BUCKET)
                   if bucket else None)
    if replication:
        replication = replication["ReplicationConfiguration"]
    return _stable({"roles": roles, "functions": functions, "notification": notification,
                    "replication": replication,
                    "rules": rules, "alarms": alarms, "secrets": secrets,
                    "parameters": parameters, "queues": queues, "mappings": mappings})


def consume_our_queues(client: Client) -> None:
    """What Lambda's event source mapping would do to our queues, which moto never
    polls: read and delete every message (S3 sends its s3:TestEvent when a queue is
    added to the notifications), so that a switch away from ``--delivery sqs`` finds
    them empty, as it would once the mapping has caught up."""
    sqs = client("sqs")
    for url in sqs.list_queues(QueueNamePrefix="pypicloud-s3sync").get("QueueUrls") or []:
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages") or []
            if not messages:
                break
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# -- changes made by hand -------------------------------------------------------------------

def _ours(name: str) -> bool:
    return name.startswith(("pypicloud-s3sync", "pypicloud_s3_sync", "ppc-s3sync-"))


def by_hand_changes(client: Client) -> list[tuple[str, Callable[[], bool]]]:
    """Things an operator (or another tool) might change in a deployed sync, each as
    ``(what, change)``; ``change()`` returns False where there is nothing to change."""
    lam, events, iam_client = client("lambda"), client("events"), client("iam")
    cloudwatch, s3 = client("cloudwatch"), client("s3")

    def functions() -> list[str]:
        return [f["FunctionName"] for f in lam.list_functions()["Functions"]
                if _ours(f["FunctionName"])]

    def timeout() -> bool:
        for name in functions():
            lam.update_function_configuration(FunctionName=name, Timeout=3)
        return bool(functions())

    def concurrency() -> bool:
        for name in functions():
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)
        return bool(functions())

    def retries() -> bool:
        changed = False
        for name in functions():
            if _or_none(lam.get_function_event_invoke_config, FunctionName=name):
                lam.put_function_event_invoke_config(FunctionName=name,
                                                     MaximumRetryAttempts=0)
                changed = True
        return changed

    def permissions() -> bool:
        changed = False
        for name in functions():
            policy = _or_none(lam.get_policy, FunctionName=name)
            for statement in json.loads(policy["Policy"])["Statement"] if policy else []:
                lam.remove_permission(FunctionName=name, StatementId=statement["Sid"])
                changed = True
        return changed

    def role_policy() -> bool:
        changed = False
        for role in iam_client.list_roles()["Roles"]:
            if _ours(role["RoleName"]):
                for policy in iam_client.list_role_policies(
                        RoleName=role["RoleName"])["PolicyNames"]:
                    iam_client.delete_role_policy(RoleName=role["RoleName"],
                                                  PolicyName=policy)
                    changed = True
        return changed

    def rules() -> bool:
        ours = [r["Name"] for r in events.list_rules()["Rules"] if _ours(r["Name"])]
        for name in ours:
            events.disable_rule(Name=name)
        return bool(ours)

    def alarms() -> bool:
        ours = [a for a in cloudwatch.describe_alarms()["MetricAlarms"]
                if _ours(a["AlarmName"])]
        for alarm in ours:
            cloudwatch.put_metric_alarm(**{
                k: alarm[k] for k in (
                    "AlarmName", "AlarmDescription", "ActionsEnabled", "AlarmActions",
                    "OKActions", "Namespace", "MetricName", "Statistic", "Dimensions",
                    "Period", "EvaluationPeriods", "ComparisonOperator",
                    "TreatMissingData") if k in alarm}, Threshold=alarm["Threshold"] + 1)
        return bool(ours)

    def notification() -> bool:
        current = s3.get_bucket_notification_configuration(Bucket=BUCKET)
        current.pop("ResponseMetadata", None)
        kept = {k: [e for e in v if not _ours(e.get("Id", ""))] if isinstance(v, list) else v
                for k, v in current.items()}
        if kept == current:
            return False
        s3.put_bucket_notification_configuration(Bucket=BUCKET,
                                                 NotificationConfiguration=kept)
        return True

    def replication() -> bool:
        config = (_or_none(s3.get_bucket_replication, Bucket=BUCKET) or {}).get(
            "ReplicationConfiguration")
        if not config or not any(_ours(r.get("ID", "")) for r in config["Rules"]):
            return False
        rules = [{**r, "DeleteMarkerReplication": {"Status": "Disabled"}}
                 if _ours(r.get("ID", "")) else r for r in config["Rules"]]
        s3.put_bucket_replication(Bucket=BUCKET, ReplicationConfiguration={
            "Role": config["Role"], "Rules": rules})
        return True

    def queues() -> bool:
        sqs = client("sqs")
        ours = [url for url in sqs.list_queues().get("QueueUrls") or []
                if _ours(url.rsplit("/", 1)[-1])]
        for url in ours:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={
                "VisibilityTimeout": "30", "MessageRetentionPeriod": "345600"})
        return bool(ours)

    def mappings() -> bool:
        found = lam.list_event_source_mappings()["EventSourceMappings"]
        for mapping in found:
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False,
                                            BatchSize=1)
        return bool(found)

    return [("function timeout", timeout), ("reserved concurrency", concurrency),
            ("queue attributes", queues), ("mapping disabled", mappings),
            ("async retries", retries), ("invoke permissions removed", permissions),
            ("role policy removed", role_policy), ("rules disabled", rules),
            ("alarm thresholds", alarms), ("notification entry removed", notification),
            ("replication without delete markers", replication)]


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Where two snapshots differ, one line per leaf, for an assertion's message."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [line for key in sorted(set(before) | set(after), key=str)
                for line in differences(before.get(key, "<absent>"),
                                        after.get(key, "<absent>"), f"{path}/{key}")]
    if before != after:
        return [f"{path}: {before!r} -> {after!r}"]
    return []
