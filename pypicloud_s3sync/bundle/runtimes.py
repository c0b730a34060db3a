"""Lambda's Python runtimes and AWS's schedule for retiring them, kept in this one place.

The dates are AWS's runtime deprecation table ("Lambda runtimes" in the Lambda
developer guide, read 2026-11): after *deprecation* AWS stops patching a runtime;
after *block create* no new function can use it; after *block update* existing
functions can no longer be changed.  AWS moves these dates now and then, so they are
data, compared with today's date when a command runs, and nowhere else.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeSchedule:
    """One Lambda runtime's retirement dates (UTC)."""

    runtime: str
    deprecation: datetime.date
    block_create: datetime.date
    block_update: datetime.date


def _d(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


#: AWS's table, oldest first.  python3.9 and 3.10 are listed so that asking for them
#: is answered with their dates rather than a bare "not supported".
SCHEDULE = {
    s.runtime: s for s in (
        RuntimeSchedule("python3.9", _d("2025-12-15"), _d("2026-08-31"), _d("2026-09-30")),
        RuntimeSchedule("python3.10", _d("2026-10-31"), _d("2026-11-30"), _d("2027-01-15")),
        RuntimeSchedule("python3.11", _d("2027-06-30"), _d("2027-07-31"), _d("2027-08-31")),
        RuntimeSchedule("python3.12", _d("2028-10-31"), _d("2028-11-30"), _d("2029-01-10")),
        RuntimeSchedule("python3.13", _d("2029-06-30"), _d("2029-07-31"), _d("2029-08-31")),
        RuntimeSchedule("python3.14", _d("2029-06-30"), _d("2029-07-31"), _d("2029-08-31")),
    )
}

#: The runtimes the bundle builder and the deployer support, oldest first: pypicloud
#: 1.3.12 needs Python 3.11 or newer.
RUNTIMES = ("python3.11", "python3.12", "python3.13", "python3.14")

#: Warn this long before AWS deprecates a runtime: a new function should outlive it.
WARN_BEFORE = datetime.timedelta(days=183)


class RuntimeRetired(ValueError):
    """AWS no longer accepts this runtime for what was asked (create or update)."""


def today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def newer_than(runtime: str, on: datetime.date | None = None) -> list[str]:
    """Supported runtimes newer than ``runtime`` that AWS still lets you create."""
    on = on or today()
    minor = int(runtime.removeprefix("python3."))
    return [r for r in RUNTIMES if int(r.removeprefix("python3.")) > minor
            and on < SCHEDULE[r].block_create]


def check_runtime(runtime: str, *, creating: bool,
                  on: datetime.date | None = None) -> str | None:
    """Raise :class:`RuntimeRetired` if AWS refuses ``runtime``; else a warning or None.

    ``creating`` is True for a new function (AWS's create block applies), False for
    code or configuration updates of an existing one (its update block applies).
    """
    on = on or today()
    schedule = SCHEDULE.get(runtime)
    if schedule is None:
        return None
    choices = ", ".join(newer_than(runtime, on)) or "none yet"
    blocked = schedule.block_create if creating else schedule.block_update
    what = "creating functions with" if creating else "updating functions that use"
    if on >= blocked:
        raise RuntimeRetired(
            f"AWS stopped {what} {runtime} on {blocked.isoformat()} (deprecated "
            f"{schedule.deprecation.isoformat()}); choose one of {choices}"
        )
    if runtime not in RUNTIMES:
        return None  # refused as unsupported by the caller
    if on >= schedule.block_create:
        return (f"AWS no longer creates functions with {runtime} (since "
                f"{schedule.block_create.isoformat()}); this can only update an existing "
                f"function, until {schedule.block_update.isoformat()}; newer choices: {choices}")
    if on >= schedule.deprecation:
        return (f"{runtime} is deprecated since {schedule.deprecation.isoformat()}: AWS "
                f"blocks creating functions with it on {schedule.block_create.isoformat()} "
                f"and updating them on {schedule.block_update.isoformat()}; "
                f"newer choices: {choices}")
    if on >= schedule.deprecation - WARN_BEFORE:
        return (f"AWS deprecates {runtime} on {schedule.deprecation.isoformat()} and blocks "
                f"creating functions with it on {schedule.block_create.isoformat()}; "
                f"newer choices: {choices}")
    return None


__all__ = ["RUNTIMES", "SCHEDULE", "RuntimeRetired", "RuntimeSchedule", "check_runtime",
           "newer_than", "today"]
