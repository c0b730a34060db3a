"""What the replication kinds share: which rules of the bucket's one replication
configuration are ours, which link to a peer needs a rule of ours, and which role the
configuration names.

S3 keeps one replication configuration per bucket, whoever wrote its rules, and its
rules carry no tags: ours are the rules whose ID starts with :data:`RULE_PREFIX`
(``ppc-s3sync-`` and the peer's bucket), and every other rule is someone else's, kept
as it is in each document we put.  A link to a peer is already made when someone else's
enabled rule replicates all our packages to that peer with delete markers; it is then
reported, and no rule of ours is added for it.

The replication role and the rules are two kinds (an IAM role, a bucket setting) that
never import each other; both decide from these functions, so the role exists exactly
when a rule of ours will name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import iam
from ..peers import Peer
from ..replication_rules import covers, destination, replicates_deletes, rule_prefix
from .base import Planning

#: Our rules' IDs start so: S3's replication rules carry no tags.
RULE_PREFIX = "ppc-s3sync-"
#: S3 Replication Time Control's one threshold, and the metrics it needs.
RTC_MINUTES = 15


def rule_id(peer: Peer) -> str:
    return f"{RULE_PREFIX}{peer.bucket}"


def ours(rule: dict[str, Any]) -> bool:
    return str(rule.get("ID", "")).startswith(RULE_PREFIX)


def role_arn(p: Planning) -> str:
    """Our replication role's ARN (see :func:`..iam.replication_role_name`)."""
    return iam.role_arn(p.desired.account, iam.replication_role_name(p.config.target.bucket),
                        p.desired.partition)


def rules(p: Planning) -> list[dict[str, Any]]:
    return list((p.actual.replication or {}).get("Rules", []))


def foreign(p: Planning) -> list[dict[str, Any]]:
    """Everyone else's rules, which every document we put keeps as they are."""
    return [rule for rule in rules(p) if not ours(rule)]


@dataclass(frozen=True)
class Link:
    """This bucket's replication to one peer: made by someone else's rule ``by``, or
    by a rule of ours (``by`` None); ``refusal`` says why create must not go on."""

    peer: Peer
    by: dict[str, Any] | None = None
    refusal: str | None = None


def links(p: Planning) -> list[Link]:
    """One per peer, in the peers' order."""
    prefix, found = p.config.target.prefix, []
    covering = [rule for rule in foreign(p) if rule.get("Status") == "Enabled"
                and covers(rule, prefix)]
    for peer in p.peers:
        if peer.prefix != prefix:
            found.append(Link(peer, refusal=(
                f"bucket {peer.bucket}'s pypicloud keeps packages under {peer.prefix!r} "
                f"and this one under {prefix!r}: S3 replication keeps each object's key, "
                f"so the packages would arrive in {peer.bucket} under {prefix!r}, where "
                "that server never looks; give every ini of the topology the same "
                "storage.prefix")))
            continue
        to_peer = [rule for rule in covering if destination(rule) == peer.bucket]
        with_deletes = [rule for rule in to_peer if replicates_deletes(rule)]
        if with_deletes:
            found.append(Link(peer, by=with_deletes[0]))
        elif to_peer:
            rule = to_peer[0]
            found.append(Link(peer, refusal=(
                f"rule {rule.get('ID', '(unnamed)')} of bucket {p.config.target.bucket} "
                f"(not ours) replicates the packages to {peer.bucket} without delete "
                f"marker replication: a package deleted here would stay in {peer.bucket} "
                "and in its region's cache; set DeleteMarkerReplication Status=Enabled on "
                "that rule (aws s3api put-bucket-replication), or remove the rule so that "
                "create adds its own")))
        else:
            found.append(Link(peer))
    return found


def conflicts(p: Planning) -> list[str]:
    """Someone else's enabled rule over keys of ours (one prefix starts the other)
    that replicates them to a bucket outside the topology: S3 would copy every package,
    and every delete, there too, which the operator has to decide, not create."""
    bucket, prefix = p.config.target.bucket, p.config.target.prefix
    topology = {bucket, *(peer.bucket for peer in p.peers)}
    found = []
    for rule in foreign(p):
        theirs = rule_prefix(rule)
        if (rule.get("Status") != "Enabled" or theirs is None
                or destination(rule) in topology
                or not (prefix.startswith(theirs) or theirs.startswith(prefix))):
            continue
        found.append(
            f"rule {rule.get('ID', '(unnamed)')} of bucket {bucket} (not ours) replicates "
            f"prefix {theirs!r}, which overlaps the packages' {prefix!r}, to "
            f"{destination(rule)}, a bucket outside this topology "
            f"({', '.join(sorted(topology))}); change that rule's filter so that it no "
            f"longer overlaps {prefix!r}, or disable or remove it "
            "(aws s3api put-bucket-replication), then run create again")
    return found


def ours_needed(p: Planning) -> list[Peer]:
    """The peers a rule of ours must replicate to (none for a link refused)."""
    return [link.peer for link in links(p) if link.by is None and link.refusal is None]


def configuration_role(p: Planning) -> str:
    """The role the configuration names once ours are in it.

    S3 allows one role per configuration.  When someone else's rules are there with
    their own role, replacing it could break their replication, so ours use that role
    too (a note says what it must allow); otherwise the role is ours.
    """
    config = p.actual.replication or {}
    if foreign(p) and config.get("Role") and config["Role"] != role_arn(p):
        return str(config["Role"])
    return role_arn(p)


def uses_our_role(p: Planning) -> bool:
    """Whether create keeps a replication role of ours: a rule of ours names it."""
    return bool(ours_needed(p)) and configuration_role(p) == role_arn(p)


def desired_rule(p: Planning, peer: Peer, priority: int) -> dict[str, Any]:
    """Our rule to ``peer``: the packages' prefix, delete markers too (without them a
    package deleted here stays in every other region's cache), and with
    ``--replication-time-control`` S3 RTC's 15 minutes and the metrics it needs."""
    target: dict[str, Any] = {"Bucket": peer.arn}
    if p.options.replication_time_control:
        target["ReplicationTime"] = {"Status": "Enabled", "Time": {"Minutes": RTC_MINUTES}}
        target["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": RTC_MINUTES}}
    return {"ID": rule_id(peer), "Priority": priority, "Status": "Enabled",
            "Filter": {"Prefix": p.config.target.prefix},
            "DeleteMarkerReplication": {"Status": "Enabled"}, "Destination": target}


def same_rule(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """As S3 would replicate: every field we set, the priority apart (it only has to
    stay unique, which :func:`desired_rules` sees to)."""
    return all(have.get(key) == want[key] for key in want if key != "Priority")


def desired_rules(p: Planning) -> list[dict[str, Any]]:
    """Ours, one per peer that needs one: an existing rule keeps its priority (so an
    unchanged rule is no change), a new one comes after every priority in use."""
    existing = {rule["ID"]: rule for rule in rules(p) if ours(rule)}
    used = {int(rule.get("Priority", 0)) for rule in foreign(p)}
    following = max([int(rule.get("Priority", 0)) for rule in rules(p)], default=0)
    found = []
    for peer in ours_needed(p):
        have = existing.get(rule_id(peer))
        priority = int(have.get("Priority", 0)) if have else 0
        if not have or priority in used or priority < 1:
            following += 1
            priority = following
        used.add(priority)
        found.append(desired_rule(p, peer, priority))
    return found


__all__ = ["RULE_PREFIX", "Link", "configuration_role", "conflicts", "desired_rules",
           "foreign", "links", "ours", "ours_needed", "role_arn", "rule_id", "rules",
           "same_rule", "uses_our_role"]
