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

from typing import Any

from .errors import OptionsError

#: The cache connections one container holds: the handler applies one key at a time
#: through one session, and the pool keeps that one connection between invocations.
CONNECTIONS_PER_CONTAINER = 1
#: Lambda's default concurrency limit per account and region.
ACCOUNT_DEFAULT_LIMIT = 1000
#: "You can reserve concurrency for as many functions as you like, as long as you leave
#: at least 100 simultaneous executions unreserved for functions that aren't configured
#: with a per-function limit." (Lambda API Reference, PutFunctionConcurrency)
MIN_UNRESERVED = 100
#: Service Quotas' code of Lambda's "Concurrent executions" quota.
QUOTA_CODE = "L-B99A9384"
FLAG = "--reserved-concurrency"
SETTING = "s3sync.reserved_concurrency"


#: ``--reserved-concurrency off``: no cap, and a cap on the function is removed.  Not
#: giving the option at all (None) leaves the function's concurrency unmanaged.
OFF = "off"

#: What the option can hold: a cap, :data:`OFF`, or None (not given).
Cap = int | str | None


def parse(value: Any) -> Cap:
    """The cap as a number; :data:`OFF` for ``off`` (or ``none``); None for nothing.
    0 is refused: it would throttle every event until the max event age drops them."""
    if value is None or str(value).strip() == "":
        return None
    if str(value).strip().lower() in ("off", "none"):
        return OFF
    try:
        cap = int(value)
    except (TypeError, ValueError) as exc:
        raise OptionsError(f"reserved_concurrency = {value!r} is not a whole number") from exc
    if cap < 1:
        raise OptionsError(
            f"reserved_concurrency = {cap} is not valid: give 1 or more (0 would stop the "
            "function), or off for no cap")
    return cap


__all__ = ["ACCOUNT_DEFAULT_LIMIT", "CONNECTIONS_PER_CONTAINER", "FLAG", "MIN_UNRESERVED", "OFF",
           "QUOTA_CODE", "SETTING", "Cap", "parse"]
