"""Every AWS call a piece of code makes, as IAM sees it, judged by a real IAM evaluator.

A botocore ``before-parameter-build`` hook (registered for every session created while
:func:`tracing` is active, the way moto hooks in) records each API call with its
parameters and region.  :func:`iam_requests` turns a call into what IAM authorizes:
the action(s), the resource ARN and the condition keys the request carries (such as
``s3:prefix``), including the implicit ones (``iam:PassRole`` when a function is given a
role, ``iam:TagRole`` when a role is created with tags).  :func:`denied` then asks moto's
own evaluator (``moto.iam.access_control.IAMPolicy``) about each of them.

The table below must know every operation our code calls: an unknown one fails the
test that traced it, so a new AWS call cannot slip past the policy tests.

What moto's evaluator does not do (so neither do these tests): it matches Action and
Resource wildcards and evaluates ``StringEquals`` conditions only; any other condition
operator (``StringLike``, ``ArnLike``, ``...IfExists``) is treated as satisfied.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: moto's account; policies under test are generated for it.
ACCOUNT = "123456789012"
PARTITION = "aws"


@dataclass(frozen=True)
class Call:
    """One API call as the client made it."""

    service: str
    operation: str
    region: str
    params: dict[str, Any] = field(compare=False, hash=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes for a call: action, resource, condition keys."""

    action: str
    resource: str
    conditions: tuple[tuple[str, str], ...] = ()
    call: str = field(default="", compare=False)

    def __str__(self) -> str:
        cond = "".join(f" {k}={v!r}" for k, v in self.conditions)
        return f"{self.action} on {self.resource}{cond} ({self.call})"


class Tracer:
    """Records calls while ``recording()``; installed by :func:`tracing`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._active = 0
        self._lock = threading.Lock()

    def __call__(self, params: dict[str, Any], model: Any, context: Any = None,
                 **_: Any) -> None:
        if not self._active:
            return
        region = (context or {}).get("client_region") or ""
        call = Call(model.service_model.service_name, model.name, region, dict(params))
        with self._lock:
            self.calls.append(call)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Call]]:
        """Record the calls made inside the block; yields the list they land in."""
        start = len(self.calls)
        found: list[Call] = []
        self._active += 1
        try:
            yield found
        finally:
            self._active -= 1
            found.extend(self.calls[start:])

    def clear(self) -> None:
        self.calls.clear()


@contextlib.contextmanager
def tracing() -> Iterator[Tracer]:
    """A tracer hooked into every botocore session created inside the block.

    ``boto3``'s default session is replaced for the duration, so clients built by
    ``boto3.client()`` are hooked too; clients that exist already are not (build the
    code under test inside the block, e.g. reset the handler first).
    """
    import boto3
    import botocore.handlers

    tracer = Tracer()
    builtin = botocore.handlers.BUILTIN_HANDLERS
    default_session = boto3.DEFAULT_SESSION
    botocore.handlers.BUILTIN_HANDLERS = [*builtin, ("before-parameter-build", tracer)]
    boto3.DEFAULT_SESSION = None
    try:
        yield tracer
    finally:
        botocore.handlers.BUILTIN_HANDLERS = builtin
        boto3.DEFAULT_SESSION = default_session


# -- calls -> IAM requests ----------------------------------------------------------------

def _bucket(p: dict[str, Any]) -> str:
    return f"arn:{PARTITION}:s3:::{p['Bucket']}"


def _object(p: dict[str, Any]) -> str:
    return f"arn:{PARTITION}:s3:::{p['Bucket']}/{p['Key']}"


def _table(call: Call, name: str, index: str | None = None) -> str:
    arn = f"arn:{PARTITION}:dynamodb:{call.region}:{ACCOUNT}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def _function(call: Call, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:{PARTITION}:lambda:{call.region}:{ACCOUNT}:function:{name}"


#: Roles outside our path, by name (IAM calls name a role; its ARN holds its path).
KNOWN_ROLES: dict[str, str] = {}


def _role(name: str) -> str:
    from pypicloud_s3sync.provision.iam import ROLE_PATH

    return KNOWN_ROLES.get(name) or f"arn:{PARTITION}:iam::{ACCOUNT}:role{ROLE_PATH}{name}"


def _rule(call: Call, name: str) -> str:
    return f"arn:{PARTITION}:events:{call.region}:{ACCOUNT}:rule/{name}"


Resolver = Callable[[Call], list[tuple[str, str, dict[str, str]]]]


def _one(action: str, resource: Callable[[Call], str],
         conditions: Callable[[Call], dict[str, str]] | None = None) -> Resolver:
    return lambda c: [(action, resource(c), conditions(c) if conditions else {})]


def _s3(action: str, resource: Callable[[dict[str, Any]], str]) -> Resolver:
    return _one(action, lambda c: resource(c.params))


def _list_bucket(call: Call) -> list[tuple[str, str, dict[str, str]]]:
    conditions = {"s3:prefix": call.params["Prefix"]} if "Prefix" in call.params else {}
    return [("s3:ListBucket", _bucket(call.params), conditions)]


def _replication(call: Call) -> list[tuple[str, str, dict[str, str]]]:
    """PutBucketReplication: "you must have s3:PutReplicationConfiguration permissions
    for the bucket [...] the user or role performing the action must have the
    iam:PassRole permission" (Amazon S3 API Reference), of the role it names, to S3."""
    role = call.params["ReplicationConfiguration"]["Role"]
    return [("s3:PutReplicationConfiguration", _bucket(call.params), {}),
            ("iam:PassRole", role, {"iam:PassedToService": "s3.amazonaws.com"})]


def _ddb(operation: str) -> Resolver:
    return _one(f"dynamodb:{operation}",
                lambda c: _table(c, c.params["TableName"], c.params.get("IndexName")))


def _ddb_batch(operation: str) -> Resolver:
    return lambda c: [(f"dynamodb:{operation}", _table(c, name), {})
                      for name in c.params["RequestItems"]]


def _lambda(operation: str, key: str = "FunctionName") -> Resolver:
    def resolve(c: Call) -> list[tuple[str, str, dict[str, str]]]:
        arn = _function(c, c.params[key])
        found = [(f"lambda:{operation}", arn, {})]
        if c.params.get("Role"):
            # Handing a role to a function is iam:PassRole on that role.
            found.append(("iam:PassRole", c.params["Role"],
                          {"iam:PassedToService": "lambda.amazonaws.com"}))
        if operation == "CreateFunction" and c.params.get("Tags"):
            found.append(("lambda:TagResource", arn, {}))
        if operation == "GetFunction":
            # "Lambda returns tag data only if you have explicit allow permissions for
            # lambda:ListTags" (botocore's GetFunctionResponse, Tags); we read the tags.
            found.append(("lambda:ListTags", arn, {}))
        found += _environment_key(operation, arn, c.params)
        if (c.params.get("VpcConfig") or {}).get("SubnetIds"):
            # Lambda checks the subnets and groups with the caller's rights.
            found += [(f"ec2:{check}", "*", {}) for check in (
                "DescribeSecurityGroups", "DescribeSubnets", "DescribeVpcs")]
        return found
    return resolve


#: Each function's customer managed key, as the calls traced so far set it
#: (:func:`iam_requests` starts each list of calls with none known).
_FUNCTION_KEYS: dict[str, str] = {}


def _environment_key(operation: str, function: str,
                     params: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """What Lambda does with the caller's rights on a function's customer managed key.

    "Lambda uses your permissions to create a grant on the key [...] kms:CreateGrant,
    kms:Encrypt – To configure a customer managed CMK on a function. kms:Decrypt – To
    view and manage environment variables that are encrypted with a customer managed
    CMK." (Lambda developer guide, "Securing environment variables").  Reads name no
    key, so the key is the one the traced calls last gave the function; "" drops it.
    """
    if operation == "DeleteFunction":
        _FUNCTION_KEYS.pop(function, None)
        return []
    if operation in ("GetFunction", "GetFunctionConfiguration"):
        key = _FUNCTION_KEYS.get(function)
        return [("kms:Decrypt", key, {})] if key else []
    if operation not in ("CreateFunction", "UpdateFunctionConfiguration"):
        return []
    found = []
    if "KMSKeyArn" in params:
        if params["KMSKeyArn"]:
            found += [("kms:CreateGrant", params["KMSKeyArn"], {}),
                      ("kms:Encrypt", params["KMSKeyArn"], {})]
        _FUNCTION_KEYS[function] = params["KMSKeyArn"]
    key = _FUNCTION_KEYS.get(function)
    if key and "Environment" in params and "KMSKeyArn" not in params:
        found.append(("kms:Encrypt", key, {}))  # new variables, sealed with its key
    return found


def _iam(operation: str) -> Resolver:
    def resolve(c: Call) -> list[tuple[str, str, dict[str, str]]]:
        arn = _role(c.params["RoleName"])
        found = [(f"iam:{operation}", arn, {})]
        if operation == "CreateRole" and c.params.get("Tags"):
            found.append(("iam:TagRole", arn, {}))
        return found
    return resolve


def _events(operation: str, key: str = "Name") -> Resolver:
    def resolve(c: Call) -> list[tuple[str, str, dict[str, str]]]:
        value = c.params[key]
        arn = value if value.startswith("arn:") else _rule(c, value)
        found = [(f"events:{operation}", arn, {})]
        if operation == "PutRule" and c.params.get("Tags"):
            found.append(("events:TagResource", arn, {}))
        return found
    return resolve


def _alarm(call: Call, name: str) -> str:
    return name if name.startswith("arn:") else (
        f"arn:{PARTITION}:cloudwatch:{call.region}:{ACCOUNT}:alarm:{name}")


def _alarms(operation: str) -> Resolver:
    """CloudWatch authorizes each alarm a call names (DescribeAlarms and DeleteAlarms
    take a list); PutMetricAlarm with Tags is also cloudwatch:TagResource."""
    def resolve(c: Call) -> list[tuple[str, str, dict[str, str]]]:
        p = c.params
        names = p.get("AlarmNames") or [p.get("AlarmName") or p.get("ResourceARN")]
        found = [(f"cloudwatch:{operation}", _alarm(c, name), {}) for name in names]
        if operation == "PutMetricAlarm" and p.get("Tags"):
            found.append(("cloudwatch:TagResource", _alarm(c, p["AlarmName"]), {}))
        return found
    return resolve


#: Secrets Manager authorizes a secret's full ARN, whose last six characters it chose;
#: a call that names the secret, or gives its ARN without them, gets this stand-in.
SECRET_SUFFIX = "-Ab12Cd"
#: "Secrets Manager constructs the last part of the secret ARN by appending a dash and
#: six random alphanumeric characters at the end of the secret name" (Secrets Manager
#: user guide, "Permissions reference"); an ARN that does not end so is partial, which
#: the API accepts ("You can specify a partial ARN too", botocore's SecretId) and IAM
#: still judges on the full one.
_COMPLETE_SECRET = re.compile(r"-[A-Za-z0-9]{6}$")


def _secret(operation: str, key: str = "SecretId") -> Resolver:
    def resolve(c: Call) -> list[tuple[str, str, dict[str, str]]]:
        value = c.params[key]
        if value.startswith("arn:"):
            arn = value if _COMPLETE_SECRET.search(value) else value + SECRET_SUFFIX
        else:
            arn = (f"arn:{PARTITION}:secretsmanager:{c.region}:{ACCOUNT}:secret:{value}"
                   f"{SECRET_SUFFIX}")
        found = [(f"secretsmanager:{operation}", arn, {})]
        if operation == "CreateSecret" and c.params.get("Tags"):
            found.append(("secretsmanager:TagResource", arn, {}))
        return found
    return resolve


def _parameter(operation: str, key: str = "Name") -> Resolver:
    def resolve(c: Call) -> list[tuple[str, str, dict[str, str]]]:
        value = c.params[key]
        arn = value if value.startswith("arn:") else (
            f"arn:{PARTITION}:ssm:{c.region}:{ACCOUNT}:parameter/{value.lstrip('/')}")
        found = [(f"ssm:{operation}", arn, {})]
        if operation == "PutParameter" and c.params.get("Tags"):
            found.append(("ssm:AddTagsToResource", arn, {}))
        return found
    return resolve


def _queue(call: Call) -> str:
    """A queue's ARN from GetQueueUrl's name and owner, or from a queue URL
    (``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME``)."""
    p = call.params
    if "QueueUrl" in p:
        account, name = p["QueueUrl"].rstrip("/").split("/")[-2:]
    else:
        account, name = p.get("QueueOwnerAWSAccountId") or ACCOUNT, p["QueueName"]
    return f"arn:{PARTITION}:sqs:{call.region}:{account}:{name}"


def _key(call: Call) -> str:
    """KMS authorizes a key's ARN; a bare key id is one of this account's keys."""
    key = call.params["KeyId"]
    if key.startswith("arn:") and ":key/" in key:
        return key
    if "alias/" in key:
        from moto.kms.models import kms_backends

        key = kms_backends[ACCOUNT][call.region].get_key_id_from_alias(
            key.split(":")[-1]) or key
    return f"arn:{PARTITION}:kms:{call.region}:{ACCOUNT}:key/{key}"


def _sqs(operation: str) -> Resolver:
    """SQS authorizes each call on the queue's ARN; CreateQueue with tags is also
    sqs:TagQueue ("To be able to tag a queue on creation, you must have the
    sqs:CreateQueue and sqs:TagQueue permissions", botocore's SQS model, CreateQueue)."""
    def resolve(c: Call) -> list[tuple[str, str, dict[str, str]]]:
        arn = _queue(c)
        found = [(f"sqs:{operation}", arn, {})]
        if operation == "CreateQueue" and c.params.get("tags"):
            found.append(("sqs:TagQueue", arn, {}))
        return found
    return resolve


def _mapping(operation: str) -> Resolver:
    """Lambda authorizes a change of an event source mapping on the mapping's ARN, with
    the function it invokes as ``lambda:FunctionArn`` (Service Authorization Reference,
    AWS Lambda: "lambda:FunctionArn - Filters access by the ARN of an AWS Lambda
    function", for Create-, Delete-, Get- and UpdateEventSourceMapping); listing and
    creating take ``"*"``.  Our function is the only one the traced calls map, so its ARN
    is the condition's value."""
    def resolve(c: Call) -> list[tuple[str, str, dict[str, str]]]:
        from pypicloud_s3sync.provision.options import DEFAULT_FUNCTION_NAME

        name = c.params.get("FunctionName") or KNOWN_MAPPINGS.get(
            c.params.get("UUID", ""), DEFAULT_FUNCTION_NAME)
        function = _function(c, name)
        if operation == "CreateEventSourceMapping":
            return [(f"lambda:{operation}", "*", {"lambda:FunctionArn": function})]
        arn = f"arn:{PARTITION}:lambda:{c.region}:{ACCOUNT}:event-source-mapping:{c.params['UUID']}"
        return [(f"lambda:{operation}", arn, {"lambda:FunctionArn": function})]
    return resolve


#: The function each mapping (by UUID) invokes, where a test knows it; others are the
#: default function's.
KNOWN_MAPPINGS: dict[str, str] = {}


RESOLVERS: dict[str, Resolver] = {
    # S3: HEAD is authorized as GetObject, HeadBucket as ListBucket.
    "s3.HeadObject": _s3("s3:GetObject", _object),
    "s3.GetObject": _s3("s3:GetObject", _object),
    "s3.ListObjectsV2": _list_bucket,
    "s3.ListObjects": _list_bucket,
    "s3.HeadBucket": _s3("s3:ListBucket", _bucket),
    "s3.GetBucketLocation": _s3("s3:GetBucketLocation", _bucket),
    "s3.GetBucketNotificationConfiguration": _s3("s3:GetBucketNotification", _bucket),
    # S3 validates every destination of the document ("it first verifies that any [SNS
    # or SQS] destination exists, and that the bucket owner has permission to publish to
    # it [...] Amazon S3 verifies that the Lambda function permissions grant Amazon S3
    # permission to invoke the function"), with the bucket owner's and the function's
    # resource policy's rights, not the caller's; SkipDestinationValidation (a write
    # that only removes ours) is a header of the same action.
    "s3.PutBucketNotificationConfiguration": _s3("s3:PutBucketNotification", _bucket),
    "s3.GetBucketVersioning": _s3("s3:GetBucketVersioning", _bucket),
    "s3.GetBucketReplication": _s3("s3:GetReplicationConfiguration", _bucket),
    "s3.PutBucketVersioning": _s3("s3:PutBucketVersioning", _bucket),
    # "To use this operation [DeleteBucketReplication], you must have permissions to
    # perform the s3:PutReplicationConfiguration action" (Amazon S3 API Reference).
    "s3.DeleteBucketReplication": _s3("s3:PutReplicationConfiguration", _bucket),
    "s3.PutBucketReplication": _replication,
    # Status's path checks: EC2 describe calls and CloudWatch reads name no resource.
    **{f"ec2.{op}": _one(f"ec2:{op}", lambda c: "*") for op in (
        "DescribeSubnets", "DescribeVpcEndpoints", "DescribeRouteTables")},
    "cloudwatch.GetMetricStatistics": _one("cloudwatch:GetMetricStatistics", lambda c: "*"),
    # The alarms of --alarm-topic, by name.
    **{f"cloudwatch.{op}": _alarms(op) for op in (
        "DescribeAlarms", "PutMetricAlarm", "DeleteAlarms", "ListTagsForResource")},
    # DynamoDB: the table, or the index a Query/Scan names.
    **{f"dynamodb.{op}": _ddb(op) for op in (
        "DescribeTable", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
        "CreateTable")},
    **{f"dynamodb.{op}": _ddb_batch(op) for op in ("BatchWriteItem", "BatchGetItem")},
    "dynamodb.ListTables": _one("dynamodb:ListTables", lambda c: "*"),
    # Lambda.  CreateFunction, UpdateFunctionConfiguration and PutFunctionEventInvokeConfig
    # also check what the function's role may do (a VPC's ec2:CreateNetworkInterface,
    # the on-failure destination's sqs:SendMessage or sns:Publish): the role's policy
    # (iam.py), not the caller's, and retried while IAM propagates (executor.py).
    **{f"lambda.{op}": _lambda(op) for op in (
        "GetFunction", "GetFunctionConfiguration", "CreateFunction", "DeleteFunction",
        "UpdateFunctionCode", "UpdateFunctionConfiguration", "GetPolicy", "AddPermission",
        "RemovePermission", "GetFunctionEventInvokeConfig", "PutFunctionEventInvokeConfig",
        "GetFunctionConcurrency", "PutFunctionConcurrency", "DeleteFunctionConcurrency",
        "UpdateFunctionEventInvokeConfig", "DeleteFunctionEventInvokeConfig")},
    # The Region's concurrency quota: an account-wide read that names no resource.
    "lambda.GetAccountSettings": _one("lambda:GetAccountSettings", lambda c: "*"),
    **{f"lambda.{op}": _lambda(op, "Resource") for op in (
        "TagResource", "UntagResource", "ListTags")},
    # IAM roles (ours live under ROLE_PATH).
    **{f"iam.{op}": _iam(op) for op in (
        "GetRole", "CreateRole", "DeleteRole", "ListRolePolicies", "ListAttachedRolePolicies",
        "GetRolePolicy", "PutRolePolicy", "DeleteRolePolicy", "UpdateAssumeRolePolicy",
        "TagRole", "UntagRole")},
    # EventBridge rules.
    **{f"events.{op}": _events(op) for op in ("DescribeRule", "PutRule", "DeleteRule")},
    **{f"events.{op}": _events(op, "Rule") for op in (
        "PutTargets", "RemoveTargets", "ListTargetsByRule")},
    **{f"events.{op}": _events(op, "ResourceARN") for op in (
        "ListTagsForResource", "TagResource", "UntagResource")},
    "events.ListRules": _one("events:ListRules", lambda c: "*"),
    # The database's secret (the function reads it; create reads it once to check it, or
    # keeps its own with --store-db-password).
    **{f"secretsmanager.{op}": _secret(op) for op in (
        "GetSecretValue", "DescribeSecret", "PutSecretValue", "DeleteSecret")},
    "secretsmanager.CreateSecret": _secret("CreateSecret", key="Name"),
    **{f"ssm.{op}": _parameter(op) for op in ("GetParameter", "PutParameter",
                                              "DeleteParameter")},
    "ssm.ListTagsForResource": _parameter("ListTagsForResource", key="ResourceId"),
    # An --on-failure queue's or topic's encryption, and the key an alias names; and SQS
    # as redrive calls it.  "You cannot set permissions explicitly for
    # SendMessageBatch, DeleteMessageBatch, or ChangeMessageVisibilityBatch. Instead,
    # setting permissions for SendMessage, DeleteMessage, or ChangeMessageVisibility sets
    # permissions for the corresponding batch versions of the actions." (SQS developer
    # guide, "Amazon SQS batch actions").
    **{f"sqs.{op}": _one(f"sqs:{op}", _queue) for op in (
        "GetQueueUrl", "GetQueueAttributes", "ReceiveMessage", "SendMessage",
        "DeleteMessage")},
    "sqs.SendMessageBatch": _one("sqs:SendMessage", _queue),
    "sqs.DeleteMessageBatch": _one("sqs:DeleteMessage", _queue),
    "sns.GetTopicAttributes": _one("sns:GetTopicAttributes", lambda c: c.params["TopicArn"]),
    "kms.DescribeKey": _one("kms:DescribeKey", _key),
    # --delivery sqs: the queues by ARN, the event source mapping by its own ARN.
    **{f"sqs.{op}": _sqs(op) for op in (
        "ListQueueTags", "CreateQueue", "SetQueueAttributes", "DeleteQueue", "TagQueue")},
    "lambda.ListEventSourceMappings": _one("lambda:ListEventSourceMappings", lambda c: "*"),
    **{f"lambda.{op}": _mapping(op) for op in (
        "CreateEventSourceMapping", "UpdateEventSourceMapping", "DeleteEventSourceMapping",
        "GetEventSourceMapping")},
    # Needs no permission: AWS answers it for any valid credentials.
    "sts.GetCallerIdentity": lambda c: [],
}


def iam_requests(calls: Iterable[Call]) -> list[Request]:
    """What IAM authorizes for these calls (duplicates kept, in order)."""
    found = []
    _FUNCTION_KEYS.clear()
    for call in calls:
        resolver = RESOLVERS.get(call.name)
        if resolver is None:
            raise AssertionError(
                f"{call.name} is not in tests/support/aws_trace.py's table: say which IAM action "
                "and resource it needs there, so the policy tests can check it")
        for action, resource, conditions in resolver(call):
            found.append(Request(action, resource, tuple(sorted(conditions.items())),
                                 call.name))
    return found


# -- judging requests against a policy ---------------------------------------------------

def _permitted(policy: dict[str, Any], request: Request) -> bool:
    """Allowed by some Allow statement and denied by no Deny statement.

    Each statement is judged on its own: moto's evaluator answers DENIED for an Allow
    statement whose condition is not met, even one on another resource, where IAM
    leaves such a statement out ("If the conditions are not met, the statement does
    not apply", IAM User Guide, "Policy evaluation logic"); so two Allow statements for
    one action with different conditions (iam:PassRole of one role to Lambda, of
    another to S3) would refuse each other.  A Deny statement keeps moto's answer.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult

    allowed = False
    for statement in policy["Statement"]:
        single = {"Version": policy["Version"], "Statement": [statement]}
        # IAM's "?" is any one character; moto's evaluator reads patterns as regular
        # expressions, where "." is.
        result = IAMPolicy(json.dumps(single).replace("?", ".")).is_action_permitted(
            request.action, request.resource,
            incoming_condition_values=dict(request.conditions) or None)
        if statement["Effect"] == "Deny" and result == PermissionResult.DENIED:
            return False
        allowed = allowed or result == PermissionResult.PERMITTED
    return allowed


def denied(policy: dict[str, Any], requests: Iterable[Request]) -> list[Request]:
    """The requests the policy does not allow (moto's evaluator decides)."""
    return [r for r in dict.fromkeys(requests) if not _permitted(policy, r)]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def unused_grants(policy: dict[str, Any], requests: Iterable[Request]) -> list[str]:
    """``Sid: action on resource`` for every grant no request was allowed through.

    Each (statement, action, resource) is judged on its own, so an action granted on
    two tables must be needed on both to count as used.
    """
    requests = list(dict.fromkeys(requests))
    unused = []
    for statement in policy["Statement"]:
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                single = {"Version": policy["Version"],
                          "Statement": [{**statement, "Action": action, "Resource": resource}]}
                if not any(_permitted(single, r) for r in requests if r.action == action):
                    unused.append(f"{statement.get('Sid', '?')}: {action} on {resource}")
    return unused


def describe(requests: Iterable[Request]) -> str:
    return "\n".join(f"  {r}" for r in requests)


def lint_config(tmp_path: Any, backend: str, *, bucket: str, region: str,
                prefix: str) -> Any:
    """The smallest server config a generated policy depends on: a Redis cache (no
    tables) or a DynamoDB one (table grants)."""
    from pypicloud_s3sync.config import load_config

    from .pypicloud_app import write_ini

    settings = {"storage.bucket": bucket, "storage.prefix": prefix,
                **({"pypi.db": "dynamo", "db.region_name": region} if backend == "dynamo"
                   else {"pypi.db": "redis", "db.url": "redis://cache:6379/0"})}
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, settings)
    return load_config(str(ini))


def parliament_findings(policy: dict[str, Any]) -> list[str]:
    """What parliament, a maintained IAM policy linter, says about the policy."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string

    analyzed = analyze_policy_string(json.dumps(policy, indent=2))
    return [f"{f.issue} {f.severity} {f.detail}" for f in analyzed.findings]


__all__ = ["ACCOUNT", "Call", "Request", "Tracer", "denied", "describe", "iam_requests",
           "parliament_findings", "tracing", "unused_grants"]
