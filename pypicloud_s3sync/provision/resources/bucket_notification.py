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
from .base import Planning
from .cfn import (
    FUNCTION,
    NOTIFICATION_CODE_KEY,
    PARTITION,
    Resources,
    code,
    function_ref,
    resource,
)

NOTIFICATION, NOTIFICATION_FUNCTION, NOTIFICATION_ROLE = (
    "BucketNotification", "BucketNotificationFunction", "BucketNotificationRole")
#: What the notification function may do, and nothing else.
NOTIFICATION_ACTIONS = ["s3:GetBucketNotification", "s3:PutBucketNotification"]


def notification_resources(p: Planning, depends_on: str | None) -> Resources:
    """The custom resource, its function and its two-action role; ``depends_on`` is the
    invoke permission S3 checks when our entry is written (direct delivery)."""
    bucket, options = p.config.target.bucket, p.options
    extra: dict[str, Any] = {"DependsOn": depends_on} if depends_on else {}
    return {
        NOTIFICATION_ROLE: resource("AWS::IAM::Role", {
            "AssumeRolePolicyDocument": iam.trust_policy(),
            "Description": f"pypicloud-s3sync: merges one notification into bucket {bucket}",
            "Policies": [{"PolicyName": "bucket-notification", "PolicyDocument": {
                "Version": iam.POLICY_VERSION,
                "Statement": [{"Sid": "OneBucketNotification", "Effect": "Allow",
                               "Action": list(NOTIFICATION_ACTIONS),
                               "Resource": f"arn:{PARTITION}:s3:::{bucket}"}]}}],
        }),
        NOTIFICATION_FUNCTION: resource("AWS::Lambda::Function", {
            "Runtime": options.runtime,
            "Architectures": [options.arch],
            "Handler": bucket_resource.HANDLER,
            "Role": {"Fn::GetAtt": [NOTIFICATION_ROLE, "Arn"]},
            # A minute of waiting for S3 to see the invoke permission, as create
            # waits, and the time to answer CloudFormation after it.
            "Timeout": 120,
            "MemorySize": 128,
            "Description": "pypicloud-s3sync: merges our entry into the bucket's "
                           "notifications",
            "Code": code(NOTIFICATION_CODE_KEY),
        }),
        NOTIFICATION: resource("Custom::BucketNotification", {
            "ServiceToken": {"Fn::GetAtt": [NOTIFICATION_FUNCTION, "Arn"]},
            "BucketName": bucket,
            "FunctionName": function_ref(),
            "FunctionArn": {"Fn::GetAtt": [FUNCTION, "Arn"]},
            "Prefix": p.config.target.prefix,
            "Delivery": options.delivery,
        }, **extra),
    }


__all__ = ["NOTIFICATION", "NOTIFICATION_ACTIONS", "NOTIFICATION_FUNCTION",
           "NOTIFICATION_ROLE", "notification_resources"]
