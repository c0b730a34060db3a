"""The one provisioning operation the command line and the admin API both run.

Plan, apply unless it is a dry run (or there is nothing to do), and hand back the
result as data: each front end only renders an :class:`Outcome` (text or JSON) and its
errors, so the two cannot drift apart in what they do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import deploy, executor
from .aws import AwsClients
from .awsfailure import translate

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .options import DeployOptions
    from .plan import Plan, StatusReport, StepResult

ACTIONS = ("create", "delete", "status")


@dataclass
class Outcome:
    """What one run planned and did: a plan (create, delete) or a report (status)."""

    action: str
    dry_run: bool
    plan: Plan | None = None
    report: StatusReport | None = None
    applied: list[StepResult] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when steps were applied."""
        return bool(self.applied)

    def to_json(self) -> dict[str, Any]:
        """The document ``--json`` prints and the admin API answers with."""
        if self.report is not None:
            return self.report.to_json()
        assert self.plan is not None
        return {"plan": self.plan.to_json(), "dry_run": self.dry_run,
                "applied": [result.to_json() for result in self.applied]}


def run(config: PypicloudConfig, options: DeployOptions, action: str, *,
        dry_run: bool = False, progress: Callable[[str], None] | None = None,
        on_plan: Callable[[Plan], None] | None = None, session: Any = None) -> Outcome:
    """Plan ``action`` (create, delete or status), apply it unless ``dry_run``.

    ``on_plan`` sees the plan before anything changes (the CLI prints it, the admin API
    shows it to pollers); ``session`` is the boto3 session to act as (default: boto3's
    own chain).  AWS refusing a read or being unreachable raises
    :class:`~.errors.AwsError`, no credentials :class:`~.errors.MissingCredentials`, a
    refused step :class:`~.errors.ApplyError` (with the steps done so far).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if action not in ACTIONS:
        raise ValueError(f"unknown provisioning action {action!r}")
    clients = AwsClients.from_config(config, options, session=session)
    try:
        if action == "status":
            report = deploy.status(config, options, clients, progress=progress)
            return Outcome(action, dry_run=True, report=report)
        if action == "create":
            plan = deploy.plan_create(config, options, clients, progress=progress)
        else:
            plan = deploy.plan_delete(config, options, clients)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, clients.endpoint_sources) from exc
    if on_plan is not None:
        on_plan(plan)
    outcome = Outcome(action, dry_run=dry_run, plan=plan)
    if not dry_run and not plan.is_empty:
        outcome.applied = executor.apply(plan, clients, progress=progress)
    return outcome
