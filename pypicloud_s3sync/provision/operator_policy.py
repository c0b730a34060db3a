"""The IAM policy an operator (or the admin server's credentials) needs for every command:
create, status and delete of one function's sync, and reconcile of its bucket and cache.

Generated, never written by hand, so that docs/resources.rst and the tests read the one
the commands need; every resource is named where AWS allows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import PypicloudConfig
from .alarms import alarm_names
from .dbstore import StoredSecret
from .iam import (
    POLICY_VERSION,
    dynamo_statements,
    package_statements,
    role_arn,
    role_name,
    secret_statements,
)
from .names import delivery_rule_name
from .schedule import schedule_rule_name

#: What the operator's commands do to the function's role (without ``-a``): read it
#: (status, every plan), create it with its tag, keep its trust and inline policy as
#: generated, and remove both on delete.
OPERATOR_ROLE_ACTIONS = [
    "iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:GetRole",
    "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies",
    "iam:PutRolePolicy", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
]
#: ... to the function: read (with its tags: GetFunction returns them only to a caller
#: allowed lambda:ListTags), create (with tags), update code and configuration, its
#: async settings, its reserved concurrency (set, and removed by ``off``) and its invoke
#: permissions, delete.
OPERATOR_FUNCTION_ACTIONS = [
    "lambda:AddPermission", "lambda:CreateFunction", "lambda:DeleteFunction",
    "lambda:DeleteFunctionConcurrency", "lambda:GetFunction", "lambda:GetFunctionConcurrency",
    "lambda:GetFunctionEventInvokeConfig", "lambda:GetPolicy", "lambda:ListTags",
    "lambda:PutFunctionConcurrency", "lambda:PutFunctionEventInvokeConfig",
    "lambda:RemovePermission", "lambda:TagResource",
    "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
]
#: ... to the bucket's notification document (merged, never replaced), and its region
#: (S3 only notifies a function in the bucket's own region); status reads its
#: versioning and replication rules.
OPERATOR_BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:GetBucketNotification",
                           "s3:GetBucketVersioning", "s3:GetReplicationConfiguration",
                           "s3:PutBucketNotification"]
#: ... to the two EventBridge rules (delivery and schedule), read on every plan so that
#: dropping an option removes its rule.
OPERATOR_RULE_ACTIONS = [
    "events:DeleteRule", "events:DescribeRule", "events:ListTagsForResource",
    "events:ListTargetsByRule", "events:PutRule", "events:PutTargets",
    "events:RemoveTargets", "events:TagResource",
]
#: ... to the secret ``--store-db-password`` keeps (tagged when made, so TagResource /
#: AddTagsToResource come with the create call).
OPERATOR_STORE_ACTIONS = {
    "secretsmanager": ["secretsmanager:CreateSecret", "secretsmanager:DeleteSecret",
                       "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                       "secretsmanager:PutSecretValue", "secretsmanager:TagResource"],
    "ssm": ["ssm:AddTagsToResource", "ssm:DeleteParameter", "ssm:GetParameter",
            "ssm:ListTagsForResource", "ssm:PutParameter"],
}
#: EventBridge lists rules on "*" only; create looks for other rules on the bucket.
OPERATOR_LIST_ACTIONS = ["events:ListRules"]
#: Lambda checks a VPC function's subnets and groups with the caller's rights; status
#: looks for the subnets' route to S3.
OPERATOR_VPC_ACTIONS = ["ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSubnets", "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs"]
#: status reads the function's last day of metrics; CloudWatch names no resource here.
OPERATOR_METRIC_ACTIONS = ["cloudwatch:GetMetricStatistics"]
#: ... to the two alarms of ``--alarm-topic``, by name: read on every plan (so that
#: dropping the option removes them), made with our tag, updated, deleted.
OPERATOR_ALARM_ACTIONS = ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
                          "cloudwatch:ListTagsForResource", "cloudwatch:PutMetricAlarm",
                          "cloudwatch:TagResource"]



def operator_policy(
    config: PypicloudConfig,
    *,
    account: str,
    region: str,
    function_name: str,
    given_role: str | None = None,
    subnet_ids: Sequence[str] = (),
    partition: str = "aws",
    store_db_password: str | None = None,
) -> dict[str, Any]:
    """What an operator (or the admin server's credentials) needs for every command.

    ``store_db_password`` (default: the ini's ``s3sync.store_db_password``) adds keeping
    the secret create owns: make, read, update and delete that one secret or parameter.

    create (any ``--delivery``, ``--reconcile-every``, ``--on-failure``), delete and
    status for this one function in ``region``, reconcile of this config's bucket and
    cache, and bundle (which calls no AWS API).  ``given_role`` is ``-a``'s role: it is
    then only read and passed to the function, never changed.  Every resource is named;
    only ``events:ListRules``, ``cloudwatch:GetMetricStatistics`` (and a VPC function's
    EC2 describe calls) take ``"*"``,
    the one form AWS accepts for them.
    """

    ours = given_role is None
    role = given_role or role_arn(account, role_name(function_name, region), partition)
    function = f"arn:{partition}:lambda:{region}:{account}:function:{function_name}"
    rules = [f"arn:{partition}:events:{region}:{account}:rule/{name}"
             for name in (delivery_rule_name(function_name), schedule_rule_name(function_name))]
    alarms = [f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}"
              for name in alarm_names(function_name)]
    statements: list[dict[str, Any]] = []
    if ours:
        statements.append({"Sid": "FunctionRole", "Effect": "Allow",
                           "Action": list(OPERATOR_ROLE_ACTIONS), "Resource": role})
    else:
        # create checks that the given role exists before handing it to Lambda.
        statements.append({"Sid": "GivenRole", "Effect": "Allow",
                           "Action": ["iam:GetRole"], "Resource": role})
    statements += [
        {"Sid": "PassFunctionRole", "Effect": "Allow", "Action": ["iam:PassRole"],
         "Resource": role,
         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
        {"Sid": "Function", "Effect": "Allow", "Action": list(OPERATOR_FUNCTION_ACTIONS),
         "Resource": function},
        {"Sid": "BucketNotifications", "Effect": "Allow",
         "Action": list(OPERATOR_BUCKET_ACTIONS),
         "Resource": f"arn:{partition}:s3:::{config.target.bucket}"},
        {"Sid": "Rules", "Effect": "Allow", "Action": list(OPERATOR_RULE_ACTIONS),
         "Resource": rules},
        {"Sid": "ListRules", "Effect": "Allow", "Action": list(OPERATOR_LIST_ACTIONS),
         "Resource": "*"},
        {"Sid": "Metrics", "Effect": "Allow", "Action": list(OPERATOR_METRIC_ACTIONS),
         "Resource": "*"},
        {"Sid": "Alarms", "Effect": "Allow", "Action": list(OPERATOR_ALARM_ACTIONS),
         "Resource": alarms},
        # reconcile reads the bucket and writes the cache as the function does.
        *package_statements(config, partition),
    ]
    if config.cache_backend == "dynamo":
        statements += dynamo_statements(config, account, region, partition)
    if subnet_ids:
        statements.append({"Sid": "VpcChecks", "Effect": "Allow",
                           "Action": list(OPERATOR_VPC_ACTIONS), "Resource": "*"})
    # create reads the secret once, to refuse one the function could not use.
    statements += secret_statements(config)
    store = store_db_password or config.option("store_db_password")
    if store in OPERATOR_STORE_ACTIONS:
        stored = StoredSecret.for_function(store, function_name, region, account, partition)
        statements.append({"Sid": "StoredDatabaseSecret", "Effect": "Allow",
                           "Action": list(OPERATOR_STORE_ACTIONS[store]),
                           "Resource": stored.policy_resource})
    return {"Version": POLICY_VERSION, "Statement": statements}
