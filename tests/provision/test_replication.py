"""Replication between regions, as a plan of several inis hands one plan its peers:
the bucket's versioning, the role S3 replicates as, and one rule per peer in the
bucket's one replication configuration, beside everyone else's rules.

Each test calls ``deploy.plan_create`` / ``plan_delete`` with the peers the multi-ini
command would give, against moto with the peers' buckets in their own regions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync.provision import deploy, iam, operator_policy
from pypicloud_s3sync.provision.peers import Peer

from ..support import account, aws_trace, moto_gaps
from ..support.deploy_helpers import (
    BUCKET,
    PREFIX,
    REGION,
    Recorder,
    clients_for,
    make_config,
    write_zip,
)

WEST = account.PEER
EU = Peer("packages-eu", "eu-west-1", PREFIX)
#: Someone else's replication role and a bucket outside the topology.
THEIR_ROLE = "arn:aws:iam::123456789012:role/archive-replication"
ARCHIVE = Peer("archive", "eu-central-1")
OUR_ROLE = iam.replication_role_name(BUCKET)
FUNCTION = deploy.DeployOptions().function_name


@dataclass
class Region:
    """This ini's region: its config, the function's zip and one set of clients."""

    config: Any
    code: deploy.ZipBundle
    tmp_path: Path
    recorder: Recorder

    def options(self, **options: Any) -> deploy.DeployOptions:
        return deploy.DeployOptions.from_config(self.config, **options)

    def clients(self, **options: Any) -> deploy.AwsClients:
        return clients_for(self.config, self.options(**options), self.recorder)

    def plan(self, *peers: Peer, **options: Any) -> deploy.Plan:
        return deploy.plan_create(self.config, self.options(**options),
                                  self.clients(**options), code=self.code, peers=peers)

    def create(self, *peers: Peer, **options: Any) -> deploy.Plan:
        plan = self.plan(*peers, **options)
        deploy.apply(plan, self.clients(**options), sleep=lambda s: None)
        return plan

    def delete(self, *peers: Peer) -> deploy.Plan:
        plan = deploy.plan_delete(self.config, self.options(), self.clients(), peers=peers)
        deploy.apply(plan, self.clients(), sleep=lambda s: None)
        return plan


@pytest.fixture
def region(aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Region:
    moto_gaps.apply(monkeypatch)
    s3().create_bucket(Bucket=BUCKET)
    for peer in (WEST, EU, ARCHIVE):
        account.versioned_bucket(peer)
    return Region(make_config(tmp_path), deploy.ZipBundle.from_path(
        write_zip(tmp_path / "f.zip")), tmp_path, Recorder())


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def versioned(status: str = "Enabled") -> None:
    s3().put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": status})


def calls(plan: deploy.Plan, api: str) -> list[deploy.Step]:
    return [step for step in plan.steps if f"{step.service}.{step.operation}" == api]


def configuration() -> dict[str, Any] | None:
    try:
        return s3().get_bucket_replication(Bucket=BUCKET)["ReplicationConfiguration"]
    except s3().exceptions.ClientError:
        return None


def their_rule(rule_id: str, prefix: str, to: Peer, deletes: str = "Enabled",
               priority: int = 1) -> dict[str, Any]:
    return {"ID": rule_id, "Priority": priority, "Status": "Enabled",
            "Filter": {"Prefix": prefix}, "DeleteMarkerReplication": {"Status": deletes},
            "Destination": {"Bucket": to.arn}}


def replicating(*rules: dict[str, Any]) -> None:
    """Someone else's replication on the bucket, with their own role."""
    versioned()
    s3().put_bucket_replication(Bucket=BUCKET, ReplicationConfiguration={
        "Role": THEIR_ROLE, "Rules": list(rules)})


# -- versioning ----------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["never enabled", "Suspended"])
def test_an_unversioned_bucket_is_refused_unless_versioning_is_allowed(
        region: Region, state: str) -> None:
    """Replication needs versioning on both buckets, and it cannot be undone: create
    says so and turns it on only with --allow-versioning."""
    if state == "Suspended":
        versioned("Suspended")
    with pytest.raises(deploy.DeployError) as refused:
        region.plan(WEST)
    message = str(refused.value)
    assert f"bucket {BUCKET} versioning is {state.lower()}" in message
    assert "can never be turned off again, only suspended" in message
    assert "both buckets" in message
    assert "give --allow-versioning to turn it on" in message
    assert "s3sync.allow_versioning = true" in refused.value.for_api()

    plan = region.plan(WEST, allow_versioning=True)
    [step] = calls(plan, "s3.put_bucket_versioning")
    assert step.params == {"Bucket": BUCKET, "VersioningConfiguration": {"Status": "Enabled"}}
    assert not step.after_peers  # the peers' rules need it first
    region.create(WEST, allow_versioning=True)
    assert s3().get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert any("stays versioned" in note for note in region.delete(WEST).notes)
    assert s3().get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


# -- what create plans -----------------------------------------------------------------------

@pytest.mark.parametrize("rtc", [False, True])
def test_create_plans_a_role_for_s3_and_one_rule_per_peer_with_delete_markers(
        region: Region, rtc: bool) -> None:
    versioned()
    plan = region.plan(WEST, EU, replication_time_control=rtc)

    [role] = calls(plan, "iam.create_role")[1:]  # after the function's
    assert role.params["RoleName"] == OUR_ROLE
    assert json.loads(role.params["AssumeRolePolicyDocument"])["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sts:AssumeRole"}]
    [policy] = [s for s in calls(plan, "iam.put_role_policy")
                if s.params["RoleName"] == OUR_ROLE]
    assert json.loads(policy.params["PolicyDocument"])["Statement"] == [
        {"Sid": "SourceBucket", "Effect": "Allow",
         "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
         "Resource": f"arn:aws:s3:::{BUCKET}"},
        {"Sid": "SourcePackages", "Effect": "Allow",
         "Action": ["s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionTagging"],
         "Resource": f"arn:aws:s3:::{BUCKET}/{PREFIX}*"},
        {"Sid": "DestinationPackages", "Effect": "Allow",
         "Action": ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
         "Resource": [f"arn:aws:s3:::packages-eu/{PREFIX}*",
                      f"arn:aws:s3:::packages-west/{PREFIX}*"]},
    ]

    [put] = calls(plan, "s3.put_bucket_replication")
    assert put.after_peers and put is plan.steps[-1]
    document = put.params["ReplicationConfiguration"]
    assert document["Role"] == f"arn:aws:iam::123456789012:role/pypicloud-s3sync/{OUR_ROLE}"
    timing = {"ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
              "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}} if rtc else {}
    assert document["Rules"] == [
        {"ID": f"ppc-s3sync-{peer.bucket}", "Priority": priority, "Status": "Enabled",
         "Filter": {"Prefix": PREFIX}, "DeleteMarkerReplication": {"Status": "Enabled"},
         "Destination": {"Bucket": peer.arn, **timing}}
        for priority, peer in ((1, WEST), (2, EU))]


def test_once_applied_a_second_run_plans_nothing_and_status_is_in_sync(region: Region) -> None:
    versioned()
    region.create(WEST, EU, replication_time_control=True)
    assert [r["ID"] for r in configuration()["Rules"]] == ["ppc-s3sync-packages-west",
                                                          "ppc-s3sync-packages-eu"]
    assert region.plan(WEST, EU, replication_time_control=True).is_empty
    report = deploy.status(region.config, region.options(replication_time_control=True),
                           region.clients(), code=region.code, peers=(WEST, EU))
    rows = {row.name: row for row in report.rows if row.resource == "replication"}
    assert set(rows) == {f"{BUCKET} -> packages-west", f"{BUCKET} -> packages-eu"}
    assert report.in_sync, report.describe()


def test_a_rule_of_ours_changed_by_hand_is_put_back_with_the_rest_kept(region: Region) -> None:
    versioned()
    region.create(WEST, EU)
    config = configuration()
    config["Rules"][1]["DeleteMarkerReplication"] = {"Status": "Disabled"}
    s3().put_bucket_replication(Bucket=BUCKET, ReplicationConfiguration=config)

    plan = region.plan(WEST, EU)
    [put] = plan.steps
    assert [r["DeleteMarkerReplication"] for r in put.params["ReplicationConfiguration"][
        "Rules"]] == [{"Status": "Enabled"}] * 2
    deploy.apply(plan, region.clients(), sleep=lambda s: None)
    assert region.plan(WEST, EU).is_empty


def test_a_region_left_out_of_the_topology_loses_its_rule_and_its_grant(
        region: Region) -> None:
    versioned()
    region.create(WEST, EU)
    plan = region.create(WEST)
    assert [r["ID"] for r in configuration()["Rules"]] == ["ppc-s3sync-packages-west"]
    [policy] = calls(plan, "iam.put_role_policy")
    assert "packages-eu" not in policy.params["PolicyDocument"]
    assert region.plan(WEST).is_empty


# -- someone else's rules ----------------------------------------------------------------

def test_delete_removes_our_rules_and_keeps_someone_elses_with_their_role(
        region: Region) -> None:
    """Their rule (another prefix, to a bucket of theirs) stays in the one document,
    and so does their role, which ours then replicate as (a note says what it needs)."""
    theirs = their_rule("archive-audit", "audit/", ARCHIVE)
    replicating(theirs)
    plan = region.create(WEST)
    assert any("keeps rules that are not ours (archive-audit)" in n for n in plan.notes)
    assert any(f"replicate as role {THEIR_ROLE}" in n for n in plan.notes)
    assert not [s for s in calls(plan, "iam.create_role") if s.params["RoleName"] == OUR_ROLE]
    config = configuration()
    assert config["Role"] == THEIR_ROLE
    assert [r["ID"] for r in config["Rules"]] == ["archive-audit", "ppc-s3sync-packages-west"]
    assert config["Rules"][1]["Priority"] == 2  # after theirs

    region.delete(WEST)
    assert configuration() == {"Role": THEIR_ROLE, "Rules": [theirs]}


def test_delete_of_ours_alone_removes_the_configuration_and_the_role(region: Region) -> None:
    versioned()
    region.create(WEST)
    plan = region.delete(WEST)
    assert calls(plan, "s3.delete_bucket_replication")
    assert configuration() is None
    assert OUR_ROLE not in [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]]


def test_someone_elses_rule_that_replicates_the_packages_with_deletes_makes_the_link(
        region: Region) -> None:
    replicating(their_rule("everything-west", "", WEST))
    plan = region.plan(WEST)
    # No rule of ours, so no role either: the function's steps alone.
    assert plan.steps == region.plan().steps
    report = deploy.status(region.config, region.options(), region.clients(),
                           code=region.code, peers=(WEST,))
    [row] = [row for row in report.rows if row.resource == "replication"]
    assert row.actual == "by rule everything-west (not ours)" and row.in_sync


def test_someone_elses_rule_to_a_peer_without_delete_markers_is_refused(region: Region) -> None:
    replicating(their_rule("to-west", "", WEST, deletes="Disabled"))
    with pytest.raises(deploy.DeployError) as refused:
        region.plan(WEST)
    assert "rule to-west" in str(refused.value)
    assert "set DeleteMarkerReplication Status=Enabled on that rule" in str(refused.value)


@pytest.mark.parametrize("prefix", ["", "pkgs/", "pkgs/internal/"])
def test_someone_elses_rule_over_our_packages_to_another_bucket_is_refused(
        region: Region, prefix: str) -> None:
    """A conflict: S3 would copy every package and every delete there too."""
    replicating(their_rule("to-archive", prefix, ARCHIVE))
    with pytest.raises(deploy.DeployError) as refused:
        region.plan(WEST)
    message = str(refused.value)
    assert f"rule to-archive of bucket {BUCKET} (not ours) replicates prefix {prefix!r}" in message
    assert "outside this topology" in message
    assert f"change that rule's filter so that it no longer overlaps {PREFIX!r}" in message
    assert configuration()["Rules"][0]["ID"] == "to-archive"


def test_a_peer_whose_pypicloud_keeps_another_prefix_is_refused(region: Region) -> None:
    """Replicas keep their keys: they would land where the other server never looks."""
    versioned()
    with pytest.raises(deploy.DeployError) as refused:
        region.plan(Peer(EU.bucket, EU.region, "mirror/"))
    assert f"would arrive in packages-eu under {PREFIX!r}" in str(refused.value)
    assert "the same storage.prefix" in str(refused.value)


def test_a_role_of_our_name_that_is_not_ours_is_refused(region: Region) -> None:
    versioned()
    boto3.client("iam").create_role(RoleName=OUR_ROLE, AssumeRolePolicyDocument=json.dumps(
        iam.trust_policy(iam.S3_SERVICE)))
    with pytest.raises(deploy.DeployError, match=f"IAM role {OUR_ROLE} exists but was not "
                                                 "created by pypicloud-s3sync"):
        region.plan(WEST)


# -- one ini alone ---------------------------------------------------------------------------

def test_one_ini_alone_plans_and_reads_nothing_of_replication(region: Region) -> None:
    """No peers: exactly the plan and the calls of a sync without replication."""
    replicating(their_rule("to-west", "", WEST, deletes="Disabled"))  # would be refused
    plan = region.plan()
    assert not [s for s in plan.steps if s.resource.startswith(("replication", "versioning"))]
    assert not any("replicat" in note for note in plan.notes)
    assert not [s for s in plan.steps if s.after_peers]
    assert "GetBucketVersioning" not in region.recorder.calls
    assert "GetBucketReplication" not in region.recorder.calls
    assert region.recorder.calls.count("GetRole") == 1  # the function's
    region.recorder.clear()
    deploy.plan_delete(region.config, region.options(), region.clients())
    assert not {"GetBucketVersioning", "GetBucketReplication"} & set(region.recorder.calls)


# -- the operator's policy ----------------------------------------------------------------

def test_the_operator_policy_of_several_inis_allows_every_replication_call_it_grants(
        region: Region) -> None:
    """create (versioning turned on, role, rules, then a change of them), status and
    delete with peers, traced and judged by an IAM evaluator: nothing refused, and
    every replication grant used."""
    versioned("Suspended")
    with aws_trace.tracing() as tracer, tracer.recording() as traced:
        region.create(WEST, allow_versioning=True)
        boto3.client("iam").update_assume_role_policy(  # changed by hand, reset by create
            RoleName=OUR_ROLE, PolicyDocument=json.dumps(iam.trust_policy()))
        region.create(WEST, EU, replication_time_control=True)
        deploy.status(region.config, region.options(), region.clients(), code=region.code,
                      peers=(WEST, EU))
        region.delete(WEST, EU)
    policy = operator_policy.operator_policy(region.config, account=aws_trace.ACCOUNT,
                                             region=REGION, function_name=FUNCTION,
                                             replicates=True)
    requests = aws_trace.iam_requests(traced)
    assert not aws_trace.denied(policy, requests), aws_trace.describe(
        aws_trace.denied(policy, requests))
    replication = ("ReplicationRole", "PassReplicationRole", "s3:PutBucketVersioning",
                   "s3:PutReplicationConfiguration", "s3:GetReplicationConfiguration")
    unused = [grant for grant in aws_trace.unused_grants(policy, requests)
              if any(word in grant for word in replication)]
    assert not unused
    one_ini = operator_policy.operator_policy(region.config, account=aws_trace.ACCOUNT,
                                              region=REGION, function_name=FUNCTION)
    # One ini alone: status already reads the configuration (its path check), no more.
    assert not [grant for grant in json.dumps(one_ini).split('"')
                if grant in replication[:-1] or "replication-" in grant]


# -- what moto does not check ------------------------------------------------------------

@pytest.mark.parametrize("change, refusal", [
    # "The destination bucket must have versioning enabled" (Amazon S3 User Guide, "Use
    # PutBucketReplication with an AWS SDK or CLI").
    ({"Destination": {"Bucket": "arn:aws:s3:::unversioned"}}, "must have versioning enabled"),
    # DstBucketNotFound: "Amazon S3 is unable to find the destination bucket that's
    # specified in the replication configuration" (S3 replication failure reasons).
    ({"Destination": {"Bucket": "arn:aws:s3:::nowhere"}}, "must exist"),
    # "When you add the Filter element in the configuration, you must also add the
    # following elements: DeleteMarkerReplication, Status, and Priority" (Amazon S3 API
    # Reference, PutBucketReplication).
    ({"DeleteMarkerReplication": None}, "DeleteMarkerReplication and Priority are required"),
])
def test_s3_refuses_a_replication_rule_as_aws_documents(
        region: Region, change: dict[str, Any], refusal: str) -> None:
    versioned()
    s3().create_bucket(Bucket="unversioned")
    rule = {k: v for k, v in {**their_rule("r", PREFIX, WEST), **change}.items() if v}
    with pytest.raises(s3().exceptions.ClientError, match=refusal):
        s3().put_bucket_replication(Bucket=BUCKET, ReplicationConfiguration={
            "Role": THEIR_ROLE, "Rules": [rule]})


def test_s3_refuses_two_rules_of_one_priority(region: Region) -> None:
    """The priority "indicates which rule has precedence whenever two or more
    replication rules conflict" (botocore's ReplicationRule): one per rule."""
    versioned()
    with pytest.raises(s3().exceptions.ClientError, match="duplicate priority"):
        s3().put_bucket_replication(Bucket=BUCKET, ReplicationConfiguration={
            "Role": THEIR_ROLE, "Rules": [their_rule("a", "a/", WEST),
                                          their_rule("b", "b/", WEST)]})
