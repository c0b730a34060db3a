"""Resource names stay within AWS's limits without two functions sharing one resource."""

from __future__ import annotations

import boto3
import pytest

from pypicloud_s3sync.provision import deploy, iam
from pypicloud_s3sync.provision.names import (
    MAX_NAME,
    MAX_QUEUE_NAME,
    bounded,
    dead_letter_queue_name,
    delivery_rule_name,
    queue_name,
    statement_id,
)
from pypicloud_s3sync.provision.schedule import schedule_rule_name

from ..support import moto_gaps
from ..support.deploy_helpers import REGION, clients_for, make_config, write_zip

#: Two function names as long as Lambda allows, equal up to the last few characters: any
#: resource name built from them is past 64 characters.
EAST = "packages-" + "x" * 46 + "-east-one"
WEST = "packages-" + "x" * 46 + "-west-one"


def test_short_names_are_kept_as_they_are():
    assert bounded("pypicloud-s3sync-sync") == "pypicloud-s3sync-sync"
    assert bounded("a" * MAX_NAME) == "a" * MAX_NAME
    assert delivery_rule_name("sync") == "pypicloud-s3sync-sync"
    assert statement_id("s3", "my.bucket") == "pypicloud-s3sync-s3-my_bucket"


@pytest.mark.parametrize(("name_of", "limit"), [
    (delivery_rule_name, MAX_NAME),
    (schedule_rule_name, MAX_NAME),
    (lambda function: iam.role_name(function, "ap-southeast-2"), MAX_NAME),
    (queue_name, MAX_QUEUE_NAME),
    (dead_letter_queue_name, MAX_QUEUE_NAME),
    (lambda function: bounded(function, 20), 20),
], ids=["delivery rule", "schedule rule", "role", "queue", "dead-letter queue", "any limit"])
def test_long_names_sharing_a_prefix_stay_apart_and_within_the_limit(name_of, limit):
    assert len(EAST) == len(WEST) == 64
    east, west = name_of(EAST), name_of(WEST)
    assert east != west
    assert len(east) <= limit and len(west) <= limit
    assert name_of(EAST) == east  # the same function finds its resource again


def test_a_queue_name_is_one_sqs_accepts(aws):
    """SQS: "A queue name can have up to 80 characters. Valid values: alphanumeric
    characters, hyphens (-), and underscores (_)" (CreateQueue, QueueName).  A function
    name as long as Lambda allows gives queue names moto's SQS, which checks both rules,
    creates; and the dead-letter queue's name is never the queue's own."""
    sqs = boto3.client("sqs", region_name=REGION)
    for function in (EAST, "sync"):
        queue, dead = queue_name(function), dead_letter_queue_name(function)
        assert queue != dead
        for name in (queue, dead):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            assert url.endswith(f"/{name}")


def test_shortened_names_keep_their_start_readable():
    assert delivery_rule_name(EAST).startswith("pypicloud-s3sync-packages-xxx")


def test_two_long_named_functions_get_a_delivery_rule_each(aws, tmp_path, monkeypatch):
    """Created side by side, each function keeps its own rule, and deleting one leaves the
    other's events flowing."""
    moto_gaps.apply(monkeypatch)
    s3 = boto3.client("s3", region_name=REGION)
    code = deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))
    configs = {}
    for function, bucket in ((EAST, "packages-east"), (WEST, "packages-west")):
        s3.create_bucket(Bucket=bucket)
        config = make_config(tmp_path, f"{bucket}.ini", **{"storage.bucket": bucket})
        options = deploy.DeployOptions.from_config(config, function_name=function,
                                                   delivery="eventbridge")
        clients = clients_for(config, options)
        deploy.apply(deploy.plan_create(config, options, clients, code=code), clients,
                     sleep=lambda _s: None)
        configs[function] = config, options

    events = boto3.client("events", region_name=REGION)

    def targets() -> dict[str, list[str]]:
        return {rule["Name"]: [t["Arn"].rsplit(":", 1)[-1] for t in
                               events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
                for rule in events.list_rules()["Rules"]}

    assert targets() == {delivery_rule_name(EAST): [EAST], delivery_rule_name(WEST): [WEST]}

    config, options = configs[EAST]
    clients = clients_for(config, options)
    deploy.apply(deploy.plan_delete(config, options, clients), clients)
    assert targets() == {delivery_rule_name(WEST): [WEST]}
