"""The IAM role S3 assumes to replicate the bucket's packages to the peers' buckets:
one per source bucket, trusted by ``s3.amazonaws.com`` alone, with exactly the
permissions the S3 user guide lists for live replication (:func:`..iam.replication_policy`),
narrowed to the packages' prefixes.

The trust policy is the user guide's ("Setting up permissions for live replication",
"Creating an IAM role": S3 "as the AWS service principal that can assume the role"),
without conditions: the guide gives none for replication's role.  It exists only while
a rule of ours names it (see :mod:`.replicating`): not when someone else's rules hold
the configuration with their own role, nor when their rules already make every link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import iam, tags
from ..errors import DeployError
from ..plan import Check, Step
from . import iamrole, replicating
from .base import Grantee, Planning
from .cfn import Resources
from .grants import allow

KIND = "replication-role"
POLICY_KIND = "replication-role-policy"
#: Its logical id in a template.
LOGICAL_ID = "ReplicationRole"


def name(p: Planning) -> str:
    return iam.replication_role_name(p.config.target.bucket)


def read(p: Planning) -> None:
    """The role of our naming, with its policies; only with peers."""
    if p.peers:
        p.actual.replication_role = iamrole.read(p.clients.client("iam"), name(p))


def plan(p: Planning) -> None:
    if not p.peers or not replicating.uses_our_role(p):
        return
    role, state, bucket = name(p), p.actual.replication_role, p.config.target.bucket
    needed = replicating.ours_needed(p)
    policy = iam.replication_policy(bucket, p.config.target.prefix,
                                    [peer.bucket for peer in needed],
                                    p.desired.partition)
    if state is None:
        iamrole.create(p, KIND, role, iam.S3_SERVICE,
                       f"pypicloud-s3sync replication of bucket {bucket}")
    elif not iamrole.ours(state.role):
        raise DeployError(
            f"IAM role {role} exists but was not created by pypicloud-s3sync (no "
            f"{tags.MANAGED_TAG} tag), and S3 would replicate the packages as it: delete it "
            f"(aws iam delete-role --role-name {role}) if nothing uses it, or tag it "
            f"{tags.MANAGED_TAG}={tags.MANAGED_VALUE} to let create keep its trust and "
            "policy as replication needs them")
    else:
        iamrole.keep_trust(p, KIND, role, state.role, iam.S3_SERVICE)
    iamrole.keep_policy(p, POLICY_KIND, role, policy, state.policy if state else None,
                        f"replicates the packages to {', '.join(x.bucket for x in needed)}",
                        "the packages' prefixes only")


def teardown(p: Planning) -> None:
    """Ours goes, unless someone else's rules still replicate as it."""
    state = p.actual.replication_role
    if not p.peers or state is None:
        return
    config = p.actual.replication or {}
    if replicating.foreign(p) and config.get("Role") == replicating.role_arn(p):
        p.notes.append(
            f"role {name(p)} is kept: bucket {p.config.target.bucket}'s replication "
            f"configuration names it for rules that are not ours "
            f"({', '.join(str(r.get('ID')) for r in replicating.foreign(p))})")
        return
    iamrole.remove(p, KIND, POLICY_KIND, name(p), state)


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``ReplicationRole``, its policy inline; export plans one ini (no peers), so it
    renders nothing there."""
    return iamrole.rendered(created, LOGICAL_ID, KIND)


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """The role's own calls; passing it to S3 is the rules' need (their kind grants
    iam:PassRole)."""
    if not s.replicates:
        return []
    role = iam.role_arn(s.account, iam.replication_role_name(s.config.target.bucket),
                        s.partition)
    return [allow("ReplicationRole", iamrole.OPERATOR_ACTIONS, role)]


def checks(p: Planning) -> list[Check]:
    """None: its rows say all status knows of it."""
    return []
