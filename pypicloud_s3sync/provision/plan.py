"""The plan as data: steps (one AWS call each), status rows, and how they are shown.

Kept apart from the planner so that what an operator reads (``describe()``) and what
tools read (``to_json()``) come from one place, and so that neither can leak a zip's
bytes or a password: parameters pass through :func:`public_params` on the way out.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..config import redact_url
from ..urlsecrets import redact_text

#: A path check's states (:mod:`.pathchecks`).
OK, WARN, FAIL = "ok", "warn", "fail"
#: Who carries out a check's fix.  Most fixes lie outside what create manages (a bucket
#: setting, a route, a log to read), and the sync page must not let an operator believe
#: its Apply button does them: only a fix create makes itself says so.
BY_CREATE, BY_CREATE_FORCE, BY_YOU = "create", "create -f", "you"


@dataclass
class Check:
    """One link of the path: its state, what was found, and the one-line fix."""

    name: str
    status: str
    detail: str
    fix: str = ""
    fix_by: str = BY_YOU

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail,
                "fix": self.fix, "fix_by": self.fix_by if self.fix else ""}

    def describe(self) -> str:
        line = f"  {self.status:<5} {self.name}: {self.detail}"
        return line + (f"\n        fix: {self.fix}" if self.fix else "")


#: The function's one environment variable of ours (shown parsed, URLs redacted).
ENV_VAR = "PYPICLOUD_SETTINGS"


class CodeArtifact(Protocol):
    """What the planner needs of a function zip (the builder's ``Bundle`` has it)."""

    path: Path
    sha256: str
    size: int
    runtime: str
    arch: str
    handler: str

    def read_bytes(self) -> bytes: ...


SYMBOLS = {"create": "+", "update": "~", "delete": "-"}


@dataclass
class Step:
    """One AWS call the plan will make, with a line a human can check before it happens."""

    resource: str
    action: str
    name: str
    summary: str
    service: str
    operation: str
    params: dict[str, Any]
    #: boto3 waiter to run on the function after the call.
    wait: str | None = None
    #: the function zip, read only when the call is made.
    code: CodeArtifact | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: Applied only once every region's other steps are: a call that needs another
    #: region's resources (S3 refuses a replication rule to an unversioned bucket).
    after_peers: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "action": self.action,
            "name": self.name,
            "summary": redact_text(self.summary),
            "call": f"{self.service}.{self.operation}",
            "params": public_params(self.params, self.code),
            **({"details": self.details} if self.details else {}),
        }

    def describe(self) -> str:
        return f"{SYMBOLS.get(self.action, '*')} {self.summary}"


def public_params(params: dict[str, Any], code: CodeArtifact | None) -> dict[str, Any]:
    """Parameters as shown to a human or in JSON: no zip bytes, URLs without passwords."""
    shown = copy.deepcopy(params)
    if "Code" in shown or "ZipFile" in shown:
        summary = {"sha256": code.sha256, "bytes": code.size} if code else {}
        if "Code" in shown:
            shown["Code"] = {"ZipFile": summary}
        else:
            shown["ZipFile"] = summary
    for key in ("SecretString", "Value"):  # a secret's value, stored by create
        if key in shown:
            shown[key] = "***"
    env = shown.get("Environment", {}).get("Variables", {})
    for key, value in list(env.items()):
        if key == ENV_VAR:
            env[key] = {k: redact_url(str(v)) for k, v in json.loads(value).items()}
        else:
            env[key] = redact_url(str(value))
    for key in ("PolicyDocument", "AssumeRolePolicyDocument", "EventPattern"):
        if isinstance(shown.get(key), str):
            shown[key] = json.loads(shown[key])
    return shown


@dataclass
class Plan:
    """The steps that take the account from its actual to its desired state."""

    command: str
    function_name: str
    region: str
    account: str
    steps: list[Step] = field(default_factory=list)
    #: Things the operator should know (sqlite cache, a copied password...).
    warnings: list[str] = field(default_factory=list)
    #: What the plan deliberately leaves alone, and why.
    notes: list[str] = field(default_factory=list)
    #: Resources that differ from the config and stay so, because updating them in place
    #: needs ``force``: an empty plan with these is not "up to date".
    drift: list[str] = field(default_factory=list)
    #: The function's execution role, named when Lambda keeps refusing what it lacks.
    role_arn: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe view (no zip bytes, no passwords) for ``--json`` and the endpoint."""
        return {
            "command": self.command,
            "function": self.function_name,
            "region": self.region,
            "account": self.account,
            "is_empty": self.is_empty,
            "steps": [step.to_json() for step in self.steps],
            "warnings": [redact_text(w) for w in self.warnings],
            "notes": [redact_text(n) for n in self.notes],
            "drift": list(self.drift),
        }

    def describe(self) -> str:
        what = f"{self.function_name} in {self.region} (account {self.account})"
        if self.is_empty and self.drift:
            lines = [f"Nothing to {self.command} without -f: {what} differs from the config "
                     f"({', '.join(self.drift)}); run with -f to update it in place."]
        elif self.is_empty:
            lines = [f"Nothing to {self.command}: {what} is "
                     + ("up to date." if self.command == "create" else "not deployed.")]
        else:
            count = len(self.steps)
            lines = [f"Plan to {self.command} {what}: {count} change{'s' * (count != 1)}"]
            lines += [f"  {step.describe()}" for step in self.steps]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"warning: {warning}" for warning in self.warnings]
        return redact_text("\n".join(lines))


@dataclass
class ResourceStatus:
    """One resource's desired and actual state, as ``status`` shows it."""

    resource: str
    name: str
    desired: str
    actual: str
    in_sync: bool

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "name": self.name, "desired": self.desired,
                "actual": self.actual, "in_sync": self.in_sync}


@dataclass
class StatusReport:
    """Desired vs actual per resource; ``in_sync`` is False on any drift."""

    function_name: str
    region: str
    account: str
    rows: list[ResourceStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The steps ``create -f`` would take to remove the drift.
    steps: list[Step] = field(default_factory=list)
    #: The path beyond our resources (:mod:`.pathchecks`), each ok, warn or fail.
    checks: list[Check] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return all(row.in_sync for row in self.rows)

    @property
    def healthy(self) -> bool:
        """In sync and no check failed: ``status`` exits 0 only then."""
        return self.in_sync and all(check.status != "fail" for check in self.checks)

    @property
    def function_differs(self) -> bool:
        """True when an existing function drifted, which only ``create -f`` changes."""
        return any(row.resource in ("function", "function-code") and not row.in_sync
                   and row.actual != "missing" for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function_name, "region": self.region, "account": self.account,
            "in_sync": self.in_sync, "resources": [row.to_json() for row in self.rows],
            "warnings": [redact_text(w) for w in self.warnings],
            "fix": [step.to_json() for step in self.steps],
            "healthy": self.healthy,
            "checks": [check.to_json() for check in self.checks],
        }

    def describe(self) -> str:
        lines = [f"Status of {self.function_name} in {self.region} (account {self.account}): "
                 + ("in sync" if self.in_sync else "DRIFT")]
        width = max((len(row.resource) for row in self.rows), default=8)
        for row in self.rows:
            mark = "ok   " if row.in_sync else "DRIFT"
            lines.append(f"  {mark} {row.resource:<{width}}  {row.name}")
            if not row.in_sync:
                lines.append(f"        desired: {row.desired}")
                lines.append(f"        actual:  {row.actual}")
        if self.checks:
            lines.append("Path checks:")
            lines += [check.describe() for check in self.checks]
        lines += [f"warning: {warning}" for warning in self.warnings]
        stack = next((row.name for row in self.rows
                      if row.resource == "cloudformation-stack"), None)
        if not self.in_sync and stack:  # create refuses to touch a stack's resources
            lines.append(f"Deploy a template exported from this config to stack {stack} "
                         "to bring it back in line.")
        elif not self.in_sync:
            # -f is for updating a function in place; create alone makes what is missing.
            force = " -f" if self.function_differs else ""
            lines.append(f"Run 'ppc-create-s3-sync CONFIG{force}' to bring it back in line.")
        return redact_text("\n".join(lines))



@dataclass
class StepResult:
    """What one applied step did: how long it took and how many attempts it needed."""

    step: Step
    seconds: float
    attempts: int = 1

    def to_json(self) -> dict[str, Any]:
        return {**self.step.to_json(), "seconds": round(self.seconds, 3),
                "attempts": self.attempts}
