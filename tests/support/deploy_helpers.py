"""Shared pieces for the deploy tests: an ini, a small real zip, an account snapshot,
and a counter of the AWS calls a planner makes."""

from __future__ import annotations

import functools
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.provision import deploy, iam

from .pypicloud_app import write_ini

BUCKET = "packages"
PREFIX = "pkgs/"
REGION = "us-east-1"
REDIS = {"pypi.db": "redis", "db.url": "redis://cache.internal:6379/0"}


def write_zip(path: Path, body: str = "def handle_event(event, context):\n    return 0\n") -> Path:
    """A real, tiny function zip; enough for Lambda (moto) to accept and hash."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pypicloud_s3sync/__init__.py", "")
        archive.writestr("pypicloud_s3sync/handler.py", body)
    return path


def make_config(tmp_path: Path, name: str = "pypicloud.ini", **settings: str) -> Any:
    values = {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS, **settings}
    values = {k: v for k, v in values.items() if v is not None}
    path = tmp_path / name
    write_ini(path, values)
    return load_config(str(path))


@dataclass
class Recorder:
    """Every AWS operation the clients made, in order (hooked on botocore's events)."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    @property
    def mutating(self) -> list[str]:
        return [name for name in self.calls if deploy.is_mutating(name)]

    def clear(self) -> None:
        self.calls.clear()


@functools.cache
def _loader() -> Any:
    """botocore's service models, read once per test process: a new session reads them
    again for every client, which cost the deploy tests most of their time."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def new_session() -> Any:
    """A new boto3 session (made inside the test's moto mock; one made outside it would
    reach AWS) sharing the models already read."""
    import botocore.session

    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    return boto3.Session(botocore_session=core)


def clients_for(config: Any, options: deploy.DeployOptions,
                recorder: Recorder | None = None) -> deploy.AwsClients:
    session = new_session()
    if recorder is not None:
        session.events.register("before-call.*.*", recorder)
    return deploy.AwsClients.from_config(config, options, session=session)


def create(config: Any, code: deploy.ZipBundle, **options: Any) -> deploy.Plan:
    """``ppc-create-s3-sync`` with these options, applied (no sleeping between retries)."""
    opts = deploy.DeployOptions.from_config(config, **options)
    clients = clients_for(config, opts)
    plan = deploy.plan_create(config, opts, clients, code=code)
    deploy.apply(plan, clients, sleep=lambda s: None)
    return plan


def function_names() -> list[str]:
    """The functions the account holds, as the Lambda console lists them."""
    return [f["FunctionName"] for f in
            boto3.client("lambda", region_name=REGION).list_functions()["Functions"]]


def make_bucket(bucket: str, region: str = REGION) -> None:
    """A bucket in ``region`` (S3 takes no location constraint for us-east-1)."""
    where = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    boto3.client("s3", region_name=region).create_bucket(Bucket=bucket, **where)


def site_ini(tmp_path: Path, name: str, bucket: str, region: str, **settings: str) -> str:
    """One server's ini (``name``.ini) for a deploy of several, its bucket made in its
    region; returns the ini's path."""
    make_bucket(bucket, region)
    path = tmp_path / f"{name}.ini"
    write_ini(path, {"storage.bucket": bucket, "storage.prefix": PREFIX,
                     "storage.region_name": region, **REDIS, **settings})
    return str(path)


def snapshot(bucket: str = BUCKET, endpoint_url: str | None = None,
             region: str = REGION) -> dict[str, Any]:
    """Everything create could touch, as a user would look at it in the console."""
    def client(name: str) -> Any:
        return boto3.client(name, region_name=region, endpoint_url=endpoint_url)

    iam, lam, s3, events = client("iam"), client("lambda"), client("s3"), client("events")
    roles = {}
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        roles[name] = {
            "inline": sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]),
            "attached": sorted(p["PolicyArn"] for p in
                               iam.list_attached_role_policies(RoleName=name)[
                                   "AttachedPolicies"]),
        }
    functions = {}
    for fn in lam.list_functions()["Functions"]:
        try:
            policy = json.loads(lam.get_policy(FunctionName=fn["FunctionName"])["Policy"])
            statements = sorted(s["Sid"] for s in policy["Statement"])
        except lam.exceptions.ResourceNotFoundException:
            statements = []
        functions[fn["FunctionName"]] = {"sha": fn["CodeSha256"], "statements": statements}
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)
    notification.pop("ResponseMetadata", None)
    rules = {r["Name"]: r.get("EventPattern") for r in events.list_rules()["Rules"]}
    return {"roles": roles, "functions": functions, "notification": notification,
            "rules": rules}


def foreign_destinations(tmp_path: Path) -> dict[str, Any]:
    """A Lambda function, an SQS queue, an SNS topic and EventBridge, owned by others."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="audit")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="alerts")["TopicArn"]
    role = boto3.client("iam").create_role(
        RoleName="thumbnailer", AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))[
        "Role"]["Arn"]
    fn_arn = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="thumbnailer", Runtime="python3.12", Role=role, Handler="x.y",
        Code={"ZipFile": write_zip(tmp_path / "other.zip").read_bytes()})["FunctionArn"]

    def rule(name, value):
        return {"Key": {"FilterRules": [{"Name": name, "Value": value}]}}

    return {
        "LambdaFunctionConfigurations": [
            {"Id": "thumbs", "LambdaFunctionArn": fn_arn, "Events": ["s3:ObjectCreated:*"],
             "Filter": rule("prefix", "images/")}],
        "QueueConfigurations": [
            {"Id": "audit-log", "QueueArn": queue_arn, "Events": ["s3:ObjectRemoved:*"],
             "Filter": rule("prefix", "audit/")},
            {"Id": "restores", "QueueArn": queue_arn, "Events": ["s3:ObjectRestore:*"]}],
        "TopicConfigurations": [
            {"Id": "big-uploads", "TopicArn": topic_arn, "Events": ["s3:ObjectCreated:Put"],
             "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "isos/"},
                                                {"Name": "suffix", "Value": ".iso"}]}}}],
        "EventBridgeConfiguration": {},
    }


def stale_foreign_queue(bucket: str = BUCKET) -> str:
    """Another team's SQS entry on the bucket whose queue has since been deleted.

    S3 accepted the entry while the queue let it send there; the queue is gone now, so
    every write of the document that validates its destinations fails on this entry.
    Returns the queue's ARN.
    """
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="team-b-uploads")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": arn,
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}}}]})})
    s3 = boto3.client("s3", region_name=REGION)
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    current.pop("ResponseMetadata", None)
    current.setdefault("QueueConfigurations", []).append({
        "Id": "team-b-uploads", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "team-b/"}]}}})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=current)
    sqs.delete_queue(QueueUrl=url)
    return arn
