"""Several inis given to create, delete and status: one deploy of every region's sync,
every region planned before any is changed (moto, in process, through the command)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from pypicloud_s3sync.cli import main

from ..support import moto_gaps
from ..support.deploy_helpers import make_bucket, site_ini, snapshot, write_zip

EAST, WEST, TOKYO = "us-east-1", "eu-west-1", "ap-northeast-1"
FUNCTION = "pypicloud_s3_sync"

#: Two buckets replicate to each other, which needs both versioned: every create of
#: several buckets below allows it.
VERSIONING = "--allow-versioning"


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


@pytest.fixture
def bundle(tmp_path):
    return str(write_zip(tmp_path / "function.zip"))


@pytest.fixture
def two(aws, tmp_path):
    """Two servers, each with its bucket in its own region."""
    return [site_ini(tmp_path, "east", "pk-east", EAST),
            site_ini(tmp_path, "west", "pk-west", WEST)]


@pytest.fixture
def three(two, tmp_path):
    return [*two, site_ini(tmp_path, "tokyo", "pk-tokyo", TOKYO)]


def regions_snapshot(buckets: dict[str, str]) -> dict[str, dict]:
    """What create could touch in each region, keyed by region."""
    return {region: snapshot(bucket, region=region) for bucket, region in buckets.items()}


BUCKETS2 = {"pk-east": EAST, "pk-west": WEST}
BUCKETS3 = {**BUCKETS2, "pk-tokyo": TOKYO}


def functions_in(region: str) -> list[str]:
    return [f["FunctionName"] for f in
            boto3.client("lambda", region_name=region).list_functions()["Functions"]]


def test_dry_run_prints_each_regions_plan_under_its_ini_and_changes_nothing(
        two, bundle, capsys):
    before = regions_snapshot(BUCKETS2)
    assert main(["create", *two, "--bundle", bundle, VERSIONING, "--dry-run"]) == 0
    captured = capsys.readouterr()
    east_at = captured.out.index(f"== {two[0]}: {EAST}, bucket pk-east, function {FUNCTION} ==")
    west_at = captured.out.index(f"== {two[1]}: {WEST}, bucket pk-west, function {FUNCTION} ==")
    assert (captured.out.index(f"Plan to create {FUNCTION} in {EAST}") > east_at
            and captured.out.index(f"Plan to create {FUNCTION} in {WEST}") > west_at > east_at)
    assert captured.out.rstrip().endswith("Dry run: nothing was changed (2 inis in 2 regions).")
    assert f"planning {two[1]} ({WEST}, bucket pk-west)" in captured.err
    assert regions_snapshot(BUCKETS2) == before


def test_three_regions_created_then_quiet_then_removed_leaving_the_others_entry(
        three, bundle, capsys):
    topic = boto3.client("sns", region_name=WEST).create_topic(Name="audit")["TopicArn"]
    boto3.client("s3", region_name=WEST).put_bucket_notification_configuration(
        Bucket="pk-west", NotificationConfiguration={"TopicConfigurations": [
            {"Id": "audit", "TopicArn": topic, "Events": ["s3:ObjectCreated:*"],
             "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "audit/"}]}}}]})
    before = regions_snapshot(BUCKETS3)

    assert main(["create", *three, "--bundle", bundle, VERSIONING]) == 0
    out = capsys.readouterr().out
    assert "Applied 30 changes for 3 inis in 3 regions" in out
    assert all(functions_in(region) == [FUNCTION] for region in (EAST, WEST, TOKYO))

    assert main(["create", *three, "--bundle", bundle, VERSIONING]) == 0
    captured = capsys.readouterr()
    assert captured.out.rstrip().endswith("Nothing to create for 3 inis in 3 regions.")
    assert "[1/" not in captured.err  # no step was applied

    assert main(["status", *three, "--bundle", bundle, VERSIONING]) == 0
    assert capsys.readouterr().out.rstrip().endswith("3 inis: all in sync")
    boto3.client("lambda", region_name=TOKYO).update_function_configuration(
        FunctionName=FUNCTION, MemorySize=1024)
    assert main(["status", *three, "--bundle", bundle, VERSIONING]) == 3
    assert capsys.readouterr().out.rstrip().endswith(
        f"3 inis: DRIFT or a failed check in {three[2]}")

    assert main(["delete", *three]) == 0
    assert "Applied" in capsys.readouterr().out
    assert regions_snapshot(BUCKETS3) == before


def test_json_is_one_document_per_ini(two, bundle, capsys):
    assert main(["create", *two, "--bundle", bundle, VERSIONING, "--json", "--memory", "512"]) == 0
    documents = json.loads(capsys.readouterr().out)
    assert [(d["ini"], d["region"], d["bucket"], d["function"]) for d in documents] == [
        (two[0], EAST, "pk-east", FUNCTION), (two[1], WEST, "pk-west", FUNCTION)]
    for document in documents:
        assert document["plan"]["region"] == document["region"]
        assert [(r["call"], r["name"]) for r in document["applied"]] == [
            (s["call"], s["name"]) for s in document["plan"]["steps"]]
    assert boto3.client("lambda", region_name=WEST).get_function_configuration(
        FunctionName=FUNCTION)["MemorySize"] == 512

    assert main(["status", *two, "--bundle", bundle, VERSIONING, "--json", "--memory", "512"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [(r["ini"], r["region"], r["in_sync"]) for r in reports] == [
        (two[0], EAST, True), (two[1], WEST, True)]


def test_a_refusal_in_any_region_changes_no_region(two, bundle, capsys):
    """Another team's function of our name in the second region: the first region, planned
    and fine, is not touched either."""
    role = boto3.client("iam").create_role(RoleName="theirs", AssumeRolePolicyDocument="{}")
    boto3.client("lambda", region_name=WEST).create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role["Role"]["Arn"], Handler="x.y",
        Code={"ZipFile": Path(bundle).read_bytes()})
    before = regions_snapshot(BUCKETS2)
    assert main(["create", *two, "--bundle", bundle, VERSIONING]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()[-1:]
    assert line.startswith(f"ppc-s3sync create: error: {two[1]} ({WEST}, bucket pk-west): ")
    assert "-n" in line
    assert "Plan to create" not in captured.out
    assert regions_snapshot(BUCKETS2) == before


def test_a_step_refused_in_a_later_region_names_it_and_a_rerun_continues(
        two, bundle, capsys, monkeypatch):
    """Someone makes a function of our name in the second region after it was planned:
    the first region is done, the error names the second, and the next run finishes."""
    from pypicloud_s3sync.provision import deploy

    real_plan = deploy.plan_create
    role = boto3.client("iam").create_role(RoleName="theirs", AssumeRolePolicyDocument="{}")

    def plan_then_race(config, options, clients, **kwargs):
        planned = real_plan(config, options, clients, **kwargs)
        if clients.region == WEST:
            boto3.client("lambda", region_name=WEST).create_function(
                FunctionName=FUNCTION, Runtime="python3.12", Role=role["Role"]["Arn"],
                Handler="x.y", Code={"ZipFile": Path(bundle).read_bytes()})
        return planned

    monkeypatch.setattr(deploy, "plan_create", plan_then_race)
    assert main(["create", *two, "--bundle", bundle, VERSIONING]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith(f"ppc-s3sync create: error: {two[1]} ({WEST}, bucket pk-west): "
                           "step 3/9 (create function")
    assert line.endswith("2 step(s) were applied, run the command again to continue; "
                         "9 earlier step(s) of this run were applied too")
    assert functions_in(EAST) == [FUNCTION]

    monkeypatch.setattr(deploy, "plan_create", real_plan)
    boto3.client("lambda", region_name=WEST).delete_function(FunctionName=FUNCTION)
    assert main(["create", *two, "--bundle", bundle, VERSIONING]) == 0
    assert "Applied 9 changes for 2 inis in 2 regions" in capsys.readouterr().out


def test_a_shared_bucket_gets_a_sync_per_ini_through_eventbridge(aws, tmp_path, bundle,
                                                                 capsys):
    blue = site_ini(tmp_path, "blue", "shared", EAST, **{"s3sync.function_name": "blue"})
    green_path = tmp_path / "green.ini"
    green_path.write_text(Path(blue).read_text().replace("s3sync.function_name = blue",
                                                    "s3sync.function_name = green"))
    west = site_ini(tmp_path, "west", "pk-west", WEST)
    before = regions_snapshot({"shared": EAST, "pk-west": WEST})

    assert main(["create", blue, str(green_path), west, "--bundle", bundle, VERSIONING]) == 0
    out = capsys.readouterr().out
    assert out.count("note: delivery eventbridge: bucket shared is shared with") == 2
    assert sorted(functions_in(EAST)) == ["blue", "green"]
    events = boto3.client("events", region_name=EAST)
    rules = {rule["Name"]: json.loads(rule["EventPattern"])
             for rule in events.list_rules()["Rules"]}
    assert sorted(rules) == ["pypicloud-s3sync-blue", "pypicloud-s3sync-green"]
    assert all(p["detail"]["bucket"]["name"] == ["shared"] for p in rules.values())
    shared = boto3.client("s3", region_name=EAST).get_bucket_notification_configuration(
        Bucket="shared")
    assert "EventBridgeConfiguration" in shared
    assert not shared.get("LambdaFunctionConfigurations")
    assert main(["create", blue, str(green_path), west, "--bundle", bundle, VERSIONING]) == 0
    assert "Nothing to create for 3 inis in 2 regions." in capsys.readouterr().out

    # Both rules go in one run, so neither keeps the bucket's EventBridge delivery on.
    assert main(["delete", blue, str(green_path), west]) == 0
    assert regions_snapshot({"shared": EAST, "pk-west": WEST}) == before


def test_two_buckets_in_one_region_replicate_to_each_other(aws, tmp_path, bundle, capsys):
    first = site_ini(tmp_path, "first", "pk-a", WEST, **{"s3sync.function_name": "sync-a"})
    second = site_ini(tmp_path, "second", "pk-b", WEST, **{"s3sync.function_name": "sync-b"})
    assert main(["create", first, second, "--bundle", bundle, VERSIONING]) == 0
    assert "for 2 inis in 1 region in" in capsys.readouterr().out
    assert sorted(functions_in(WEST)) == ["sync-a", "sync-b"]
    assert [r["Destination"]["Bucket"] for r in replication("pk-a", WEST)] == [
        "arn:aws:s3:::pk-b"]
    assert [r["Destination"]["Bucket"] for r in replication("pk-b", WEST)] == [
        "arn:aws:s3:::pk-a"]


def test_inis_that_cannot_share_stop_before_any_call(aws, tmp_path, bundle, capsys):
    first = site_ini(tmp_path, "first", "pk-a", WEST)
    second = site_ini(tmp_path, "second", "pk-b", WEST)
    assert main(["create", first, second, "--bundle", bundle, VERSIONING]) == 2
    err = capsys.readouterr().err
    assert f"would both deploy function {FUNCTION} in {WEST}" in err
    assert "set s3sync.function_name in" in err
    assert functions_in(WEST) == []


def test_the_standalone_commands_take_several_inis(two, bundle, capsys):
    from pypicloud_s3sync.cli import create_main, delete_main

    assert create_main([*two, "--bundle", bundle, VERSIONING]) == 0
    assert functions_in(EAST) == functions_in(WEST) == [FUNCTION]
    assert delete_main([*two]) == 0
    assert functions_in(EAST) == functions_in(WEST) == []
    assert "Applied" in capsys.readouterr().out


# -- with the kinds between regions ---------------------------------------------------


def replication(bucket: str, region: str) -> list[dict]:
    s3 = boto3.client("s3", region_name=region)
    try:
        return s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]["Rules"]
    except s3.exceptions.ClientError:
        return []


def rules_applied_at(progress: str) -> list[int]:
    """Where, among every step the run applied (in every region), the replication
    configurations were written."""
    applied = [line for line in progress.splitlines() if line.startswith("[")]
    return [i for i, line in enumerate(applied) if "replication configuration" in line]


def versioning(bucket: str, region: str) -> str | None:
    return boto3.client("s3", region_name=region).get_bucket_versioning(
        Bucket=bucket).get("Status")


def test_replication_is_refused_until_versioning_is_allowed(two, bundle, capsys):
    before = regions_snapshot(BUCKETS2)
    assert main(["create", *two, "--bundle", bundle]) == 2
    assert "give --allow-versioning to turn it on" in capsys.readouterr().err
    assert regions_snapshot(BUCKETS2) == before
    assert [versioning(b, r) for b, r in BUCKETS2.items()] == [None, None]


def test_replication_between_regions_applied_last_then_quiet_then_removed(
        two, bundle, capsys):
    before = regions_snapshot(BUCKETS2)
    assert main(["create", *two, "--bundle", bundle, VERSIONING, "--dry-run",
                 "--json"]) == 0
    calls = {d["region"]: [s["call"] for s in d["plan"]["steps"]]
             for d in json.loads(capsys.readouterr().out)}
    for region in (EAST, WEST):
        assert "s3.put_bucket_versioning" in calls[region]
        assert "s3.put_bucket_replication" in calls[region]

    assert main(["create", *two, "--bundle", bundle, VERSIONING]) == 0
    # S3 refuses a rule to a bucket not yet versioned: both regions' rules come last.
    assert rules_applied_at(capsys.readouterr().err) == [18, 19]
    for bucket, region in BUCKETS2.items():
        assert versioning(bucket, region) == "Enabled"
        [peer] = [b for b in BUCKETS2 if b != bucket]
        assert [r["Destination"]["Bucket"] for r in replication(bucket, region)] == [
            f"arn:aws:s3:::{peer}"]

    assert main(["create", *two, "--bundle", bundle, VERSIONING]) == 0
    assert "Nothing to create for 2 inis in 2 regions." in capsys.readouterr().out

    assert main(["delete", *two]) == 0
    assert rules_applied_at(capsys.readouterr().err) == [0, 1]  # no rule outlives a bucket's sync
    assert [replication(b, r) for b, r in BUCKETS2.items()] == [[], []]
    after = regions_snapshot(BUCKETS2)
    assert after == before  # versioning cannot be turned off, only suspended: not compared


def test_a_foreign_replication_rule_is_kept_and_a_conflicting_one_refused(
        two, bundle, capsys):
    s3 = boto3.client("s3", region_name=EAST)
    make_bucket("their-archive", EAST)
    for bucket in ("pk-east", "their-archive"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    theirs = {"ID": "backup", "Priority": 9, "Status": "Enabled",
              "Filter": {"Prefix": "backups/"}, "DeleteMarkerReplication": {"Status": "Disabled"},
              "Destination": {"Bucket": "arn:aws:s3:::their-archive"}}
    s3.put_bucket_replication(Bucket="pk-east", ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/theirs", "Rules": [theirs]})
    assert main(["create", *two, "--bundle", bundle, VERSIONING]) == 0
    capsys.readouterr()
    assert theirs in replication("pk-east", EAST)
    assert main(["delete", *two]) == 0
    assert replication("pk-east", EAST) == [theirs]

    # Their rule now replicates our prefix elsewhere: ours would overlap it.
    clash = {**theirs, "Filter": {"Prefix": ""}}
    s3.put_bucket_replication(Bucket="pk-east", ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/theirs", "Rules": [clash]})
    before = regions_snapshot(BUCKETS2)
    assert main(["create", *two, "--bundle", bundle, VERSIONING]) == 2
    err = capsys.readouterr().err
    assert f"{two[0]} ({EAST}, bucket pk-east): rule backup of bucket pk-east" in err
    assert "change that rule's filter so that it no longer overlaps 'pkgs/'" in err
    assert regions_snapshot(BUCKETS2) == before
