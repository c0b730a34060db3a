"""The Lambda function: its configuration and its code.

A function of our name that is not ours is refused unless ``-f`` asks to take it over;
ours is compared field by field (only the fields we set) and its code by digest, and
updated in place, never deleted and made again, so its ARN and permissions stay valid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...bundle.ours import HANDLER
from .. import iam, tags
from ..aws import read_or_none
from ..desired import DESCRIPTION
from ..errors import FORCE, FUNCTION_NAME, DeployError, Fix
from ..names import SCHEDULE_PRINCIPAL, statement_id
from ..plan import BY_CREATE, BY_CREATE_FORCE, ENV_VAR, FAIL, OK, WARN, Check, Step
from .base import Grantee, Planning
from .cfn import CODE_KEY, FUNCTION, Resources, api, code, resource, unrendered
from .grants import allow, on_function
from .permissions import remove

KIND = "function"
#: The fields of the configuration compared as they are.
_PLAIN = ("Runtime", "Handler", "Role", "Timeout", "MemorySize", "Description")
#: "Function environment variables: 4 KB, for all environment variables associated with
#: the function, combined" (Lambda Developer Guide, Lambda quotas); keys count too.
ENVIRONMENT_LIMIT = 4096
#: Where the fix for a large environment goes: db.url in a secret of create's own.
STORE_DB_PASSWORD = ("--store-db-password secretsmanager",
                     "s3sync.store_db_password = secretsmanager")


def read(p: Planning) -> None:
    """The configuration, the tags that tell ours from anyone's, and the resource
    policy: its invoke permissions belong to the kinds that add them, but it is one
    document of the function's, read once for all of them."""
    a, lam = p.actual, p.clients.client("lambda")
    function = read_or_none(lam.get_function, FunctionName=p.fname)
    if not function:
        return
    a.function = function["Configuration"]
    a.function_tags = _function_tags(lam, function)
    a.environment_unreadable = _environment_error(a.function)
    policy = read_or_none(lam.get_policy, FunctionName=p.fname)
    if policy:
        for statement in json.loads(policy["Policy"]).get("Statement", []):
            a.statements[statement.get("Sid", "")] = statement


def _function_tags(lam: Any, function: dict[str, Any]) -> dict[str, str]:
    """The function's tags, which tell ours from anyone's.

    GetFunction "returns tag data only if you have explicit allow permissions for
    lambda:ListTags" (botocore's GetFunctionResponse, ``Tags``), and leaves the field out
    otherwise, as it does for a function without tags: so a missing field is asked again
    with ListTags, whose refusal names the permission instead of making our own function
    look foreign (create would refuse it, delete would leave it).
    """
    if "Tags" in function:
        return function["Tags"] or {}
    return lam.list_tags(Resource=function["Configuration"]["FunctionArn"]).get("Tags") or {}


def _environment_error(function: dict[str, Any]) -> str | None:
    """Lambda's reason for not showing the environment, or None when it did.

    "Users without Decrypt permissions can still manage functions, but they can't view
    environment variables" (Lambda developer guide, "Securing environment variables"):
    GetFunction then answers ``Environment.Error`` (``ErrorCode``, ``Message``) in
    place of ``Variables`` (botocore's ``EnvironmentResponse``), which is no evidence
    that the variables differ from ours.
    """
    environment = function.get("Environment") or {}
    error = environment.get("Error")
    if not error or "Variables" in environment:
        return None
    return ": ".join(part for part in (error.get("ErrorCode"), error.get("Message")) if part) \
        or "no reason given"


def unreadable_environment(p: Planning) -> str:
    """The sentence that says the environment was not compared, and the grant that
    lets the caller read it."""
    key = (p.actual.function or {}).get("KMSKeyArn") or "the function's KMS key"
    return (f"function {p.fname}: its environment cannot be read "
            f"({p.actual.environment_unreadable}), so it was not compared; Lambda shows "
            f"it only to a caller allowed kms:Decrypt on {key}: grant that to whoever "
            "runs this (the operator policy does)")


def name(p: Planning) -> str:
    return p.fname


def configuration(p: Planning, code_handler: str) -> dict[str, Any]:
    """CreateFunction's configuration fields, as create sets them."""
    o, d = p.options, p.desired
    params: dict[str, Any] = {
        "FunctionName": p.fname,
        "Runtime": o.runtime,
        "Handler": code_handler,
        "Role": d.role_arn,
        "Timeout": o.timeout,
        "MemorySize": o.memory,
        "Description": DESCRIPTION,
        "Environment": {"Variables": {ENV_VAR: json.dumps(d.env, sort_keys=True)}},
    }
    if o.kms_key_arn:
        params["KMSKeyArn"] = o.kms_key_arn
    if o.vpc:
        params["VpcConfig"] = {"SubnetIds": list(o.subnet_ids),
                               "SecurityGroupIds": list(o.security_group_ids)}
    return params


def config_drift(p: Planning, want: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Fields that differ, and the update call's parameters (other env vars kept)."""
    have = p.actual.function or {}
    changed = [k for k in _PLAIN if have.get(k) != want[k]]
    have_vars = dict(have.get("Environment", {}).get("Variables", {}) or {})
    try:
        have_env = json.loads(have_vars.get(ENV_VAR, "null"))
    except ValueError:
        have_env = None
    # Unread variables are not compared, nor replaced by ours alone (which would drop
    # any the operator set).
    if have_env != p.desired.env and not p.actual.environment_unreadable:
        changed.append("Environment")
    if (have.get("KMSKeyArn") or "") != want.get("KMSKeyArn", ""):
        changed.append("KMSKeyArn")
        # "" goes back to Lambda's own key when the option was dropped.
        want = {**want, "KMSKeyArn": want.get("KMSKeyArn", "")}
    have_vpc = have.get("VpcConfig") or {}
    want_vpc = want.get("VpcConfig", {})
    if (sorted(have_vpc.get("SubnetIds") or []) != sorted(want_vpc.get("SubnetIds", []))
            or sorted(have_vpc.get("SecurityGroupIds") or [])
            != sorted(want_vpc.get("SecurityGroupIds", []))):
        changed.append("VpcConfig")
        want = {**want, "VpcConfig": want_vpc or {"SubnetIds": [], "SecurityGroupIds": []}}
    update = {k: v for k, v in want.items() if k in changed or k == "FunctionName"}
    if "Environment" in changed:
        have_vars[ENV_VAR] = want["Environment"]["Variables"][ENV_VAR]
        update["Environment"] = {"Variables": have_vars}
    return changed, update


def _check_environment(p: Planning, variables: dict[str, str]) -> None:
    """Refuse, before any step, an environment Lambda would refuse: applied, the role
    would exist and the function not, and every re-run would stop at the same step.
    Our settings are one variable, so its parts are named by setting; anyone else's
    variables, which an update keeps, by name.

    Counted as the variables' JSON object (keys, values, and the encoding's quotes,
    separators and escapes), never less than the keys and values alone: "keys, values
    and encoding overhead" may all count, and refusing a few bytes early beats a create
    that stops halfway."""
    size = len(json.dumps(variables, separators=(",", ":"), ensure_ascii=False).encode())
    if size <= ENVIRONMENT_LIMIT:
        return
    parts = [(len(k.encode()) + len(v.encode()), k) for k, v in variables.items()
             if k != ENV_VAR]
    parts += [(len(k.encode()) + len(v.encode()), k) for k, v in p.desired.env.items()]
    largest = ", ".join(f"{name} ({n} bytes)" for n, name in sorted(parts, reverse=True)[:3])
    raise DeployError(
        f"the function's environment variables would be {size} bytes, over Lambda's 4 KB "
        f"({ENVIRONMENT_LIMIT} bytes) for all of them combined (keys, values and their JSON "
        "quoting); the "
        f"largest: {largest}. Shorten those settings (or remove variables set on the "
        "function by hand)",
        Fix(*STORE_DB_PASSWORD, "or keep db.url in a secret with {} (or name one with "
                                "s3sync.db_url_secret): the function then gets it "
                                "without its password"))


def plan(p: Planning) -> None:
    o, a = p.options, p.actual
    assert p.code is not None, "a plan that may create the function needs its code"
    ours_tag = {tags.MANAGED_TAG: tags.MANAGED_VALUE}
    if a.function is None:
        params = configuration(p, HANDLER)
        _check_environment(p, params["Environment"]["Variables"])
        artifact = p.code()
        p.row(KIND, p.fname, f"{o.runtime} {o.arch}", "missing")
        p.row("function-code", p.fname, artifact.sha256, "missing")
        p.call(KIND, "create", p.fname,
               f"create function {p.fname} ({o.runtime}, {o.arch}, {o.memory} MB, "
               f"{o.timeout} s; code {artifact.size / 2**20:.1f} MiB sha256 {artifact.sha256})",
               "lambda.create_function",
               {**configuration(p, artifact.handler), "Code": {"ZipFile": None},
                "Architectures": [o.arch], "PackageType": "Zip", "Publish": False,
                "Tags": ours_tag},
               wait="function_active_v2", code=artifact)
        return
    ours = tags.managed(a.function_tags)
    if not ours and not o.force:
        raise DeployError(
            f"function {p.fname} exists but was not created by pypicloud-s3sync "
            f"(runtime {a.function.get('Runtime')})",
            Fix(*FORCE, "pass {} to update its code and configuration in place"),
            Fix(*FUNCTION_NAME, "choose another name with {}"),
        )
    artifact = p.code() if o.force else None
    handler = artifact.handler if artifact else a.function.get("Handler", HANDLER)
    changed, update = config_drift(p, configuration(p, handler))
    have_arch = (a.function.get("Architectures") or ["x86_64"])[0]
    code_changed = bool(artifact) and (
        a.function.get("CodeSha256") != artifact.sha256 or have_arch != o.arch)
    seen = "as configured" if not changed else "differs: " + ", ".join(changed)
    if a.environment_unreadable:
        p.warnings.append(unreadable_environment(p))
        seen += " (environment not readable)"
    p.row(KIND, p.fname, "as configured", seen, not changed)
    if artifact:
        p.row("function-code", p.fname, f"{artifact.sha256} ({o.arch})",
              f"{a.function.get('CodeSha256')} ({have_arch})")
    if not o.force:
        if changed:
            p.drift.append(f"function {p.fname}: {', '.join(changed)}")
            p.warnings.append(f"function {p.fname} differs from the config "
                              f"({', '.join(changed)}); run with -f to update it in place")
        p.notes.append(f"function {p.fname} exists; its code is not compared without -f")
        return
    if not ours:
        p.call(KIND, "update", p.fname, f"tag function {p.fname} as managed by "
               "pypicloud-s3sync", "lambda.tag_resource",
               {"Resource": p.desired.function_arn, "Tags": ours_tag})
    if "Environment" in update:
        _check_environment(p, update["Environment"]["Variables"])
    if changed:
        p.call(KIND, "update", p.fname,
               f"update configuration of {p.fname}: {', '.join(changed)}",
               "lambda.update_function_configuration", update,
               wait="function_updated_v2", details={"changed": changed})
    if code_changed:
        assert artifact is not None
        p.call("function-code", "update", p.fname,
               f"update code of {p.fname} to sha256 {artifact.sha256} "
               f"({artifact.size / 2**20:.1f} MiB, {o.arch})", "lambda.update_function_code",
               {"FunctionName": p.fname, "ZipFile": None, "Architectures": [o.arch],
                "Publish": False},
               wait="function_updated_v2", code=artifact,
               details={"from": a.function.get("CodeSha256"), "to": artifact.sha256})


def teardown(p: Planning) -> None:
    """Ours is deleted (its permissions and async settings go with it); from anyone
    else's only our permissions are removed."""
    a = p.actual
    if a.function is None:
        return
    if tags.managed(a.function_tags):
        p.call(KIND, "delete", p.fname, f"delete function {p.fname} (its invoke "
               "permissions and async settings go with it)", "lambda.delete_function",
               {"FunctionName": p.fname})
        return
    p.notes.append(f"function {p.fname} was not created by pypicloud-s3sync; only our "
                   "permissions are removed from it")
    for principal in ("s3", "events", SCHEDULE_PRINCIPAL):
        sid = statement_id(principal, p.config.target.bucket)
        if sid in a.statements:
            remove(p, sid, f"remove invoke permission {sid} from {p.fname}")


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``Function``: create's configuration and tags, its code the uploaded zip."""
    found: Resources = {}
    for step in created:
        if api(step) != "lambda.create_function":
            raise unrendered(KIND, step)
        params = {k: v for k, v in step.params.items() if k not in ("Code", "Publish")}
        params["Tags"] = [{"Key": k, "Value": v} for k, v in params["Tags"].items()]
        params["Code"] = code(CODE_KEY)
        if "KMSKeyArn" in params:  # the API's spelling; CloudFormation's is KmsKeyArn
            params["KmsKeyArn"] = params.pop("KMSKeyArn")
        found[FUNCTION] = resource("AWS::Lambda::Function", params)
    return found


#: Read (with its tags: GetFunction returns them only to a caller allowed
#: lambda:ListTags), create with tags, update code and configuration in place, delete;
#: from a function not ours, find and remove only our invoke permissions.
OPERATOR_ACTIONS = [
    "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction",
    "lambda:GetPolicy", "lambda:ListTags", "lambda:RemovePermission", "lambda:TagResource",
    "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
]
#: Lambda checks a VPC function's subnets and groups with the caller's rights when it
#: creates or updates it; EC2's describe calls name no resource (``"*"`` only).
OPERATOR_VPC_ACTIONS = ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
                        "ec2:DescribeVpcs"]
#: ``--kms-key-arn``: "Lambda uses your permissions to create a grant on the key [...]
#: kms:CreateGrant, kms:Encrypt – To configure a customer managed CMK on a function.
#: kms:Decrypt – To view and manage environment variables that are encrypted with a
#: customer managed CMK." (Lambda developer guide, "Securing environment variables")
OPERATOR_KEY_ACTIONS = ["kms:CreateGrant", "kms:Decrypt", "kms:Encrypt"]


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """Creating the function or changing its configuration hands Lambda its role
    (iam:PassRole on that role, to Lambda only), whether ours or ``-a``'s; with
    ``--kms-key-arn``, Lambda uses that one key with the caller's rights."""
    role = s.given_role or iam.role_arn(s.account, iam.role_name(s.function_name, s.region),
                                        s.partition)
    statements = [allow("PassFunctionRole", ["iam:PassRole"], role,
                        {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}),
                  on_function(s, OPERATOR_ACTIONS)]
    if s.subnet_ids:
        statements.append(allow("VpcChecks", OPERATOR_VPC_ACTIONS, "*"))
    if s.kms_key_arn:
        statements.append(allow("EnvironmentKey", OPERATOR_KEY_ACTIONS, s.kms_key_arn))
    return statements


def checks(p: Planning) -> list[Check]:
    """A function can exist, ours and configured as asked, and still not run: stuck in a
    failed update, or (seen only with ``-f``, which status plans with) other code."""
    return [state(p)]


def state(p: Planning) -> Check:
    """Active, its last update done, and the code this config builds."""
    function, name = p.actual.function, p.fname
    create = "ppc-create-s3-sync CONFIG"
    if function is None:
        return Check("function", FAIL, f"function {name} does not exist: nothing syncs",
                     f"run '{create}'", BY_CREATE)
    state = function.get("State") or "Active"
    update = function.get("LastUpdateStatus") or "Successful"
    reason = function.get("StateReason") or function.get("LastUpdateStatusReason") or ""
    if state == "Failed" or update == "Failed":
        return Check("function", FAIL,
                     f"function {name} is {state}, last update {update}: {reason}".rstrip(": "),
                     f"fix what the reason names, then run '{create} -f'")
    if state != "Active" or update != "Successful":
        return Check("function", WARN,
                     f"function {name} is {state}, last update {update}"
                     + (f": {reason}" if reason else ""),
                     "wait a minute and run status again; an Inactive function wakes on "
                     "its next event")
    code = next((row for row in p.rows if row.resource == "function-code"), None)
    if code is not None and not code.in_sync:
        return Check("function", FAIL,
                     f"function {name} is Active but runs other code ({code.actual}) than "
                     f"this config builds ({code.desired})", f"run '{create} -f'",
                     BY_CREATE_FORCE)
    return Check("function", OK, f"function {name} is Active with the expected code")
