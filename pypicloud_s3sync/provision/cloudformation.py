"""The sync as a CloudFormation template: create's desired state, rendered for review.

Teams that change production only through reviewed templates get the same resources
``create`` makes, from the same code: the planner is run against an empty account, and
the calls of that plan (every one a "create") become the template's resources.  So the
role policy, the function's configuration and environment, the invoke permissions, the
rules and the async settings cannot drift from what ``create`` would do.  The account
and partition are CloudFormation's pseudo parameters, so one template serves any
account; the region is the bucket's, which the role's name already depends on.

The existing bucket's notification is the one thing CloudFormation cannot do without
taking the bucket over; a custom resource served by :mod:`.bucket_resource` merges our
entry instead.  It runs from a small zip of its own (:mod:`.resource_zip`), so that the
function's zip is the built bundle as it is and the stack's function runs the digest
status expects.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundle.ours import HANDLER
from . import alarms, bucket_resource, iam
from .actual import Actual
from .desired import DESCRIPTION, check_cache_reachable, desired_state
from .errors import DeployError
from .names import SCHEDULE_PRINCIPAL, delivery_rule_name, statement_id
from .planner import Planner
from .resource_zip import write_resource_zip
from .schedule import schedule_rule_name

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .options import DeployOptions
    from .plan import CodeArtifact, Step

ACCOUNT = "${AWS::AccountId}"
PARTITION = "${AWS::Partition}"
#: Template parameters: where the operator uploaded the two zips (see the export).
CODE_BUCKET, CODE_KEY, NOTIFICATION_CODE_KEY = "CodeBucket", "CodeKey", "NotificationCodeKey"
TEMPLATE_NAME = "pypicloud-s3sync.template.json"
#: What the notification function may do, and nothing else.
NOTIFICATION_ACTIONS = ["s3:GetBucketNotification", "s3:PutBucketNotification"]
#: Logical ids, named for what each resource is.
ROLE, FUNCTION, ASYNC = "Role", "Function", "AsyncConfig"
S3_PERMISSION, DELIVERY_PERMISSION, SCHEDULE_PERMISSION = (
    "S3InvokePermission", "DeliveryRuleInvokePermission", "ScheduleInvokePermission")
DELIVERY_RULE, SCHEDULE_RULE = "DeliveryRule", "ScheduleRule"
#: The alarms of ``--alarm-topic``, by kind.
ALARMS = {"errors": "ErrorsAlarm", "lag": "LagAlarm"}
NOTIFICATION, NOTIFICATION_FUNCTION, NOTIFICATION_ROLE = (
    "BucketNotification", "BucketNotificationFunction", "BucketNotificationRole")


@dataclass(frozen=True)
class _Placeholders:
    """What :func:`desired_state` asks of the AWS clients, as the template's own values."""

    region: str
    account: str = ACCOUNT
    partition: str = PARTITION


@dataclass(frozen=True)
class _NoCode:
    """The zip's place in the plan: the template refers to it by parameters instead."""

    path: Path = Path()
    sha256: str = "(uploaded separately)"
    size: int = 0
    runtime: str = ""
    arch: str = ""
    handler: str = HANDLER

    def read_bytes(self) -> bytes:  # pragma: no cover - never uploaded from here
        raise NotImplementedError


def create_steps(config: PypicloudConfig, options: DeployOptions, region: str,
                 warnings: list[str] | None = None) -> tuple[list[Step], Planner]:
    """Create's plan for an account where nothing exists yet: the desired state as calls."""
    found: list[str] = [] if warnings is None else warnings
    check_cache_reachable(config, options, found)
    clients: Any = _Placeholders(region)
    planner = Planner(config, options, clients, Actual(),
                      desired_state(config, options, clients))
    planner.create(lambda: _NoCode())
    found.extend(planner.warnings)
    return planner.steps, planner


def render(config: PypicloudConfig, options: DeployOptions, region: str,
           warnings: list[str] | None = None) -> dict[str, Any]:
    """The template for ``config`` + ``options`` in ``region``."""
    if options.store_db_password:
        raise DeployError(
            "export cannot keep db.url in a secret for you: the template would carry the "
            "password; create the secret yourself (aws secretsmanager create-secret "
            "--name NAME --secret-string DATABASE_URL) and set s3sync.db_url_secret to "
            "the ARN it prints")
    steps, planner = create_steps(config, options, region, warnings)
    desired, target = planner.desired, config.target
    fname = options.function_name
    resources: dict[str, dict[str, Any]] = {}
    refs = {desired.function_arn: {"Fn::GetAtt": [FUNCTION, "Arn"]}}
    if not options.role_arn:
        refs[desired.role_arn] = {"Fn::GetAtt": [ROLE, "Arn"]}
    permissions = {
        statement_id("s3", target.bucket): S3_PERMISSION,
        statement_id("events", target.bucket): DELIVERY_PERMISSION,
        statement_id(SCHEDULE_PRINCIPAL, target.bucket): SCHEDULE_PERMISSION,
    }
    alarm_ids = {alarms.alarm_name(fname, kind): logical for kind, logical in ALARMS.items()}
    rules = {delivery_rule_name(fname): (DELIVERY_RULE, DELIVERY_PERMISSION),
             schedule_rule_name(fname): (SCHEDULE_RULE, SCHEDULE_PERMISSION)}

    def add(logical: str, kind: str, properties: dict[str, Any], **extra: Any) -> None:
        resources[logical] = {"Type": kind, **extra, "Properties": properties}

    for step in steps:
        call, p = f"{step.service}.{step.operation}", dict(step.params)
        if call == "iam.create_role":
            add(ROLE, "AWS::IAM::Role", {
                "RoleName": p["RoleName"], "Path": p["Path"],
                "AssumeRolePolicyDocument": json.loads(p["AssumeRolePolicyDocument"]),
                "Description": p["Description"], "Tags": p["Tags"]})
        elif call == "iam.put_role_policy":
            resources[ROLE]["Properties"]["Policies"] = [{
                "PolicyName": p["PolicyName"],
                "PolicyDocument": json.loads(p["PolicyDocument"])}]
        elif call == "lambda.create_function":
            for key in ("Code", "Publish"):
                p.pop(key)
            p["Tags"] = [{"Key": k, "Value": v} for k, v in p["Tags"].items()]
            p["Code"] = {"S3Bucket": {"Ref": CODE_BUCKET}, "S3Key": {"Ref": CODE_KEY}}
            if "KMSKeyArn" in p:  # the API's spelling; CloudFormation's is KmsKeyArn
                p["KmsKeyArn"] = p.pop("KMSKeyArn")
            add(FUNCTION, "AWS::Lambda::Function", p)
        elif call == "lambda.put_function_event_invoke_config":
            p["FunctionName"] = {"Ref": FUNCTION}
            add(ASYNC, "AWS::Lambda::EventInvokeConfig", {**p, "Qualifier": "$LATEST"})
        elif call == "lambda.add_permission":
            logical = permissions[p.pop("StatementId")]
            p["FunctionName"] = {"Ref": FUNCTION}
            add(logical, "AWS::Lambda::Permission", p)
        elif call == "events.put_rule":
            logical, permission = rules[p["Name"]]
            if "EventPattern" in p:
                p["EventPattern"] = json.loads(p["EventPattern"])
            add(logical, "AWS::Events::Rule", p, DependsOn=permission)
        elif call == "events.put_targets":
            resources[rules[p["Rule"]][0]]["Properties"]["Targets"] = p["Targets"]
        elif call == "lambda.put_function_concurrency":
            resources[FUNCTION]["Properties"]["ReservedConcurrentExecutions"] = (
                p["ReservedConcurrentExecutions"])
        elif call == "cloudwatch.put_metric_alarm":
            p["Dimensions"] = [{**d, "Value": {"Ref": FUNCTION}} for d in p["Dimensions"]]
            add(alarm_ids[p["AlarmName"]], "AWS::CloudWatch::Alarm", p)
        elif call == "s3.put_bucket_notification_configuration":
            _notification(add, options, target.bucket, target.prefix)
        else:  # pragma: no cover - a new kind of step must be rendered, not dropped
            raise AssertionError(f"no CloudFormation rendering for {call}")
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{DESCRIPTION} (bucket {target.bucket}, function {fname})",
        "Parameters": {
            CODE_BUCKET: {"Type": "String",
                          "Description": "S3 bucket holding both zips, in the stack's region"},
            CODE_KEY: {"Type": "String", "Description": "key of the function's zip"},
            NOTIFICATION_CODE_KEY: {"Type": "String", "Description": "key of the bucket "
                                    "notification custom resource's zip"},
        },
        "Resources": _substitute(resources, refs),
        "Outputs": {"FunctionArn": {"Value": {"Fn::GetAtt": [FUNCTION, "Arn"]}}},
    }
    return template


def _notification(add: Any, options: DeployOptions, bucket: str, prefix: str) -> None:
    """The custom resource, its function (its own zip) and its two-action role."""
    add(NOTIFICATION_ROLE, "AWS::IAM::Role", {
        "AssumeRolePolicyDocument": iam.trust_policy(),
        "Description": f"pypicloud-s3sync: merges one notification into bucket {bucket}",
        "Policies": [{"PolicyName": "bucket-notification", "PolicyDocument": {
            "Version": iam.POLICY_VERSION,
            "Statement": [{"Sid": "OneBucketNotification", "Effect": "Allow",
                           "Action": list(NOTIFICATION_ACTIONS),
                           "Resource": f"arn:{PARTITION}:s3:::{bucket}"}]}}],
    })
    add(NOTIFICATION_FUNCTION, "AWS::Lambda::Function", {
        "Runtime": options.runtime,
        "Architectures": [options.arch],
        "Handler": bucket_resource.HANDLER,
        "Role": {"Fn::GetAtt": [NOTIFICATION_ROLE, "Arn"]},
        "Timeout": 60,
        "MemorySize": 128,
        "Description": "pypicloud-s3sync: merges our entry into the bucket's notifications",
        "Code": {"S3Bucket": {"Ref": CODE_BUCKET}, "S3Key": {"Ref": NOTIFICATION_CODE_KEY}},
    })
    extra = {"DependsOn": S3_PERMISSION} if options.delivery == "direct" else {}
    add(NOTIFICATION, "Custom::BucketNotification", {
        "ServiceToken": {"Fn::GetAtt": [NOTIFICATION_FUNCTION, "Arn"]},
        "BucketName": bucket,
        "FunctionName": {"Ref": FUNCTION},
        "FunctionArn": {"Fn::GetAtt": [FUNCTION, "Arn"]},
        "Prefix": prefix,
        "Delivery": options.delivery,
    }, **extra)


def _substitute(value: Any, refs: dict[str, Any]) -> Any:
    """Our own resources' ARNs become references (and so dependencies); any other
    string holding a pseudo parameter becomes a ``Fn::Sub``."""
    if isinstance(value, dict):
        return {k: _substitute(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, refs) for v in value]
    if isinstance(value, str):
        if value in refs:
            return refs[value]
        if "${AWS::" in value:
            return {"Fn::Sub": value}
    return value


# -- export --------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """What ``export`` wrote, and how to deploy it."""

    template: Path
    #: The function's zip: the built bundle, byte for byte.
    bundle: Path
    stack: str
    warnings: list[str]
    #: The bucket notification custom resource's zip.
    notification: Path

    def commands(self, code_bucket: str = "CODE_BUCKET") -> list[str]:
        """Upload both zips to ``code_bucket``, then deploy with their keys."""
        key, notification_key = self.bundle.name, self.notification.name
        return [
            f"aws s3 cp {self.bundle} s3://{code_bucket}/{key}",
            f"aws s3 cp {self.notification} s3://{code_bucket}/{notification_key}",
            f"aws cloudformation deploy --stack-name {self.stack} --template-file "
            f"{self.template} --capabilities CAPABILITY_NAMED_IAM --parameter-overrides "
            f"{CODE_BUCKET}={code_bucket} {CODE_KEY}={key} "
            f"{NOTIFICATION_CODE_KEY}={notification_key}",
        ]


def stack_name(function_name: str) -> str:
    """Stack names allow letters, digits and ``-`` only."""
    return "pypicloud-s3sync-" + function_name.replace("_", "-")


def export(config: PypicloudConfig, options: DeployOptions, region: str,
           code: CodeArtifact, directory: str | Path) -> Export:
    """Write the template and the two zips it references into ``directory``.

    The template is rendered before anything is written, so an export the config makes
    impossible leaves no trace; a write that fails midway takes back the files and
    directories this call made, and only those (a directory that was there stays).
    """
    directory = Path(directory)
    warnings: list[str] = []
    template = render(config, options, region, warnings)
    if options.db_password == "copy" and config.function.withheld:
        warnings.append("the template holds that password in plain text: keep it out of "
                        "version control, or keep db.url in a secret and name it with "
                        "s3sync.db_url_secret")
    made = [parent for parent in (directory, *directory.parents) if not parent.exists()]
    bundle = directory / f"{options.function_name}.zip"
    notification = directory / f"{options.function_name}-bucket-notification.zip"
    path = directory / TEMPLATE_NAME
    written = [p for p in (bundle, notification, path) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(code.path), bundle)
        write_resource_zip(notification)
        path.write_text(json.dumps(template, indent=2, sort_keys=True) + "\n")
    except BaseException:
        for file in written:
            file.unlink(missing_ok=True)
        for folder in made:  # deepest first
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return Export(path, bundle, stack_name(options.function_name), warnings, notification)


__all__ = ["TEMPLATE_NAME", "Export", "create_steps", "export", "render", "stack_name"]
