"""How Lambda retries the events S3 and EventBridge hand it: the retries, the maximum
event age and the on-failure destination (``--retry-attempts``, ``--max-event-age``,
``--on-failure``).  It lives and dies with the function, so teardown has nothing to do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..aws import read_or_none
from ..plan import Check, Step
from .base import Grantee, Planning
from .cfn import Resources, api, function_ref, resource, unrendered
from .grants import on_function

KIND = "async-config"


def read(p: Planning) -> None:
    """Only a function that exists has settings to read."""
    if p.actual.function is not None:
        p.actual.invoke_config = read_or_none(
            p.clients.client("lambda").get_function_event_invoke_config,
            FunctionName=p.fname)


def name(p: Planning) -> str:
    return p.fname


def plan(p: Planning) -> None:
    o, have = p.options, p.actual.invoke_config or {}
    want: dict[str, Any] = {"MaximumRetryAttempts": o.retry_attempts,
                            "MaximumEventAgeInSeconds": o.max_event_age}
    if o.on_failure:
        want["DestinationConfig"] = {"OnFailure": {"Destination": o.on_failure}}
    have_dest = (have.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
    same = (have.get("MaximumRetryAttempts") == o.retry_attempts
            and have.get("MaximumEventAgeInSeconds") == o.max_event_age
            and (have_dest or None) == o.on_failure)
    show = (f"retries {o.retry_attempts}, max age {o.max_event_age} s"
            + (f", on failure -> {o.on_failure}" if o.on_failure else ""))
    have_show = ("missing" if not have else
                 f"retries {have.get('MaximumRetryAttempts')}, max age "
                 f"{have.get('MaximumEventAgeInSeconds')} s"
                 + (f", on failure -> {have_dest}" if have_dest else ""))
    p.row(KIND, p.fname, show, have_show, same)
    if not same:
        p.call(KIND, "update" if have else "create", p.fname,
               f"set async invocation of {p.fname}: {show}",
               "lambda.put_function_event_invoke_config", {"FunctionName": p.fname, **want})


def teardown(p: Planning) -> None:
    """Deleting the function deletes its async settings."""


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``AsyncConfig``: the same settings, on the function's unpublished version."""
    found: Resources = {}
    for step in created:
        if api(step) != "lambda.put_function_event_invoke_config":
            raise unrendered(KIND, step)
        found["AsyncConfig"] = resource("AWS::Lambda::EventInvokeConfig", {
            **step.params, "FunctionName": function_ref(), "Qualifier": "$LATEST"})
    return found


#: Read on every plan, put whole (the call has no partial form); deleting the function
#: removes it.
OPERATOR_ACTIONS = ["lambda:GetFunctionEventInvokeConfig",
                    "lambda:PutFunctionEventInvokeConfig"]


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    return [on_function(s, OPERATOR_ACTIONS)]


def checks(p: Planning) -> list[Check]:
    """None: its row is the whole of what status knows of it."""
    return []
