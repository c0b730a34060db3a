"""``--reserved-concurrency``: how many containers may hold a cache connection at once.

A burst of events (a batch replication of 100,000 objects) makes Lambda start as many
containers as the account allows, each opening its own connection to a SQL cache, far
past the server's ``max_connections``.  Reserved concurrency caps that; throttled
asynchronous events are kept by Lambda and retried within ``--max-event-age``, so the
cap slows a burst down without losing it.  Redis and DynamoDB take any number of
clients, and SQLite has no server whose connections could run out, so only SQL caches on
a database server get the warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import OptionsError

if TYPE_CHECKING:
    from .planner import Planner

#: The cache connections one container holds: the handler applies one key at a time
#: through one session, and the pool keeps that one connection between invocations.
CONNECTIONS_PER_CONTAINER = 1
#: Lambda's default concurrency limit per account and region.
ACCOUNT_DEFAULT_LIMIT = 1000
FLAG = "--reserved-concurrency"
SETTING = "s3sync.reserved_concurrency"


def parse(value: Any) -> int | None:
    """The cap as a number; None (no cap) for nothing or ``off``.  0 is refused: it
    would throttle every event until the max event age drops them."""
    if value is None or str(value).strip().lower() in ("", "off", "none"):
        return None
    try:
        cap = int(value)
    except (TypeError, ValueError) as exc:
        raise OptionsError(f"reserved_concurrency = {value!r} is not a whole number") from exc
    if cap < 1:
        raise OptionsError(
            f"reserved_concurrency = {cap} is not valid: give 1 or more (0 would stop the "
            "function), or off for no cap")
    return cap


def plan(planner: Planner) -> None:
    """The row, the step and the warning for the function's reserved concurrency."""
    cap, have = planner.options.reserved_concurrency, planner.actual.reserved_concurrency
    name = planner.fname
    if planner.config.cache_backend == "sql" and not planner.config.sqlite_cache:
        if cap is None:
            planner.warnings.append(
                f"the cache is SQL and the function's concurrency is not capped: a burst of "
                f"events (a batch replication) can start up to the account's limit "
                f"(default {ACCOUNT_DEFAULT_LIMIT}) of containers, each holding "
                f"{CONNECTIONS_PER_CONTAINER} database connection, past the server's "
                f"max_connections. Pass {FLAG} N ({SETTING}) with N below the server's "
                "limit minus the pypicloud servers' own pools; Lambda keeps throttled "
                "events and retries them within --max-event-age")
        else:
            planner.notes.append(
                f"at most {cap} containers x {CONNECTIONS_PER_CONTAINER} connection = "
                f"{cap * CONNECTIONS_PER_CONTAINER} connections to the SQL cache from the "
                "function")
    if cap is None:
        return  # not ours to manage: a cap set by hand stays as it is
    planner.row("concurrency", name, f"reserved {cap}",
                f"reserved {have}" if have is not None else "not reserved")
    if have != cap:
        planner.step(
            resource="concurrency", action="update" if have is not None else "create",
            name=name, summary=f"reserve {cap} concurrent executions for {name}",
            service="lambda", operation="put_function_concurrency",
            params={"FunctionName": name, "ReservedConcurrentExecutions": cap})


__all__ = ["CONNECTIONS_PER_CONTAINER", "parse", "plan"]
