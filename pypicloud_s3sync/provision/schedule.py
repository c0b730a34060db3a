"""``--reconcile-every``: turn an operator's interval into an EventBridge schedule.

Events can be lost, so a deployed sync may also reconcile on a timer: an EventBridge
rule with a schedule expression invokes the sync function, whose handler runs the same
reconcile as ``ppc-s3sync reconcile`` when it sees a ``Scheduled Event``.  Operators
think in "every day" or "every 12 hours", EventBridge wants ``rate(1 day)`` with its
singular/plural rule, so the short form is translated here, and a raw ``rate(...)`` or
``cron(...)`` passes through after a check that catches typos before AWS does.  The
translation is canonical, so an unchanged option always compares equal to what the
rule holds and a re-run plans nothing.
"""

from __future__ import annotations

import re

from ..config import ConfigError
from .names import bounded

#: Words that switch a schedule given in the ini off from the command line.
OFF = ("off", "none", "never", "no", "false", "0")

_UNITS = {
    "m": "minute", "min": "minute", "mins": "minute", "minute": "minute", "minutes": "minute",
    "h": "hour", "hr": "hour", "hrs": "hour", "hour": "hour", "hours": "hour",
    "d": "day", "day": "day", "days": "day",
}
_SHORT = re.compile(r"^(\d+)\s*([a-z]+)$")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")

_HELP = ("give an interval such as 1d, 12h or 30m, an EventBridge expression such as "
         "'rate(1 day)' or 'cron(0 3 * * ? *)', or 'off'")


def schedule_expression(value: str | None) -> str | None:
    """The EventBridge schedule expression for ``value``; None when no schedule is wanted.

    Raises :class:`ConfigError` (one line) for anything EventBridge would refuse, so the
    operator learns it from the plan rather than from a failed ``PutRule`` halfway
    through an apply.
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("", *OFF):
        return None
    match = _SHORT.match(text) or _RATE.match(text)
    if match:
        count, unit = int(match.group(1)), _UNITS.get(match.group(2))
        if unit is None or count < 1:
            raise _bad(value)
        return _rate(count * _MINUTES[unit])
    cron = _CRON.match(str(value).strip())
    if cron and text.startswith("cron("):
        fields = cron.group(1).split()
        if len(fields) != 6:
            raise ConfigError(
                f"reconcile_every = {value!r} is not valid: an EventBridge cron expression "
                "has six fields (minutes hours day-of-month month day-of-week year), "
                "e.g. cron(0 3 * * ? *)"
            )
        return f"cron({' '.join(fields)})"
    raise _bad(value)


_MINUTES = {"day": 1440, "hour": 60, "minute": 1}


def _rate(minutes: int) -> str:
    """The one spelling of an interval (``24h`` and ``1d`` are both ``rate(1 day)``), in
    the largest whole unit, singular for 1 as EventBridge demands."""
    for unit, size in _MINUTES.items():
        if minutes % size == 0:
            count = minutes // size
            return f"rate({count} {unit}{'' if count == 1 else 's'})"
    raise AssertionError("minutes are always whole")  # pragma: no cover


def _bad(value: str) -> ConfigError:
    return ConfigError(f"reconcile_every = {value!r} is not valid: {_HELP}")


def schedule_rule_name(function_name: str) -> str:
    """The schedule rule's name: stable per function, within EventBridge's 64 characters.

    Kept apart from the delivery rule's name (``pypicloud-s3sync-<function>``) so that the
    two can exist together and each is removed only by its own option.
    """
    return bounded(f"pypicloud-s3sync-{function_name}-reconcile")
