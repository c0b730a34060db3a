"""What CI adds to a test run, so that a green run means what it says.

* No silent skips: with ``PPC_S3SYNC_REQUIRE_SERVICES`` set (CI sets it), a test that
  skips because an extra is not installed (``importorskip``) or because of any other
  guard fails instead, naming the reason.  Only a Lambda target whose interpreter this
  machine cannot have stays a skip (no package installs python3.14 here).
* Those targets, and the runtimes we support that the Lambda tests do not even list
  (python3.14, the default), are named on one line at the end of the run, so nobody
  reads the run as having tested them.
* Hypothesis runs derandomized in CI: a failure found there comes back on every re-run
  and on a developer's machine with the same command.

``conftest.py`` imports the hooks (its own ``pytest_configure`` loads the profile); they
live here to keep the fixtures file about fixtures (and so that a test can load them
alone, as a plugin).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from .services import services_required

#: The only skip CI accepts: a Lambda runtime whose interpreter is not on the machine
#: (the reason ``interpreter_or_skip`` in the bundle tests gives).
_NO_INTERPRETER = re.compile(r"\bno (python3\.\d+) interpreter on this machine\b")

#: Environment variable that picks a hypothesis profile by name (``ci`` or ``dev``).
PROFILE_VAR = "PPC_S3SYNC_HYPOTHESIS_PROFILE"


def register_hypothesis_profiles() -> str:
    """Register ``dev`` and ``ci`` and load the one this run asks for; returns its name.

    ``ci`` is chosen by :data:`PROFILE_VAR` or, failing that, by
    ``PPC_S3SYNC_REQUIRE_SERVICES``; each test's own ``@settings`` still set how many
    examples it tries.
    """
    from hypothesis import settings

    # Explicit: hypothesis derandomizes by itself wherever CI is set in the environment.
    settings.register_profile("dev", derandomize=False)
    settings.register_profile("ci", derandomize=True, print_blob=True)
    name = os.environ.get(PROFILE_VAR) or ("ci" if services_required() else "dev")
    settings.load_profile(name)
    return name


def skip_reason(report: pytest.TestReport) -> str:
    """The message a skipped test gave (``Skipped: `` and location stripped)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def missing_interpreter(reason: str) -> str | None:
    """``python3.14`` for a skip that says that interpreter is not on the machine."""
    match = _NO_INTERPRETER.search(reason)
    return match.group(1) if match else None


def pytest_configure(config: pytest.Config) -> None:
    register_hypothesis_profiles()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[Any]:
    report = yield
    if (report.skipped and not hasattr(report, "wasxfail") and services_required()
            and missing_interpreter(skip_reason(report)) is None):
        reason = skip_reason(report)
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in a run that must not skip ({reason}); PPC_S3SYNC_REQUIRE_SERVICES "
            "is set: install what the test needs (pip install -e '.[all,test]') or remove "
            "the guard")
    return report


#: The file whose tests run bundles under each Lambda target's interpreter.
LAMBDA_TESTS = "test_bundle_lambda.py"


def untested_targets(stats: dict[str, list[Any]]) -> list[str]:
    """Every Lambda target this run could not run, sorted by version.

    That is each target a test skipped for want of its interpreter and, when the run
    includes the Lambda tests, each runtime we support (``bundle.runtimes.RUNTIMES``)
    that none of them ran: the Lambda tests only list the targets this machine can have.
    """
    from pypicloud_s3sync.bundle.runtimes import RUNTIMES

    found = {missing_interpreter(skip_reason(r)) for r in stats.get("skipped", [])}
    found.discard(None)
    lambda_reports = [r for kind in ("passed", "failed", "skipped")
                      for r in stats.get(kind, []) if LAMBDA_TESTS in r.nodeid]
    if lambda_reports:
        ran = {m.group(0) for r in lambda_reports if not r.skipped
               for m in re.finditer(r"python3\.\d+", r.nodeid)}
        found.update(set(RUNTIMES) - ran)
    return sorted(found, key=lambda name: int(name.removeprefix("python3.")))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    targets = untested_targets(terminalreporter.stats)
    if targets:
        terminalreporter.write_line(
            f"Lambda targets NOT tested (no interpreter on this machine): {', '.join(targets)}",
            yellow=True, bold=True)
