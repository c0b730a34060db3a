"""The deploy's knobs: what pypicloud's own settings do not say about the function.

Read from ``s3sync.*`` in the ini, with the command line's flags (or the admin
request's fields) on top; checked against Lambda's limits before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ..bundle.runtimes import RUNTIMES
from ..bundle.target import ARCHITECTURES, DEFAULT_RUNTIME, arch_name, runtime_name
from . import alarms, concurrency, iam
from .errors import VPC, Fix, OptionsError
from .schedule import schedule_expression

if TYPE_CHECKING:
    from ..config import PypicloudConfig

#: The default function name of the original script, kept so existing setups are found.
DEFAULT_FUNCTION_NAME = "pypicloud_s3_sync"
DELIVERIES = ("direct", "eventbridge")
#: What to do with a ``db.url`` that holds a password (see FunctionSettings.withheld).
DB_PASSWORD_CHOICES = ("refuse", "copy", "omit")



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
    #: Keep db.url in a secret create owns: ``secretsmanager`` or ``ssm`` (see dbstore).
    store_db_password: str | None = None
    #: A customer managed KMS key for the function's environment (the role may decrypt).
    kms_key_arn: str | None = None
    #: A pre-built function zip to deploy instead of building one.
    bundle: str | None = None
    #: Reconcile on a schedule: ``1d``, ``12h``, ``30m``, ``rate(...)``, ``cron(...)``
    #: or ``off`` (see :mod:`.schedule`).
    reconcile_every: str | None = None
    #: Containers that may run at once (see :mod:`.concurrency`); ``"off"``: no cap (one
    #: on the function is removed); None (not given): the function's concurrency is left
    #: as it is.
    reserved_concurrency: concurrency.Cap = None
    #: An SNS topic ARN: create keeps CloudWatch alarms on errors and lag that notify it
    #: (see :mod:`.alarms`); None: no alarms (ours are removed).
    alarm_topic: str | None = None
    #: Seconds of lag above which the lag alarm fires (and status warns); None: the
    #: default with a topic, no threshold without.
    alarm_lag: float | None = None

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
                    raise OptionsError(f"s3sync.{key} = {value!r} is not a whole number") from exc
            elif key in ("subnet_ids", "security_group_ids"):
                value = _as_list(value)
            elif key == "reserved_concurrency":
                value = concurrency.parse(value)
            elif key == "alarm_topic":
                value = alarms.parse_topic(value)
            elif key == "alarm_lag":
                value = alarms.parse_lag(value)
            elif key == "runtime":
                value = runtime_name(value)
            elif key == "arch":
                value = arch_name(value)
            elif key == "store_db_password" and str(value).lower() in ("off", "none"):
                continue
            else:
                value = str(value)
            converted[key] = value
        options = cls(**converted)
        options.check()
        return options

    def check(self) -> None:
        def bad(name: str, value: Any, allowed: str) -> OptionsError:
            return OptionsError(f"{name} = {value!r} is not valid: {allowed}")

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
        if self.store_db_password not in (None, "secretsmanager", "ssm"):
            raise bad("store_db_password", self.store_db_password,
                      "choose secretsmanager or ssm (or off)")
        if self.store_db_password and self.db_password != "refuse":
            raise OptionsError("store_db_password and db_password = "
                               f"{self.db_password} both say where the password goes; "
                               "choose one")
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise OptionsError(
                "a function in a VPC needs both subnet ids and security group ids ({0})",
                Fix(*VPC))
        if self.kms_key_arn and not (self.kms_key_arn.startswith("arn:")
                                     and ":kms:" in self.kms_key_arn):
            raise bad("kms_key_arn", self.kms_key_arn,
                      "give the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)")
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
    def lag_threshold(self) -> float | None:
        """The lag (seconds) that alarms and makes status warn: ``alarm_lag``, else the
        default when alarms are on, else None."""
        if self.alarm_lag is not None:
            return self.alarm_lag
        return alarms.DEFAULT_LAG if self.alarm_topic else None

    @property
    def vpc(self) -> bool:
        return bool(self.subnet_ids)

    def role_name(self, region: str) -> str:
        """The role create makes for this function in ``region`` (unless -a gave one)."""
        return iam.role_name(self.function_name, region)


