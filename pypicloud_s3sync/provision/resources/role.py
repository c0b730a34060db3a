"""The function's IAM role and its one inline policy (least privilege, from the ini), or
the role given with ``-a``, which is the operator's and only checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import iam, tags
from ..actual import RoleState
from ..aws import read_or_none
from ..errors import FUNCTION_NAME, ROLE_ARN, DeployError, Fix
from ..plan import Check, Step
from . import iamrole
from .base import Grantee, Planning
from .cfn import ROLE, Resources
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
    state = iamrole.read(iam_client, name(p))
    if state is None:
        return
    a.role, a.role_inline, a.role_attached = state.role, state.inline, state.attached
    a.role_policy = state.policy


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
        iamrole.create(p, KIND, role, iam.LAMBDA_SERVICE, f"pypicloud-s3sync function {p.fname}")
    else:
        if not iamrole.ours(a.role):
            raise DeployError(
                f"IAM role {role} exists but was not created by pypicloud-s3sync "
                f"(no {tags.MANAGED_TAG} tag)",
                Fix(*ROLE_ARN, "give its ARN as {} to use it as is"),
                Fix(*FUNCTION_NAME, "choose another function name with {}"),
            )
        iamrole.keep_trust(p, KIND, role, a.role, iam.LAMBDA_SERVICE)
    iamrole.keep_policy(p, "role-policy", role, policy, a.role_policy,
                        "least-privilege policy", "no wildcard S3/DynamoDB resources")


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
    iamrole.remove(p, KIND, "role-policy", name(p),
                   RoleState(a.role, a.role_inline, a.role_attached, a.role_policy))


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``Role``: the role create makes, its policy inline; nothing for a role given with
    ``-a``, which the function names by ARN."""
    return iamrole.rendered(created, ROLE, KIND)


#: What create and delete do to the role they make (without ``-a``).
OPERATOR_ACTIONS = iamrole.OPERATOR_ACTIONS


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
