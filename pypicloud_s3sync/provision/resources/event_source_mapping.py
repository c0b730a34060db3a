"""``--delivery sqs``: the event source mapping through which Lambda reads our queue and
invokes the function with batches of events.

The function reports which events of a batch failed (``batchItemFailures``), so the
mapping says ``ReportBatchItemFailures`` and only those come back to the queue.  Its
``ScalingConfig.MaximumConcurrency`` caps how many invocations the queue starts at once
("Limits the number of concurrent instances that the Amazon SQS event source can invoke.
[...] Minimum value of 2. Maximum value of 1000", Lambda API reference, ScalingConfig):
for a queue this is AWS's alternative to reserved concurrency, which throttles the
mapping's invocations instead of keeping them from starting ("Event source mappings
don't account for reserved concurrency and can process more messages off your queue
than can be sent to your function", AWS knowledge center, "lambda-sqs-scaling").  A SQL
cache gets 2 unless ``--max-concurrency`` says otherwise: each invocation holds a
database connection.

A mapping from our queue to our function is ours by what it joins (mappings carry no
tag we could have set before Lambda accepted tags on them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..plan import FAIL, OK, WARN, Check, Step
from .base import Grantee, Planning
from .cfn import Resources, api, function_ref, resource, unrendered
from .grants import allow
from .sqs import draining, in_use

KIND = "event-source-mapping"
#: The default cap for a SQL cache (see the module's docstring).
SQL_MAX_CONCURRENCY = 2
#: The fields we set and compare.
COMPARED = ("BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes",
            "ScalingConfig")


def read(p: Planning) -> None:
    """The mappings of our queue that invoke our function: looked for only when the sync
    uses the queue or a queue of that name exists, so that a sync that never used one
    needs no permission to list mappings."""
    if p.actual.function is None or (p.options.delivery != "sqs" and p.actual.queue is None):
        return
    lam = p.clients.client("lambda")
    found = []
    for page in lam.get_paginator("list_event_source_mappings").paginate(
            EventSourceArn=p.desired.queue_arn):
        found += [m for m in page.get("EventSourceMappings", [])
                  if m.get("FunctionArn", "").split(":function:")[-1].split(":")[0] == p.fname]
    p.actual.mappings = found


def name(p: Planning) -> str:
    return f"{p.desired.queue_arn.rsplit(':', 1)[-1]} -> {p.fname}"


def max_concurrency(p: Planning) -> int | None:
    """The mapping's cap: ``--max-concurrency``, 2 for a SQL cache without it, None
    for no cap (``off``, or another cache without it)."""
    cap = p.options.max_concurrency
    if cap is None and p.config.cache_backend == "sql" and not p.config.sqlite_cache:
        return SQL_MAX_CONCURRENCY
    return cap or None


def desired(p: Planning) -> dict[str, Any]:
    """CreateEventSourceMapping's parameters."""
    o = p.options
    params: dict[str, Any] = {
        "EventSourceArn": p.desired.queue_arn, "FunctionName": p.fname, "Enabled": True,
        "BatchSize": o.batch_size, "MaximumBatchingWindowInSeconds": o.batch_window,
        "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    cap = max_concurrency(p)
    if cap is not None:
        params["ScalingConfig"] = {"MaximumConcurrency": cap}
    return params


def _comparable(mapping: dict[str, Any]) -> dict[str, Any]:
    found = {key: mapping.get(key) for key in COMPARED}
    found["ScalingConfig"] = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
    found["FunctionResponseTypes"] = sorted(mapping.get("FunctionResponseTypes") or [])
    found["MaximumBatchingWindowInSeconds"] = mapping.get(
        "MaximumBatchingWindowInSeconds") or 0
    return found


def _describe(fields: dict[str, Any]) -> str:
    cap = fields["ScalingConfig"]
    return (f"batches of {fields['BatchSize']}, window {fields['MaximumBatchingWindowInSeconds']}"
            f" s, {', '.join(fields['FunctionResponseTypes']) or 'whole-batch retries'}, "
            + (f"at most {cap} at once" if cap else "no concurrency cap"))


def plan(p: Planning) -> None:
    """Made after the queue and the role's grant to read it (Lambda checks the role);
    without ``--delivery sqs``, removed after the new path is in place, before the
    queue it reads."""
    mappings = p.actual.mappings
    if not in_use(p):
        for mapping in mappings:
            p.row(KIND, name(p), "none (--delivery is not sqs)", mapping.get("State", "?"),
                  False)
            _delete(p, mapping, last=True)
        return
    if draining(p):
        return
    want = desired(p)
    wanted = _comparable(want)
    shown = _describe(wanted)
    if not mappings:
        p.row(KIND, name(p), shown, "missing", False)
        p.call(KIND, "create", name(p),
               f"create the event source mapping {name(p)} ({shown})",
               "lambda.create_event_source_mapping", want)
        return
    first, extra = mappings[0], mappings[1:]
    have = _comparable(first)
    changed = [key for key in COMPARED if have[key] != wanted[key]]
    enabled = first.get("State") in ("Enabled", "Enabling", "Creating", "Updating")
    p.row(KIND, name(p), shown + ", enabled",
          _describe(have) + ("" if enabled else f", {first.get('State')}"),
          not changed and enabled and not extra)
    if changed or not enabled:
        params = {k: v for k, v in want.items() if k not in ("EventSourceArn", "FunctionName")}
        if "ScalingConfig" not in params and have["ScalingConfig"]:
            params["ScalingConfig"] = {}  # "To remove the configuration, pass an empty value"
        p.call(KIND, "update", name(p),
               f"update the event source mapping {name(p)} "
               f"({', '.join(changed) or 'enable it'}): {shown}",
               "lambda.update_event_source_mapping", {"UUID": first["UUID"], **params},
               details={"changed": changed})
    for mapping in extra:  # a second reader of the same queue would double every event
        _delete(p, mapping, last=False)


def _delete(p: Planning, mapping: dict[str, Any], *, last: bool) -> None:
    p.call(KIND, "delete", name(p),
           f"delete the event source mapping {name(p)} ({mapping['UUID']})",
           "lambda.delete_event_source_mapping", {"UUID": mapping["UUID"]},
           last=last, ahead=last)


def teardown(p: Planning) -> None:
    for mapping in p.actual.mappings:
        _delete(p, mapping, last=False)


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """``DeliveryQueueMapping``: create's fields, the queue and function by reference."""
    found: Resources = {}
    for step in created:
        if api(step) != "lambda.create_event_source_mapping":
            raise unrendered(KIND, step)
        found["DeliveryQueueMapping"] = resource("AWS::Lambda::EventSourceMapping", {
            **step.params, "FunctionName": function_ref()})
    return found


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """Lambda lists and creates mappings on ``"*"`` only; it authorizes changing one on
    its own ARN, whose id it chooses, so ours are named by the function they invoke
    (``lambda:FunctionArn``).  Creating one also checks that the caller may read the
    queue it polls."""
    function = s.arn("lambda", f"function:{s.function_name}")
    return [
        allow("ListEventSourceMappings", ["lambda:ListEventSourceMappings"], "*"),
        allow("CreateEventSourceMapping", ["lambda:CreateEventSourceMapping"], "*",
              {"ArnEquals": {"lambda:FunctionArn": function}}),
        allow("EventSourceMapping", ["lambda:DeleteEventSourceMapping",
                                     "lambda:UpdateEventSourceMapping"],
              s.arn("lambda", "event-source-mapping:*"),
              {"ArnEquals": {"lambda:FunctionArn": function}}),
    ]


def checks(p: Planning) -> list[Check]:
    """The mapping's state and what its last poll found: a disabled mapping or a
    PROBLEM leaves events waiting in the queue, which no row shows."""
    if p.options.delivery != "sqs" or not p.actual.mappings:
        return []
    mapping = p.actual.mappings[0]
    state = mapping.get("State", "?")
    found = []
    if state in ("Enabled", "Enabling", "Creating", "Updating"):
        found.append(Check("mapping-state", OK, f"the mapping is {state}"))
    else:
        found.append(Check("mapping-state", FAIL,
                           f"the mapping is {state} ({mapping.get('StateTransitionReason', '')}"
                           "): events wait in the queue", "run 'ppc-create-s3-sync CONFIG' "
                           "to enable it again"))
    result = mapping.get("LastProcessingResult")
    if result and result.startswith("PROBLEM"):
        found.append(Check("mapping-result", WARN, f"Lambda's last poll: {result}",
                           "a missing permission names what the function's role lacks "
                           "('ppc-create-s3-sync CONFIG' restores the role's policy); a "
                           "function error is in its log"))
    elif result:
        found.append(Check("mapping-result", OK, f"Lambda's last poll: {result}"))
    return found
