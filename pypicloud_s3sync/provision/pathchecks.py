"""Status's checks of the whole path an upload takes, beyond the resources we own.

The failures operators of a replicated setup actually hit lie outside our resources:
replication that never carries deletes, a function in a VPC with no route to S3 (every
HEAD hangs until the timeout), a function stuck in a failed update, errors nobody
looked at.  Each check reads (Get/Describe calls only, like :mod:`.actual`) and ends in
one line: ok, warn or fail, with the fix.  A failed check makes ``status`` exit 3.

The checks of our own resources' health (the function's state, the alarms') are their
kinds' (``checks``); :func:`plan` puts them where an upload meets them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..function import metrics
from .alarms import ALARM_RUNBOOK
from .aws import error_code
from .plan import FAIL, OK, WARN, Check
from .resources import ORDER, function

if TYPE_CHECKING:
    from .resources.base import Planning

#: How far back the metrics check looks.
METRICS_HOURS = 24


def plan(planner: Planning) -> list[Check]:
    """Every check, in the order an upload travels (bucket, replication, function,
    route, what the function reported, the alarms): the path's own checks, and each
    kind's checks of its resource, the function's followed by the path beyond it."""
    bucket = planner.config.target.bucket
    s3 = planner.clients.client("s3")
    checks = [versioning(s3, bucket), replication(s3, bucket, planner.config.target.prefix)]
    for kind in ORDER:
        checks += kind.checks(planner)
        if kind is function:
            checks += _beyond_function(planner)
    return checks


def _beyond_function(planner: Planning) -> list[Check]:
    """Its route to S3 and what it reported; nothing to look at without a function."""
    found = planner.actual.function
    if found is None:
        return []
    checks = []
    route = s3_route(planner.clients.client("ec2"), found, planner.clients.region)
    if route is not None:
        checks.append(route)
    checks.append(activity(planner.clients.client("cloudwatch"), planner.fname,
                           lag_limit=planner.options.lag_threshold))
    return checks


def versioning(s3: Any, bucket: str) -> Check:
    """Replication needs versioning on both buckets: S3 refuses a rule without it and
    stops replicating into a bucket where it was suspended."""
    state = s3.get_bucket_versioning(Bucket=bucket).get("Status") or "never enabled"
    if state == "Enabled":
        return Check("versioning", OK, f"bucket {bucket} is versioned")
    return Check(
        "versioning", WARN,
        f"bucket {bucket} versioning is {state.lower()}: it can be neither a replication "
        "source nor a destination, so other regions' packages never arrive here",
        f"aws s3api put-bucket-versioning --bucket {bucket} "
        "--versioning-configuration Status=Enabled")


def replication(s3: Any, bucket: str, prefix: str) -> Check:
    """A rule on this bucket covering the packages, that carries delete markers.

    S3 records replication on the source bucket only, so a bucket without rules may
    still be another bucket's destination: the check says so rather than failing.
    """
    from botocore.exceptions import ClientError

    try:
        rules = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]["Rules"]
    except ClientError as exc:
        if error_code(exc) != "ReplicationConfigurationNotFoundError":
            raise
        return Check(
            "replication", WARN,
            f"not replicated from here: bucket {bucket} has no replication rules (if it "
            "is another bucket's destination, that bucket's rules are checked there)",
            "if this bucket's packages should reach another region, add a rule that "
            f"replicates delete markers: {replication_command(bucket, prefix)} (with a "
            "role S3 may assume to replicate, and the other region's bucket, versioned)")
    where = f"prefix {prefix!r}" if prefix else "the whole bucket"
    covering = [rule for rule in rules
                if rule.get("Status") == "Enabled" and _covers(rule, prefix)]
    if not covering:
        return Check(
            "replication", WARN,
            f"no enabled replication rule of bucket {bucket} covers {where}: packages "
            "uploaded here reach no other region",
            f"enable a rule whose filter prefix is a prefix of {prefix!r}")
    if any(_replicates_deletes(rule) for rule in covering):
        names = ", ".join(_destination(rule) for rule in covering)
        return Check("replication", OK,
                     f"{where} replicated to {names}, with delete markers")
    names = ", ".join(_destination(rule) for rule in covering)
    return Check(
        "replication", WARN,
        f"{where} is replicated to {names} without delete marker replication: a package "
        f"deleted here stays in {names} and in its region's cache, and nothing logs why",
        f"set DeleteMarkerReplication Status=Enabled on rule "
        f"{covering[0].get('ID', '(unnamed)')} (aws s3api put-bucket-replication)")


def _covers(rule: dict[str, Any], prefix: str) -> bool:
    """Whether every key under ``prefix`` matches the rule; a tag filter matches only
    tagged objects, and pypicloud tags none."""
    filt = rule.get("Filter")
    if filt is None:  # the first schema: a top-level prefix
        return prefix.startswith(rule.get("Prefix", ""))
    if "Tag" in filt or (filt.get("And") or {}).get("Tags"):
        return False
    rule_prefix = filt.get("Prefix", (filt.get("And") or {}).get("Prefix", ""))
    return prefix.startswith(rule_prefix or "")


def replication_command(bucket: str, prefix: str) -> str:
    """The one command that sets up what the check wants, placeholders in capitals."""
    import json

    config = {"Role": "REPLICATION_ROLE_ARN", "Rules": [{
        "ID": "pypicloud-packages", "Priority": 1, "Status": "Enabled",
        "Filter": {"Prefix": prefix}, "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": {"Bucket": "arn:aws:s3:::OTHER_REGION_BUCKET"}}]}
    return (f"aws s3api put-bucket-replication --bucket {bucket} "
            f"--replication-configuration '{json.dumps(config)}'")


def _replicates_deletes(rule: dict[str, Any]) -> bool:
    """The first schema (no Filter) always replicates delete markers."""
    if rule.get("Filter") is None:
        return True
    return (rule.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled"


def _destination(rule: dict[str, Any]) -> str:
    return (rule.get("Destination") or {}).get("Bucket", "?").rsplit(":", 1)[-1]


def s3_route(ec2: Any, function: dict[str, Any], region: str) -> Check | None:
    """For a function in a VPC: a route to S3 from every one of its subnets, through a
    gateway endpoint or a NAT.  None for a function outside a VPC (Lambda routes it)."""
    from botocore.exceptions import ClientError

    subnets = (function.get("VpcConfig") or {}).get("SubnetIds") or []
    if not subnets:
        return None
    try:  # the subnets' own VPC, which is where their route tables live
        found = ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
    except ClientError as exc:
        if error_code(exc) != "InvalidSubnetID.NotFound":
            raise
        return Check("s3-route", FAIL,
                     f"the function's subnets {', '.join(subnets)} do not all exist: "
                     "it cannot start", "run create -f with existing --subnet-ids")
    vpc_id = found[0]["VpcId"]
    service = f"com.amazonaws.{region}.s3"
    endpoints = ec2.describe_vpc_endpoints(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "service-name", "Values": [service]}])["VpcEndpoints"]
    endpoint_tables = {table for e in endpoints
                       if e.get("VpcEndpointType", "Gateway") == "Gateway"
                       and e.get("State", "available").lower() == "available"
                       for table in e.get("RouteTableIds") or []}
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))),
                None)
    unrouted = []
    for subnet in subnets:
        table = next((t for t in tables if any(a.get("SubnetId") == subnet
                                                for a in t.get("Associations", []))), main)
        if table is None or not (table["RouteTableId"] in endpoint_tables
                                 or _nat_route(table)):
            unrouted.append((subnet, table["RouteTableId"] if table else "none"))
    if not unrouted:
        return Check("s3-route", OK,
                     f"every subnet of the function in {vpc_id} reaches S3 (gateway "
                     "endpoint or NAT)")
    listed = ", ".join(f"{subnet} (route table {table})" for subnet, table in unrouted)
    ids = " ".join(sorted({table for _, table in unrouted if table != "none"}))
    return Check(
        "s3-route", FAIL,
        f"subnets {listed} have no S3 gateway endpoint and no NAT route: every S3 call "
        "of the function times out",
        f"aws ec2 create-vpc-endpoint --vpc-id {vpc_id} --service-name {service} "
        f"--route-table-ids {ids}")


def _nat_route(table: dict[str, Any]) -> bool:
    return any(route.get("DestinationCidrBlock") == "0.0.0.0/0"
               and (route.get("NatGatewayId") or route.get("InstanceId"))
               and route.get("State", "active") == "active"
               for route in table.get("Routes", []))


def activity(cloudwatch: Any, function_name: str,
             now: datetime | None = None, lag_limit: float | None = None) -> Check:
    """The last day's invocations, errors and throttles (Lambda's metrics) and the
    largest replication lag (the function's own, see :mod:`..function.metrics`), warned
    about above ``lag_limit`` (the lag alarm's threshold)."""
    end = now or datetime.now(UTC)
    start = end - timedelta(hours=METRICS_HOURS)

    def total(namespace: str, metric: str, stat: str) -> float | None:
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=metric, StartTime=start, EndTime=end,
            Period=METRICS_HOURS * 3600, Statistics=[stat],
            Dimensions=[{"Name": "FunctionName", "Value": function_name}])["Datapoints"]
        values = [point[stat] for point in points]
        if not values:
            return None
        return max(values) if stat == "Maximum" else sum(values)

    invocations, errors, throttles = (
        int(total("AWS/Lambda", name, "Sum") or 0)
        for name in ("Invocations", "Errors", "Throttles"))
    lag = total(metrics.NAMESPACE, metrics.LAG, "Maximum")
    detail = (f"last {METRICS_HOURS} h: {invocations} invocations, {errors} errors, "
              f"{throttles} throttles, largest lag "
              + (f"{lag:g} s" if lag is not None else "none recorded"))
    logs = f"aws logs tail /aws/lambda/{function_name} --since {METRICS_HOURS}h"
    if errors:
        return Check("activity", WARN, detail,
                     f"read the failed invocations' log lines: {logs}")
    if throttles:
        return Check("activity", WARN, detail,
                     "throttled events are retried within --max-event-age; raise "
                     "--reserved-concurrency if the lag keeps growing")
    if lag is not None and lag_limit is not None and lag > lag_limit:
        return Check("activity", WARN, f"{detail}, above the {lag_limit:g} s threshold",
                     ALARM_RUNBOOK["lag"])
    return Check("activity", OK, detail)


__all__ = ["FAIL", "OK", "WARN", "Check", "plan"]
