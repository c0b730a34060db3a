"""``ppc-s3sync status`` follows the whole path an upload takes, on moto: the bucket's
versioning and replication rules, the function's state, a VPC function's route to S3,
and the last day's metrics, each ok / warn / fail with its fix, and exit 3 on a fail."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.function import metrics

from ..support import moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REDIS, REGION, write_zip
from ..support.pypicloud_app import write_ini

FUNCTION = "pypicloud_s3_sync"
ROLE = "arn:aws:iam::123456789012:role/replication"


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


@pytest.fixture
def deployed(aws: None, tmp_path: Path) -> tuple[str, str]:
    """A sync made by create, for a bucket of prefix pkgs/ that is not versioned."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS})
    bundle = str(write_zip(tmp_path / "function.zip"))
    assert main(["create", str(ini), "--bundle", bundle]) == 0
    return str(ini), bundle


def status(capsys: pytest.CaptureFixture[str], *args: str,
           expect: int = 0) -> dict[str, dict[str, Any]]:
    """The checks of ``status --json`` by name, after checking the text shows each."""
    assert main(["status", *args]) == expect
    text = capsys.readouterr().out
    assert main(["status", *args, "--json"]) == expect
    report = json.loads(capsys.readouterr().out)
    for check in report["checks"]:
        assert f"{check['status']:<5} {check['check']}: {check['detail']}" in text
        if check["fix"]:
            assert f"fix: {check['fix']}" in text
    return {check["check"]: check for check in report["checks"]}


def replicate(rules: list[dict[str, Any]]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket=BUCKET, ReplicationConfiguration={
        "Role": ROLE, "Rules": rules})


def rule(prefix: str, deletes: str, destination: str = "packages-eu") -> dict[str, Any]:
    return {"ID": "to-eu", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": prefix},
            "DeleteMarkerReplication": {"Status": deletes},
            "Destination": {"Bucket": f"arn:aws:s3:::{destination}"}}


def test_a_fresh_sync_warns_of_versioning_and_replication_and_passes(deployed, capsys):
    ini, bundle = deployed
    checks = status(capsys, ini, "--bundle", bundle)
    assert list(checks) == ["versioning", "replication", "function", "activity"]
    assert checks["versioning"]["status"] == "warn"
    assert "put-bucket-versioning --bucket packages" in checks["versioning"]["fix"]
    assert checks["replication"]["status"] == "warn"
    assert "not replicated from here" in checks["replication"]["detail"]
    assert "destination" in checks["replication"]["detail"]
    assert checks["function"]["status"] == "ok"
    assert checks["activity"] == {
        "check": "activity", "status": "ok", "fix": "", "fix_by": "",
        "detail": "last 24 h: 0 invocations, 0 errors, 0 throttles, largest lag none "
                  "recorded"}
    # Neither fix is create's to make: the sync page must not offer Apply for them.
    assert checks["versioning"]["fix_by"] == checks["replication"]["fix_by"] == "you"


def test_the_replication_fix_is_a_command_that_makes_the_check_pass(deployed, capsys):
    ini, bundle = deployed
    fix = status(capsys, ini, "--bundle", bundle)["replication"]["fix"]
    assert "docs/" not in fix
    command = shlex.split(fix.split(": ", 1)[1].split(" (with a role")[0])
    assert command[:5] == ["aws", "s3api", "put-bucket-replication", "--bucket", BUCKET]
    config = json.loads(command[command.index("--replication-configuration") + 1]
                        .replace("REPLICATION_ROLE_ARN", ROLE)
                        .replace("OTHER_REGION_BUCKET", "packages-eu"))
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket=BUCKET, ReplicationConfiguration=config)
    assert status(capsys, ini, "--bundle", bundle)["replication"]["status"] == "ok"


def test_replication_without_delete_markers_names_what_deletes_miss(deployed, capsys):
    ini, bundle = deployed
    replicate([rule("pkgs/", "Disabled")])
    checks = status(capsys, ini, "--bundle", bundle)
    assert checks["versioning"]["status"] == "ok"
    replication = checks["replication"]
    assert replication["status"] == "warn"
    assert "deleted here stays in packages-eu" in replication["detail"]
    assert "DeleteMarkerReplication Status=Enabled on rule to-eu" in replication["fix"]

    replicate([rule("pkgs/", "Enabled")])
    assert status(capsys, ini, "--bundle", bundle)["replication"]["status"] == "ok"


def test_a_rule_for_another_prefix_does_not_cover_the_packages(deployed, capsys):
    ini, bundle = deployed
    replicate([rule("docs/", "Enabled")])
    replication = status(capsys, ini, "--bundle", bundle)["replication"]
    assert replication["status"] == "warn"
    assert "covers prefix 'pkgs/'" in replication["detail"]
    replicate([rule("", "Enabled")])  # the whole bucket covers pkgs/
    assert status(capsys, ini, "--bundle", bundle)["replication"]["status"] == "ok"


def test_other_code_than_the_config_builds_fails(deployed, capsys, tmp_path):
    ini, _ = deployed
    other = str(write_zip(tmp_path / "other.zip", "def handle_event(e, c):\n    return 1\n"))
    function = status(capsys, ini, "--bundle", other, expect=3)["function"]
    assert function["status"] == "fail"
    assert "runs other code" in function["detail"]
    assert function["fix"] == "run 'ppc-create-s3-sync CONFIG -f'"
    assert function["fix_by"] == "create -f"


def test_no_function_fails(aws, tmp_path, capsys):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS})
    checks = status(capsys, str(ini), "--bundle", str(write_zip(tmp_path / "f.zip")),
                    expect=3)
    assert list(checks) == ["versioning", "replication", "function"]
    assert checks["function"]["status"] == "fail"
    assert "does not exist" in checks["function"]["detail"]
    assert checks["function"]["fix_by"] == "create"


@pytest.mark.parametrize("state, update, reason, verdict, fix", [
    ("Failed", "Successful", "The function could not be created: the role cannot be "
     "assumed by Lambda", "fail",
     "fix what the reason names, then run 'ppc-create-s3-sync CONFIG -f'"),
    ("Active", "Failed", "The code could not be unzipped", "fail",
     "fix what the reason names, then run 'ppc-create-s3-sync CONFIG -f'"),
    ("Pending", "Successful", "The function is being created", "warn",
     "wait a minute and run status again; an Inactive function wakes on its next event"),
    ("Inactive", "Successful", "The function is idle", "warn",
     "wait a minute and run status again; an Inactive function wakes on its next event"),
    ("Active", "InProgress", "The function is being updated", "warn",
     "wait a minute and run status again; an Inactive function wakes on its next event"),
])
def test_a_function_not_ready_says_its_state_its_reason_and_the_fix(
        deployed, capsys, monkeypatch, state, update, reason, verdict, fix):
    """What Lambda says of a function that is not ready to run (its State and
    LastUpdateStatus, each with a reason) reaches the operator with what to do."""
    ini, bundle = deployed
    moto_gaps.function_in_state(monkeypatch, state, update, reason)
    function = status(capsys, ini, "--bundle", bundle,
                      expect=3 if verdict == "fail" else 0)["function"]
    assert function["status"] == verdict
    assert function["detail"] == (f"function {FUNCTION} is {state}, last update {update}: "
                                  f"{reason}")
    assert function["fix"] == fix


def vpc_network() -> tuple[Any, str, str, str, str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="sync",
                                      Description="sync")["GroupId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return ec2, vpc, subnet, group, table


def vpc_sync(deployed: tuple[str, str], capsys: pytest.CaptureFixture[str]
             ) -> tuple[Any, str, str, str, tuple[str, ...]]:
    """The sync moved into a new VPC subnet with create -f: (ec2, vpc, subnet, its route
    table, the arguments status takes for it)."""
    ini, bundle = deployed
    ec2, vpc, subnet, group, table = vpc_network()
    args = (ini, "--bundle", bundle, "--subnet-ids", subnet, "--security-group-ids", group)
    assert main(["create", "-f", *args]) == 0
    capsys.readouterr()
    return ec2, vpc, subnet, table, args


def test_a_vpc_function_needs_a_gateway_endpoint_or_a_nat(deployed, capsys):
    ec2, vpc, subnet, table, args = vpc_sync(deployed, capsys)

    route = status(capsys, *args, expect=3)["s3-route"]
    assert route["status"] == "fail"
    assert f"{subnet} (route table {table})" in route["detail"]
    assert route["fix"] == (f"aws ec2 create-vpc-endpoint --vpc-id {vpc} --service-name "
                            f"com.amazonaws.{REGION}.s3 --route-table-ids {table}")

    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", VpcEndpointType="Gateway",
        RouteTableIds=[table])["VpcEndpoint"]["VpcEndpointId"]
    assert status(capsys, *args)["s3-route"]["status"] == "ok"

    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    assert status(capsys, *args, expect=3)["s3-route"]["status"] == "fail"
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                     NatGatewayId=nat["NatGateway"]["NatGatewayId"])
    assert status(capsys, *args)["s3-route"]["status"] == "ok"


def test_a_vpc_function_whose_subnet_is_gone_cannot_start(deployed, capsys):
    """A subnet deleted after create: Lambda cannot start the function there."""
    ec2, vpc, subnet, table, args = vpc_sync(deployed, capsys)
    ec2.disassociate_route_table(AssociationId=ec2.describe_route_tables(
        RouteTableIds=[table])["RouteTables"][0]["Associations"][0]["RouteTableAssociationId"])
    ec2.delete_subnet(SubnetId=subnet)
    route = status(capsys, *args, expect=3)["s3-route"]
    assert route["status"] == "fail"
    assert route["detail"] == (f"the function's subnets {subnet} do not all exist: it "
                               "cannot start")
    assert route["fix"] == "run create -f with existing --subnet-ids"


def test_the_last_day_of_metrics_is_read_back(deployed, capsys):
    ini, bundle = deployed
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    # A minute back: moto cuts the status's EndTime to the second and excludes it, so a
    # datapoint from the same second as the read would be missed now and then.
    now = datetime.now(UTC) - timedelta(minutes=1)
    dimensions = [{"Name": "FunctionName", "Value": FUNCTION}]
    cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": now,
         "Value": 40},
        {"MetricName": "Errors", "Dimensions": dimensions, "Timestamp": now, "Value": 2},
        {"MetricName": "Throttles", "Dimensions": dimensions, "Timestamp": now, "Value": 1},
    ])
    cloudwatch.put_metric_data(Namespace=metrics.NAMESPACE, MetricData=[
        {"MetricName": metrics.LAG, "Dimensions": [{"Name": metrics.DIMENSION,
                                                    "Value": FUNCTION}],
         "Timestamp": now, "Values": [0.8, 12.5, 3.0], "Unit": "Seconds"}])
    activity = status(capsys, ini, "--bundle", bundle)["activity"]
    assert activity["status"] == "warn"  # errors are a warning: status still exits 0
    assert activity["detail"] == ("last 24 h: 40 invocations, 2 errors, 1 throttles, "
                                  "largest lag 12.5 s")
    assert f"aws logs tail /aws/lambda/{FUNCTION} --since 24h" in activity["fix"]
