"""What the kinds that own an IAM role share: reading it with its policies, creating it
trusted by one service and tagged ours, keeping its trust and its one inline policy as
generated, and removing it only when nobody else's policy is on it.

The function's role and the replication role differ only in who assumes them and what
their policy grants, so both go through these, and the rows and calls of one read like
the other's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import iam, tags
from ..actual import RoleState
from ..aws import read_or_none
from ..plan import Step
from ..tags import tag_dict
from .base import Planning
from .cfn import Resources, api, resource, unrendered

#: What create and delete do to a role they make: read it (status, every plan), create
#: it with its tag, keep its trust and inline policy as generated, and remove both on
#: delete.
OPERATOR_ACTIONS = [
    "iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:GetRole",
    "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies",
    "iam:PutRolePolicy", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
]


def read(iam_client: Any, name: str) -> RoleState | None:
    """The role, its policies (ours and anyone's: a role holding others' is kept)."""
    found = read_or_none(iam_client.get_role, RoleName=name)
    if not found:
        return None
    state = RoleState(found["Role"])
    state.inline = iam_client.list_role_policies(RoleName=name)["PolicyNames"]
    state.attached = [
        policy["PolicyArn"] for policy in
        iam_client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
    if iam.POLICY_NAME in state.inline:
        doc = iam_client.get_role_policy(RoleName=name, PolicyName=iam.POLICY_NAME)
        state.policy = iam.parse_document(doc["PolicyDocument"])
    return state


def ours(role: dict[str, Any]) -> bool:
    return tags.managed(tag_dict(role.get("Tags")))


def create(p: Planning, kind: str, name: str, service: str, description: str) -> None:
    p.row(kind, name, f"exists, trusts {service}", "missing")
    p.call(kind, "create", name,
           f"create IAM role {name} (trusted by {service}, tagged {tags.MANAGED_TAG})",
           "iam.create_role",
           {"RoleName": name, "Path": iam.ROLE_PATH,
            "AssumeRolePolicyDocument": json.dumps(iam.trust_policy(service)),
            "Description": description,
            "Tags": [{"Key": tags.MANAGED_TAG, "Value": tags.MANAGED_VALUE}]})


def keep_trust(p: Planning, kind: str, name: str, role: dict[str, Any], service: str) -> None:
    """A trust policy changed by hand goes back to ``service`` alone."""
    trust_ok = iam.same_policy(role["AssumeRolePolicyDocument"], iam.trust_policy(service))
    p.row(kind, name, f"trusts {service}",
          f"trusts {service}" if trust_ok else "different trust policy")
    if not trust_ok:
        p.call(kind, "update", name, f"reset the trust policy of role {name} to {service}",
               "iam.update_assume_role_policy",
               {"RoleName": name, "PolicyDocument": json.dumps(iam.trust_policy(service))})


def keep_policy(p: Planning, resource: str, name: str, policy: dict[str, Any],
                have: dict[str, Any] | None, wanted: str, detail: str) -> None:
    """Our inline policy, compared as IAM would; ``wanted`` is the row's desired text,
    ``detail`` what the step's summary says of the policy."""
    in_sync = have is not None and iam.same_policy(have, policy)
    p.row(resource, f"{name}/{iam.POLICY_NAME}", wanted,
          "as desired" if in_sync else ("missing" if have is None else "differs"), in_sync)
    if not in_sync:
        p.call(resource, "update" if have else "create", f"{name}/{iam.POLICY_NAME}",
               f"{'update' if have else 'put'} inline policy {iam.POLICY_NAME} on role "
               f"{name} ({len(policy['Statement'])} statements, {detail})",
               "iam.put_role_policy",
               {"RoleName": name, "PolicyName": iam.POLICY_NAME,
                "PolicyDocument": json.dumps(policy)})


def remove(p: Planning, kind: str, resource: str, name: str, state: RoleState) -> None:
    """Our policy goes; the role goes only if it is ours and holds no one else's."""
    if not ours(state.role):
        p.notes.append(f"role {name} was not created by pypicloud-s3sync; left alone")
        return
    foreign = [n for n in state.inline if n != iam.POLICY_NAME] + state.attached
    if iam.POLICY_NAME in state.inline:
        p.call(resource, "delete", f"{name}/{iam.POLICY_NAME}",
               f"delete inline policy {iam.POLICY_NAME} from role {name}",
               "iam.delete_role_policy", {"RoleName": name, "PolicyName": iam.POLICY_NAME})
    if foreign:
        p.notes.append(f"role {name} keeps policies added by someone else "
                       f"({', '.join(foreign)}), so it is not deleted")
    else:
        p.call(kind, "delete", name, f"delete IAM role {name}", "iam.delete_role",
               {"RoleName": name})


def rendered(created: Sequence[Step], logical_id: str, kind: str) -> Resources:
    """A role create makes, as CloudFormation's ``AWS::IAM::Role`` with its policy
    inline, from the calls its kind's plan made for an empty account."""
    found: Resources = {}
    for step in created:
        params = step.params
        if api(step) == "iam.create_role":
            found[logical_id] = resource("AWS::IAM::Role", {
                "RoleName": params["RoleName"], "Path": params["Path"],
                "AssumeRolePolicyDocument": json.loads(params["AssumeRolePolicyDocument"]),
                "Description": params["Description"], "Tags": params["Tags"]})
        elif api(step) == "iam.put_role_policy":
            found[logical_id]["Properties"]["Policies"] = [{
                "PolicyName": params["PolicyName"],
                "PolicyDocument": json.loads(params["PolicyDocument"])}]
        else:
            raise unrendered(kind, step)
    return found
