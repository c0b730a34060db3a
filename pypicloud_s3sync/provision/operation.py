"""Every operation a front end runs: the command line and the admin API call only these.

:func:`run` plans, applies unless it is a dry run (or there is nothing to do), and hands
back the result as data; :func:`reconcile` makes the server's cache agree with its
bucket; :func:`redrive` moves a ``--delivery sqs`` sync's dead-letter queue back to its
queue; :func:`export` writes create's plan as a template instead of applying it;
:func:`verify` sends a canary package between every pair of regions.  Each
front end only renders what they return (text or JSON) and what they raise, so the two
cannot drift apart in what they do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import deploy, executor
from .aws import AwsClients
from .awsfailure import translate
from .errors import REGION, Fix, OptionsError

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from ..function.reconcile import Progress, ReconcileReport
    from ..verify.report import VerifyReport
    from .cloudformation import Export
    from .options import DeployOptions
    from .plan import Plan, StatusReport, StepResult
    from .redrive import RedriveReport

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


def redrive(config: PypicloudConfig, options: DeployOptions, *, dry_run: bool = False,
            progress: Callable[[str], None] | None = None,
            session: Any = None) -> RedriveReport:
    """Move the dead-letter queue's messages back to the queue (see :mod:`.redrive`);
    with ``dry_run`` only count them.  No queue for this config raises
    :class:`~.errors.DeployError` saying how to make one."""
    from . import redrive as queues

    clients = AwsClients.from_config(config, options, session=session)
    return queues.redrive(clients, options.function_name, dry_run=dry_run,
                          progress=progress)


def export(config: PypicloudConfig, options: DeployOptions, directory: str, *,
           progress: Callable[[str], None] | None = None) -> Export:
    """Write what create would make, as a template and the zip it references, into
    ``directory``: for a deploy someone reviews first.  It calls no AWS API (the region
    comes from the options or the bucket's), so it needs no credentials.
    """
    from . import cloudformation

    region = options.region or config.target.region
    if not region:
        raise OptionsError("no AWS region for the template (the bucket's region)",
                           Fix(*REGION, "set storage.region_name in the ini or {} REGION"))
    if options.bundle:
        code = deploy.ZipBundle.from_path(options.bundle, options.runtime, options.arch)
    else:
        from ..bundle.builder import build_bundle

        code = build_bundle(config, runtime=options.runtime, arch=options.arch,
                            progress=progress)
    return cloudformation.export(config, options, region, code, directory)

def server_session(config: PypicloudConfig) -> Any:
    """A boto3 session with the credentials pypicloud itself uses for S3.

    pypicloud passes ``storage.aws_access_key_id`` / ``_secret_access_key`` /
    ``_session_token`` to boto3 when they are set and otherwise relies on boto3's default
    chain (environment, instance or task role); the admin API acts as the same identity.
    """
    import boto3

    from ..function.s3 import credentials

    return boto3.Session(**credentials(config.settings))


def reconcile(config: PypicloudConfig, *, endpoint_url: str | None = None, deep: bool = False,
              dry_run: bool = False, workers: int | None = None,
              progress: Progress | None = None) -> ReconcileReport:
    """Make the cache list exactly the bucket's packages: the bucket checked first (a
    missing one must not read as empty), then the cache opened from the settings.

    The cache is opened here rather than taken from a running server because the admin
    API's work outlives its request, and a request's cache session ends with it.
    ``endpoint_url`` is ``--endpoint-url`` (None: ``s3sync.endpoint_url``).  What the
    operator must fix raises :class:`~pypicloud_s3sync.config.ConfigError` (missing
    credentials name pypicloud's ``storage.*`` keys too, which this reads); AWS failing
    raises :class:`~.errors.AwsError`; the cache's own failures propagate as raised.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from ..function import reconcile as cache_sync
    from ..function.cache import close_cache
    from ..function.s3 import s3_client

    workers = workers or cache_sync.DEFAULT_WORKERS
    try:
        s3 = s3_client(config.settings, min_pool_connections=workers,
                       endpoint_url=config.endpoint_url(endpoint_url))
        cache_sync.check_bucket(s3, config.target)
        cache = cache_sync.open_cache(config.cache_settings(endpoint_url))
        try:
            return cache_sync.reconcile(cache, s3, config.target, deep=deep, dry_run=dry_run,
                                        workers=workers, progress=progress)
        finally:
            close_cache(cache)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, config.endpoint_sources(endpoint_url), storage_keys=True) from exc



def verify(configs: Sequence[PypicloudConfig], *, endpoint_url: str | None = None,
           timeout: float | None = None, progress: Callable[[str], None] | None = None,
           session: Any = None) -> VerifyReport:
    """Send a canary package through every pair of regions and back out (see
    :mod:`pypicloud_s3sync.verify`); the report has the lags, or the first broken link.

    ``configs`` are every region's ini, the caller's own among them (the admin API
    passes the server's config and those its ini names); at least two, with distinct
    buckets, else :class:`~pypicloud_s3sync.config.ConfigError`.  ``progress`` gets a
    line per step.  AWS refusing a call raises :class:`~.errors.AwsError`; the purge
    of every canary runs whatever ends the run, a KeyboardInterrupt included.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from ..verify import run

    sources: dict[str, str] = {}
    for config in configs:
        sources.update(config.endpoint_sources(endpoint_url))
    try:
        return run.verify(configs, endpoint_url=endpoint_url,
                          timeout=run.DEFAULT_TIMEOUT if timeout is None else timeout,
                          progress=progress, session=session)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, sources, storage_keys=True) from exc
