"""Plan, apply and tear down the sync's AWS resources (the deployer behind the commands).

The original script created things blindly and could only delete-and-recreate.  This
module works the way Chalice's deployer does: read what exists (role, inline policy,
function configuration and ``CodeSha256``, invoke permissions, the bucket's
notification configuration or EventBridge rule), compute what should exist from
pypicloud's config and :class:`DeployOptions`, and turn the difference into a
:class:`Plan` of API calls.  Printing a plan changes nothing (``--dry-run`` is just
"plan, print"); :func:`apply` executes it, waiting for the function to settle between
changes.  When nothing changed the plan is empty and :func:`apply` makes no call.

Public API (used by the CLI and the admin endpoint; keep it stable):

* :class:`DeployOptions` and :meth:`DeployOptions.from_config` -- the knobs, from the ini
  (``s3sync.*``) with explicit overrides on top;
* :class:`AwsClients` and :meth:`AwsClients.from_config` -- boto3 clients for one region
  (and an optional endpoint such as a moto server);
* :func:`plan_create`, :func:`plan_delete` -> :class:`Plan` (``steps``, ``is_empty``,
  ``warnings``, ``to_json()``, ``describe()``);
* :func:`apply` -> list of :class:`StepResult`;
* :func:`status` -> :class:`StatusReport` (``rows``, ``in_sync``, ``to_json()``,
  ``describe()``);
* :class:`ZipBundle` -- a zip built elsewhere, deployable like the builder's ``Bundle``;
* :class:`DeployError` -- a one-line, user-fixable problem (a :class:`ConfigError`);
  :class:`ApplyError` when AWS refused a step (``.done`` = steps already applied).

The pieces behind it: :mod:`.actual` reads the account, :mod:`.planner` compares,
:mod:`.plan` holds and renders the result, :mod:`.iam` and :mod:`.notifications` build
the documents.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..bundle.builder import ARCHITECTURES, DEFAULT_RUNTIME, HANDLER, MAX_ZIPPED, RUNTIMES
from ..bundle.runtimes import RuntimeRetired, check_runtime
from ..config import ConfigError, PypicloudConfig
from . import iam
from .actual import _error_code, read_actual
from .plan import (
    ENV_VAR,
    ApplyError,
    CodeArtifact,
    DeployError,
    Plan,
    ResourceStatus,
    StatusReport,
    Step,
    StepResult,
)
from .planner import (
    Planner,
    check_cache_reachable,
    desired_state,
    function_environment,
    rule_name,
)
from .schedule import schedule_expression, schedule_rule_name

__all__ = [
    "ARCHITECTURES", "DEFAULT_RUNTIME", "DELIVERIES", "ENV_VAR", "HANDLER", "RUNTIMES",
    "ApplyError", "AwsClients", "CodeArtifact", "DeployError", "DeployOptions", "Plan",
    "ResourceStatus", "StatusReport", "Step", "StepResult", "ZipBundle", "apply",
    "function_environment", "is_mutating", "plan_create", "plan_delete", "status",
]

#: The seed's default function name, kept so that existing setups are found again.
DEFAULT_FUNCTION_NAME = "pypicloud_s3_sync"
DELIVERIES = ("direct", "eventbridge")
#: What to do with a ``db.url`` that holds a password (see FunctionSettings.withheld).
DB_PASSWORD_CHOICES = ("refuse", "copy", "omit")
#: Lambda refuses larger zips by direct upload (checked again for a zip given with --bundle).
MAX_ZIP_BYTES = MAX_ZIPPED
#: Error text S3 returns while a new invoke permission has not propagated yet.
UNVALIDATED = "Unable to validate the following destination configurations"
#: Operation-name prefixes that never change anything (for dry runs and call counting).
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head")


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256``: base64 of the zip's SHA-256."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass(frozen=True)
class ZipBundle:
    """A function zip built elsewhere (``--bundle PATH``), deployable like a built one."""

    path: Path
    sha256: str
    size: int
    runtime: str = DEFAULT_RUNTIME
    arch: str = "x86_64"
    handler: str = HANDLER

    @classmethod
    def from_path(cls, path: str | Path, runtime: str = DEFAULT_RUNTIME,
                  arch: str = "x86_64", handler: str = HANDLER) -> ZipBundle:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DeployError(f"cannot read the bundle {path}: {exc.strerror}") from exc
        return cls(path=path, sha256=code_sha256(data), size=len(data), runtime=runtime,
                   arch=arch, handler=handler)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


CodeSource = CodeArtifact | Callable[[], CodeArtifact] | None


# -- options ----------------------------------------------------------------------------

def _as_bool(value: Any) -> bool:
    from pyramid.settings import asbool

    return asbool(value)


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.replace(",", " ").split() if v)
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class DeployOptions:
    """Everything about the deploy that pypicloud's own settings do not say.

    Each field can be set in pypicloud's ini as ``s3sync.<field>`` (for example
    ``s3sync.memory = 512``); command-line flags override the ini.
    """

    function_name: str = DEFAULT_FUNCTION_NAME
    #: Update an existing function's code and configuration in place (``-f``).
    force: bool = False
    #: Use this role and create none (``-a``).
    role_arn: str | None = None
    #: Region of the function; default: ``storage.region_name``.
    region: str | None = None
    #: Send every AWS call here (a moto server); S3 also honours ``storage.endpoint_url``.
    endpoint_url: str | None = None
    runtime: str = DEFAULT_RUNTIME
    arch: str = "x86_64"
    memory: int = 256
    timeout: int = 60
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    #: ``direct`` (bucket notification) or ``eventbridge`` (bucket -> EventBridge rule).
    delivery: str = "direct"
    #: Async retries after a failed invocation (Lambda allows 0-2).
    retry_attempts: int = 2
    #: Seconds an event may wait for a retry (60-21600).
    max_event_age: int = 21600
    #: ARN of an SQS queue (or SNS topic) for events that still failed.
    on_failure: str | None = None
    #: ``refuse`` (default), ``copy`` or ``omit`` a db.url that holds a password.
    db_password: str = "refuse"
    #: A pre-built function zip to deploy instead of building one.
    bundle: str | None = None
    #: Reconcile on a schedule: ``1d``, ``12h``, ``30m``, ``rate(...)``, ``cron(...)``
    #: or ``off`` (see :mod:`.schedule`).
    reconcile_every: str | None = None

    @classmethod
    def from_config(cls, config: PypicloudConfig, **overrides: Any) -> DeployOptions:
        """Options from ``s3sync.*`` in the ini, then ``overrides`` (``None`` = not given)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = config.option(f.name)
            if f.name in overrides and overrides[f.name] is not None:
                value = overrides[f.name]
            if value is None or value == "":
                continue
            values[f.name] = value
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown deploy options: {', '.join(sorted(unknown))}")
        return cls.build(**values)

    @classmethod
    def build(cls, **values: Any) -> DeployOptions:
        """Convert ini strings to types and check every value against Lambda's limits."""
        converted: dict[str, Any] = {}
        for key, value in values.items():
            if key in ("force",):
                value = _as_bool(value)
            elif key in ("memory", "timeout", "retry_attempts", "max_event_age"):
                try:
                    value = int(value)
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"s3sync.{key} = {value!r} is not a whole number") from exc
            elif key in ("subnet_ids", "security_group_ids"):
                value = _as_list(value)
            else:
                value = str(value)
            converted[key] = value
        options = cls(**converted)
        options.check()
        return options

    def check(self) -> None:
        def bad(name: str, value: Any, allowed: str) -> ConfigError:
            return ConfigError(f"{name} = {value!r} is not valid: {allowed}")

        if self.runtime not in RUNTIMES:
            raise bad("runtime", self.runtime, "choose one of " + ", ".join(RUNTIMES))
        if self.arch not in ARCHITECTURES:
            raise bad("arch", self.arch, "choose one of " + ", ".join(ARCHITECTURES))
        if not 128 <= self.memory <= 10240:
            raise bad("memory", self.memory, "Lambda accepts 128 to 10240 MB")
        if not 1 <= self.timeout <= 900:
            raise bad("timeout", self.timeout, "Lambda accepts 1 to 900 seconds")
        if not 0 <= self.retry_attempts <= 2:
            raise bad("retry_attempts", self.retry_attempts, "Lambda accepts 0, 1 or 2")
        if not 60 <= self.max_event_age <= 21600:
            raise bad("max_event_age", self.max_event_age, "Lambda accepts 60 to 21600 seconds")
        if self.delivery not in DELIVERIES:
            raise bad("delivery", self.delivery, "choose direct or eventbridge")
        if self.db_password not in DB_PASSWORD_CHOICES:
            raise bad("db_password", self.db_password, "choose refuse, copy or omit")
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise ConfigError(
                "a function in a VPC needs both subnet ids and security group ids "
                "(--subnet-ids and --security-group-ids)"
            )
        if self.on_failure and not self.on_failure.startswith("arn:"):
            raise bad("on_failure", self.on_failure, "give the ARN of an SQS queue or SNS topic")
        if not self.function_name or len(self.function_name) > 64:
            raise bad("function_name", self.function_name, "1 to 64 letters, digits, - or _")
        schedule_expression(self.reconcile_every)

    @property
    def reconcile_schedule(self) -> str | None:
        """The EventBridge expression for ``reconcile_every``, or None for no schedule."""
        return schedule_expression(self.reconcile_every)

    @property
    def vpc(self) -> bool:
        return bool(self.subnet_ids)

    def role_name(self, region: str) -> str:
        """The role create makes for this function in ``region`` (unless -a gave one)."""
        return iam.role_name(self.function_name, region)


# -- AWS clients ------------------------------------------------------------------------

@dataclass
class AwsClients:
    """boto3 clients for one account and region, created on first use.

    One object is shared by planning and applying, so callers (and tests) can hook
    every call in one place: register on ``session.events`` before the first call.
    """

    session: Any
    region: str
    endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _account: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: PypicloudConfig, options: DeployOptions,
                    session: Any = None) -> AwsClients:
        """Clients in ``-r`` / ``storage.region_name`` / the AWS profile's region."""
        import boto3

        session = session or boto3.Session()
        region = options.region or config.target.region or session.region_name
        if not region:
            raise ConfigError(
                "no AWS region: set storage.region_name in the ini or pass -r REGION"
            )
        return cls(
            session=session,
            region=region,
            endpoint_url=options.endpoint_url,
            s3_endpoint_url=options.endpoint_url or config.target.endpoint_url,
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            endpoint = self.s3_endpoint_url if service == "s3" else self.endpoint_url
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=endpoint
            )
        return self._clients[service]

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    @property
    def partition(self) -> str:
        return self.session.get_partition_for_region(self.region)


# -- planning ---------------------------------------------------------------------------

def _resolve_code(code: CodeSource, config: PypicloudConfig, options: DeployOptions,
                  progress: Callable[[str], None] | None) -> CodeArtifact:
    if code is not None and not hasattr(code, "sha256"):
        code = code()  # a provider
    if code is None and options.bundle:
        code = ZipBundle.from_path(options.bundle, options.runtime, options.arch)
    if code is None:
        from ..bundle.builder import build_bundle

        code = build_bundle(config, runtime=options.runtime, arch=options.arch,
                            progress=progress)
    if code.size > MAX_ZIP_BYTES:
        raise DeployError(
            f"the function zip {code.path} is {code.size / 2**20:.1f} MiB; Lambda accepts "
            f"at most {MAX_ZIP_BYTES // 2**20} MiB by direct upload. Build it without "
            "boto3 (the runtime has it) or leave out unused cache extras"
        )
    return code


def _code_provider(code: CodeSource, config: PypicloudConfig, options: DeployOptions,
                   progress: Callable[[str], None] | None) -> Callable[[], CodeArtifact]:
    """Build (or read) the zip at most once, and only if the plan needs to compare it."""
    cache: list[CodeArtifact] = []

    def provide() -> CodeArtifact:
        if not cache:
            cache.append(_resolve_code(code, config, options, progress))
        return cache[0]

    return provide


def _planner(config: PypicloudConfig, options: DeployOptions, clients: AwsClients) -> Planner:
    desired = desired_state(config, options, clients)
    actual = read_actual(config, options, clients,
                         None if options.role_arn else options.role_name(clients.region),
                         rule_name(options), schedule_rule_name(options.function_name))
    return Planner(config, options, clients, actual, desired)


def plan_create(config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
                code: CodeSource = None,
                progress: Callable[[str], None] | None = None) -> Plan:
    """The steps that make the account match ``config`` + ``options``; reads only.

    ``code`` is the function zip (a builder ``Bundle``, a :class:`ZipBundle`, or a
    callable returning one); without it the zip is built (or read from
    ``options.bundle``) only when the function is missing or ``force`` is set.
    Raises :class:`DeployError` for states it must not touch: a foreign role or
    function of the same name, an overlapping foreign notification, a withheld password.
    """
    warnings: list[str] = []
    check_cache_reachable(config, options, warnings)
    planner = _planner(config, options, clients)
    try:
        retiring = check_runtime(options.runtime, creating=planner.actual.function is None)
    except RuntimeRetired as exc:
        raise DeployError(f"runtime {options.runtime}: {exc}") from exc
    if retiring:
        warnings.append(retiring)
    planner.warnings += warnings
    planner.role()
    planner.function(_code_provider(code, config, options, progress))
    planner.delivery()
    planner.schedule()
    return Plan("create", options.function_name, clients.region, planner.desired.account,
                planner.steps, planner.warnings, planner.notes)


def plan_delete(config: PypicloudConfig, options: DeployOptions,
                clients: AwsClients) -> Plan:
    """The steps that remove what ``create`` made, and nothing else; reads only.

    Foreign notification entries stay; the role goes only if it carries our tag, was
    not given with ``-a`` and holds no policies besides ours; EventBridge delivery on
    the bucket is turned off only if our rule recorded that we turned it on and no
    other rule listens to the bucket.
    """
    planner = _planner(config, options, clients)
    planner.teardown()
    return Plan("delete", options.function_name, clients.region, planner.desired.account,
                planner.steps, planner.warnings, planner.notes)



def status(config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
           code: CodeSource = None,
           progress: Callable[[str], None] | None = None) -> StatusReport:
    """Desired vs actual for every resource; reads only.

    Code is compared when a zip is given or can be built; the report's ``steps`` are
    what ``create -f`` would do about the drift.
    """
    warnings: list[str] = []
    check_cache_reachable(config, options, warnings, strict=False)
    forced = DeployOptions(**{**{f.name: getattr(options, f.name) for f in fields(options)},
                              "force": True})
    planner = _planner(config, forced, clients)
    planner.warnings += warnings
    try:
        planner.role()
    except DeployError as exc:
        planner.row("role", forced.role_name(clients.region), "created by pypicloud-s3sync",
                    str(exc), False)
    if planner.actual.function is None:
        planner.row("function", forced.function_name, "exists", "missing", False)
    else:
        planner.function(_code_provider(code, config, forced, progress))
    planner.delivery(strict=False)
    planner.schedule()
    return StatusReport(forced.function_name, clients.region, planner.desired.account,
                        planner.rows, planner.warnings, planner.steps)


# -- apply ------------------------------------------------------------------------------

#: Retry schedules (seconds) for errors that only mean "AWS has not caught up yet".
NOTIFICATION_BACKOFF = (1, 2, 4, 8, 15, 30)
ROLE_BACKOFF = (2, 4, 8, 15, 30)


def _retryable(step: Step, exc: Exception) -> bool:
    code, message = _error_code(exc), str(exc)
    if step.operation == "put_bucket_notification_configuration":
        return code == "InvalidArgument" and UNVALIDATED in message
    if step.operation in ("create_function", "update_function_configuration"):
        # A new role takes a few seconds before Lambda can assume it.
        return code == "InvalidParameterValueException" and "assume" in message
    if step.operation.startswith(("update_function", "put_function_event")):
        return code == "ResourceConflictException"  # an update is still in progress
    return False


def apply(plan: Plan, clients: AwsClients, progress: Callable[[str], None] | None = None,
          sleep: Callable[[float], None] = time.sleep) -> list[StepResult]:
    """Run the plan's steps in order; returns what was done.

    Between function changes it waits until Lambda reports the function Active /
    the update Successful, and it retries the errors that only mean "not propagated
    yet" with backoff.  On any other failure it raises :class:`ApplyError`, which says
    which step failed and carries the steps already done (re-running create continues
    from the actual state).
    """
    from botocore.exceptions import ClientError, WaiterError

    say = progress or (lambda message: None)
    done: list[StepResult] = []
    total = len(plan.steps)
    for index, step in enumerate(plan.steps, 1):
        say(f"[{index}/{total}] {step.summary}")
        client = clients.client(step.service)
        params = copy.deepcopy(step.params)
        if step.code is not None:
            data = step.code.read_bytes()
            if "Code" in params:
                params["Code"] = {"ZipFile": data}
            else:
                params["ZipFile"] = data
        schedule = (NOTIFICATION_BACKOFF if step.service == "s3" else ROLE_BACKOFF)
        started, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            try:
                getattr(client, step.operation)(**params)
                break
            except ClientError as exc:
                if attempts <= len(schedule) and _retryable(step, exc):
                    delay = schedule[attempts - 1]
                    say(f"      not ready yet ({_error_code(exc)}); retrying in {delay} s")
                    sleep(delay)
                    continue
                raise ApplyError(
                    f"step {index}/{total} ({step.summary}) failed: {exc}; "
                    f"{len(done)} step(s) were applied, run the command again to continue",
                    done,
                ) from exc
        if step.wait:
            say(f"      waiting for {plan.function_name} to be "
                f"{'Active' if step.wait == 'function_active_v2' else 'updated'}")
            try:
                client.get_waiter(step.wait).wait(
                    FunctionName=plan.function_name,
                    WaiterConfig={"Delay": 2, "MaxAttempts": 150})
            except WaiterError as exc:
                raise ApplyError(
                    f"{plan.function_name} did not become ready after step {index}/{total}: "
                    f"{exc}", done) from exc
        done.append(StepResult(step, time.monotonic() - started, attempts))
    return done


def is_mutating(operation_name: str) -> bool:
    """True for API operations that change something (used by dry runs and tests)."""
    return not operation_name.startswith(READ_ONLY_PREFIXES)
