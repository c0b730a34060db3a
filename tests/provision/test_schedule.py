"""The scheduled reconcile end to end: deployed with ``--reconcile-every``, fired by an
EventBridge event, run by the handler with the settings the deploy gave the function.

moto keeps schedule rules but never fires them, and it cannot invoke a Lambda target
(no Docker here).  So the event is EventBridge's own rendering from moto: published on
the default bus and delivered to an SQS target, the way moto delivers every event; its
body is what the handler gets.  The handler then runs with the function's environment as
the deploy wrote it, read back from moto's Lambda.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync import cli
from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.provision import deploy
from pypicloud_s3sync.provision.schedule import schedule_rule_name

from ..support import moto_gaps
from ..support.deploy_helpers import REGION, write_zip

BUCKET = "packages"
FUNCTION = "pypicloud_s3_sync"


@pytest.fixture
def handler() -> Any:
    from pypicloud_s3sync.function import handler as module

    module.reset()
    yield module
    module.reset()


def eventbridge_delivery(source: str, detail_type: str, detail: dict[str, Any],
                         resources: list[str]) -> dict[str, Any]:
    """An event as moto's EventBridge hands it to a rule's target."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="captured-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events.put_rule(Name="capture", EventPattern=json.dumps({"detail-type": [detail_type]}))
    events.put_targets(Rule="capture", Targets=[{"Id": "queue", "Arn": arn}])
    events.put_events(Entries=[{"Source": source, "DetailType": detail_type,
                                "Detail": json.dumps(detail), "Resources": resources}])
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    events.remove_targets(Rule="capture", Ids=["queue"])
    events.delete_rule(Name="capture")
    return json.loads(message["Body"])


def test_the_deployed_schedule_reconciles_inside_the_function(
    aws: None, pypicloud_factory: Any, tmp_path: Path, handler: Any,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    moto_gaps.apply(monkeypatch)
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/")
    server.upload("alpha", "1.0")
    elsewhere = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/", **{
        "db.url": f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"})
    elsewhere.upload("delta", "2.0", summary="uploaded in another region")
    assert server.simple("delta") == []

    rule_arn = f"arn:aws:events:{REGION}:123456789012:rule/{schedule_rule_name(FUNCTION)}"
    # Captured before our rule exists: moto would hand it to our rule's Lambda target too.
    event = eventbridge_delivery("aws.events", "Scheduled Event", {}, [rule_arn])
    assert event["detail-type"] == "Scheduled Event" and event["resources"] == [rule_arn]

    config = load_config(str(server.ini))
    options = deploy.DeployOptions.from_config(config, reconcile_every="1d")
    clients = deploy.AwsClients.from_config(config, options)
    code = deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))
    deploy.apply(deploy.plan_create(config, options, clients, code=code), clients,
                 sleep=lambda _s: None)
    events = boto3.client("events", region_name=REGION)
    assert events.describe_rule(Name=schedule_rule_name(FUNCTION))["Arn"] == rule_arn

    function = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=FUNCTION)
    environment = function["Environment"]["Variables"]
    assert json.loads(environment[deploy.ENV_VAR])["storage.bucket"] == BUCKET
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()

    result = handler.handle_event(event, None)

    assert result["added"] == ["delta-2.0.tar.gz"] and result["removed"] == []
    assert result["s3_calls"] == {"ListObjectsV2": 1, "HeadObject": 1}
    assert server.simple("delta") == ["delta-2.0.tar.gz"]
    assert server.cache().fetch("delta-2.0.tar.gz").summary == "uploaded in another region"
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (line["action"], line["added"]) == ("reconcile", 1)
    assert handler.handle_event(event, None)["in_sync"] is True


def test_cli_takes_the_flag_and_refuses_a_bad_interval_in_one_line(
    aws: None, pypicloud_factory: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moto_gaps.apply(monkeypatch)
    server = pypicloud_factory(cache="redis", bucket=BUCKET,
                               **{"s3sync.reconcile_every": "12h"})
    ini = str(server.ini)

    assert cli.main(["create", ini, "--dry-run", "--reconcile-every", "fortnightly"]) == (
        cli.EXIT_CONFIG)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "reconcile_every = 'fortnightly' is not valid" in err[0]

    assert cli.main(["create", ini, "--dry-run", "--json", "--bundle",
                     str(write_zip(Path(server.ini).parent / "f.zip"))]) == 0
    steps = json.loads(capsys.readouterr().out)["plan"]["steps"]
    [rule] = [s for s in steps if s["call"] == "events.put_rule"]
    assert rule["params"]["ScheduleExpression"] == "rate(12 hours)"

    assert cli.main(["create", ini, "--dry-run", "--json", "--reconcile-every", "off",
                     "--bundle", str(Path(server.ini).parent / "f.zip")]) == 0
    steps = json.loads(capsys.readouterr().out)["plan"]["steps"]
    assert not [s for s in steps if s["resource"] == "reconcile-schedule"]
