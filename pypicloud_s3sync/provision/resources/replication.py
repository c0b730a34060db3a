"""The bucket's replication rules to the peers' buckets: one rule of ours per peer,
in the bucket's one replication configuration, beside everyone else's.

Each rule of ours (ID ``ppc-s3sync-<peer bucket>``: S3's rules carry no tags, so the
ID prefix is how ours are told apart) replicates the packages' prefix with delete
markers (without them a package deleted here stays in the other regions' caches) to
the peer's bucket, with a priority no other rule has, and with
``--replication-time-control`` S3 RTC and its metrics.

S3 keeps one configuration per bucket and replaces it whole on every put, so every
document we put keeps the others' rules as they are, and a note reports them.  Someone
else's rule that already replicates all the packages to a peer with delete markers
makes that link (reported, no rule of ours added); one without delete markers is
refused, as is someone else's rule that replicates keys of ours to a bucket outside the
topology, each with the rule to change.

S3 allows one role per configuration.  With no one else's rules, the role is ours
(:mod:`.replication_role`).  With someone else's rules and their role, that role stays:
replacing it could break their replication, and refusing would make a bucket that
already replicates elsewhere unusable; a note says what their role must allow for ours.

S3 refuses a rule to a bucket that is not versioned yet, and the peer's versioning is
the peer's own plan's; so these steps are applied after every region's other steps
(``AFTER_PEERS``).  The bucket is not our stack's, so the rules have no template form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import iam
from ..aws import error_code
from ..errors import DeployError
from ..plan import Check, Step
from ..replication_rules import destination
from . import replicating
from .base import Grantee, Planning
from .cfn import Resources
from .grants import allow, on_bucket

KIND = "replication"
#: The planner marks these steps: applied once every region's other steps are.
AFTER_PEERS = True
#: PutBucketReplication names a role, which is iam:PassRole of it to S3 ("To perform
#: this operation, the user or role performing the action must have the iam:PassRole
#: permission", Amazon S3 API Reference, PutBucketReplication).
PASSED_TO = {"iam:PassedToService": iam.S3_SERVICE}


def name(p: Planning) -> str:
    return p.config.target.bucket


def read(p: Planning) -> None:
    """GetBucketReplication, only with peers; None when the bucket has none."""
    from botocore.exceptions import ClientError

    if not p.peers or p.actual.bucket_missing:
        return
    try:
        answer = p.clients.client("s3").get_bucket_replication(Bucket=name(p))
    except ClientError as exc:
        if error_code(exc) != "ReplicationConfigurationNotFoundError":
            raise
        return
    p.actual.replication = answer["ReplicationConfiguration"]


def plan(p: Planning) -> None:
    if not p.peers:
        return
    bucket = name(p)
    conflicts = replicating.conflicts(p)
    if conflicts:
        raise DeployError(conflicts[0])
    links = replicating.links(p)
    for link in links:
        if link.refusal:
            raise DeployError(link.refusal)
    want = replicating.desired_rules(p)
    have = {rule["ID"]: rule for rule in replicating.rules(p) if replicating.ours(rule)}
    for link in links:
        if link.by is not None:
            p.row(KIND, f"{bucket} -> {link.peer.bucket}", "replicated with delete markers",
                  f"by rule {link.by.get('ID', '(unnamed)')} (not ours)", True)
    for rule in want:
        found = have.get(rule["ID"])
        in_sync = found is not None and replicating.same_rule(found, rule)
        p.row(KIND, f"{bucket} -> {destination(rule)}",
              "replicated with delete markers",
              "as desired" if in_sync else ("missing" if found is None else "differs"),
              in_sync)
    others = replicating.foreign(p)
    if others:
        p.notes.append(
            f"bucket {bucket}'s replication configuration keeps rules that are not ours "
            f"({', '.join(str(r.get('ID', '(unnamed)')) for r in others)}): S3 holds one "
            f"configuration per bucket, and ours are told apart by the ID prefix "
            f"{replicating.RULE_PREFIX}, since replication rules carry no tags")
    role = replicating.configuration_role(p)
    if want and role != replicating.role_arn(p):
        p.notes.append(
            f"our rules replicate as role {role}, which the configuration already names for "
            f"rules that are not ours (S3 allows one role): it must allow "
            f"{', '.join(iam.REPLICATION_DESTINATION_ACTIONS)} on the peers' packages and "
            f"read the packages here, and the caller iam:PassRole of it")
    _change(p, want, have, others, role)


def _change(p: Planning, want: list[dict[str, Any]], have: dict[str, dict[str, Any]],
            others: list[dict[str, Any]], role: str) -> None:
    """One put of the whole document when ours differ (or one of ours is no longer
    wanted), or the configuration's removal when nothing would be left in it."""
    bucket = name(p)
    config = p.actual.replication or {}
    wanted = {rule["ID"]: rule for rule in want}
    same = (set(wanted) == set(have)
            and all(replicating.same_rule(have[i], rule) for i, rule in wanted.items())
            and (not want or config.get("Role") == role))
    if same:
        return
    if not want and not others:
        _delete(p)
        return
    p.call(KIND, "update" if config else "create", bucket,
           f"{'replace' if config else 'set'} the replication configuration of bucket "
           f"{bucket}: {len(want)} rule(s) of ours (to "
           f"{', '.join(destination(r) for r in want) or 'none'}, with delete "
           f"markers), {len(others)} kept", "s3.put_bucket_replication",
           {"Bucket": bucket, "ReplicationConfiguration": {
               "Role": role if want else config.get("Role", role), "Rules": others + want}},
           details={"role": role})


def _delete(p: Planning) -> None:
    p.call(KIND, "delete", name(p),
           f"remove the replication configuration of bucket {name(p)} (only our rules "
           "were in it)", "s3.delete_bucket_replication", {"Bucket": name(p)})


def teardown(p: Planning) -> None:
    """Our rules go; everyone else's stay, with the configuration's role."""
    if not p.peers or not p.actual.replication:
        return
    ours = [rule for rule in replicating.rules(p) if replicating.ours(rule)]
    if not ours:
        return
    others = replicating.foreign(p)
    if not others:
        _delete(p)
        return
    p.notes.append(f"bucket {name(p)} keeps its replication rules that are not ours "
                   f"({', '.join(str(r.get('ID', '(unnamed)')) for r in others)})")
    p.call(KIND, "update", name(p),
           f"remove our {len(ours)} replication rule(s) from bucket {name(p)}, keeping "
           f"{len(others)}", "s3.put_bucket_replication",
           {"Bucket": name(p), "ReplicationConfiguration": {
               "Role": p.actual.replication["Role"], "Rules": others}})


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """None: the bucket is pypicloud's, so its replication cannot be in our stack; and
    export plans one ini (no peers), where this kind plans nothing."""
    return {}


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """Reading and writing the bucket's configuration (DeleteBucketReplication is
    s3:PutReplicationConfiguration too, per its API reference), and passing our
    replication role to S3.  A role of someone else's that the configuration already
    names must be passable too: the plan's note names it."""
    if not s.replicates:
        return []
    role = iam.role_arn(s.account, iam.replication_role_name(s.config.target.bucket),
                        s.partition)
    return [on_bucket(s, ["s3:GetReplicationConfiguration", "s3:PutReplicationConfiguration"]),
            allow("PassReplicationRole", ["iam:PassRole"], role,
                  {"StringEquals": dict(PASSED_TO)})]


def checks(p: Planning) -> list[Check]:
    """None: status's path checks already judge the bucket's replication."""
    return []


__all__ = ["AFTER_PEERS", "KIND", "checks", "name", "operator_statements", "plan", "read",
           "teardown", "template"]
