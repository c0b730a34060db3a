"""``--alarm-topic``: the CloudWatch alarms on moto, as an operator would check them in
the console, in status (text, ``--json``, ``GET /admin/s3sync``) and after delete.

moto stores alarms and answers DescribeAlarms, but evaluates none of them against
metrics (an alarm stays in the state it was created or set to), so the alarm states
here are set with SetAlarmState; that an EMF ``LagSeconds`` line in a log becomes the
metric the lag alarm watches is CloudWatch Logs' job, which moto does not do either.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.function import metrics
from pypicloud_s3sync.provision import alarms, cloudformation, deploy, tags
from pypicloud_s3sync.provision.errors import OptionsError

from ..support import moto_gaps
from ..support.deploy_helpers import REGION, Recorder, clients_for, make_config, snapshot, write_zip
from ..support.pypicloud_app import ADMIN, basic_auth

FUNCTION = "pypicloud_s3_sync"
ERRORS, LAG, DROPPED = (alarms.alarm_name(FUNCTION, kind) for kind in alarms.KINDS)


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


@pytest.fixture
def topic(aws: None) -> str:
    """The operator's topic, and the bucket the sync is for."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="packages")
    return boto3.client("sns", region_name=REGION).create_topic(Name="ops")["TopicArn"]


@pytest.fixture
def code(tmp_path):
    return deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))


def create(config, code, recorder=None, **options):
    opts = deploy.DeployOptions.from_config(config, **options)
    clients = clients_for(config, opts, recorder)
    plan = deploy.plan_create(config, opts, clients, code=code)
    deploy.apply(plan, clients, sleep=lambda s: None)
    return plan


def status(config, code, **options):
    opts = deploy.DeployOptions.from_config(config, **options)
    return deploy.status(config, opts, clients_for(config, opts), code=code)


def held() -> dict[str, dict[str, Any]]:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    return {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}


def test_create_rerun_change_and_drop_the_alarms(topic, tmp_path, code):
    config = make_config(tmp_path)
    create(config, code)
    before = snapshot()

    plan = create(config, code, alarm_topic=topic)
    assert [(s.resource, s.action, s.name) for s in plan.steps] == [
        ("alarm", "create", ERRORS), ("alarm", "create", LAG), ("alarm", "create", DROPPED)]
    assert f"+ create CloudWatch alarm {ERRORS}: AWS/Lambda Errors Sum >= 1 per 300 s -> " \
           f"{topic}" in plan.describe()
    alarm = held()
    errors, lag = alarm[ERRORS], alarm[LAG]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == (
        "AWS/Lambda", "Errors", "Sum")
    assert (errors["Threshold"], errors["ComparisonOperator"], errors["Period"]) == (
        1.0, "GreaterThanOrEqualToThreshold", 300)
    # The lag alarm watches exactly what the function emits.
    assert (lag["Namespace"], lag["MetricName"], lag["Statistic"]) == (
        metrics.NAMESPACE, metrics.LAG, "Maximum")
    assert lag["Dimensions"] == [{"Name": metrics.DIMENSION, "Value": FUNCTION}]
    assert (lag["Threshold"], lag["ComparisonOperator"]) == (900.0, "GreaterThanThreshold")
    for one in (errors, lag):
        assert one["AlarmActions"] == one["OKActions"] == [topic]
        assert one["TreatMissingData"] == "notBreaching"
        found = boto3.client("cloudwatch", region_name=REGION).list_tags_for_resource(
            ResourceARN=one["AlarmArn"])["Tags"]
        assert {"Key": tags.MANAGED_TAG, "Value": tags.MANAGED_VALUE} in found

    recorder = Recorder()
    assert create(config, code, recorder, alarm_topic=topic).is_empty
    assert recorder.mutating == []
    report = status(config, code, alarm_topic=topic)
    assert report.in_sync, report.describe()
    rows = [(r.name, r.in_sync) for r in report.rows if r.resource == "alarm"]
    assert rows == [(ERRORS, True), (LAG, True), (DROPPED, True)]

    plan = create(config, code, alarm_topic=topic, alarm_lag="120")
    assert [(s.action, s.name) for s in plan.steps] == [("update", LAG)]
    assert plan.steps[0].details == {"changed": ["AlarmDescription", "Threshold"]}
    assert held()[ERRORS] == errors  # untouched, to its last-updated time
    assert held()[LAG]["Threshold"] == 120.0
    assert held()[LAG]["AlarmArn"] == lag["AlarmArn"]
    # Another topic: every alarm is updated in place, nothing else.
    other = boto3.client("sns", region_name=REGION).create_topic(Name="oncall")["TopicArn"]
    plan = create(config, code, alarm_topic=other, alarm_lag="120")
    assert [(s.action, s.details["changed"]) for s in plan.steps] == [
        ("update", ["AlarmActions", "OKActions"])] * 3
    assert {a["AlarmActions"][0] for a in held().values()} == {other}
    create(config, code, alarm_topic=topic, alarm_lag="120")
    report = status(config, code, alarm_topic=topic)  # the ini's default again: drift
    [drifted] = [r for r in report.rows if not r.in_sync]
    assert (drifted.name, drifted.actual) == (
        LAG, f"{metrics.NAMESPACE} LagSeconds Maximum > 120 per 300 s -> {topic}")

    # The option gone: create says so and removes exactly ours.
    plan = create(config, code)
    assert (f"- delete CloudWatch alarms {ERRORS}, {LAG}, {DROPPED}: --alarm-topic is no "
            "longer set" in plan.describe())
    assert held() == {}
    assert snapshot() == before


@pytest.mark.parametrize("command", ["create without --alarm-topic", "delete"])
def test_our_alarms_go_in_one_call(topic, tmp_path, code, command):
    """The number of calls is the promise here: CloudWatch's DeleteAlarms "Deletes the
    specified alarms. You can delete up to 100 alarms in one operation" (botocore's
    CloudWatch model; ``AlarmNames`` has ``max: 100``), so removing ours is one call, not
    one per alarm.  And what a user checks: all are gone, nothing else changed."""
    config = make_config(tmp_path)
    create(config, code)
    before = snapshot()
    create(config, code, alarm_topic=topic)
    assert set(held()) == {ERRORS, LAG, DROPPED}
    recorder = Recorder()
    if command == "delete":
        opts = deploy.DeployOptions.from_config(config)
        clients = clients_for(config, opts, recorder)
        deploy.apply(deploy.plan_delete(config, opts, clients), clients)
    else:
        create(config, code, recorder)
        assert snapshot() == before
    assert held() == {}
    assert recorder.mutating.count("DeleteAlarms") == 1


def test_delete_removes_the_alarms_with_everything_else(topic, tmp_path, code):
    config = make_config(tmp_path, **{"s3sync.alarm_topic": topic})
    before = snapshot()
    create(config, code)
    assert set(held()) == {ERRORS, LAG, DROPPED}
    opts = deploy.DeployOptions.from_config(config)
    clients = clients_for(config, opts)
    plan = deploy.plan_delete(config, opts, clients)
    assert (f"- delete CloudWatch alarms {ERRORS}, {LAG}, {DROPPED}\n"
            in plan.describe() + "\n")
    deploy.apply(plan, clients)
    assert held() == {}
    assert snapshot() == before


def test_an_alarm_of_our_name_we_did_not_make_is_never_touched(topic, tmp_path, code):
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName=ERRORS, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
        Period=60, EvaluationPeriods=3, Threshold=5, ComparisonOperator="GreaterThanThreshold")
    theirs = held()[ERRORS]
    config = make_config(tmp_path)
    recorder = Recorder()
    with pytest.raises(deploy.DeployError,
                       match=f"CloudWatch alarm {ERRORS} exists but was not created by "
                             "pypicloud-s3sync") as info:
        create(config, code, recorder, alarm_topic=topic)
    assert "choose another function name with -n" in str(info.value)
    assert recorder.mutating == []

    create(config, code)  # no topic: theirs is noted and left alone
    report = status(config, code, alarm_topic=topic)
    rows = {r.name: r for r in report.rows if r.resource == "alarm"}
    assert rows[ERRORS].actual == "exists, not created by pypicloud-s3sync"
    assert not rows[ERRORS].in_sync and rows[LAG].actual == "missing"

    opts = deploy.DeployOptions.from_config(config)
    clients = clients_for(config, opts)
    plan = deploy.plan_delete(config, opts, clients)
    assert [s for s in plan.steps if s.resource == "alarm"] == []
    assert (f"CloudWatch alarm {ERRORS} was not created by pypicloud-s3sync; left alone"
            in plan.notes)
    deploy.apply(plan, clients)
    assert held() == {ERRORS: theirs}


def test_status_shows_each_alarms_state_and_warns_past_the_lag_threshold(
        topic, tmp_path, capsys):
    ini = make_config(tmp_path, **{"s3sync.alarm_topic": topic,
                                   "s3sync.alarm_lag": "60"}).config_uri
    bundle = str(write_zip(tmp_path / "function.zip"))
    assert main(["create", ini, "--bundle", bundle]) == 0
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.set_alarm_state(AlarmName=LAG, StateValue="ALARM",
                               StateReason="Threshold Crossed: 1 datapoint [75.0] > 60.0")
    cloudwatch.put_metric_data(Namespace=metrics.NAMESPACE, MetricData=[
        {"MetricName": metrics.LAG, "Dimensions": [{"Name": metrics.DIMENSION,
                                                    "Value": FUNCTION}],
         # a minute back: moto's EndTime is cut to the second and exclusive
         "Timestamp": datetime.now(UTC) - timedelta(minutes=1), "Values": [2.0, 75.0],
         "Unit": "Seconds"}])
    capsys.readouterr()
    assert main(["status", ini, "--bundle", bundle]) == 0  # an alarm is a warning
    text = capsys.readouterr().out
    assert main(["status", ini, "--bundle", bundle, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["errors-alarm"]["status"] == "ok"
    assert checks["errors-alarm"]["detail"].startswith(f"{ERRORS} is ")
    assert (checks["lag-alarm"]["status"], checks["lag-alarm"]["detail"]) == (
        "warn", f"{LAG} is ALARM: Threshold Crossed: 1 datapoint [75.0] > 60.0")
    assert "reserved-concurrency" in checks["lag-alarm"]["fix"]
    activity = checks["activity"]
    assert activity["status"] == "warn"
    assert activity["detail"].endswith("largest lag 75 s, above the 60 s threshold")
    for check in report["checks"]:
        assert f"{check['status']:<5} {check['check']}: {check['detail']}" in text
    alarm_rows = [r for r in report["resources"] if r["resource"] == "alarm"]
    assert [(r["name"], r["in_sync"]) for r in alarm_rows] == [
        (ERRORS, True), (LAG, True), (DROPPED, True)]
    assert "ok    alarm" in text


def test_the_admin_status_shows_the_alarms(topic, pypicloud_factory, tmp_path):
    # A bucket of its own: the endpoint's provisioning lock is machine-wide, per bucket.
    server = pypicloud_factory(bucket="alarm-packages", **{
        "s3sync.alarm_topic": topic, "s3sync.bundle": str(write_zip(tmp_path / "f.zip"))})
    answer = server.app.post("/admin/s3sync", params="{}", content_type="application/json",
                             extra_environ=basic_auth(ADMIN), status="*")
    assert answer.status_int == 200, answer.text
    assert set(held()) == {ERRORS, LAG, DROPPED}
    got = server.app.get("/admin/s3sync", extra_environ=basic_auth(ADMIN), status="*")
    assert got.status_int == 200, got.text
    assert [(r["name"], r["in_sync"]) for r in got.json["resources"]
            if r["resource"] == "alarm"] == [(ERRORS, True), (LAG, True), (DROPPED, True)]
    checks = {c["check"]: c["status"] for c in got.json["checks"]}
    assert (checks["errors-alarm"], checks["lag-alarm"], checks["dropped-alarm"]) == (
        "ok", "ok", "ok")


def test_a_topic_in_another_region_is_refused_before_any_change(topic, tmp_path, code):
    elsewhere = topic.replace(REGION, "eu-west-1")
    recorder = Recorder()
    with pytest.raises(deploy.DeployError) as info:
        create(make_config(tmp_path), code, recorder, alarm_topic=elsewhere)
    assert str(info.value) == (
        f"SNS topic {elsewhere} is in eu-west-1, but the function and its alarms would "
        f"be in {REGION}; CloudWatch alarms notify topics in their own region only; give "
        f"--alarm-topic a topic in {REGION}")
    assert "s3sync.alarm_topic" in info.value.for_api()
    assert recorder.mutating == []


@pytest.mark.parametrize(("settings", "message"), [
    ({"alarm_topic": "ops-alerts"}, "alarm_topic = 'ops-alerts' is not valid: give an SNS "
                                    "topic ARN"),
    ({"alarm_topic": "arn:aws:sqs:us-east-1:123456789012:q"}, "alarm_topic = .* not valid"),
    ({"alarm_lag": "0"}, "alarm_lag = '0' is not valid: give the seconds of lag"),
    ({"alarm_lag": "-5"}, "alarm_lag = '-5' is not valid"),
    ({"alarm_lag": "soon"}, "alarm_lag = 'soon' is not valid"),
    ({"alarm_lag": "nan"}, "alarm_lag = 'nan' is not valid"),
])
def test_bad_alarm_settings_are_one_line_naming_the_fix(settings, message):
    with pytest.raises(OptionsError, match=message) as info:
        deploy.DeployOptions.build(**settings)
    assert "\n" not in str(info.value)


def test_alarm_settings_and_their_defaults():
    topic = f"arn:aws:sns:{REGION}:123456789012:ops"
    on = deploy.DeployOptions.build(alarm_topic=topic)
    assert (on.alarm_topic, on.lag_threshold) == (topic, alarms.DEFAULT_LAG)
    assert deploy.DeployOptions.build(alarm_topic=topic, alarm_lag="90.5").lag_threshold == 90.5
    assert deploy.DeployOptions.build(alarm_topic="off").alarm_topic is None
    # A threshold alone is status's to warn at; no alarms without a topic.
    alone = deploy.DeployOptions.build(alarm_lag="300")
    assert (alone.alarm_topic, alone.lag_threshold) == (None, 300.0)
    assert deploy.DeployOptions.build().lag_threshold is None


def test_alarm_names_stay_within_cloudwatchs_limit_and_apart():
    longest = "f" * 64  # Lambda's longest function name
    names = alarms.alarm_names(longest)
    assert len(set(names)) == len(alarms.ALL_KINDS) and all(len(name) <= 255 for name in names)
    assert set(names).isdisjoint(alarms.alarm_names(longest[:-1] + "g"))


def deleted_alarms(plan: Any) -> list[str]:
    """The alarms a plan's delete steps name (one step names all it removes)."""
    return [name for step in plan.steps if (step.resource, step.action) == ("alarm", "delete")
            for name in step.name.split(", ")]


def test_events_lambda_dropped_raise_their_own_alarm(topic, tmp_path, code, capsys):
    """"AsyncEventsDropped – The number of events that are dropped without successfully
    executing the function. If you configure a dead-letter queue (DLQ) or OnFailure
    destination, then events are sent there before they're dropped. Events are dropped
    for various reasons. For example, events can exceed the maximum event age or exhaust
    the maximum retry attempts, …" (Lambda Developer Guide, Types of metrics for Lambda
    functions, asynchronous invocation metrics).  Without a destination such an event is
    lost from the cache: its alarm is kept, changed, checked and removed like the others.
    """
    config = make_config(tmp_path)
    before = snapshot()
    plan = create(config, code, alarm_topic=topic)
    assert ("alarm", "create", DROPPED) in [(s.resource, s.action, s.name)
                                           for s in plan.steps]
    dropped = held()[DROPPED]
    assert (dropped["Namespace"], dropped["MetricName"], dropped["Statistic"]) == (
        "AWS/Lambda", "AsyncEventsDropped", "Sum")
    assert dropped["Dimensions"] == [{"Name": "FunctionName", "Value": FUNCTION}]
    assert (dropped["Threshold"], dropped["ComparisonOperator"], dropped["Period"]) == (
        1.0, "GreaterThanOrEqualToThreshold", 300)
    assert dropped["AlarmActions"] == dropped["OKActions"] == [topic]
    assert dropped["TreatMissingData"] == "notBreaching"
    found = boto3.client("cloudwatch", region_name=REGION).list_tags_for_resource(
        ResourceARN=dropped["AlarmArn"])["Tags"]
    assert {"Key": tags.MANAGED_TAG, "Value": tags.MANAGED_VALUE} in found

    recorder = Recorder()
    assert create(config, code, recorder, alarm_topic=topic).is_empty
    assert recorder.mutating == []

    # Firing: status warns, says what was lost and how to get it back.
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=DROPPED, StateValue="ALARM", StateReason="Threshold Crossed: 3 events")
    report = status(config, code, alarm_topic=topic)
    [check] = [c for c in report.checks if c.name == "dropped-alarm"]
    assert (check.status, check.detail) == ("warn", f"{DROPPED} is ALARM: Threshold "
                                                    "Crossed: 3 events")
    assert "ppc-s3sync reconcile" in check.fix

    # The template has it beside the other two.
    opts = deploy.DeployOptions.from_config(config, alarm_topic=topic)
    template = cloudformation.render(config, opts, REGION)
    assert template["Resources"]["DroppedAlarm"]["Properties"]["MetricName"] == (
        "AsyncEventsDropped")

    # Without the option, and on delete, ours goes.
    plan = create(config, code)
    assert DROPPED in deleted_alarms(plan)
    assert held() == {}
    create(config, code, alarm_topic=topic)
    clients = clients_for(config, opts)
    plan = deploy.plan_delete(config, opts, clients)
    assert DROPPED in deleted_alarms(plan)
    deploy.apply(plan, clients)
    assert held() == {}
    assert snapshot() == before
