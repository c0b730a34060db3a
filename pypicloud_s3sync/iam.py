"""The function's IAM role: trust policy and least-privilege inline policy.

The original granted ``logs:*`` on every log group and read access to the whole bucket.
Here every statement names the resources this one function needs: its own log group,
objects under ``storage.prefix``, the cache's own DynamoDB tables.  Only the ENI actions
for a VPC function keep ``Resource: *``, because EC2 does not support narrowing them.
The documents are plain dicts so that the planner can compare them with what IAM holds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import unquote

from .settings import PypicloudConfig

POLICY_VERSION = "2012-10-17"
#: Roles we create live under this path, so an operator can list them at a glance.
ROLE_PATH = "/pypicloud-s3sync/"
#: The name of our one inline policy on the role.
POLICY_NAME = "pypicloud-s3sync"
#: Tag that marks a role (and function, rule) as created by us; delete only removes those.
MANAGED_TAG = "pypicloud-s3sync:managed"
MANAGED_VALUE = "true"

#: pypicloud's DynamoDB models, as flywheel names their tables by default
#: (``pypicloud.cache.dynamo.DynamoPackage`` / ``PackageSummary``).
DYNAMO_DEFAULT_TABLES = ("DynamoPackage", "PackageSummary")
DYNAMO_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
]
#: What a Lambda function in a VPC needs to attach its network interfaces
#: (the same actions as AWS's managed AWSLambdaVPCAccessExecutionRole).
VPC_ACTIONS = [
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:UnassignPrivateIpAddresses",
]


def trust_policy() -> dict[str, Any]:
    """Only the Lambda service may assume the role."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def role_name(function_name: str, region: str) -> str:
    """One role per function and region, so two syncs never share (or delete) each
    other's role: IAM is global, and the same function name in two regions is the
    normal multi-region setup.  Names past IAM's 64 characters keep a digest."""
    name = f"pypicloud-s3sync-{function_name}-{region}"
    if len(name) <= 64:
        return name
    return f"{name[:55]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def role_arn(account: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role{ROLE_PATH}{name}"


def dynamo_table_names(config: PypicloudConfig) -> list[str]:
    """The cache's two tables as pypicloud's DynamoCache names them.

    ``db.tablenames`` replaces the model names and ``db.namespace`` is prepended as a
    string (flywheel's rule); computed here instead of calling ``DynamoCache.configure``,
    which would create the tables and change class-level state.
    """
    from pyramid.settings import aslist

    names = aslist(config.settings.get("db.tablenames", "")) or list(DYNAMO_DEFAULT_TABLES)
    namespace = config.settings.get("db.namespace", "") or ""
    return [f"{namespace}{name}" for name in names]


def role_policy(
    config: PypicloudConfig,
    *,
    account: str,
    region: str,
    function_name: str,
    vpc: bool = False,
    on_failure: str | None = None,
    partition: str = "aws",
) -> dict[str, Any]:
    """The inline policy: exactly what the handler and reconcile touch, nothing more."""
    target = config.target
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup"],
            "Resource": f"{log_group}:*",
        },
        {
            "Sid": "OwnLogStreams",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group}:log-stream:*",
        },
        {
            "Sid": "ReadPackages",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": f"arn:{partition}:s3:::{target.bucket}/{target.prefix}*",
        },
        {
            # Reconcile lists under the prefix.  The handler needs this too: S3 answers a
            # HEAD for a deleted key with 404 only to callers allowed to list the bucket
            # (403 otherwise), and that check carries no s3:prefix, hence "IfExists".
            "Sid": "ListPackages",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": f"arn:{partition}:s3:::{target.bucket}",
            "Condition": {"StringLikeIfExists": {"s3:prefix": [f"{target.prefix}*"]}},
        },
    ]
    if config.cache_backend == "dynamo":
        db_region = config.settings.get("db.region_name") or region
        tables = [
            f"arn:{partition}:dynamodb:{db_region}:{account}:table/{name}"
            for name in dynamo_table_names(config)
        ]
        statements.append({
            "Sid": "CacheTables",
            "Effect": "Allow",
            "Action": list(DYNAMO_ACTIONS),
            "Resource": tables + [f"{arn}/index/*" for arn in tables],
        })
    if on_failure:
        statements.append({
            "Sid": "OnFailureDestination",
            "Effect": "Allow",
            "Action": [_destination_action(on_failure)],
            "Resource": on_failure,
        })
    if vpc:
        statements.append({
            "Sid": "VpcNetworkInterfaces",
            "Effect": "Allow",
            "Action": list(VPC_ACTIONS),
            "Resource": "*",
        })
    return {"Version": POLICY_VERSION, "Statement": statements}


def _destination_action(arn: str) -> str:
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    return {
        "sqs": "sqs:SendMessage",
        "sns": "sns:Publish",
        "lambda": "lambda:InvokeFunction",
        "events": "events:PutEvents",
    }.get(service, "sqs:SendMessage")


def parse_document(document: str | dict[str, Any]) -> dict[str, Any]:
    """IAM returns documents URL-encoded (real AWS) or already decoded (boto3 usually)."""
    if isinstance(document, dict):
        return document
    text = document
    if text.lstrip().startswith("%7B"):
        text = unquote(text)
    return json.loads(text)


def normalize(document: dict[str, Any]) -> Any:
    """A form of a policy that compares equal when IAM would treat it the same.

    IAM may return single-item lists as strings and reorder keys; lists of actions and
    resources are order-insensitive.
    """
    def norm(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: norm(v, k) for k, v in sorted(value.items())}
        if isinstance(value, list):
            items = [norm(v) for v in value]
            if len(items) == 1 and key not in ("Statement",):
                return items[0]
            if key in ("Statement",):
                return items
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        return value

    return norm(document)


def same_policy(a: str | dict[str, Any], b: str | dict[str, Any]) -> bool:
    return normalize(parse_document(a)) == normalize(parse_document(b))


def has_wildcard_resource(document: dict[str, Any], services: tuple[str, ...]) -> list[str]:
    """Actions of ``services`` granted on ``Resource: "*"`` (used by status and tests)."""
    found = []
    for statement in document.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if "*" in resources:
            found += [a for a in actions if a.split(":")[0] in services or a == "*"]
    return found
