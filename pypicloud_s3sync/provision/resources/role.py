"""The function's IAM role and its one inline policy (least privilege, from the ini), or
the role given with ``-a``, which is the operator's and only checked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import iam, tags
from ..aws import read_or_none
from ..errors import FUNCTION_NAME, ROLE_ARN, DeployError, Fix
from ..plan import Check, Step
from ..tags import tag_dict
from .base import Grantee, Planning
from .cfn import ROLE, Resources, api, resource, unrendered
from .grants import allow
from .sqs import in_use

KIND = "role"


def read(p: Planning) -> None:
    """Our role, its policies (ours and anyone's: teardown keeps a role holding others'),
    or, with ``-a``, only whether the given role exists."""
    a, iam_client = p.actual, p.clients.client("iam")
    if p.options.role_arn:
        a.given_role_exists = _given_role_exists(iam_client, p.options.role_arn,
                                                 p.clients.account)
        return
    role_name = name(p)
    role = read_or_none(iam_client.get_role, RoleName=role_name)
    if not role:
        return
    a.role = role["Role"]
    a.role_inline = iam_client.list_role_policies(RoleName=role_name)["PolicyNames"]
    a.role_attached = [
        policy["PolicyArn"] for policy in
        iam_client.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    ]
    if iam.POLICY_NAME in a.role_inline:
        doc = iam_client.get_role_policy(RoleName=role_name, PolicyName=iam.POLICY_NAME)
        a.role_policy = iam.parse_document(doc["PolicyDocument"])


def parse_role_arn(arn: str) -> tuple[str, str] | None:
    """``(account, role name)`` of an IAM role ARN, or None if ``arn`` is not one."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    return parts[4], parts[5].rsplit("/", 1)[-1]


def _given_role_exists(iam_client: Any, arn: str, account: str) -> bool | None:
    """None when it cannot be looked up: not a role ARN, or another account's role."""
    parsed = parse_role_arn(arn)
    if parsed is None or parsed[0] != account:
        return None
    return read_or_none(iam_client.get_role, RoleName=parsed[1]) is not None


def name(p: Planning) -> str:
    return p.options.role_name(p.clients.region)


def plan(p: Planning) -> None:
    o, a, d = p.options, p.actual, p.desired
    if o.role_arn:
        p.notes.append(f"using role {o.role_arn} as given (-a); its policy is yours")
        if o.delivery == "sqs":
            p.notes.append(f"--delivery sqs: role {o.role_arn} must allow "
                           f"{', '.join(iam.QUEUE_ACTIONS)} on {d.queue_arn}, or Lambda "
                           "refuses the event source mapping")
        _check_given_role(p, o.role_arn)
        return
    role = name(p)
    policy = iam.role_policy(p.config, account=d.account, region=p.clients.region,
                             function_name=p.fname, subnet_ids=o.subnet_ids,
                             security_group_ids=o.security_group_ids,
                             on_failure=o.on_failure, on_failure_key=a.on_failure_key,
                             partition=d.partition,
                             stored_db_secret=(d.stored.store, d.stored.policy_resource)
                             if d.stored else None, environment_key=o.kms_key_arn,
                             queue=(d.queue_arn, o.queue_kms_key_arn) if in_use(p) else None)
    if a.role is None:
        p.row(KIND, role, "exists, trusts lambda.amazonaws.com", "missing")
        p.call(KIND, "create", role,
               f"create IAM role {role} (trusted by lambda.amazonaws.com, tagged "
               f"{tags.MANAGED_TAG})", "iam.create_role",
               {"RoleName": role, "Path": iam.ROLE_PATH,
                "AssumeRolePolicyDocument": json.dumps(iam.trust_policy()),
                "Description": f"pypicloud-s3sync function {p.fname}",
                "Tags": [{"Key": tags.MANAGED_TAG, "Value": tags.MANAGED_VALUE}]})
    else:
        if not tags.managed(tag_dict(a.role.get("Tags"))):
            raise DeployError(
                f"IAM role {role} exists but was not created by pypicloud-s3sync "
                f"(no {tags.MANAGED_TAG} tag)",
                Fix(*ROLE_ARN, "give its ARN as {} to use it as is"),
                Fix(*FUNCTION_NAME, "choose another function name with {}"),
            )
        trust_ok = iam.same_policy(a.role["AssumeRolePolicyDocument"], iam.trust_policy())
        p.row(KIND, role, "trusts lambda.amazonaws.com",
              "trusts lambda.amazonaws.com" if trust_ok else "different trust policy")
        if not trust_ok:
            p.call(KIND, "update", role,
                   f"reset the trust policy of role {role} to lambda.amazonaws.com",
                   "iam.update_assume_role_policy",
                   {"RoleName": role, "PolicyDocument": json.dumps(iam.trust_policy())})
    in_sync = a.role_policy is not None and iam.same_policy(a.role_policy, policy)
    p.row("role-policy", f"{role}/{iam.POLICY_NAME}", "least-privilege policy",
          "as desired" if in_sync else ("missing" if a.role_policy is None else "differs"),
          in_sync)
    if not in_sync:
        p.call("role-policy", "update" if a.role_policy else "create",
               f"{role}/{iam.POLICY_NAME}",
               f"{'update' if a.role_policy else 'put'} inline policy {iam.POLICY_NAME} on "
               f"role {role} ({len(policy['Statement'])} statements, no wildcard "
               "S3/DynamoDB resources)", "iam.put_role_policy",
               {"RoleName": role, "PolicyName": iam.POLICY_NAME,
                "PolicyDocument": json.dumps(policy)})


def _check_given_role(p: Planning, arn: str) -> None:
    """A missing ``-a`` role would only show up as Lambda retrying "cannot be assumed"."""
    if parse_role_arn(arn) is None:
        raise DeployError(f"{{0}} {arn} is not an IAM role ARN "
                          "(arn:aws:iam::ACCOUNT:role/NAME)", Fix(*ROLE_ARN))
    if p.actual.given_role_exists is False:
        raise DeployError(f"the role given with {{0}} ({arn}) does not exist; create it "
                          "first, or leave out {0} to let this command create one",
                          Fix(*ROLE_ARN))


def teardown(p: Planning) -> None:
    """The role goes only if it is ours and holds no policy of anyone else's."""
    options, a = p.options, p.actual
    if options.role_arn:
        p.notes.append(f"role {options.role_arn} was given with -a; left alone")
        return
    if a.role is None:
        return
    role = name(p)
    if not tags.managed(tag_dict(a.role.get("Tags"))):
        p.notes.append(f"role {role} was not created by pypicloud-s3sync; left alone")
        return
    foreign = [n for n in a.role_inline if n != iam.POLICY_NAME] + a.role_attached
    if iam.POLICY_NAME in a.role_inline:
        p.call("role-policy", "delete", f"{role}/{iam.POLICY_NAME}",
               f"delete inline policy {iam.POLICY_NAME} from role {role}",
               "iam.delete_role_policy", {"RoleName": role, "PolicyName": iam.POLICY_NAME})
    if foreign:
        p.notes.append(f"role {role} keeps policies added by someone else "
                       f"({', '.join(foreign)}), so it is not deleted")
    else:
        p.call(KIND, "delete", role, f"delete IAM role {role}", "iam.delete_role",
               {"RoleName": role})


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``Role``: the role create makes, its policy inline; nothing for a role given with
    ``-a``, which the function names by ARN."""
    found: Resources = {}
    for step in created:
        params = step.params
        if api(step) == "iam.create_role":
            found[ROLE] = resource("AWS::IAM::Role", {
                "RoleName": params["RoleName"], "Path": params["Path"],
                "AssumeRolePolicyDocument": json.loads(params["AssumeRolePolicyDocument"]),
                "Description": params["Description"], "Tags": params["Tags"]})
        elif api(step) == "iam.put_role_policy":
            found[ROLE]["Properties"]["Policies"] = [{
                "PolicyName": params["PolicyName"],
                "PolicyDocument": json.loads(params["PolicyDocument"])}]
        else:
            raise unrendered(KIND, step)
    return found


#: What create and delete do to the role they make (without ``-a``): read it (status,
#: every plan), create it with its tag, keep its trust and inline policy as generated,
#: and remove both on delete.
OPERATOR_ACTIONS = [
    "iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:GetRole",
    "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies",
    "iam:PutRolePolicy", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
]


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """``-a``'s role is only read (create checks that it exists before handing it to
    Lambda), never changed.  Passing it is the function's calls' need (its kind grants
    iam:PassRole)."""
    if s.given_role is not None:
        return [allow("GivenRole", ["iam:GetRole"], s.given_role)]
    role = iam.role_arn(s.account, iam.role_name(s.function_name, s.region), s.partition)
    return [allow("FunctionRole", OPERATOR_ACTIONS, role)]


def checks(p: Planning) -> list[Check]:
    """None: the role's rows say all status knows of it."""
    return []
