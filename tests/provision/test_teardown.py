"""``delete`` against moto, one situation per test, with what create would have left
set up by hand: no bundle, no create plan, so each test is quick (mutation testing
runs these for every change to the planner's teardown).

Each test reads the plan as ``delete --json`` shows it, then applies it and looks at
the account the way an operator would: ours gone, everything else as it was."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from pypicloud_s3sync.provision import deploy, iam, notifications, tags
from pypicloud_s3sync.provision.names import SCHEDULE_PRINCIPAL, statement_id
from pypicloud_s3sync.provision.resources.delivery import BUCKET_EVENTBRIDGE_TAG
from pypicloud_s3sync.provision.schedule import schedule_rule_name

from ..support import moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REGION, make_config, new_session, write_zip

FUNCTION = "pypicloud_s3_sync"
ROLE = iam.role_name(FUNCTION, REGION)
ENTRY_ID = notifications.entry_id(FUNCTION)
RULE = f"pypicloud-s3sync-{FUNCTION}"
SCHEDULE = schedule_rule_name(FUNCTION)
OURS = {tags.MANAGED_TAG: tags.MANAGED_VALUE}


@pytest.fixture(autouse=True)
def _account(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)


def role(tags: dict[str, str] | None = OURS, inline: tuple[str, ...] = (iam.POLICY_NAME,),
         name: str = ROLE) -> str:
    client = boto3.client("iam")
    arn = client.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(iam.trust_policy()),
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])["Role"]["Arn"]
    for policy in inline:
        client.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    return arn


def function(tmp_path: Any, role_arn: str, tags: dict[str, str] | None = OURS,
             sids: tuple[str, ...] = ()) -> str:
    lam = boto3.client("lambda", region_name=REGION)
    arn = lam.create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role_arn,
        Handler="pypicloud_s3sync.handler.handle_event",
        Code={"ZipFile": write_zip(tmp_path / "function.zip").read_bytes()},
        Tags=tags or {})["FunctionArn"]
    for sid in sids:
        lam.add_permission(FunctionName=FUNCTION, StatementId=sid,
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    return arn


def rule(name: str, tags: dict[str, str], target: str | None = None, **shape: str) -> None:
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                    **(shape or {"EventPattern": json.dumps(
                        {"source": ["aws.s3"], "detail": {"bucket": {"name": [BUCKET]}}})}))
    if target:
        events.put_targets(Rule=name, Targets=[{"Id": "sync", "Arn": target}])


def put_notification(config: dict[str, Any]) -> None:
    boto3.client("s3", region_name=REGION).put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration=config)


def notification() -> dict[str, Any]:
    result = boto3.client("s3", region_name=REGION).get_bucket_notification_configuration(
        Bucket=BUCKET)
    result.pop("ResponseMetadata")
    return result


def queue_entry() -> dict[str, Any]:
    sqs = boto3.client("sqs", region_name=REGION)
    arn = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="audit")["QueueUrl"],
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Id": "audit-log", "QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]}


def our_entry(function_arn: str) -> dict[str, Any]:
    return {"Id": ENTRY_ID, "LambdaFunctionArn": function_arn, "Events": notifications.OUR_EVENTS,
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}}}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One ini for the module: reading it (pyramid's loader) costs more than a test."""
    return make_config(tmp_path_factory.mktemp("teardown"))


@pytest.fixture
def delete(config: Any) -> Any:
    """Plan ``delete`` with the given options; ``.apply()`` it with the same clients."""
    class Delete:
        def __call__(self, **options: Any) -> deploy.Plan:
            opts = deploy.DeployOptions.from_config(config, **options)
            self.clients = deploy.AwsClients.from_config(config, opts, session=new_session())
            self.plan = deploy.plan_delete(config, opts, self.clients)
            return self.plan

        def apply(self) -> None:
            deploy.apply(self.plan, self.clients)

    return Delete()


def calls(plan: deploy.Plan) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """The steps as ``delete --json`` lists them, without the summaries."""
    return [(s["resource"], s["action"], s["name"], s["call"], s["params"])
            for s in plan.to_json()["steps"]]


def summaries(plan: deploy.Plan) -> list[str]:
    return [s["summary"] for s in plan.to_json()["steps"]]


def role_names() -> list[str]:
    return [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]]


def function_names() -> list[str]:
    return [f["FunctionName"] for f in
            boto3.client("lambda", region_name=REGION).list_functions()["Functions"]]


def test_a_direct_deployment_is_removed_and_the_other_entries_stay(tmp_path, delete):
    arn = function(tmp_path, role(), sids=(statement_id("s3", BUCKET),))
    audit = queue_entry()
    # pypicloud's old script left an entry aimed at the same function: it goes too.
    old_script = {"Id": "old-script", "LambdaFunctionArn": arn,
                  "Events": ["s3:ObjectRemoved:*"]}
    put_notification({"LambdaFunctionConfigurations": [our_entry(arn), old_script],
                      "QueueConfigurations": [audit]})
    before = notification()

    plan = delete()
    assert calls(plan) == [
        ("notification", "update", BUCKET, "s3.put_bucket_notification_configuration",
         {"Bucket": BUCKET, "NotificationConfiguration": {"QueueConfigurations": [audit]},
          "SkipDestinationValidation": True}),  # only ours goes: nothing to validate
        ("function", "delete", FUNCTION, "lambda.delete_function",
         {"FunctionName": FUNCTION}),
        ("role-policy", "delete", f"{ROLE}/{iam.POLICY_NAME}", "iam.delete_role_policy",
         {"RoleName": ROLE, "PolicyName": iam.POLICY_NAME}),
        ("role", "delete", ROLE, "iam.delete_role", {"RoleName": ROLE}),
    ]
    assert summaries(plan) == [
        f"bucket {BUCKET} notifications: remove our entry {ENTRY_ID}, old-script; 1 other "
        "entry kept as they are",
        f"delete function {FUNCTION} (its invoke permissions and async settings go with it)",
        f"delete inline policy {iam.POLICY_NAME} from role {ROLE}",
        f"delete IAM role {ROLE}",
    ]
    assert plan.notes == []
    # --json shows what the configuration was, to put back by hand if need be.
    assert plan.to_json()["steps"][0]["details"] == {"before": before, "ours": arn}

    delete.apply()
    assert notification() == {"QueueConfigurations": [audit]}
    assert function_names() == [] and role_names() == []


def test_eventbridge_delivery_we_turned_on_is_turned_off_with_our_rules(tmp_path, delete):
    arn = function(tmp_path, role(inline=()))
    rule(RULE, {**OURS, BUCKET_EVENTBRIDGE_TAG: "enabled-by-us"}, arn)
    rule(SCHEDULE, OURS, arn, ScheduleExpression="rate(1 day)")
    audit = queue_entry()
    put_notification({"EventBridgeConfiguration": {}, "QueueConfigurations": [audit]})

    plan = delete()
    # Teardown runs the kinds in the reverse of create's order: the schedule, then the
    # delivery (notification before its rule), then the function and its role.
    assert calls(plan) == [
        ("reconcile-schedule", "delete", SCHEDULE, "events.remove_targets",
         {"Rule": SCHEDULE, "Ids": ["sync"]}),
        ("reconcile-schedule", "delete", SCHEDULE, "events.delete_rule",
         {"Name": SCHEDULE}),
        ("notification", "update", BUCKET, "s3.put_bucket_notification_configuration",
         {"Bucket": BUCKET, "NotificationConfiguration": {"QueueConfigurations": [audit]},
          "SkipDestinationValidation": True}),  # only ours goes: nothing to validate
        ("eventbridge-rule", "delete", RULE, "events.remove_targets",
         {"Rule": RULE, "Ids": ["sync"]}),
        ("eventbridge-rule", "delete", RULE, "events.delete_rule", {"Name": RULE}),
        ("function", "delete", FUNCTION, "lambda.delete_function",
         {"FunctionName": FUNCTION}),
        # The role holds no policy of ours any more (a half-finished delete): it goes.
        ("role", "delete", ROLE, "iam.delete_role", {"RoleName": ROLE}),
    ]
    assert summaries(plan)[2] == (f"bucket {BUCKET} notifications: turn off EventBridge "
                                  "delivery (we turned it on); 1 other entry kept as they are")

    delete.apply()
    assert notification() == {"QueueConfigurations": [audit]}
    assert boto3.client("events", region_name=REGION).list_rules()["Rules"] == []


def test_eventbridge_delivery_that_was_on_before_stays_on(tmp_path, delete):
    arn = function(tmp_path, role())
    rule(RULE, {**OURS, BUCKET_EVENTBRIDGE_TAG: "already-on"}, arn)
    put_notification({"EventBridgeConfiguration": {}})

    plan = delete()
    assert [c[3] for c in calls(plan)] == [
        "events.remove_targets", "events.delete_rule", "lambda.delete_function",
        "iam.delete_role_policy", "iam.delete_role"]
    assert plan.notes == [f"EventBridge delivery on {BUCKET} stays on: it was on before the "
                          "sync was created"]
    delete.apply()
    assert notification() == {"EventBridgeConfiguration": {}}


def test_eventbridge_delivery_we_turned_on_stays_on_while_another_rule_uses_it(tmp_path, delete):
    arn = function(tmp_path, role())
    rule(RULE, {**OURS, BUCKET_EVENTBRIDGE_TAG: "enabled-by-us"}, arn)
    rule("audit-uploads", {})
    rule("thumbnails", {})
    put_notification({"EventBridgeConfiguration": {}})

    plan = delete()
    assert "s3.put_bucket_notification_configuration" not in [c[3] for c in calls(plan)]
    assert plan.notes == [f"EventBridge delivery on {BUCKET} stays on: rule(s) audit-uploads, "
                          "thumbnails use it"]


def test_our_entry_goes_and_eventbridge_delivery_of_someone_else_stays(tmp_path, delete):
    """A direct deployment on a bucket whose EventBridge delivery others turned on; our
    entry is known by its Id even when someone pointed it at another function."""
    function(tmp_path, role())
    wrapper = f"arn:aws:lambda:{REGION}:123456789012:function:sync-wrapper"
    put_notification({"LambdaFunctionConfigurations": [our_entry(wrapper)],
                      "EventBridgeConfiguration": {}})
    plan = delete()
    assert calls(plan)[0][4]["NotificationConfiguration"] == {"EventBridgeConfiguration": {}}
    assert summaries(plan)[0] == (f"bucket {BUCKET} notifications: remove our entry "
                                  f"{ENTRY_ID}; 0 other entries kept as they are")
    assert plan.notes == []


def test_rules_with_our_names_that_we_did_not_make_are_left_alone(tmp_path, delete):
    rule(RULE, {"team": "platform"})
    rule(SCHEDULE, {}, ScheduleExpression="rate(1 hour)")
    put_notification({"EventBridgeConfiguration": {}})

    plan = delete()
    assert plan.is_empty
    assert plan.notes == [
        f"EventBridge rule {SCHEDULE} is not ours; left alone",
        f"EventBridge delivery on {BUCKET} stays on: it was on before the sync was created",
        f"EventBridge rule {RULE} is not ours; left alone",
    ]


def test_a_function_and_role_with_our_names_that_we_did_not_make_keep_all_but_our_permissions(
        tmp_path, delete):
    theirs = role(tags={"team": "platform"}, inline=(iam.POLICY_NAME,))
    ours = [statement_id(p, BUCKET) for p in ("s3", "events", SCHEDULE_PRINCIPAL)]
    function(tmp_path, theirs, tags={"team": "platform"}, sids=("their-own", *ours))

    plan = delete()
    assert calls(plan) == [
        ("permission", "delete", sid, "lambda.remove_permission",
         {"FunctionName": FUNCTION, "StatementId": sid}) for sid in ours]
    assert summaries(plan) == [f"remove invoke permission {sid} from {FUNCTION}"
                               for sid in ours]
    assert plan.notes == [
        f"function {FUNCTION} was not created by pypicloud-s3sync; only our permissions are "
        "removed from it",
        f"role {ROLE} was not created by pypicloud-s3sync; left alone",
    ]
    delete.apply()
    policy = json.loads(boto3.client("lambda", region_name=REGION).get_policy(
        FunctionName=FUNCTION)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["their-own"]
    assert role_names() == [ROLE]


def test_a_role_given_with_a_is_left_alone_even_with_our_tag(tmp_path, delete):
    given = role(name="sync-role")
    role()
    plan = delete(role_arn=given)
    assert plan.is_empty
    assert plan.notes == [f"role {given} was given with -a; left alone"]


@pytest.mark.parametrize(("command", "says", "not_says"), [
    ("delete", "it is left alone, and no role is deleted", "run the function as"),
    ("create", "run the function as this existing IAM role", "is deleted"),
])
def test_each_command_says_what_its_own_a_does(capsys, command, says, not_says):
    from pypicloud_s3sync import cli

    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert says in text and not_says not in text


def test_our_role_holding_policies_of_others_loses_only_ours(tmp_path, delete):
    role(inline=(iam.POLICY_NAME, "extra"))
    managed = boto3.client("iam").create_policy(
        PolicyName="audit", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))[
        "Policy"]["Arn"]
    boto3.client("iam").attach_role_policy(RoleName=ROLE, PolicyArn=managed)

    plan = delete()
    assert [c[3] for c in calls(plan)] == ["iam.delete_role_policy"]
    assert plan.notes == [f"role {ROLE} keeps policies added by someone else "
                          f"(extra, {managed}), so it is not deleted"]
    delete.apply()
    assert boto3.client("iam").list_role_policies(RoleName=ROLE)["PolicyNames"] == ["extra"]


def test_a_deployment_made_by_a_stack_is_left_to_the_stack(tmp_path, delete):
    arn = function(tmp_path, role(), tags={**OURS, "aws:cloudformation:stack-name": "sync"})
    put_notification({"LambdaFunctionConfigurations": [our_entry(arn)]})
    with pytest.raises(deploy.DeployError) as info:
        delete()
    assert str(info.value) == (
        f"function {FUNCTION} is managed by CloudFormation stack sync; delete the stack "
        "instead (aws cloudformation delete-stack --stack-name sync)")
