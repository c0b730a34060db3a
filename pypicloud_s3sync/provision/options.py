"""The deploy's knobs: what pypicloud's own settings do not say about the function.

Read from ``s3sync.*`` in the ini, with the command line's flags (or the admin
request's fields) on top; checked against Lambda's limits before anything is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..bundle.runtimes import RUNTIMES
from ..bundle.target import ARCHITECTURES, DEFAULT_RUNTIME, arch_name, runtime_name
from ..config import check_endpoint_url, kms_key_problem
from . import alarms, concurrency, iam
from .errors import VPC, Fix, OptionsError
from .schedule import schedule_expression

if TYPE_CHECKING:
    from ..config import PypicloudConfig

#: The default function name of the original script, kept so existing setups are found.
DEFAULT_FUNCTION_NAME = "pypicloud_s3_sync"
DELIVERIES = ("direct", "eventbridge", "sqs")
#: What to do with a ``db.url`` that holds a password (see FunctionSettings.withheld).
DB_PASSWORD_CHOICES = ("refuse", "copy", "omit")


@dataclass(frozen=True)
class Flag:
    """How the command line gives an option, declared on the option itself: the CLI
    builds its arguments from these, so a flag, its help and the setting it overrides
    cannot drift apart."""

    names: tuple[str, ...]
    help: str
    metavar: str | None = None
    #: Turns the flag's text into the value; a ConfigError it raises is a usage error.
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    #: A switch: giving it sets the option to this value, and no argument follows.
    const: Any = None
    #: The ``--help`` section that lists it; None: beside the command's own flags.
    section: str | None = None
    #: Flags that share this name exclude each other.
    exclusive: str | None = None
    #: The flag's meaning on a command that reads it otherwise (command: help).
    help_for: Mapping[str, str] = field(default_factory=dict, compare=False)


def _as_bool(value: Any) -> bool:
    from pyramid.settings import asbool

    return asbool(value)


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.replace(",", " ").split() if v)
    return tuple(str(v) for v in value)


def _secret_store(value: Any) -> str | None:
    return None if str(value).lower() in ("off", "none") else str(value)


def _endpoint_flag(value: str) -> str:
    return check_endpoint_url(value, "--endpoint-url")


class _Whole:
    """Marks a whole-number option: its ini text must parse as an int."""


def _option(default: Any, *flags: Flag, parse: Callable[[Any], Any] | type[_Whole] = str) -> Any:
    """A field with its one declaration: ``s3sync.<field>`` in the ini, ``parse`` for the
    ini's text, ``flags`` for the command line."""
    return field(default=default, metadata={"flags": flags, "parse": parse})


FUNCTION, EVENTS, ALARMS, CREDENTIALS = "function", "events", "alarms", "cache credentials"
QUEUE = "queue (--delivery sqs)"
REPLICATION = "replication (several inis)"


def _concurrency_cap(value: Any) -> int | None:
    """``--max-concurrency``: a whole number, or ``off`` (0) for no cap at all."""
    if value is None or str(value).strip() == "":
        return None
    if str(value).strip().lower() in ("off", "none"):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise OptionsError(f"max_concurrency = {value!r} is not a whole number (or off)") from exc


@dataclass(frozen=True)
class DeployOptions:
    """Everything about the deploy that pypicloud's own settings do not say.

    Each field can be set in pypicloud's ini as ``s3sync.<field>`` (for example
    ``s3sync.memory = 512``); command-line flags override the ini.  The fields are in
    the order ``--help`` lists their flags.
    """

    function_name: str = _option(DEFAULT_FUNCTION_NAME, Flag(
        ("-n", "--name"), "name of the Lambda function (default: s3sync.function_name, else "
        "pypicloud_s3_sync)", "NAME"))
    #: Use this role and create none.
    role_arn: str | None = _option(None, Flag(
        ("-a", "--role-arn"), "run the function as this existing IAM role and create none",
        "ROLE_ARN", help_for={
            # Delete never runs the function as anything: -a only says the role is not ours.
            "delete": "the role create was given with -a (s3sync.role_arn): it is left alone,"
                      " and no role is deleted"}))
    #: Region of the function; default: ``storage.region_name``.
    region: str | None = _option(None, Flag(
        ("-r", "--region"), "AWS region of the function (default: storage.region_name)",
        "REGION"))
    #: Send every AWS call here (a moto server); S3 also honours ``storage.endpoint_url``.
    endpoint_url: str | None = _option(None, Flag(
        ("--endpoint-url",), "send every AWS call to this endpoint, e.g. a moto server "
        "(default: s3sync.endpoint_url; S3 then storage.endpoint_url)", "URL",
        type=_endpoint_flag))
    #: Update an existing function's code and configuration in place.
    force: bool = _option(False, Flag(
        ("-f", "--force"), "update an existing function's code and configuration in place",
        const=True), parse=_as_bool)
    runtime: str = _option(DEFAULT_RUNTIME, Flag(
        ("--runtime",), f"Lambda Python runtime: {', '.join(RUNTIMES)} (or just 3.12...; "
        f"default: s3sync.runtime or the newest, {RUNTIMES[-1]}, whose bytecode is compiled "
        "only if this machine has that Python: without it the zip holds sources and every "
        "cold start compiles them)", "RUNTIME", section=FUNCTION), parse=runtime_name)
    arch: str = _option("x86_64", Flag(
        ("--arch",), f"CPU architecture: {' or '.join(ARCHITECTURES)} (default: s3sync.arch "
        "or x86_64)", "ARCH", section=FUNCTION), parse=arch_name)
    memory: int = _option(256, Flag(
        ("--memory",), "memory in MB (256)", "MB", type=int, section=FUNCTION), parse=_Whole)
    timeout: int = _option(60, Flag(
        ("--timeout",), "timeout (60)", "SECONDS", type=int, section=FUNCTION), parse=_Whole)
    subnet_ids: tuple[str, ...] = _option((), Flag(
        ("--subnet-ids",), "comma-separated subnets, for a cache inside a VPC", "IDS",
        section=FUNCTION), parse=_as_list)
    security_group_ids: tuple[str, ...] = _option((), Flag(
        ("--security-group-ids",), "comma-separated security groups, with --subnet-ids",
        "IDS", section=FUNCTION), parse=_as_list)
    #: A pre-built function zip to deploy instead of building one.
    bundle: str | None = _option(None, Flag(
        ("--bundle",), "deploy this zip (from ppc-build-lambda-bundle) instead of building "
        "one", "ZIP", section=FUNCTION))
    #: ``direct`` (bucket notification) or ``eventbridge`` (bucket -> EventBridge rule).
    delivery: str = _option("direct", Flag(
        ("--delivery",), "direct: a bucket notification (default); eventbridge: the bucket "
        "sends to EventBridge and a rule invokes the function (use it when another "
        "notification overlaps ours); sqs: the bucket sends to a queue the function "
        "reads, which keeps events for 14 days while the function is down",
        choices=DELIVERIES, section=EVENTS))
    #: Async retries after a failed invocation (Lambda allows 0-2).
    retry_attempts: int = _option(2, Flag(
        ("--retry-attempts",), "async retries after a failed invocation, 0-2 (2)", "N",
        type=int, section=EVENTS), parse=_Whole)
    #: Seconds an event may wait for a retry (60-21600).
    max_event_age: int = _option(21600, Flag(
        ("--max-event-age",), "drop events older than this, 60-21600 (21600)", "SECONDS",
        type=int, section=EVENTS), parse=_Whole)
    #: Containers that may run at once (see :mod:`.concurrency`); ``"off"``: no cap (one
    #: on the function is removed); None (not given): the function's concurrency is left
    #: as it is.
    reserved_concurrency: concurrency.Cap = _option(None, Flag(
        ("--reserved-concurrency",), "at most N containers at once (each holds one cache "
        "connection); throttled events wait and are retried; off: no cap", "N",
        section=EVENTS), parse=concurrency.parse)
    #: ARN of an SQS queue, SNS topic, S3 bucket, Lambda function or EventBridge event bus
    #: for events that still failed (see :data:`.iam.DESTINATIONS`).
    on_failure: str | None = _option(None, Flag(
        ("--on-failure",), "SQS queue, SNS topic, S3 bucket, Lambda function or EventBridge "
        "event bus ARN for events that still failed", "ARN", section=EVENTS))
    #: Reconcile on a schedule: ``1d``, ``12h``, ``30m``, ``rate(...)``, ``cron(...)``
    #: or ``off`` (see :mod:`.schedule`).
    reconcile_every: str | None = _option(None, Flag(
        ("--reconcile-every",), "also reconcile the cache with the bucket on a schedule: 1d, "
        "12h, 30m, or an EventBridge rate(...)/cron(...) expression; 'off' removes a "
        "schedule set in the ini", "INTERVAL", section=EVENTS))
    #: An SNS topic ARN: create keeps CloudWatch alarms on errors, lag and dropped events
    #: that notify it
    #: (see :mod:`.alarms`); None: no alarms (ours are removed).
    alarm_topic: str | None = _option(None, Flag(
        ("--alarm-topic",), "keep CloudWatch alarms on the function's errors, lag and "
        "dropped events that notify this SNS topic (same region); 'off' removes ours",
        "SNS_ARN", section=ALARMS),
        parse=alarms.parse_topic)
    #: Seconds of lag above which the lag alarm fires (and status warns); None: the
    #: default with a topic, no threshold without.
    alarm_lag: float | None = _option(None, Flag(
        ("--alarm-lag",), "lag from S3 event to cache write above which the lag alarm fires "
        "and status warns (900)", "SECONDS", section=ALARMS), parse=alarms.parse_lag)
    #: How often a message is received (and failed) before SQS moves it to the
    #: dead-letter queue (the redrive policy's maxReceiveCount, 1-1000).
    max_receives: int = _option(5, Flag(
        ("--max-receives",), "failed receives of one event before it moves to the "
        "dead-letter queue, 1-1000 (5)", "N", type=int, section=QUEUE), parse=_Whole)
    #: Messages per invocation (the event source mapping's BatchSize).
    batch_size: int = _option(10, Flag(
        ("--batch-size",), "events per invocation, 1-10000 (10; above 10 needs "
        "--batch-window)", "N", type=int, section=QUEUE), parse=_Whole)
    #: Seconds Lambda may wait to fill a batch (MaximumBatchingWindowInSeconds).
    batch_window: int = _option(0, Flag(
        ("--batch-window",), "seconds to wait for a fuller batch, 0-300 (0)", "SECONDS",
        type=int, section=QUEUE), parse=_Whole)
    #: Concurrent invocations the queue may start (ScalingConfig.MaximumConcurrency,
    #: 2-1000); 0 (``off``): no cap; None: the SQL cache's default of 2, no cap for
    #: other caches.
    max_concurrency: int | None = _option(None, Flag(
        ("--max-concurrency",), "at most N invocations from the queue at once, 2-1000 "
        "(default 2 for a SQL cache, else no cap; off: no cap)", "N", section=QUEUE),
        parse=_concurrency_cap)
    #: A customer managed KMS key that encrypts both queues (SSE-KMS).
    queue_kms_key_arn: str | None = _option(None, Flag(
        ("--queue-kms-key-arn",), "encrypt the queues with this customer managed KMS key "
        "(its key policy must let S3 use it; the plan says how)", "ARN", section=QUEUE))
    #: Turn on the bucket's versioning for replication (it can never be turned off
    #: again, only suspended); without it a plan of several inis refuses an unversioned
    #: bucket.
    allow_versioning: bool = _option(False, Flag(
        ("--allow-versioning",), "with several inis: turn on versioning of a bucket that "
        "has none, which replication needs on both buckets (it can never be turned off "
        "again, only suspended)", const=True, section=REPLICATION), parse=_as_bool)
    #: S3 Replication Time Control on our rules: replicated within 15 minutes, with
    #: replication metrics (charged extra by S3).
    replication_time_control: bool = _option(False, Flag(
        ("--replication-time-control",), "with several inis: replicate with S3 Replication "
        "Time Control (15 minutes, with replication metrics; charged extra by S3)",
        const=True, section=REPLICATION), parse=_as_bool)
    #: ``refuse`` (default), ``copy`` or ``omit`` a db.url that holds a password.
    db_password: str = _option(
        "refuse",
        Flag(("--allow-db-password",), "copy a db.url that holds a password into the "
             "function's environment", const="copy", section=CREDENTIALS,
             exclusive="db_password"),
        Flag(("--omit-db-password",), "deploy without that db.url; you set PPC_DB_URL on the "
             "function yourself", const="omit", section=CREDENTIALS, exclusive="db_password"))
    #: A customer managed KMS key for the function's environment (the role may decrypt).
    kms_key_arn: str | None = _option(None, Flag(
        ("--kms-key-arn",), "encrypt the function's environment with this customer managed "
        "KMS key (the role may decrypt with it)", "ARN", section=CREDENTIALS))
    #: Keep db.url in a secret create owns: ``secretsmanager`` or ``ssm`` (see dbstore).
    store_db_password: str | None = _option(None, Flag(
        ("--store-db-password",), "keep db.url in a secret create makes and owns (named after "
        "the function and region); the function reads it from there",
        choices=("secretsmanager", "ssm"), section=CREDENTIALS, exclusive="db_password"),
        parse=_secret_store)

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
        parsers = {f.name: f.metadata["parse"] for f in fields(cls)}
        converted: dict[str, Any] = {}
        for key, value in values.items():
            parse = parsers.get(key, str)
            if parse is _Whole:
                try:
                    converted[key] = int(value)
                except (TypeError, ValueError) as exc:
                    raise OptionsError(f"s3sync.{key} = {value!r} is not a whole number") from exc
            else:
                converted[key] = parse(value)
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
            raise bad("delivery", self.delivery, "choose direct, eventbridge or sqs")
        if not 1 <= self.max_receives <= 1000:
            raise bad("max_receives", self.max_receives, "SQS accepts 1 to 1000")
        if not 1 <= self.batch_size <= 10000:
            raise bad("batch_size", self.batch_size, "Lambda accepts 1 to 10000")
        if not 0 <= self.batch_window <= 300:
            raise bad("batch_window", self.batch_window, "Lambda accepts 0 to 300 seconds")
        if self.batch_size > 10 and self.batch_window < 1:
            # "For Kinesis, DynamoDB, and Amazon SQS event sources, when you set BatchSize
            # to a value greater than 10, you must set MaximumBatchingWindowInSeconds to
            # at least 1" (botocore's Lambda model, CreateEventSourceMapping).
            raise bad("batch_size", self.batch_size,
                      "above 10 Lambda needs batch_window (--batch-window) of 1 or more")
        if self.max_concurrency not in (None, 0) and not 2 <= self.max_concurrency <= 1000:
            raise bad("max_concurrency", self.max_concurrency,
                      "Lambda accepts 2 to 1000 (or off)")
        queue_key = self.queue_kms_key_arn and kms_key_problem(self.queue_kms_key_arn)
        if queue_key:
            raise bad("queue_kms_key_arn", self.queue_kms_key_arn, queue_key)
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
        key_problem = self.kms_key_arn and kms_key_problem(self.kms_key_arn)
        if key_problem:
            raise bad("kms_key_arn", self.kms_key_arn, key_problem)
        if self.on_failure and not self.on_failure.startswith("arn:"):
            raise bad("on_failure", self.on_failure, "give the ARN of an SQS queue, SNS topic, "
                      "S3 bucket, Lambda function or EventBridge event bus")
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




def flags() -> list[tuple[str, Flag]]:
    """Every option's flags as (field, flag), in the order ``--help`` lists them."""
    return [(f.name, flag) for f in fields(DeployOptions) for flag in f.metadata["flags"]]
