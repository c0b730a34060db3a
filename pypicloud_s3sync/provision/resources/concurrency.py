"""``--reserved-concurrency``: the cap on the function's containers, which bounds the
connections a SQL cache sees (the reasons are in :mod:`..concurrency`, with the option's
parsing).  ``N`` sets the cap, ``off`` removes it, and without the option a cap set by
hand is left as it is and shown.  It lives and dies with the function, so teardown has
nothing to do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..concurrency import (
    ACCOUNT_DEFAULT_LIMIT,
    CONNECTIONS_PER_CONTAINER,
    FLAG,
    MIN_UNRESERVED,
    OFF,
    QUOTA_CODE,
    SETTING,
)
from ..errors import DeployError, Fix
from ..plan import Check, Step
from .base import Grantee, Planning
from .cfn import FUNCTION, Resources, api, unrendered
from .grants import allow, on_function

KIND = "concurrency"


def read(p: Planning) -> None:
    """Read whether managed or not: status reports a cap set by hand.  Only a function
    that exists has one.  A cap to set is checked against the account's quota first,
    so the account's limits are read when one would be."""
    lam = p.clients.client("lambda")
    if p.actual.function is not None:
        p.actual.reserved_concurrency = lam.get_function_concurrency(
            FunctionName=p.fname).get("ReservedConcurrentExecutions")
    cap = p.options.reserved_concurrency
    if isinstance(cap, int) and cap != p.actual.reserved_concurrency:
        p.actual.account_limit = lam.get_account_settings().get("AccountLimit") or {}


def name(p: Planning) -> str:
    return p.fname


def plan(p: Planning) -> None:
    """The row, the step and the warning for the function's reserved concurrency."""
    cap, have = p.options.reserved_concurrency, p.actual.reserved_concurrency
    if p.config.cache_backend == "sql" and not p.config.sqlite_cache:
        if not isinstance(cap, int):
            p.warnings.append(
                f"the cache is SQL and the function's concurrency is not capped: a burst of "
                f"events (a batch replication) can start up to the account's limit "
                f"(default {ACCOUNT_DEFAULT_LIMIT}) of containers, each holding "
                f"{CONNECTIONS_PER_CONTAINER} database connection, past the server's "
                f"max_connections. Pass {FLAG} N ({SETTING}) with N below the server's "
                "limit minus the pypicloud servers' own pools; Lambda keeps throttled "
                "events and retries them within --max-event-age")
        else:
            p.notes.append(
                f"at most {cap} containers x {CONNECTIONS_PER_CONTAINER} connection = "
                f"{cap * CONNECTIONS_PER_CONTAINER} connections to the SQL cache from the "
                "function")
    shown = f"reserved {have}" if have is not None else "not reserved"
    if cap is None:  # not ours to manage: a cap set by hand stays as it is
        if have is not None and p.actual.function is not None:
            p.row(KIND, p.fname, f"not managed (no {FLAG})", f"{shown}, left as it is", True)
        return
    if cap == OFF:
        p.row(KIND, p.fname, "not reserved", shown)
        if have is not None and p.actual.function is not None:
            p.call(KIND, "delete", p.fname,
                   f"remove the reserved concurrency ({have}) of {p.fname}: {FLAG} off",
                   "lambda.delete_function_concurrency", {"FunctionName": p.fname})
        return
    if have != cap:
        _check_quota(p, cap, have)
    p.row(KIND, p.fname, f"reserved {cap}", shown)
    if have != cap:
        p.call(KIND, "update" if have is not None else "create", p.fname,
               f"reserve {cap} concurrent executions for {p.fname}",
               "lambda.put_function_concurrency",
               {"FunctionName": p.fname, "ReservedConcurrentExecutions": cap})


def _check_quota(p: Planning, cap: int, have: int | None) -> None:
    """Refuse a cap Lambda would refuse, before any step: applied, it fails after the
    function exists and before its notification, and every re-run stops there again.
    Lambda keeps :data:`MIN_UNRESERVED` executions unreserved; the function's own
    reservation is freed by the change, so raising 10 to 20 needs only 10 more."""
    limit = p.actual.account_limit
    if not limit or "UnreservedConcurrentExecutions" not in limit:
        return  # a template: no account to ask
    unreserved = int(limit["UnreservedConcurrentExecutions"])
    total = limit.get("ConcurrentExecutions", "?")
    free = unreserved + (have or 0)
    if free - cap >= MIN_UNRESERVED:
        return
    most = free - MIN_UNRESERVED
    own = f" (plus the {have} this function reserves now)" if have else ""
    lower = (f"or give {{}} {most} or less" if most >= 1 else
             "or leave out {} (this account has nothing left to reserve)")
    raise DeployError(
        f"{FLAG} {cap} would leave {free - cap} unreserved of the account's {total} "
        f"concurrent executions in {p.clients.region} ({unreserved} unreserved now{own}); "
        f"Lambda keeps at least {MIN_UNRESERVED} unreserved, and new accounts start with a "
        f"reduced quota. Request a higher 'Concurrent executions' quota in Service Quotas "
        f"(aws service-quotas request-service-quota-increase --service-code lambda "
        f"--quota-code {QUOTA_CODE} --desired-value {_quota_needed(total, free, cap)} "
        f"--region {p.clients.region})",
        Fix(FLAG, SETTING, lower))


def _quota_needed(total: Any, free: int, cap: int) -> Any:
    """The quota at which ``cap`` fits, with what else is reserved staying as it is."""
    if not isinstance(total, int):
        return "N"
    return total + MIN_UNRESERVED - (free - cap)


def teardown(p: Planning) -> None:
    """Deleting the function deletes its reserved concurrency."""


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """In a template the cap is a property of the function, not a resource: only that
    property, for the assembly to merge into the function's."""
    found: Resources = {}
    for step in created:
        if api(step) != "lambda.put_function_concurrency":
            raise unrendered(KIND, step)
        found[FUNCTION] = {"Properties": {
            "ReservedConcurrentExecutions": step.params["ReservedConcurrentExecutions"]}}
    return found


#: Read on every plan (a cap set by hand is reported), set, and removed by ``off``.
OPERATOR_ACTIONS = ["lambda:DeleteFunctionConcurrency", "lambda:GetFunctionConcurrency",
                    "lambda:PutFunctionConcurrency"]
#: The Region's concurrency quota, read before a cap is set; it names no resource.
OPERATOR_ACCOUNT_ACTIONS = ["lambda:GetAccountSettings"]


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    return [on_function(s, OPERATOR_ACTIONS),
            allow("LambdaAccountSettings", OPERATOR_ACCOUNT_ACTIONS, "*")]


def checks(p: Planning) -> list[Check]:
    """None: throttles show in the path's activity check, not here."""
    return []
