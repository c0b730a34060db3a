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


def make_sync(tmp_path: Path, region: str = REGION, **settings: str) -> tuple[str, str]:
    """A sync made by create in ``region``, for a bucket of prefix pkgs/ that is not
    versioned; ``settings`` go into the ini over a Redis cache's."""
    s3 = boto3.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=BUCKET)
    else:
        s3.create_bucket(Bucket=BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": region})
    ini = tmp_path / "pypicloud.ini"
    values = {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS, **settings}
    if region != REGION:
        values["storage.region_name"] = region
    write_ini(ini, {k: v for k, v in values.items() if v is not None})
    bundle = str(write_zip(tmp_path / "function.zip"))
    assert main(["create", str(ini), "--bundle", bundle]) == 0
    return str(ini), bundle


@pytest.fixture
def deployed(aws: None, tmp_path: Path) -> tuple[str, str]:
    """A sync made by create, for a bucket of prefix pkgs/ that is not versioned."""
    return make_sync(tmp_path)


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


def versioned_destination(name: str = "packages-eu") -> None:
    """Another region's bucket, versioned: S3 refuses a rule to any other."""
    other = boto3.client("s3", region_name="eu-west-1")
    if name not in [b["Name"] for b in other.list_buckets()["Buckets"]]:
        other.create_bucket(Bucket=name,
                            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    other.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def replicate(rules: list[dict[str, Any]]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for each in rules:
        versioned_destination(each["Destination"]["Bucket"].rsplit(":", 1)[-1])
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
    versioned_destination()
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


def vpc_network(region: str = REGION) -> tuple[Any, str, str, str, str]:
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="sync",
                                      Description="sync")["GroupId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return ec2, vpc, subnet, group, table


def vpc_sync(deployed: tuple[str, str], capsys: pytest.CaptureFixture[str],
             region: str = REGION) -> tuple[Any, str, str, str, tuple[str, ...]]:
    """The sync moved into a new VPC subnet with create -f: (ec2, vpc, subnet, its route
    table, the arguments status takes for it)."""
    ini, bundle = deployed
    ec2, vpc, subnet, group, table = vpc_network(region)
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


# -- outside the commercial partition and simple VPCs ------------------------------------

def nat_gateway(ec2: Any, vpc: str, table: str) -> None:
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.9.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                     NatGatewayId=nat["NatGateway"]["NatGatewayId"])


def test_a_china_vpc_function_is_checked_against_the_china_endpoint_name(aws, tmp_path,
                                                                          capsys):
    """In the China regions a VPC endpoint's service name starts with the partition's
    reversed domain: "The endpoint domain for both the Beijing and Ningxia Regions is
    amazonaws.com.cn" (Amazon Web Services in China, Beijing Region Endpoints), so the
    S3 endpoint is cn.com.amazonaws.cn-north-1.s3, not com.amazonaws.cn-north-1.s3."""
    china = "cn-north-1"
    ec2, vpc, subnet, table, args = vpc_sync(make_sync(tmp_path, china), capsys, china)
    service = f"cn.com.amazonaws.{china}.s3"
    route = status(capsys, *args, expect=3)["s3-route"]
    assert route["fix"] == (f"aws ec2 create-vpc-endpoint --vpc-id {vpc} --service-name "
                            f"{service} --route-table-ids {table}")
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=service, VpcEndpointType="Gateway",
                            RouteTableIds=[table])
    assert status(capsys, *args)["s3-route"]["status"] == "ok"


@pytest.mark.parametrize("target", ["transit-gateway", "core-network", "appliance-eni",
                                    "instance"])
def test_a_default_route_status_cannot_follow_warns_and_never_fails(
        deployed, capsys, monkeypatch, target):
    """A default route may lead out through a transit gateway, a Cloud WAN core network
    or an appliance: EC2's Route has "TransitGatewayId: The ID of a transit gateway",
    "CoreNetworkArn: The Amazon Resource Name (ARN) of the core network" and
    "NetworkInterfaceId: The ID of the network interface" (botocore's ec2 model).  What
    lies beyond is another VPC's or account's, which status cannot read: a warning."""
    moto_gaps.core_network_routes(monkeypatch)
    ec2, vpc, subnet, table, args = vpc_sync(deployed, capsys)
    if target == "transit-gateway":
        hop = ec2.create_transit_gateway()["TransitGateway"]["TransitGatewayId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                         TransitGatewayId=hop)
    elif target == "core-network":
        hop = "arn:aws:networkmanager::123456789012:core-network/core-network-0a1b2c3d4e5f6a7b8"
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                         CoreNetworkArn=hop)
    elif target == "appliance-eni":
        hop = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"][
            "NetworkInterfaceId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                         NetworkInterfaceId=hop)
    else:
        hop = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                SubnetId=subnet)["Instances"][0]["InstanceId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                         InstanceId=hop)
    route = status(capsys, *args)["s3-route"]
    assert route["status"] == "warn"
    assert f"{subnet} (route table {table}: " in route["detail"]
    assert hop in route["detail"]
    assert "cannot follow" in route["detail"]
    assert f"--service-name com.amazonaws.{REGION}.s3" in route["fix"]


def test_an_s3_interface_endpoint_with_private_dns_reaches_s3(deployed, capsys):
    """An interface endpoint answers for S3's own name only with private DNS: "The
    private hosted zone contains a record set for the default public DNS name for the
    service for the Region ..., which resolves to the private IP addresses of the
    endpoint network interfaces in the VPC" (botocore's ec2 model, CreateVpcEndpoint
    PrivateDnsEnabled).  Without it the SDK's default name still leads to the public
    endpoint, which the subnet cannot reach."""
    ec2, vpc, subnet, table, args = vpc_sync(deployed, capsys)
    service = f"com.amazonaws.{REGION}.s3"
    plain = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=service,
                                    VpcEndpointType="Interface", SubnetIds=[subnet],
                                    PrivateDnsEnabled=False)["VpcEndpoint"]["VpcEndpointId"]
    assert status(capsys, *args, expect=3)["s3-route"]["status"] == "fail"
    ec2.delete_vpc_endpoints(VpcEndpointIds=[plain])
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=service, VpcEndpointType="Interface",
                            SubnetIds=[subnet], PrivateDnsEnabled=True)
    route = status(capsys, *args)["s3-route"]
    assert route["status"] == "ok"
    assert "interface endpoint" in route["detail"]


def _secret(store: str) -> str:
    url = REDIS["db.url"]
    if store == "secretsmanager":
        return boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="pypi-db", SecretString=url)["ARN"]
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/pypi/db", Value=url, Type="SecureString")
    return f"arn:aws:ssm:{REGION}:123456789012:parameter/pypi/db"


@pytest.mark.parametrize("store", ["secretsmanager", "ssm"])
def test_a_vpc_function_reading_its_secret_needs_a_way_to_that_service(
        aws, tmp_path, capsys, store):
    """Secrets Manager and SSM have interface endpoints only, so a VPC function reads
    its database secret through one with private DNS, or through a NAT: "To access the
    internet and AWS services, a Lambda function requires network address translation
    (NAT)" and "You can use VPC endpoints to connect to AWS services from a VPC that
    doesn't have internet access" (AWS ParallelCluster User Guide, AWS Lambda VPC
    configuration).  Without either, the first read at start-up times out."""
    ini, bundle = make_sync(tmp_path, **{"s3sync.db_url_secret": _secret(store)})
    ec2, vpc, subnet, table, args = vpc_sync((ini, bundle), capsys)
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3",
                            VpcEndpointType="Gateway", RouteTableIds=[table])
    checks = status(capsys, *args, expect=3)
    assert checks["s3-route"]["status"] == "ok"
    route = checks[f"{store}-route"]
    assert route["status"] == "fail"
    assert f"{subnet} (route table {table})" in route["detail"]
    assert route["fix"] == (
        f"aws ec2 create-vpc-endpoint --vpc-id {vpc} --vpc-endpoint-type Interface "
        f"--service-name com.amazonaws.{REGION}.{store} --subnet-ids {subnet} "
        "--security-group-ids SECURITY_GROUP_ALLOWING_HTTPS_FROM_THE_FUNCTION "
        "--private-dns-enabled")
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.{store}",
                            VpcEndpointType="Interface", SubnetIds=[subnet],
                            PrivateDnsEnabled=True)
    assert status(capsys, *args)[f"{store}-route"]["status"] == "ok"


def test_a_vpc_function_with_a_dynamodb_cache_needs_a_way_to_dynamodb(aws, tmp_path,
                                                                       capsys):
    """"You access most services by using a VPC interface endpoint. DynamoDB is accessed
    using a gateway endpoint. Amazon S3 supports both interface and gateway endpoints"
    (AWS Prescriptive Guidance, startup security baseline WKLD.12): the fix offers a
    gateway endpoint for DynamoDB; a NAT serves as well."""
    ini, bundle = make_sync(tmp_path, **{"pypi.db": "dynamo", "db.url": None,
                                         "db.region_name": REGION})
    ec2, vpc, subnet, table, args = vpc_sync((ini, bundle), capsys)
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3",
                            VpcEndpointType="Gateway", RouteTableIds=[table])
    route = status(capsys, *args, expect=3)["dynamodb-route"]
    assert route["status"] == "fail"
    assert route["fix"] == (f"aws ec2 create-vpc-endpoint --vpc-id {vpc} --service-name "
                            f"com.amazonaws.{REGION}.dynamodb --route-table-ids {table}")
    nat_gateway(ec2, vpc, table)
    checks = status(capsys, *args)
    assert checks["dynamodb-route"]["status"] == checks["s3-route"]["status"] == "ok"


def test_the_replication_fix_names_the_destination_in_the_regions_partition(aws, tmp_path,
                                                                             capsys):
    """"In the Beijing and Ningxia Regions, the Amazon Resource Name (ARN) syntax
    includes a cn" (Amazon General Reference, ARNs for Amazon Web Services in China):
    the printed command must run there as it is."""
    ini, bundle = make_sync(tmp_path, "cn-north-1")
    fix = status(capsys, ini, "--bundle", bundle)["replication"]["fix"]
    assert '"Bucket": "arn:aws-cn:s3:::OTHER_REGION_BUCKET"' in fix
