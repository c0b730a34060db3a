"""Invoke permissions on the function, shared by the kinds that make something invoke it
(S3 for direct delivery, EventBridge for its delivery rule and for the schedule).

Each statement is per bucket and per principal, so each option adds and removes only
its own.
"""

from __future__ import annotations

from typing import Any

from .. import iam
from ..names import statement_id
from ..plan import Step
from .base import Grantee, Planning
from .cfn import function_ref, resource
from .grants import on_function


def permission(p: Planning, principal: str, source_arn: str, wanted: bool,
               source_account: str | None, sid: str | None = None) -> None:
    """Compare, add, replace or remove the statement letting ``principal`` invoke the
    function for ``source_arn``."""
    sid = sid or statement_id(principal.split(".")[0], p.config.target.bucket)
    have = p.actual.statements.get(sid)
    condition: dict[str, Any] = {"ArnLike": {"AWS:SourceArn": source_arn}}
    if source_account:
        condition["StringEquals"] = {"AWS:SourceAccount": source_account}
    if have is None and p.actual.stack:  # CloudFormation picks its own Sids
        sid, have = next(((k, s) for k, s in p.actual.statements.items()
                          if (s.get("Principal") or {}).get("Service") == principal
                          and iam.normalize(s.get("Condition", {}))
                          == iam.normalize(condition)), (sid, None))
    matches = bool(have) and (
        (have.get("Principal") or {}).get("Service") == principal
        and iam.normalize(have.get("Condition", {})) == iam.normalize(condition))
    if wanted:
        p.row("permission", sid, f"{principal} from {source_arn}",
              "as desired" if matches else ("missing" if not have else "differs"), matches)
    if have and (not wanted or not matches) and p.actual.function is not None:
        remove(p, sid, f"remove invoke permission {sid} ({principal}) from {p.fname}")
    if wanted and not matches:
        params = {"FunctionName": p.fname, "StatementId": sid,
                  "Action": "lambda:InvokeFunction", "Principal": principal,
                  "SourceArn": source_arn}
        if source_account:
            params["SourceAccount"] = source_account
        p.call("permission", "create", sid,
               f"allow {principal} to invoke {p.fname} for {source_arn}",
               "lambda.add_permission", params)


def remove(p: Planning, sid: str, summary: str) -> None:
    p.call("permission", "delete", sid, summary, "lambda.remove_permission",
           {"FunctionName": p.fname, "StatementId": sid})


def permission_resource(step: Step) -> dict[str, Any]:
    """An ``add_permission`` call as ``AWS::Lambda::Permission``: the same principal and
    conditions on the stack's function; CloudFormation chooses the statement id."""
    params = {k: v for k, v in step.params.items() if k != "StatementId"}
    return resource("AWS::Lambda::Permission", {**params, "FunctionName": function_ref()})


__all__ = ["permission", "permission_resource", "remove"]


#: Every plan reads the function's policy to find the statements already there (the
#: function's teardown too, removing ours from a function that is not ours).
OPERATOR_ACTIONS = ["lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission"]


def invoke_statement(s: Grantee) -> dict[str, Any]:
    """For the kinds that make something invoke the function; granted on the function."""
    return on_function(s, OPERATOR_ACTIONS)
