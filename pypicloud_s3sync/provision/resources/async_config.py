"""How Lambda retries the events S3 and EventBridge hand it: the retries, the maximum
event age and the on-failure destination (``--retry-attempts``, ``--max-event-age``,
``--on-failure``).  It lives and dies with the function, so teardown has nothing to do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..aws import error_code, read_or_none
from ..errors import DeployError, Fix
from ..iam import DESTINATIONS, destination_kind
from ..plan import Check, Step
from .base import Grantee, Planning
from .cfn import Resources, api, function_ref, resource, unrendered
from .grants import allow, on_function

KIND = "async-config"
ON_FAILURE = "--on-failure", "s3sync.on_failure"
#: How SQS and SNS say a queue or topic does not exist.
_NO_DESTINATION = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
                             "NotFound", "NotFoundException"})


def read(p: Planning) -> None:
    """Only a function that exists has settings to read.  An on-failure queue or topic
    is read whether or not: the role's policy needs the key that encrypts it."""
    if p.actual.function is not None:
        p.actual.invoke_config = read_or_none(
            p.clients.client("lambda").get_function_event_invoke_config,
            FunctionName=p.fname)
    if p.options.on_failure:
        p.actual.on_failure_key = _destination_key(p, p.options.on_failure)


def _destination_key(p: Planning, arn: str) -> str | None:
    """The ARN of the customer managed key of an encrypted queue or topic (its
    ``KmsMasterKeyId``): an SQS producer, and an SNS publisher, needs kms:GenerateDataKey
    and kms:Decrypt on it.  None for anything else: no destination of those kinds, one
    in another account or region (not ours to read: a note says so) or missing, no
    encryption, or an AWS managed key (``alias/aws/sqs``, ``alias/aws/sns``), whose
    policy already lets the account's principals use it through that service."""
    from botocore.exceptions import ClientError

    kind = destination_kind(arn)
    parts = arn.split(":")
    if kind not in ("sqs", "sns"):
        return None
    if (parts[4], parts[3]) != (p.clients.account, p.clients.region):
        p.notes.append(f"--on-failure {arn} is in another account or region, so its "
                       "encryption is not read: if a customer managed KMS key encrypts "
                       "it, allow the function's role kms:GenerateDataKey and kms:Decrypt "
                       "on that key yourself")
        return None
    try:
        if kind == "sqs":
            sqs = p.clients.client("sqs")
            url = sqs.get_queue_url(QueueName=parts[5],
                                    QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["KmsMasterKeyId"]).get("Attributes", {})
        else:
            attributes = p.clients.client("sns").get_topic_attributes(
                TopicArn=arn).get("Attributes", {})
    except ClientError as exc:
        if error_code(exc) in _NO_DESTINATION:
            return None
        raise
    key = attributes.get("KmsMasterKeyId") or ""
    if not key or key.startswith("alias/aws/") or ":alias/aws/" in key:
        return None
    if key.startswith("arn:") and ":key/" in key:
        return key
    if "alias/" in key:  # IAM matches a key's ARN, never an alias: ask KMS which key
        return str(p.clients.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"])
    return f"arn:{parts[1]}:kms:{parts[3]}:{parts[4]}:key/{key}"


def name(p: Planning) -> str:
    return p.fname


def plan(p: Planning) -> None:
    o, have = p.options, p.actual.invoke_config or {}
    if o.on_failure and destination_kind(o.on_failure) is None:
        kinds = [name for name, _ in DESTINATIONS.values()]
        raise DeployError(
            f"{{0}} {o.on_failure} is not a destination Lambda sends failed events to "
            f"with a role this command grants: give the ARN of {', '.join(kinds[:-1])} "
            f"or {kinds[-1]}", Fix(*ON_FAILURE))
    want: dict[str, Any] = {"MaximumRetryAttempts": o.retry_attempts,
                            "MaximumEventAgeInSeconds": o.max_event_age}
    if o.on_failure:
        want["DestinationConfig"] = {"OnFailure": {"Destination": o.on_failure}}
    have_dest = (have.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
    same = (have.get("MaximumRetryAttempts") == o.retry_attempts
            and have.get("MaximumEventAgeInSeconds") == o.max_event_age
            and (have_dest or None) == o.on_failure)
    show = (f"retries {o.retry_attempts}, max age {o.max_event_age} s"
            + (f", on failure -> {o.on_failure}" if o.on_failure else ""))
    have_show = ("missing" if not have else
                 f"retries {have.get('MaximumRetryAttempts')}, max age "
                 f"{have.get('MaximumEventAgeInSeconds')} s"
                 + (f", on failure -> {have_dest}" if have_dest else ""))
    p.row(KIND, p.fname, show, have_show, same)
    if not same:
        p.call(KIND, "update" if have else "create", p.fname,
               f"set async invocation of {p.fname}: {show}",
               "lambda.put_function_event_invoke_config", {"FunctionName": p.fname, **want})


def teardown(p: Planning) -> None:
    """Deleting the function deletes its async settings."""


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``AsyncConfig``: the same settings, on the function's unpublished version."""
    found: Resources = {}
    for step in created:
        if api(step) != "lambda.put_function_event_invoke_config":
            raise unrendered(KIND, step)
        found["AsyncConfig"] = resource("AWS::Lambda::EventInvokeConfig", {
            **step.params, "FunctionName": function_ref(), "Qualifier": "$LATEST"})
    return found


#: Read on every plan, put whole (the call has no partial form); deleting the function
#: removes it.
OPERATOR_ACTIONS = ["lambda:GetFunctionEventInvokeConfig",
                    "lambda:PutFunctionEventInvokeConfig"]
#: An on-failure queue's or topic's encryption, read for the role's grant on its key
#: (and a key named by alias, resolved to the key).  Only read; the destination is
#: chosen per run, so any queue, topic and key of the account and region.
OPERATOR_DESTINATION_ACTIONS = {
    "OnFailureQueues": ("sqs", ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"], "*"),
    "OnFailureTopics": ("sns", ["sns:GetTopicAttributes"], "*"),
    "OnFailureKeys": ("kms", ["kms:DescribeKey"], "key/*"),
}


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    return [on_function(s, OPERATOR_ACTIONS),
            *(allow(sid, actions, s.arn(service, resource))
              for sid, (service, actions, resource) in OPERATOR_DESTINATION_ACTIONS.items())]


def checks(p: Planning) -> list[Check]:
    """None: its row is the whole of what status knows of it."""
    return []
