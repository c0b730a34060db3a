"""The bucket's notification as a template holds it: a custom resource, the function
that serves it and that function's role.

CloudFormation sets notifications only on a bucket it creates, and then owns the whole
configuration; an existing bucket's entries belong to other teams too.  So the stack
hands our one entry to :mod:`...bucket_resource`, which merges it as create does.  Its
code is a zip of its own (the export's second upload), so that the sync function's zip
is the built bundle, byte for byte, and status finds the code it expects.
"""

from __future__ import annotations

from typing import Any

from .. import bucket_resource, iam
from ..names import bounded
from .base import Planning
from .cfn import (
    ACCOUNT,
    FUNCTION,
    NOTIFICATION_CODE_KEY,
    PARTITION,
    REGION,
    Resources,
    code,
    function_ref,
    resource,
)

NOTIFICATION, NOTIFICATION_FUNCTION, NOTIFICATION_ROLE = (
    "BucketNotification", "BucketNotificationFunction", "BucketNotificationRole")
#: What the notification function may do, and nothing else.
NOTIFICATION_ACTIONS = ["s3:GetBucketNotification", "s3:PutBucketNotification"]
#: The notification function's own timeout, in seconds: a minute of waiting for S3 to
#: see the invoke permission, as create waits, and the time to answer CloudFormation.
NOTIFICATION_TIMEOUT = 120
#: How long CloudFormation waits for the custom resource's answer, in seconds, instead
#: of its default hour: a handler that dies before answering (out of memory, a missing
#: module) fails the stack within minutes.  Room for Lambda's two retries of an
#: asynchronous invocation, with their backoff, after the first attempt.
SERVICE_TIMEOUT = 600


def notification_function_name(function_name: str) -> str:
    """The notification function's name: fixed, so its role can name its log group."""
    return bounded(f"{function_name}-bucket-notification")


def notification_resources(p: Planning, depends_on: str | None) -> Resources:
    """The custom resource, its function and its two-action role; ``depends_on`` is what
    S3 checks when our entry is written: the invoke permission (direct delivery) or the
    queue's policy (sqs)."""
    bucket, options = p.config.target.bucket, p.options
    name = notification_function_name(options.function_name)
    extra: dict[str, Any] = {"DependsOn": depends_on} if depends_on else {}
    return {
        NOTIFICATION_ROLE: resource("AWS::IAM::Role", {
            "AssumeRolePolicyDocument": iam.trust_policy(),
            "Description": f"pypicloud-s3sync: merges one notification into bucket {bucket}",
            "Policies": [{"PolicyName": "bucket-notification", "PolicyDocument": {
                "Version": iam.POLICY_VERSION,
                "Statement": [{"Sid": "OneBucketNotification", "Effect": "Allow",
                               "Action": list(NOTIFICATION_ACTIONS),
                               "Resource": f"arn:{PARTITION}:s3:::{bucket}"},
                              # Its own log group, so a failed request leaves a trace.
                              *iam.log_statements(PARTITION, REGION, ACCOUNT, name)]}}],
        }),
        NOTIFICATION_FUNCTION: resource("AWS::Lambda::Function", {
            "FunctionName": name,
            "Runtime": options.runtime,
            "Architectures": [options.arch],
            "Handler": bucket_resource.HANDLER,
            "Role": {"Fn::GetAtt": [NOTIFICATION_ROLE, "Arn"]},
            "Timeout": NOTIFICATION_TIMEOUT,
            "MemorySize": 128,
            "Description": "pypicloud-s3sync: merges our entry into the bucket's "
                           "notifications",
            "Code": code(NOTIFICATION_CODE_KEY),
        }),
        NOTIFICATION: resource("Custom::BucketNotification", {
            "ServiceToken": {"Fn::GetAtt": [NOTIFICATION_FUNCTION, "Arn"]},
            "ServiceTimeout": SERVICE_TIMEOUT,
            "BucketName": bucket,
            "FunctionName": function_ref(),
            "FunctionArn": {"Fn::GetAtt": [FUNCTION, "Arn"]},
            "Prefix": p.config.target.prefix,
            "Delivery": options.delivery,
            # The queue's ARN (a reference once substituted): our entry's destination.
            **({"QueueArn": p.desired.queue_arn} if options.delivery == "sqs" else {}),
        }, **extra),
    }


__all__ = ["NOTIFICATION", "NOTIFICATION_ACTIONS", "NOTIFICATION_FUNCTION",
           "NOTIFICATION_ROLE", "SERVICE_TIMEOUT", "notification_function_name",
           "notification_resources"]
