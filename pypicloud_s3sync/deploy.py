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
* :class:`DeployError` -- a one-line, user-fixable problem (a :class:`ConfigError`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from . import iam, notifications
from .settings import ConfigError, PypicloudConfig, redact_url

try:  # the bundle builder lives in its own module (issue 4)
    from .bundle import ARCHITECTURES, DEFAULT_RUNTIME, HANDLER, RUNTIMES
except ImportError:  # pragma: no cover - only until the builder is merged
    RUNTIMES = ("python3.11", "python3.12", "python3.13", "python3.14")
    DEFAULT_RUNTIME = "python3.12"
    ARCHITECTURES = ("x86_64", "arm64")
    HANDLER = "pypicloud_s3sync.handler.handle_event"

#: The seed's default function name, kept so that existing setups are found again.
DEFAULT_FUNCTION_NAME = "pypicloud_s3_sync"
DELIVERIES = ("direct", "eventbridge")
#: What to do with a ``db.url`` that holds a password (see FunctionSettings.withheld).
DB_PASSWORD_CHOICES = ("refuse", "copy", "omit")
ENV_VAR = "PYPICLOUD_SETTINGS"
DESCRIPTION = "pypicloud-s3sync: applies S3 package events to the pypicloud cache"
#: Lambda refuses larger zips by direct upload.
MAX_ZIP_BYTES = 50 * 1024 * 1024
#: Our EventBridge rule's target Id.
TARGET_ID = "pypicloud-s3sync"
#: Rule tag that remembers whether we switched the bucket's EventBridge delivery on.
BUCKET_EVENTBRIDGE_TAG = "pypicloud-s3sync:bucket-eventbridge"
#: Error text S3 returns while a new invoke permission has not propagated yet.
UNVALIDATED = "Unable to validate the following destination configurations"
#: Operation-name prefixes that never change anything (for dry runs and call counting).
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head")


class DeployError(ConfigError):
    """Something in the account or the options stops the deploy; the text says what to do."""


class ApplyError(DeployError):
    """An AWS call failed while applying; ``done`` holds the steps that completed."""

    def __init__(self, message: str, done: list[StepResult]):
        super().__init__(message)
        self.done = done


class CodeArtifact(Protocol):
    """What the planner needs of a function zip (the builder's ``Bundle`` has it)."""

    path: Path
    sha256: str
    size: int
    runtime: str
    arch: str
    handler: str

    def read_bytes(self) -> bytes: ...


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

    @property
    def vpc(self) -> bool:
        return bool(self.subnet_ids)

    @property
    def role_name(self) -> str:
        return iam.role_name(self.function_name)


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


# -- plan -------------------------------------------------------------------------------

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

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "action": self.action,
            "name": self.name,
            "summary": self.summary,
            "call": f"{self.service}.{self.operation}",
            "params": _public_params(self.params, self.code),
            **({"details": self.details} if self.details else {}),
        }

    def describe(self) -> str:
        return f"{SYMBOLS.get(self.action, '*')} {self.summary}"


def _public_params(params: dict[str, Any], code: CodeArtifact | None) -> dict[str, Any]:
    """Parameters as shown to a human or in JSON: no zip bytes, URLs without passwords."""
    shown = copy.deepcopy(params)
    if "Code" in shown or "ZipFile" in shown:
        summary = {"sha256": code.sha256, "bytes": code.size} if code else {}
        if "Code" in shown:
            shown["Code"] = {"ZipFile": summary}
        else:
            shown["ZipFile"] = summary
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
            "steps": [step.to_json() for step in self.steps],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        what = f"{self.function_name} in {self.region} (account {self.account})"
        if self.is_empty:
            lines = [f"Nothing to {self.command}: {what} is "
                     + ("up to date." if self.command == "create" else "not deployed.")]
        else:
            count = len(self.steps)
            lines = [f"Plan to {self.command} {what}: {count} change{'s' * (count != 1)}"]
            lines += [f"  {step.describe()}" for step in self.steps]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


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

    @property
    def in_sync(self) -> bool:
        return all(row.in_sync for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function_name, "region": self.region, "account": self.account,
            "in_sync": self.in_sync, "resources": [row.to_json() for row in self.rows],
            "warnings": list(self.warnings), "fix": [step.to_json() for step in self.steps],
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
        lines += [f"warning: {warning}" for warning in self.warnings]
        if not self.in_sync:
            lines.append("Run 'ppc-create-s3-sync CONFIG -f' to bring it back in line.")
        return "\n".join(lines)


# -- reading the account ----------------------------------------------------------------

def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _missing(exc: Exception) -> bool:
    return _error_code(exc) in (
        "NoSuchEntity", "ResourceNotFoundException", "NoSuchEntityException",
        "NoSuchBucket",
    )


def _read(call: Callable[..., Any], **kwargs: Any) -> Any:
    """A read that returns None for "does not exist" and raises anything else."""
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


@dataclass
class Actual:
    """What exists now, read once per plan with Get/List calls only."""

    role: dict[str, Any] | None = None
    role_policy: dict[str, Any] | None = None
    role_inline: list[str] = field(default_factory=list)
    role_attached: list[str] = field(default_factory=list)
    function: dict[str, Any] | None = None
    function_tags: dict[str, str] = field(default_factory=dict)
    invoke_config: dict[str, Any] | None = None
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)
    notification: dict[str, Any] = field(default_factory=dict)
    rule: dict[str, Any] | None = None
    rule_tags: dict[str, str] = field(default_factory=dict)
    rule_targets: list[dict[str, Any]] = field(default_factory=list)


def _tags(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list or []}


def read_actual(config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
                role_name: str | None) -> Actual:
    """Read every resource the sync owns or touches; raises for unreadable buckets."""
    from botocore.exceptions import ClientError

    actual = Actual()
    iam_client = clients.client("iam")
    if role_name:
        role = _read(iam_client.get_role, RoleName=role_name)
        if role:
            actual.role = role["Role"]
            actual.role_inline = iam_client.list_role_policies(RoleName=role_name)["PolicyNames"]
            actual.role_attached = [
                p["PolicyArn"] for p in
                iam_client.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
            ]
            if iam.POLICY_NAME in actual.role_inline:
                doc = iam_client.get_role_policy(RoleName=role_name, PolicyName=iam.POLICY_NAME)
                actual.role_policy = iam.parse_document(doc["PolicyDocument"])
    lam = clients.client("lambda")
    function = _read(lam.get_function, FunctionName=options.function_name)
    if function:
        actual.function = function["Configuration"]
        actual.function_tags = function.get("Tags") or {}
        actual.invoke_config = _read(lam.get_function_event_invoke_config,
                                     FunctionName=options.function_name)
        policy = _read(lam.get_policy, FunctionName=options.function_name)
        if policy:
            for statement in json.loads(policy["Policy"]).get("Statement", []):
                actual.statements[statement.get("Sid", "")] = statement
    s3 = clients.client("s3")
    try:
        actual.notification = notifications.clean(
            s3.get_bucket_notification_configuration(Bucket=config.target.bucket)
        )
    except ClientError as exc:
        if _error_code(exc) == "NoSuchBucket":
            raise DeployError(
                f"bucket {config.target.bucket} does not exist in this account "
                f"(region {clients.region}); check storage.bucket, or start pypicloud "
                "once so that it creates the bucket"
            ) from exc
        raise
    events = clients.client("events")
    rule = _read(events.describe_rule, Name=_rule_name(options))
    if rule:
        actual.rule = rule
        actual.rule_tags = _tags(
            events.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags"))
        actual.rule_targets = events.list_targets_by_rule(Rule=_rule_name(options))["Targets"]
    return actual


# -- desired state ----------------------------------------------------------------------

def _rule_name(options: DeployOptions) -> str:
    return f"pypicloud-s3sync-{options.function_name}"[:64]


def _sid(principal: str, bucket: str) -> str:
    """Statement ids stable per bucket (``.`` is not allowed in a Sid; ``_`` not in a bucket)."""
    return f"pypicloud-s3sync-{principal}-{bucket.replace('.', '_')}"


def _managed(tags: Mapping[str, str]) -> bool:
    return tags.get(iam.MANAGED_TAG) == iam.MANAGED_VALUE


def function_environment(config: PypicloudConfig, options: DeployOptions) -> dict[str, str]:
    """``PYPICLOUD_SETTINGS`` values: the loader's credential-free settings, plus a
    withheld ``db.url`` only when the operator chose to copy it."""
    values = dict(config.function.values)
    if options.db_password == "copy":
        db = config.settings.clone()
        db.read_prefix_from_environ("db.")
        for key in config.function.withheld:
            values[key] = str(db[key])
    return values


def check_cache_reachable(config: PypicloudConfig, options: DeployOptions,
                          warnings: list[str], *, strict: bool = True) -> None:
    """Stop on a withheld password (unless chosen), warn about caches Lambda cannot reach."""
    withheld = config.function.withheld
    if withheld and options.db_password == "refuse" and strict:
        key, reason = next(iter(withheld.items()))
        raise DeployError(
            f"{reason.split(';')[0]}; pass --allow-db-password to copy it into the "
            f"function's environment, or --omit-db-password and set "
            f"PPC_{key.upper().replace('.', '_')} on the function yourself"
        )
    if withheld and options.db_password == "copy":
        warnings.append(
            f"copying {', '.join(withheld)} with its password into the function's "
            "environment (visible to anyone who can read the function's configuration)"
        )
    if withheld and options.db_password == "omit":
        warnings.append(
            f"{', '.join(withheld)} is not in the function's settings; set "
            + ", ".join(f"PPC_{k.upper().replace('.', '_')}" for k in withheld)
            + " on the function yourself or it cannot open the cache"
        )
    url = str(config.settings.get("db.url", ""))
    if config.cache_backend == "sql" and url.startswith("sqlite"):
        warnings.append(
            f"db.url = {url} is a SQLite file on this machine; the Lambda function cannot "
            "reach it and will fail on every event. Use PostgreSQL, MySQL, Redis or DynamoDB"
        )
    elif config.cache_backend in ("sql", "redis") and not options.vpc:
        warnings.append(
            f"the {config.cache_backend} cache must be reachable from Lambda; if it is in a "
            "VPC, pass --subnet-ids and --security-group-ids"
        )


@dataclass
class _Desired:
    account: str
    partition: str
    role_arn: str
    function_arn: str
    rule_arn: str
    env: dict[str, str]


def _desired(config: PypicloudConfig, options: DeployOptions, clients: AwsClients) -> _Desired:
    account, partition = clients.account, clients.partition
    return _Desired(
        account=account,
        partition=partition,
        role_arn=options.role_arn or iam.role_arn(account, options.role_name, partition),
        function_arn=(f"arn:{partition}:lambda:{clients.region}:{account}:"
                      f"function:{options.function_name}"),
        rule_arn=f"arn:{partition}:events:{clients.region}:{account}:rule/{_rule_name(options)}",
        env=function_environment(config, options),
    )


def _resolve_code(code: CodeSource, config: PypicloudConfig, options: DeployOptions,
                  progress: Callable[[str], None] | None) -> CodeArtifact:
    if code is not None and not hasattr(code, "sha256"):
        code = code()  # a provider
    if code is None and options.bundle:
        code = ZipBundle.from_path(options.bundle, options.runtime, options.arch)
    if code is None:
        try:
            from .bundle import build_bundle
        except ImportError as exc:
            raise DeployError(
                "this installation cannot build the function's zip; pass --bundle PATH "
                "with a zip from ppc-build-lambda-bundle"
            ) from exc
        code = build_bundle(config, runtime=options.runtime, arch=options.arch,
                            progress=progress)
    if code.size > MAX_ZIP_BYTES:
        raise DeployError(
            f"the function zip {code.path} is {code.size / 2**20:.1f} MiB; Lambda accepts "
            f"at most {MAX_ZIP_BYTES // 2**20} MiB by direct upload. Build it without "
            "boto3 (the runtime has it) or leave out unused cache extras"
        )
    return code


# -- the planner ------------------------------------------------------------------------

class _Planner:
    """Collects steps and per-resource status rows while comparing desired and actual."""

    def __init__(self, config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
                 actual: Actual, desired: _Desired):
        self.config, self.options, self.clients = config, options, clients
        self.actual, self.desired = actual, desired
        self.steps: list[Step] = []
        self.rows: list[ResourceStatus] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.fname = options.function_name

    def step(self, *args: Any, **kwargs: Any) -> None:
        self.steps.append(Step(*args, **kwargs))

    def row(self, resource: str, name: str, desired: str, actual: str,
            in_sync: bool | None = None) -> None:
        self.rows.append(ResourceStatus(resource, name, desired, actual,
                                        desired == actual if in_sync is None else in_sync))

    # role ------------------------------------------------------------------
    def role(self) -> None:
        o, a, d = self.options, self.actual, self.desired
        if o.role_arn:
            self.notes.append(f"using role {o.role_arn} as given (-a); its policy is yours")
            self._check_given_role(o.role_arn)
            return
        name = o.role_name
        policy = iam.role_policy(self.config, account=d.account, region=self.clients.region,
                                 function_name=self.fname, vpc=o.vpc,
                                 on_failure=o.on_failure, partition=d.partition)
        if a.role is None:
            self.row("role", name, "exists, trusts lambda.amazonaws.com", "missing")
            self.step("role", "create", name,
                      f"create IAM role {name} (trusted by lambda.amazonaws.com, "
                      f"tagged {iam.MANAGED_TAG})",
                      "iam", "create_role", {
                          "RoleName": name, "Path": iam.ROLE_PATH,
                          "AssumeRolePolicyDocument": json.dumps(iam.trust_policy()),
                          "Description": f"pypicloud-s3sync function {self.fname}",
                          "Tags": [{"Key": iam.MANAGED_TAG, "Value": iam.MANAGED_VALUE}],
                      })
        else:
            if not _managed(_tags(a.role.get("Tags"))):
                raise DeployError(
                    f"IAM role {name} exists but was not created by pypicloud-s3sync "
                    f"(no {iam.MANAGED_TAG} tag); pass its ARN with -a to use it as is, "
                    "or choose another function name with -n"
                )
            trust_ok = iam.same_policy(a.role["AssumeRolePolicyDocument"], iam.trust_policy())
            self.row("role", name, "trusts lambda.amazonaws.com",
                     "trusts lambda.amazonaws.com" if trust_ok else "different trust policy")
            if not trust_ok:
                self.step("role", "update", name,
                          f"reset the trust policy of role {name} to lambda.amazonaws.com",
                          "iam", "update_assume_role_policy",
                          {"RoleName": name,
                           "PolicyDocument": json.dumps(iam.trust_policy())})
        in_sync = a.role_policy is not None and iam.same_policy(a.role_policy, policy)
        self.row("role-policy", f"{name}/{iam.POLICY_NAME}", "least-privilege policy",
                 "as desired" if in_sync else ("missing" if a.role_policy is None
                                               else "differs"), in_sync)
        if not in_sync:
            self.step("role-policy", "update" if a.role_policy else "create",
                      f"{name}/{iam.POLICY_NAME}",
                      f"{'update' if a.role_policy else 'put'} inline policy "
                      f"{iam.POLICY_NAME} on role {name} ({len(policy['Statement'])} "
                      "statements, no wildcard S3/DynamoDB resources)",
                      "iam", "put_role_policy",
                      {"RoleName": name, "PolicyName": iam.POLICY_NAME,
                       "PolicyDocument": json.dumps(policy)})

    def _check_given_role(self, arn: str) -> None:
        """A missing ``-a`` role would only show up as Lambda retrying "cannot be assumed"."""
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
            raise DeployError(f"-a {arn} is not an IAM role ARN "
                              "(arn:aws:iam::ACCOUNT:role/NAME)")
        if parts[4] != self.desired.account:
            return  # another account's role: we cannot look, Lambda will tell
        name = parts[5].rsplit("/", 1)[-1]
        if _read(self.clients.client("iam").get_role, RoleName=name) is None:
            raise DeployError(f"the role given with -a ({arn}) does not exist; create it "
                              "first, or leave out -a to let this command create one")

    # function --------------------------------------------------------------
    def function_config(self, code_handler: str) -> dict[str, Any]:
        o, d = self.options, self.desired
        params: dict[str, Any] = {
            "FunctionName": self.fname,
            "Runtime": o.runtime,
            "Handler": code_handler,
            "Role": d.role_arn,
            "Timeout": o.timeout,
            "MemorySize": o.memory,
            "Description": DESCRIPTION,
            "Environment": {"Variables": {ENV_VAR: json.dumps(d.env, sort_keys=True)}},
        }
        if o.vpc:
            params["VpcConfig"] = {"SubnetIds": list(o.subnet_ids),
                                   "SecurityGroupIds": list(o.security_group_ids)}
        return params

    def config_drift(self, want: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """Fields that differ, and the update call's parameters (other env vars kept)."""
        have = self.actual.function or {}
        changed = [k for k in ("Runtime", "Handler", "Role", "Timeout", "MemorySize",
                               "Description") if have.get(k) != want[k]]
        have_vars = dict(have.get("Environment", {}).get("Variables", {}) or {})
        try:
            have_env = json.loads(have_vars.get(ENV_VAR, "null"))
        except ValueError:
            have_env = None
        if have_env != self.desired.env:
            changed.append("Environment")
        have_vpc = have.get("VpcConfig") or {}
        want_vpc = want.get("VpcConfig", {})
        if (sorted(have_vpc.get("SubnetIds") or []) != sorted(want_vpc.get("SubnetIds", []))
                or sorted(have_vpc.get("SecurityGroupIds") or [])
                != sorted(want_vpc.get("SecurityGroupIds", []))):
            changed.append("VpcConfig")
            want = {**want, "VpcConfig": want_vpc or {"SubnetIds": [], "SecurityGroupIds": []}}
        update = {k: v for k, v in want.items() if k in changed or k == "FunctionName"}
        if "Environment" in changed:
            have_vars[ENV_VAR] = want["Environment"]["Variables"][ENV_VAR]
            update["Environment"] = {"Variables": have_vars}
        return changed, update

    def function(self, code: Callable[[], CodeArtifact]) -> None:
        o, a = self.options, self.actual
        tags = {iam.MANAGED_TAG: iam.MANAGED_VALUE}
        if a.function is None:
            artifact = code()
            want = self.function_config(artifact.handler)
            self.row("function", self.fname, f"{o.runtime} {o.arch}", "missing")
            self.row("function-code", self.fname, artifact.sha256, "missing")
            self.step("function", "create", self.fname,
                      f"create function {self.fname} ({o.runtime}, {o.arch}, {o.memory} MB, "
                      f"{o.timeout} s; code {artifact.size / 2**20:.1f} MiB "
                      f"sha256 {artifact.sha256})",
                      "lambda", "create_function",
                      {**want, "Code": {"ZipFile": None}, "Architectures": [o.arch],
                       "PackageType": "Zip", "Publish": False, "Tags": tags},
                      wait="function_active_v2", code=artifact)
            self.invoke_config()
            return
        ours = _managed(a.function_tags)
        if not ours and not o.force:
            raise DeployError(
                f"function {self.fname} exists but was not created by pypicloud-s3sync "
                f"(runtime {a.function.get('Runtime')}); pass -f to update its code and "
                "configuration in place, or choose another name with -n"
            )
        artifact = code() if o.force else None
        handler = artifact.handler if artifact else a.function.get("Handler", HANDLER)
        want = self.function_config(handler)
        changed, update = self.config_drift(want)
        have_arch = (a.function.get("Architectures") or ["x86_64"])[0]
        code_changed = bool(artifact) and (
            a.function.get("CodeSha256") != artifact.sha256 or have_arch != o.arch)
        self.row("function", self.fname, "as configured",
                 "as configured" if not changed else "differs: " + ", ".join(changed))
        if artifact:
            self.row("function-code", self.fname, f"{artifact.sha256} ({o.arch})",
                     f"{a.function.get('CodeSha256')} ({have_arch})")
        if not o.force:
            if changed:
                self.warnings.append(
                    f"function {self.fname} differs from the config ({', '.join(changed)}); "
                    "run with -f to update it in place"
                )
            self.notes.append(f"function {self.fname} exists; its code is not compared "
                              "without -f")
        else:
            if not ours:
                self.step("function", "update", self.fname,
                          f"tag function {self.fname} as managed by pypicloud-s3sync",
                          "lambda", "tag_resource",
                          {"Resource": self.desired.function_arn, "Tags": tags})
            if changed:
                self.step("function", "update", self.fname,
                          f"update configuration of {self.fname}: {', '.join(changed)}",
                          "lambda", "update_function_configuration", update,
                          wait="function_updated_v2",
                          details={"changed": changed})
            if code_changed:
                assert artifact is not None
                self.step("function-code", "update", self.fname,
                          f"update code of {self.fname} to sha256 {artifact.sha256} "
                          f"({artifact.size / 2**20:.1f} MiB, {o.arch})",
                          "lambda", "update_function_code",
                          {"FunctionName": self.fname, "ZipFile": None,
                           "Architectures": [o.arch], "Publish": False},
                          wait="function_updated_v2", code=artifact,
                          details={"from": a.function.get("CodeSha256"),
                                   "to": artifact.sha256})
        self.invoke_config()

    def invoke_config(self) -> None:
        o, have = self.options, self.actual.invoke_config or {}
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
        self.row("async-config", self.fname, show, have_show, same)
        if not same:
            self.step("async-config", "update" if have else "create", self.fname,
                      f"set async invocation of {self.fname}: {show}",
                      "lambda", "put_function_event_invoke_config",
                      {"FunctionName": self.fname, **want})

    # permissions -----------------------------------------------------------
    def permission(self, principal: str, source_arn: str, wanted: bool,
                   source_account: str | None) -> None:
        short = principal.split(".")[0]
        sid = _sid(short, self.config.target.bucket)
        have = self.actual.statements.get(sid)
        condition: dict[str, Any] = {"ArnLike": {"AWS:SourceArn": source_arn}}
        if source_account:
            condition["StringEquals"] = {"AWS:SourceAccount": source_account}
        matches = bool(have) and (
            (have.get("Principal") or {}).get("Service") == principal
            and iam.normalize(have.get("Condition", {})) == iam.normalize(condition))
        if wanted:
            self.row("permission", sid, f"{principal} from {source_arn}",
                     "as desired" if matches else ("missing" if not have else "differs"),
                     matches)
        if have and (not wanted or not matches) and self.actual.function is not None:
            self.step("permission", "delete", sid,
                      f"remove invoke permission {sid} ({principal}) from {self.fname}",
                      "lambda", "remove_permission",
                      {"FunctionName": self.fname, "StatementId": sid})
        if wanted and not matches:
            params = {"FunctionName": self.fname, "StatementId": sid,
                      "Action": "lambda:InvokeFunction", "Principal": principal,
                      "SourceArn": source_arn}
            if source_account:
                params["SourceAccount"] = source_account
            self.step("permission", "create", sid,
                      f"allow {principal} to invoke {self.fname} for {source_arn}",
                      "lambda", "add_permission", params)

    # delivery --------------------------------------------------------------
    def _eventbridge_pattern(self) -> dict[str, Any]:
        target = self.config.target
        detail: dict[str, Any] = {"bucket": {"name": [target.bucket]}}
        if target.prefix:
            detail["object"] = {"key": [{"prefix": target.prefix}]}
        return {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"],
                "detail": detail}

    def delivery(self, strict: bool = True) -> None:
        o, a, d, target = self.options, self.actual, self.desired, self.config.target
        direct = o.delivery == "direct"
        current = a.notification
        ours_now = notifications.find_ours(current, self.fname, d.function_arn)
        entry = notifications.our_entry(d.function_arn, self.fname, target.prefix)
        # The S3 permission comes before the notification: S3 validates it on write.
        self.permission("s3.amazonaws.com", f"arn:{d.partition}:s3:::{target.bucket}",
                        direct, d.account)
        eb_on = notifications.EVENTBRIDGE in current
        if direct:
            clashes = notifications.overlaps(current, target.prefix, self.fname, d.function_arn)
            if clashes:
                message = (
                    f"bucket {target.bucket} already sends overlapping events to "
                    f"{clashes[0].describe()}; S3 does not allow two notifications for the "
                    "same events and prefix. Use --delivery eventbridge (no overlap rule), "
                    "or narrow that notification's prefix"
                )
                if strict:
                    raise DeployError(message)
                self.row("notification", notifications.entry_id(self.fname),
                         "our entry", "conflict: " + clashes[0].describe(), False)
                return
            in_sync = len(ours_now) == 1 and notifications.same_entry(ours_now[0], entry)
            want = notifications.with_ours(current, entry, self.fname, d.function_arn)
        else:
            in_sync = not ours_now
            want = notifications.without_ours(current, self.fname, d.function_arn)
        eb_by_us = a.rule_tags.get(BUCKET_EVENTBRIDGE_TAG) == "enabled-by-us"
        if not direct:
            want = notifications.with_eventbridge(want, True)
        elif a.rule is not None and eb_by_us and not self._other_bucket_rules():
            want = notifications.with_eventbridge(want, False)
        changed = want != current
        if direct:
            self.row("notification", notifications.entry_id(self.fname),
                     f"{', '.join(notifications.OUR_EVENTS)} prefix '{target.prefix}'",
                     "as desired" if in_sync else ("missing" if not ours_now else "differs"),
                     in_sync)
        else:
            self.row("bucket-eventbridge", target.bucket, "EventBridge delivery on",
                     "on" if eb_on else "off", eb_on)
        if changed:
            what = []
            if direct and not in_sync:
                what.append(f"{'replace' if ours_now else 'add'} our entry "
                            f"{entry['Id']} ({', '.join(entry['Events'])}, "
                            f"prefix '{target.prefix}')")
            if not direct and ours_now:
                what.append(f"remove our entry {notifications.entry_id(self.fname)}")
            if notifications.EVENTBRIDGE in want and not eb_on:
                what.append("turn on EventBridge delivery")
            if notifications.EVENTBRIDGE not in want and eb_on:
                what.append("turn off EventBridge delivery (we turned it on)")
            kept = sum(len(want.get(k, [])) for k in notifications.KINDS) - (1 if direct else 0)
            self.step("notification", "update", target.bucket,
                      f"bucket {target.bucket} notifications: {'; '.join(what)}; "
                      f"{kept} other entr{'y' if kept == 1 else 'ies'} kept as they are",
                      "s3", "put_bucket_notification_configuration",
                      {"Bucket": target.bucket, "NotificationConfiguration": want},
                      details={"before": current})
        if direct:  # tear down the EventBridge path first, then its permission
            self.rule(wanted=False, enabled_by_us=False)
            self.permission("events.amazonaws.com", d.rule_arn, False, None)
        else:  # the permission exists before the rule can invoke the function
            self.permission("events.amazonaws.com", d.rule_arn, True, None)
            self.rule(wanted=True, enabled_by_us=(not eb_on) or eb_by_us)

    def _other_bucket_rules(self) -> list[str]:
        """Other EventBridge rules that mention our bucket: they still need delivery on."""
        events = self.clients.client("events")
        found = []
        for page in events.get_paginator("list_rules").paginate():
            for rule in page.get("Rules", []):
                if rule["Name"] == _rule_name(self.options):
                    continue
                pattern = rule.get("EventPattern") or ""
                if "aws.s3" in pattern and self.config.target.bucket in pattern:
                    found.append(rule["Name"])
        return found

    def rule(self, wanted: bool, enabled_by_us: bool) -> None:
        a, d, name = self.actual, self.desired, _rule_name(self.options)
        pattern = self._eventbridge_pattern()
        targets = [{"Id": TARGET_ID, "Arn": d.function_arn}]
        if not wanted:
            if a.rule is not None and _managed(a.rule_tags):
                self._delete_rule(name)
            return
        have_pattern = json.loads(a.rule["EventPattern"]) if a.rule else None
        rule_ok = a.rule is not None and have_pattern == pattern and (
            a.rule.get("State") == "ENABLED")
        self.row("eventbridge-rule", name, json.dumps(pattern, sort_keys=True),
                 json.dumps(have_pattern, sort_keys=True) if a.rule else "missing", rule_ok)
        if a.rule is not None and not _managed(a.rule_tags):
            raise DeployError(
                f"EventBridge rule {name} exists but was not created by pypicloud-s3sync; "
                "delete or rename it, or choose another function name with -n"
            )
        if not rule_ok:
            tags = {iam.MANAGED_TAG: iam.MANAGED_VALUE,
                    BUCKET_EVENTBRIDGE_TAG: a.rule_tags.get(
                        BUCKET_EVENTBRIDGE_TAG,
                        "enabled-by-us" if enabled_by_us else "already-on")}
            self.step("eventbridge-rule", "update" if a.rule else "create", name,
                      f"{'update' if a.rule else 'create'} EventBridge rule {name} for "
                      f"bucket {self.config.target.bucket} prefix "
                      f"'{self.config.target.prefix}'",
                      "events", "put_rule",
                      {"Name": name, "EventPattern": json.dumps(pattern, sort_keys=True),
                       "State": "ENABLED", "Description": DESCRIPTION,
                       "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]})
        have_targets = [{"Id": t["Id"], "Arn": t["Arn"]} for t in a.rule_targets]
        targets_ok = have_targets == targets
        self.row("eventbridge-target", name, d.function_arn,
                 ", ".join(t["Arn"] for t in have_targets) or "missing", targets_ok)
        if not targets_ok:
            self.step("eventbridge-rule", "update", name,
                      f"point rule {name} at {self.fname}", "events", "put_targets",
                      {"Rule": name, "Targets": targets})

    def _delete_rule(self, name: str) -> None:
        if self.actual.rule_targets:
            self.step("eventbridge-rule", "delete", name,
                      f"remove the targets of EventBridge rule {name}", "events",
                      "remove_targets",
                      {"Rule": name, "Ids": [t["Id"] for t in self.actual.rule_targets]})
        self.step("eventbridge-rule", "delete", name, f"delete EventBridge rule {name}",
                  "events", "delete_rule", {"Name": name})


def _code_provider(code: CodeSource, config: PypicloudConfig, options: DeployOptions,
                   progress: Callable[[str], None] | None) -> Callable[[], CodeArtifact]:
    """Build (or read) the zip at most once, and only if the plan needs to compare it."""
    cache: list[CodeArtifact] = []

    def provide() -> CodeArtifact:
        if not cache:
            cache.append(_resolve_code(code, config, options, progress))
        return cache[0]

    return provide


def _planner(config: PypicloudConfig, options: DeployOptions, clients: AwsClients) -> _Planner:
    desired = _desired(config, options, clients)
    actual = read_actual(config, options, clients, None if options.role_arn else options.role_name)
    return _Planner(config, options, clients, actual, desired)


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
    planner.warnings += warnings
    planner.role()
    planner.function(_code_provider(code, config, options, progress))
    planner.delivery()
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
    a, d, fname, target = planner.actual, planner.desired, options.function_name, config.target
    steps = planner.steps
    ours = notifications.find_ours(a.notification, fname, d.function_arn)
    want = notifications.without_ours(a.notification, fname, d.function_arn)
    eb_by_us = a.rule is not None and a.rule_tags.get(BUCKET_EVENTBRIDGE_TAG) == "enabled-by-us"
    if eb_by_us and notifications.EVENTBRIDGE in want:
        others = planner._other_bucket_rules()
        if others:
            planner.notes.append(f"EventBridge delivery on {target.bucket} stays on: "
                                 f"rule(s) {', '.join(others)} use it")
        else:
            want = notifications.with_eventbridge(want, False)
    elif a.rule is not None and notifications.EVENTBRIDGE in want:
        planner.notes.append(f"EventBridge delivery on {target.bucket} stays on: it was on "
                             "before the sync was created")
    if want != a.notification:
        kept = sum(len(want.get(k, [])) for k in notifications.KINDS)
        what = [f"remove our entry {', '.join(e.get('Id', '?') for e in ours)}"] if ours else []
        if notifications.EVENTBRIDGE in a.notification and notifications.EVENTBRIDGE not in want:
            what.append("turn off EventBridge delivery (we turned it on)")
        planner.step("notification", "update", target.bucket,
                     f"bucket {target.bucket} notifications: {'; '.join(what)}; {kept} other "
                     f"entr{'y' if kept == 1 else 'ies'} kept as they are",
                     "s3", "put_bucket_notification_configuration",
                     {"Bucket": target.bucket, "NotificationConfiguration": want},
                     details={"before": a.notification})
    if a.rule is not None:
        if _managed(a.rule_tags):
            planner._delete_rule(_rule_name(options))
        else:
            planner.notes.append(f"EventBridge rule {_rule_name(options)} is not ours; left alone")
    if a.function is not None:
        if _managed(a.function_tags):
            steps.append(Step("function", "delete", fname,
                              f"delete function {fname} (its invoke permissions and async "
                              "settings go with it)", "lambda", "delete_function",
                              {"FunctionName": fname}))
        else:
            planner.notes.append(f"function {fname} was not created by pypicloud-s3sync; "
                                 "only our permissions are removed from it")
            for principal in ("s3", "events"):
                sid = _sid(principal, target.bucket)
                if sid in a.statements:
                    steps.append(Step("permission", "delete", sid,
                                      f"remove invoke permission {sid} from {fname}",
                                      "lambda", "remove_permission",
                                      {"FunctionName": fname, "StatementId": sid}))
    if options.role_arn:
        planner.notes.append(f"role {options.role_arn} was given with -a; left alone")
    elif a.role is not None:
        role = options.role_name
        if not _managed(_tags(a.role.get("Tags"))):
            planner.notes.append(f"role {role} was not created by pypicloud-s3sync; left alone")
        else:
            foreign = [p for p in a.role_inline if p != iam.POLICY_NAME] + a.role_attached
            if iam.POLICY_NAME in a.role_inline:
                steps.append(Step("role-policy", "delete", f"{role}/{iam.POLICY_NAME}",
                                  f"delete inline policy {iam.POLICY_NAME} from role {role}",
                                  "iam", "delete_role_policy",
                                  {"RoleName": role, "PolicyName": iam.POLICY_NAME}))
            if foreign:
                planner.notes.append(f"role {role} keeps policies added by someone else "
                                     f"({', '.join(foreign)}), so it is not deleted")
            else:
                steps.append(Step("role", "delete", role, f"delete IAM role {role}", "iam",
                                  "delete_role", {"RoleName": role}))
    return Plan("delete", fname, clients.region, d.account, steps, planner.warnings,
                planner.notes)


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
        planner.row("role", forced.role_name, "created by pypicloud-s3sync", str(exc), False)
    if planner.actual.function is None:
        planner.row("function", forced.function_name, "exists", "missing", False)
    else:
        planner.function(_code_provider(code, config, forced, progress))
    planner.delivery(strict=False)
    return StatusReport(forced.function_name, clients.region, planner.desired.account,
                        planner.rows, planner.warnings, planner.steps)


# -- apply ------------------------------------------------------------------------------

@dataclass
class StepResult:
    """What one applied step did: how long it took and how many attempts it needed."""

    step: Step
    seconds: float
    attempts: int = 1

    def to_json(self) -> dict[str, Any]:
        return {**self.step.to_json(), "seconds": round(self.seconds, 3),
                "attempts": self.attempts}


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
