"""The function's IAM role: trust policy and least-privilege inline policy.

The original granted ``logs:*`` on every log group and read access to the whole bucket.
Here every statement names the resources this one function needs: its own log group,
objects under ``storage.prefix``, the cache's own DynamoDB tables and index.  Only the
EC2 describe calls of a VPC function keep ``Resource: *``, the one form EC2 accepts
for them.
The documents are plain dicts so that the planner can compare them with what IAM holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from ..config import PypicloudConfig
from ..endpoints import partition as partition_of
from .names import bounded

POLICY_VERSION = "2012-10-17"
#: Who assumes the function's role, and who the replication role's.
LAMBDA_SERVICE, S3_SERVICE = "lambda.amazonaws.com", "s3.amazonaws.com"
#: The replication role's grants (see :func:`replication_policy`).
REPLICATION_SOURCE_BUCKET_ACTIONS = ("s3:GetReplicationConfiguration", "s3:ListBucket")
REPLICATION_SOURCE_OBJECT_ACTIONS = ("s3:GetObjectVersionAcl",
                                     "s3:GetObjectVersionForReplication",
                                     "s3:GetObjectVersionTagging")
REPLICATION_DESTINATION_ACTIONS = ("s3:ReplicateDelete", "s3:ReplicateObject",
                                   "s3:ReplicateTags")
#: Roles we create live under this path, so an operator can list them at a glance.
ROLE_PATH = "/pypicloud-s3sync/"
#: The name of our one inline policy on the role.
POLICY_NAME = "pypicloud-s3sync"
#: Tag that marks a role (and function, rule) as created by us; delete only removes those.

#: pypicloud's DynamoDB models, as flywheel names their tables by default
#: (``pypicloud.cache.dynamo.DynamoPackage`` / ``PackageSummary``).
DYNAMO_DEFAULT_TABLES = ("DynamoPackage", "PackageSummary")
#: The package table's one global index (``DynamoPackage``'s ``GlobalIndex``); the
#: summary table has none.
DYNAMO_NAME_INDEX = "name-index"
#: What the function does to both tables: DescribeTable at cold start (that they
#: exist), BatchWriteItem to save a package with its summary (and, through flywheel,
#: to drop a summary).
DYNAMO_TABLE_ACTIONS = ["dynamodb:BatchWriteItem", "dynamodb:DescribeTable"]
#: The package table alone: a conditional DeleteItem clears one entry, reconcile scans.
DYNAMO_PACKAGE_ACTIONS = ["dynamodb:DeleteItem", "dynamodb:Scan"]
#: pypicloud asks the name index whether a project has files left after a delete.
DYNAMO_INDEX_ACTIONS = ["dynamodb:Query"]

#: Granted actions the function's own code never calls, and why they are granted.
#: Everything else the role grants is used by a traced path
#: (tests/function/test_function_policy.py).
UNTRACED_ACTIONS = {
    "logs:CreateLogGroup": "Lambda's runtime writes the function's output to CloudWatch Logs",
    "logs:CreateLogStream": "Lambda's runtime writes the function's output to CloudWatch Logs",
    "logs:PutLogEvents": "Lambda's runtime writes the function's output to CloudWatch Logs",
    "sqs:SendMessage": "Lambda itself sends failed events to the --on-failure queue",
    "sns:Publish": "Lambda itself sends failed events to the --on-failure topic",
    "s3:PutObject": "Lambda itself writes failed events to the --on-failure bucket",
    "lambda:InvokeFunction": "Lambda itself sends failed events to the --on-failure function",
    "events:PutEvents": "Lambda itself sends failed events to the --on-failure event bus",
    "kms:GenerateDataKey": "SQS or SNS encrypts what Lambda sends to an encrypted "
                           "--on-failure queue or topic with its customer key",
    "ec2:AssignPrivateIpAddresses": "Lambda attaches a VPC function's network interfaces",
    "ec2:CreateNetworkInterface": "Lambda attaches a VPC function's network interfaces",
    "ec2:DeleteNetworkInterface": "Lambda attaches a VPC function's network interfaces",
    "ec2:DescribeNetworkInterfaces": "Lambda attaches a VPC function's network interfaces",
    "ec2:UnassignPrivateIpAddresses": "Lambda attaches a VPC function's network interfaces",
    "ec2:DescribeSubnets": "Lambda attaches a VPC function's network interfaces",
    "kms:Decrypt": "Secrets Manager or SSM (kms:ViaService), or Lambda for the environment "
                   "or the --delivery sqs queue, decrypts with the customer key for the "
                   "function; SQS or SNS for an encrypted --on-failure queue or topic",
    "sqs:ReceiveMessage": "Lambda's event source mapping reads the --delivery sqs queue",
    "sqs:DeleteMessage": "Lambda's event source mapping reads the --delivery sqs queue",
    "sqs:GetQueueAttributes": "Lambda's event source mapping reads the --delivery sqs queue",
}
#: What Lambda's event source mapping does to the queue with the function's role: "Lambda
#: needs the following permissions to manage messages in your Amazon SQS queue"
#: (Lambda developer guide, "Execution role permissions" for SQS):
#: sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes; without them Lambda
#: refuses to create the mapping.
QUEUE_ACTIONS = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
#: What reading the database's secret is, per service of ``s3sync.db_url_secret``.
SECRET_ACTIONS = {"secretsmanager": "secretsmanager:GetSecretValue", "ssm": "ssm:GetParameter"}
#: "Secrets Manager constructs the last part of the secret ARN by appending a dash and
#: six random alphanumeric characters at the end of the secret name" (Secrets Manager
#: user guide, "Permissions reference"): IAM's form for "these six, whatever they are".
SECRET_SUFFIX_PATTERN = "-??????"
_COMPLETE_SECRET_ARN = re.compile(r":secret:.+-[A-Za-z0-9]{6}$")
#: What Lambda does with a VPC function's role to attach its network interfaces (the
#: actions of AWS's managed AWSLambdaVPCAccessExecutionRole), split by what each one
#: can be narrowed to: the interfaces in this region and account, plus the function's
#: own subnets and security groups for creating one.
VPC_INTERFACE_ACTIONS = [
    "ec2:AssignPrivateIpAddresses",
    "ec2:DeleteNetworkInterface",
    "ec2:UnassignPrivateIpAddresses",
]
VPC_CREATE_ACTIONS = ["ec2:CreateNetworkInterface"]
#: EC2 authorizes these describe calls on "*" only.
VPC_DESCRIBE_ACTIONS = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]


#: The on-failure destinations Lambda sends failed asynchronous events to, and what the
#: function's role must be allowed on each: "For Lambda to successfully send records to
#: your chosen destination, ensure that your function's execution role also contains the
#: relevant permissions" (Lambda Developer Guide, Capturing records of Lambda
#: asynchronous invocations, "Adding a destination").  By the ARN's service: its name
#: in messages, and (action, resource suffix) pairs; an S3 destination is the bucket,
#: whose records are objects in it.
DESTINATIONS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "sqs": ("a standard SQS queue", (("sqs:SendMessage", ""),)),
    "sns": ("a standard SNS topic", (("sns:Publish", ""),)),
    "s3": ("an S3 bucket", (("s3:PutObject", "/*"), ("s3:ListBucket", ""))),
    "lambda": ("a Lambda function", (("lambda:InvokeFunction", ""),)),
    "events": ("an EventBridge event bus", (("events:PutEvents", ""),)),
}
#: What a producer needs of an encrypted queue's or topic's customer managed key.
DESTINATION_KEY_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"]


def destination_kind(arn: str) -> str | None:
    """The service of an on-failure destination ARN, or None for anything Lambda does
    not send failed events to (a rule, a table, a layer...), FIFO queues and topics
    included: "This can happen if your configuration includes an unsupported destination
    type, such as an Amazon SQS FIFO queue or an Amazon SNS FIFO topic" (Capturing
    records of Lambda asynchronous invocations)."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[5]:
        return None
    service, region, account, resource = parts[2], parts[3], parts[4], ":".join(parts[5:])
    if service == "s3":
        return "s3" if not region and not account and "/" not in resource else None
    if not region or not account:
        return None
    if service in ("sqs", "sns"):
        plain = ":" not in resource and "/" not in resource
        return service if plain and not resource.endswith(".fifo") else None
    if service == "lambda":
        return service if resource.startswith("function:") else None
    if service == "events":
        return service if resource.startswith("event-bus/") else None
    return None


def destination_statements(arn: str, key: str | None = None) -> list[dict[str, Any]]:
    """The role's grants for the on-failure destination ``arn``, each on exactly that
    resource, and for ``key``, the customer managed key that encrypts it."""
    kind = destination_kind(arn)
    if kind is None:
        return []  # refused by the plan (async-config) before any change
    by_resource: dict[str, list[str]] = {}
    for action, suffix in DESTINATIONS[kind][1]:
        by_resource.setdefault(arn + suffix, []).append(action)
    sids = iter(("OnFailureDestination", "OnFailureBucket"))
    statements = [{"Sid": next(sids), "Effect": "Allow", "Action": actions,
                   "Resource": resource} for resource, actions in by_resource.items()]
    if key:
        statements.append({"Sid": "OnFailureKey", "Effect": "Allow",
                           "Action": list(DESTINATION_KEY_ACTIONS), "Resource": key})
    return statements


def trust_policy(service: str = LAMBDA_SERVICE) -> dict[str, Any]:
    """Only ``service`` may assume the role: Lambda for the function's, S3 for the
    replication role."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def replication_role_name(bucket: str) -> str:
    """One replication role per source bucket (S3 allows one role per configuration,
    and IAM is global, so the bucket's name, unique in its partition, keys it)."""
    return bounded(f"pypicloud-s3sync-replication-{bucket}")


def replication_policy(bucket: str, prefix: str, destinations: Sequence[str],
                       partition: str) -> dict[str, Any]:
    """What S3 needs to replicate ``bucket``'s objects under ``prefix`` to each
    destination bucket, where each replica keeps its key (so it lands under ``prefix``
    there too): exactly the minimum permissions policy of the S3
    user guide ("Setting up permissions for live replication", "Creating an IAM role"):
    s3:GetReplicationConfiguration and s3:ListBucket on the source bucket,
    s3:GetObjectVersionForReplication, s3:GetObjectVersionAcl and
    s3:GetObjectVersionTagging on its objects, and s3:ReplicateObject,
    s3:ReplicateDelete and s3:ReplicateTags on the destination's objects; narrowed to
    the packages' prefixes, the only keys a rule of ours replicates."""
    source = f"arn:{partition}:s3:::{bucket}"
    return {"Version": POLICY_VERSION, "Statement": [
        {"Sid": "SourceBucket", "Effect": "Allow",
         "Action": list(REPLICATION_SOURCE_BUCKET_ACTIONS), "Resource": source},
        {"Sid": "SourcePackages", "Effect": "Allow",
         "Action": list(REPLICATION_SOURCE_OBJECT_ACTIONS), "Resource": f"{source}/{prefix}*"},
        {"Sid": "DestinationPackages", "Effect": "Allow",
         "Action": list(REPLICATION_DESTINATION_ACTIONS),
         "Resource": sorted(f"arn:{partition}:s3:::{other}/{prefix}*"
                            for other in destinations)},
    ]}


def role_name(function_name: str, region: str) -> str:
    """One role per function and region, so two syncs never share (or delete) each
    other's role: IAM is global, and the same function name in two regions is the
    normal multi-region setup.  Names past IAM's 64 characters keep a digest."""
    return bounded(f"pypicloud-s3sync-{function_name}-{region}")


def role_arn(account: str, name: str, partition: str) -> str:
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
    subnet_ids: Sequence[str] = (),
    security_group_ids: Sequence[str] = (),
    on_failure: str | None = None,
    on_failure_key: str | None = None,
    partition: str | None = None,
    stored_db_secret: tuple[str, str] | None = None,
    environment_key: str | None = None,
    queue: tuple[str, str | None] | None = None,
) -> dict[str, Any]:
    """The inline policy: exactly what the handler and reconcile touch, nothing more.

    ``on_failure_key`` is the customer managed key of an encrypted on-failure queue or
    topic.  ``stored_db_secret`` is ``(service, resource)`` of the secret create keeps the
    database URL in (``--store-db-password``); ``environment_key`` the customer managed
    key that encrypts the function's environment (``--kms-key-arn``); ``queue`` the
    ARN of ``--delivery sqs``'s queue and the key that encrypts it (or None).

    ``subnet_ids`` / ``security_group_ids`` put the function in a VPC, which adds what
    Lambda needs to attach its network interfaces.
    """
    partition = partition or partition_of(region)
    statements: list[dict[str, Any]] = [
        *log_statements(partition, region, account, function_name),
        *package_statements(config, partition),
    ]
    if config.cache_backend == "dynamo":
        statements += dynamo_statements(config, account, region, partition)
    if on_failure:
        statements += destination_statements(on_failure, on_failure_key)
    if subnet_ids:
        statements += _vpc_statements(subnet_ids, security_group_ids, account, region,
                                      partition)
    if queue:
        statements.append({"Sid": "DeliveryQueue", "Effect": "Allow",
                           "Action": list(QUEUE_ACTIONS), "Resource": queue[0]})
        if queue[1]:
            # Receiving from an SSE-KMS queue decrypts its data key with the reader's
            # rights.
            statements.append({"Sid": "DeliveryQueueKey", "Effect": "Allow",
                               "Action": ["kms:Decrypt"], "Resource": queue[1]})
    if environment_key:
        statements.append({"Sid": "EnvironmentKey", "Effect": "Allow",
                           "Action": ["kms:Decrypt"], "Resource": environment_key})
    if stored_db_secret:
        statements.append({"Sid": "DatabaseSecret", "Effect": "Allow",
                           "Action": [SECRET_ACTIONS[stored_db_secret[0]]],
                           "Resource": stored_db_secret[1]})
    else:
        statements += secret_statements(config)
    return {"Version": POLICY_VERSION, "Statement": statements}


def secret_resource(arn: str) -> str:
    """The resource that grants reading the secret ``arn`` names.

    GetSecretValue finds a secret by its ARN without the six characters ("You can
    specify a partial ARN too", botocore's ``SecretId``), but IAM authorises the call on
    the secret's full ARN, which the partial one never matches: so a partial ARN is
    granted with the pattern for those six ("Using '??????' as a wildcard to match the
    6 random characters assigned by Secrets Manager", user guide, "Limiting access to
    specific secrets"), as the secret of ``--store-db-password`` is.  An SSM
    parameter's ARN is always whole.
    """
    if ":secretsmanager:" in arn and not _COMPLETE_SECRET_ARN.search(arn):
        return arn + SECRET_SUFFIX_PATTERN
    return arn


def secret_statements(config: PypicloudConfig) -> list[dict[str, Any]]:
    """Reading the one secret ``s3sync.db_url_secret`` names, and decrypting it with the
    customer key ``s3sync.db_url_secret_kms_key`` only through that secret's service.

    Nothing without a reference; an unparsable one is the planner's error to report, so
    it grants nothing here either.
    """
    from ..function.dbsecret import SecretError, parse_ref

    reference = config.option("db_url_secret")
    if not reference:
        return []
    try:
        ref = parse_ref(str(reference))
    except SecretError:
        return []
    statements: list[dict[str, Any]] = [{
        "Sid": "DatabaseSecret", "Effect": "Allow",
        "Action": [SECRET_ACTIONS[ref.service]], "Resource": secret_resource(ref.arn),
    }]
    key = config.option("db_url_secret_kms_key")
    if key:
        statements.append({
            "Sid": "DatabaseSecretKey", "Effect": "Allow", "Action": ["kms:Decrypt"],
            "Resource": str(key),
            "Condition": {"StringEquals": {
                "kms:ViaService": f"{ref.service}.{ref.region}.amazonaws.com"}},
        })
    return statements


def log_statements(partition: str, region: str, account: str,
                   function_name: str) -> list[dict[str, Any]]:
    """Writing to the function's own log group (``/aws/lambda/NAME``) and no other."""
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
    return [
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
    ]


def package_statements(config: PypicloudConfig, partition: str) -> list[dict[str, Any]]:
    target = config.target
    return [
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


def dynamo_statements(config: PypicloudConfig, account: str, region: str,
                       partition: str) -> list[dict[str, Any]]:
    """The cache's two tables and the package table's index, each for what it needs.

    No ``dynamodb:*`` on ``"*"``: the function never lists or creates tables (see
    :func:`pypicloud_s3sync.function.cache.configure_checking_tables`).
    """
    db_region = config.settings.get("db.region_name") or region
    packages, summaries = (
        f"arn:{partition}:dynamodb:{db_region}:{account}:table/{name}"
        for name in dynamo_table_names(config))
    return [
        {"Sid": "CacheTables", "Effect": "Allow", "Action": list(DYNAMO_TABLE_ACTIONS),
         "Resource": [packages, summaries]},
        {"Sid": "PackageTable", "Effect": "Allow",
         "Action": list(DYNAMO_PACKAGE_ACTIONS), "Resource": packages},
        {"Sid": "PackagesByName", "Effect": "Allow", "Action": list(DYNAMO_INDEX_ACTIONS),
         "Resource": f"{packages}/index/{DYNAMO_NAME_INDEX}"},
    ]


def _vpc_statements(subnet_ids: Sequence[str], security_group_ids: Sequence[str],
                    account: str, region: str, partition: str) -> list[dict[str, Any]]:
    ec2 = f"arn:{partition}:ec2:{region}:{account}"
    return [
        {"Sid": "VpcNetworkInterfaces", "Effect": "Allow",
         "Action": list(VPC_INTERFACE_ACTIONS), "Resource": f"{ec2}:network-interface/*"},
        {"Sid": "VpcCreateNetworkInterface", "Effect": "Allow",
         "Action": list(VPC_CREATE_ACTIONS),
         "Resource": [f"{ec2}:network-interface/*",
                      *(f"{ec2}:subnet/{s}" for s in subnet_ids),
                      *(f"{ec2}:security-group/{g}" for g in security_group_ids)]},
        {"Sid": "VpcDescribe", "Effect": "Allow", "Action": list(VPC_DESCRIBE_ACTIONS),
         "Resource": "*"},
    ]


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


#: Lambda checks the execution role on every call that sets it or relies on it
#: (CreateFunction, UpdateFunctionConfiguration, PutFunctionEventInvokeConfig...), and
#: refuses with InvalidParameterValueException while IAM has not yet shown it the role
#: ("The role defined for the function cannot be assumed by Lambda.") or a permission
#: its policy was just given ("The provided execution role does not have permissions to
#: call CreateNetworkInterface on EC2", "The function's execution role does not have
#: permissions to call SendMessage on <the queue's ARN>", or Publish on a topic's).
_NOT_ASSUMABLE = "cannot be assumed"
#: What Lambda lacks when it cannot assume the role: the role itself, or its trust.
ASSUME = "sts:AssumeRole"
_MISSING = re.compile(r"does not have permissions to call (\w+) on (\S+)")


def role_refusal(message: str) -> str | None:
    """What Lambda says the function's role cannot do, in IAM's terms (the action, and
    the resource when Lambda names one), or None when ``message`` is not about it."""
    if _NOT_ASSUMABLE in message:
        return ASSUME
    found = _MISSING.search(message)
    if not found:
        return None
    action, target = found.group(1), found.group(2).rstrip(".")
    if target.startswith("arn:"):
        return f"{target.split(':')[2]}:{action} on {target}"
    return f"{target.lower()}:{action}"
