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

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..endpoints import partition, vpc_service_name
from ..function import metrics
from .alarms import ALARM_RUNBOOK
from .aws import error_code
from .plan import FAIL, OK, WARN, Check
from .replication_rules import covers, destination, replicates_deletes
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
    checks = [versioning(s3, bucket),
              replication(s3, bucket, planner.config.target.prefix, planner.clients.region)]
    for kind in ORDER:
        checks += kind.checks(planner)
        if kind is function:
            checks += _beyond_function(planner)
    return checks


def _beyond_function(planner: Planning) -> list[Check]:
    """Its routes to S3 and to the other services it calls, and what it reported;
    nothing to look at without a function."""
    found = planner.actual.function
    if found is None:
        return []
    checks = []
    checks += routes(planner.clients.client("ec2"), found, planner.clients.region,
                     planner.config.cache_backend)
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


def replication(s3: Any, bucket: str, prefix: str, region: str) -> Check:
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
            f"replicates delete markers: {replication_command(bucket, prefix, region)} (with a "
            "role S3 may assume to replicate, and the other region's bucket, versioned)")
    where = f"prefix {prefix!r}" if prefix else "the whole bucket"
    covering = [rule for rule in rules
                if rule.get("Status") == "Enabled" and covers(rule, prefix)]
    if not covering:
        return Check(
            "replication", WARN,
            f"no enabled replication rule of bucket {bucket} covers {where}: packages "
            "uploaded here reach no other region",
            f"enable a rule whose filter prefix is a prefix of {prefix!r}")
    if any(replicates_deletes(rule) for rule in covering):
        names = ", ".join(destination(rule) for rule in covering)
        return Check("replication", OK,
                     f"{where} replicated to {names}, with delete markers")
    names = ", ".join(destination(rule) for rule in covering)
    return Check(
        "replication", WARN,
        f"{where} is replicated to {names} without delete marker replication: a package "
        f"deleted here stays in {names} and in its region's cache, and nothing logs why",
        f"set DeleteMarkerReplication Status=Enabled on rule "
        f"{covering[0].get('ID', '(unnamed)')} (aws s3api put-bucket-replication)")


def replication_command(bucket: str, prefix: str, region: str) -> str:
    """The one command that sets up what the check wants, placeholders in capitals; the
    destination's ARN in the region's partition (a bucket replicates within it)."""
    config = {"Role": "REPLICATION_ROLE_ARN", "Rules": [{
        "ID": "pypicloud-packages", "Priority": 1, "Status": "Enabled",
        "Filter": {"Prefix": prefix}, "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": {"Bucket": f"arn:{partition(region)}:s3:::OTHER_REGION_BUCKET"}}]}
    return (f"aws s3api put-bucket-replication --bucket {bucket} "
            f"--replication-configuration '{json.dumps(config)}'")


#: The services a function may call, by botocore name: their check's name and words,
#: and whether a gateway endpoint (a route table entry) serves them.  Any of them is
#: served by an interface endpoint whose private DNS name is the service's own.
SERVICES = {
    "s3": ("s3-route", "S3", True),
    "dynamodb": ("dynamodb-route", "DynamoDB", True),
    "secretsmanager": ("secretsmanager-route", "Secrets Manager", False),
    "ssm": ("ssm-route", "SSM", False),
}
#: A default route's target that may lead out, but whose far side status cannot see:
#: (the route's key, the words for it).
ONWARD_TARGETS = (
    ("TransitGatewayId", "transit gateway"),
    ("CoreNetworkArn", "Cloud WAN core network"),
    ("NetworkInterfaceId", "network interface"),
    ("InstanceId", "instance"),
)


def routes(ec2: Any, function: dict[str, Any], region: str,
           cache_backend: str = "") -> list[Check]:
    """For a function in a VPC: a route from every one of its subnets to each service it
    calls (S3; the database secret's Secrets Manager or SSM; a DynamoDB cache's
    DynamoDB), through an endpoint of that service or a NAT gateway.

    A default route through a transit gateway, a Cloud WAN core network or an appliance
    (a network interface or instance) may well lead out: a warning that status cannot
    see beyond it, never a failure.  Nothing for a function outside a VPC.
    ``cache_backend`` is the config's (``sql``, ``redis`` or ``dynamo``).
    """
    from botocore.exceptions import ClientError

    subnets = (function.get("VpcConfig") or {}).get("SubnetIds") or []
    if not subnets:
        return []
    try:  # the subnets' own VPC, which is where their route tables live
        found = ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
    except ClientError as exc:
        if error_code(exc) != "InvalidSubnetID.NotFound":
            raise
        return [Check("s3-route", FAIL,
                      f"the function's subnets {', '.join(subnets)} do not all exist: "
                      "it cannot start", "run create -f with existing --subnet-ids")]
    vpc_id = found[0]["VpcId"]
    wanted = [("s3", region), *_services_called(function, region, cache_backend)]
    names = {vpc_service_name(where, service): service for service, where in wanted}
    endpoints = [e for e in ec2.describe_vpc_endpoints(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "service-name", "Values": sorted(names)}])["VpcEndpoints"]
        if e.get("State", "available").lower() == "available"]
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))),
                None)
    by_subnet = {subnet: next((t for t in tables if any(
        a.get("SubnetId") == subnet for a in t.get("Associations", []))), main)
        for subnet in subnets}
    network = _Network(vpc_id, subnets, by_subnet)
    return [_route(network, service, vpc_service_name(where, service),
                   [e for e in endpoints if e.get("ServiceName") == vpc_service_name(
                       where, service)])
            for service, where in wanted]


@dataclass(frozen=True)
class _Network:
    vpc_id: str
    subnets: list[str]
    #: Each subnet's route table (its own, else the VPC's main one; None: neither).
    tables: dict[str, dict[str, Any] | None]


def _services_called(function: dict[str, Any], region: str,
                     cache_backend: str) -> list[tuple[str, str]]:
    """(service, region) of what the function calls besides S3, read from the settings
    it runs with: the database secret's service, a DynamoDB cache's DynamoDB (unless
    ``db.host`` points it elsewhere)."""
    from ..function.dbsecret import OPTION, SecretError, parse_ref
    from ..function.handler import SETTINGS_VAR

    variables = (function.get("Environment") or {}).get("Variables") or {}
    try:
        settings = json.loads(variables.get(SETTINGS_VAR) or "{}")
    except ValueError:
        return []
    if not isinstance(settings, dict):
        return []
    called = []
    if settings.get(OPTION):
        try:
            ref = parse_ref(str(settings[OPTION]))
        except SecretError:
            pass
        else:
            called.append((ref.service, ref.region))
    if cache_backend == "dynamo" and not settings.get("db.host"):
        called.append(("dynamodb", str(settings.get("db.region_name") or region)))
    return called


def _route(network: _Network, service: str, service_name: str,
           endpoints: list[dict[str, Any]]) -> Check:
    """One service's check: every subnet reaches it, or which do not and the fix."""
    check, label, gateway = SERVICES[service]
    # An interface endpoint with private DNS answers for the service's own name in the
    # whole VPC; a gateway endpoint only for the route tables it is in.
    private_dns = any(e.get("VpcEndpointType") == "Interface" and e.get("PrivateDnsEnabled")
                      for e in endpoints)
    gateway_tables = {table for e in endpoints
                      if gateway and e.get("VpcEndpointType", "Gateway") == "Gateway"
                      for table in e.get("RouteTableIds") or []}
    unrouted, onward = [], []
    for subnet, table in network.tables.items():
        table_id = table["RouteTableId"] if table else "none"
        if private_dns or table_id in gateway_tables:
            continue
        default = _default_route(table)
        if default is not None and default.get("NatGatewayId"):
            continue
        target = next(((words, default[key]) for key, words in ONWARD_TARGETS
                       if default is not None and default.get(key)), None)
        if target is None:
            unrouted.append((subnet, table_id))
        else:
            onward.append((subnet, table_id, target))
    vpc_id = network.vpc_id
    fix = _endpoint_command(network, service_name, gateway,
                            sorted({t for _, t in unrouted if t != "none"}))
    if unrouted:
        listed = ", ".join(f"{subnet} (route table {table})" for subnet, table in unrouted)
        return Check(
            check, FAIL,
            f"subnets {listed} have no {label} endpoint and no NAT route: every {label} "
            "call of the function times out", fix)
    if onward:
        listed = ", ".join(f"{subnet} (route table {table}: {words} {target})"
                           for subnet, table, (words, target) in onward)
        return Check(
            check, WARN,
            f"subnets {listed} reach {label} only through that default route, which "
            f"status cannot follow: if it leads to no NAT or {label} endpoint, every "
            f"{label} call of the function times out",
            "if the function's calls time out, give it an endpoint: "
            + _endpoint_command(network, service_name, gateway,
                                sorted({t for _, t, _ in onward if t != "none"})))
    how = "an interface endpoint" if private_dns else (
        "a gateway endpoint or NAT" if gateway else "a NAT")
    return Check(check, OK,
                 f"every subnet of the function in {vpc_id} reaches {label} ({how})")


def _default_route(table: dict[str, Any] | None) -> dict[str, Any] | None:
    """The table's active 0.0.0.0/0 route (a blackhole one leads nowhere)."""
    return next((route for route in (table or {}).get("Routes", [])
                 if route.get("DestinationCidrBlock") == "0.0.0.0/0"
                 and route.get("State", "active") == "active"), None)


def _endpoint_command(network: _Network, service_name: str, gateway: bool,
                      tables: list[str]) -> str:
    """The endpoint that would serve these subnets: a free gateway endpoint where the
    service has one, else an interface endpoint with private DNS (placeholders in
    capitals)."""
    if gateway:
        return (f"aws ec2 create-vpc-endpoint --vpc-id {network.vpc_id} --service-name "
                f"{service_name} --route-table-ids {' '.join(tables)}")
    return (f"aws ec2 create-vpc-endpoint --vpc-id {network.vpc_id} --vpc-endpoint-type "
            f"Interface --service-name {service_name} --subnet-ids "
            f"{' '.join(network.subnets)} --security-group-ids "
            "SECURITY_GROUP_ALLOWING_HTTPS_FROM_THE_FUNCTION --private-dns-enabled")


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
