"""``--on-failure``: each kind of destination Lambda sends failed events to, granted to
the function's role on exactly that destination, checked at plan time.

"The following table lists supported destinations for asynchronous invocation records.
For Lambda to successfully send records to your chosen destination, ensure that your
function's execution role also contains the relevant permissions": Amazon SQS queue,
sqs:SendMessage; Amazon SNS topic, sns:Publish; Amazon S3 bucket (on failure only),
s3:PutObject and s3:ListBucket; Lambda function, lambda:InvokeFunction; EventBridge
event bus, events:PutEvents (Lambda Developer Guide, Capturing records of Lambda
asynchronous invocations, "Adding a destination").  Not FIFO ones: "This can happen
if your configuration includes an unsupported destination type, such as an Amazon SQS
FIFO queue or an Amazon SNS FIFO topic" (same page, on DestinationDeliveryFailures).

An encrypted queue or topic also needs its key: an SQS producer needs
kms:GenerateDataKey and kms:Decrypt on the queue's KMS key (Amazon SQS Developer Guide,
Amazon SQS key management), an SNS publisher the same on the topic's (Amazon SNS
Developer Guide, Encryption at rest).  The AWS managed keys (``alias/aws/sqs``,
``alias/aws/sns``) need no grant: "The policy for this KMS key includes permissions for
all principals in the account (that are authorized to use Amazon SQS) to use encrypted
queues" (Amazon SQS key management).

moto neither delivers failed events nor checks the role when the destination is set,
so what is judged is the role's policy as IAM holds it and the async configuration.
"""

from __future__ import annotations

import json

import boto3
import pytest

from pypicloud_s3sync.provision import deploy, iam
from pypicloud_s3sync.provision.errors import DeployError

from ..support import moto_gaps
from ..support.deploy_helpers import REGION, create, make_config, write_zip

FUNCTION = "pypicloud_s3_sync"
ACCOUNT = "123456789012"


@pytest.fixture
def code(aws, tmp_path, monkeypatch):
    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="packages")
    return deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))


def role_statements() -> list[dict]:
    doc = boto3.client("iam").get_role_policy(
        RoleName=iam.role_name(FUNCTION, REGION), PolicyName=iam.POLICY_NAME)
    return iam.parse_document(doc["PolicyDocument"])["Statement"]


def granted(statements: list[dict], prefixes: tuple[str, ...]) -> set[tuple[str, str]]:
    """(action, resource) of every grant of these services, one pair each."""
    found = set()
    for s in statements:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        found |= {(a, r) for a in actions for r in resources if a.startswith(prefixes)}
    return found


def destinations() -> dict[str, tuple[str, set[tuple[str, str]]]]:
    """One of each kind in moto: its ARN, and what the role must be granted on it."""
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="failed")
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="failed")["TopicArn"]
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="failed-events")
    bus = boto3.client("events", region_name=REGION).create_event_bus(
        Name="failed")["EventBusArn"]
    role = boto3.client("iam").create_role(
        RoleName="failed-events", AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))
    other = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="failed-events", Runtime="python3.12", Handler="x.y",
        Role=role["Role"]["Arn"],
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18})["FunctionArn"]
    sqs_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:failed"
    assert queue["QueueUrl"].endswith("/failed")
    return {
        "sqs": (sqs_arn, {("sqs:SendMessage", sqs_arn)}),
        "sns": (topic, {("sns:Publish", topic)}),
        "s3": ("arn:aws:s3:::failed-events", {
            ("s3:PutObject", "arn:aws:s3:::failed-events/*"),
            ("s3:ListBucket", "arn:aws:s3:::failed-events")}),
        "lambda": (other, {("lambda:InvokeFunction", other)}),
        "events": (bus, {("events:PutEvents", bus)}),
    }


@pytest.mark.parametrize("kind", ["sqs", "sns", "s3", "lambda", "events"])
def test_each_kind_of_destination_is_granted_on_exactly_its_arn(code, tmp_path, kind):
    arn, want = destinations()[kind]
    config = make_config(tmp_path)
    create(config, code, on_failure=arn)
    invoke = boto3.client("lambda", region_name=REGION).get_function_event_invoke_config(
        FunctionName=FUNCTION)
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == arn
    services = ("sqs:", "sns:", "lambda:", "events:", "s3:PutObject", "kms:")
    extra = [s for s in role_statements() if s["Sid"].startswith("OnFailure")]
    assert granted(extra, services + ("s3:",)) == want
    # Nothing else of the kinds' actions anywhere in the role (ReadPackages and
    # ListPackages are the function's own).
    assert granted(role_statements(), services) == {
        pair for pair in want if pair[0] != "s3:ListBucket"}
    assert create(config, code, on_failure=arn).is_empty


@pytest.mark.parametrize("arn", [
    f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/failed",
    f"arn:aws:events:{REGION}:{ACCOUNT}:rule/failed",
    f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/failed",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:failed:1",
    f"arn:aws:sqs:{REGION}:{ACCOUNT}:failed.fifo",
    f"arn:aws:sns:{REGION}:{ACCOUNT}:failed.fifo",
])
def test_another_kind_of_arn_is_refused_before_anything_is_made(code, tmp_path, arn):
    config = make_config(tmp_path)
    with pytest.raises(DeployError) as refused:
        create(config, code, on_failure=arn)
    message = str(refused.value)
    assert f"--on-failure {arn}" in message
    for kind in ("a standard SQS queue", "a standard SNS topic", "an S3 bucket",
                 "a Lambda function", "an EventBridge event bus"):
        assert kind in message
    assert "s3sync.on_failure" in refused.value.for_api()
    assert boto3.client("lambda", region_name=REGION).list_functions()["Functions"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_an_encrypted_queue_or_topic_grants_its_key(code, tmp_path):
    kms = boto3.client("kms", region_name=REGION)
    queue_key = kms.create_key()["KeyMetadata"]
    topic_key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/failed-events", TargetKeyId=topic_key["KeyId"])
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.create_queue(QueueName="sealed", Attributes={"KmsMasterKeyId": queue_key["KeyId"]})
    sqs.create_queue(QueueName="aws-sealed", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})
    topic = boto3.client("sns", region_name=REGION).create_topic(
        Name="sealed", Attributes={"KmsMasterKeyId": "alias/failed-events"})["TopicArn"]
    config = make_config(tmp_path)
    keys = {("kms:GenerateDataKey", queue_key["Arn"]), ("kms:Decrypt", queue_key["Arn"])}

    create(config, code, on_failure=f"arn:aws:sqs:{REGION}:{ACCOUNT}:sealed")
    assert granted(role_statements(), ("kms:",)) == keys

    # A key named by alias is granted by the key's ARN: IAM matches keys, not aliases.
    create(config, code, on_failure=topic, force=True)
    assert granted(role_statements(), ("kms:",)) == {
        ("kms:GenerateDataKey", topic_key["Arn"]), ("kms:Decrypt", topic_key["Arn"])}
    assert granted(role_statements(), ("sns:", "sqs:")) == {("sns:Publish", topic)}

    # SQS's own AWS managed key lets the account's principals use it already.
    create(config, code, on_failure=f"arn:aws:sqs:{REGION}:{ACCOUNT}:aws-sealed",
           force=True)
    assert granted(role_statements(), ("kms:",)) == set()
    statements = json.dumps(role_statements())
    assert "alias/" not in statements


def test_a_queue_in_another_account_is_granted_and_its_key_left_to_the_operator(
        code, tmp_path):
    """Another account's queue is not ours to read (nor the operator's policy's): the
    role may send to it, and the plan says that its key, if any, is the operator's."""
    theirs = f"arn:aws:sqs:{REGION}:210987654321:shared-failures"
    plan = create(make_config(tmp_path), code, on_failure=theirs)
    assert granted(role_statements(), ("sqs:", "kms:")) == {("sqs:SendMessage", theirs)}
    assert any(theirs in note and "kms:GenerateDataKey" in note for note in plan.notes)
