"""Every operation a front end runs: the command line and the admin API call only these.

:func:`run` plans, applies unless it is a dry run (or there is nothing to do), and hands
back the result as data (:func:`run_many` the same for several inis, as one deploy);
:func:`reconcile` makes the server's cache agree with its bucket; :func:`redrive` moves
a ``--delivery sqs`` sync's dead-letter queue back to its queue; :func:`export` writes
create's plan as a template instead of applying it; :func:`verify` sends a canary
package between every pair of regions.  Each
front end only renders what they return (text or JSON) and what they raise, so the two
cannot drift apart in what they do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from . import deploy, executor
from .aws import AwsClients
from .awsfailure import translate
from .errors import REGION, ApplyError, Fix, OptionsError, ProvisionError

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from ..function.reconcile import Progress, ReconcileReport
    from ..verify.report import VerifyReport
    from .cloudformation import Export
    from .options import DeployOptions
    from .peers import Peer
    from .plan import Plan, StatusReport, StepResult
    from .redrive import RedriveReport
    from .topology import Site

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
    if action not in ACTIONS:
        raise ValueError(f"unknown provisioning action {action!r}")
    clients = AwsClients.from_config(config, options, session=session)
    outcome = prepare(config, options, action, clients, dry_run=dry_run, progress=progress)
    if outcome.plan is None:
        return outcome
    if on_plan is not None:
        on_plan(outcome.plan)
    if not dry_run and not outcome.plan.is_empty:
        outcome.applied = executor.apply(outcome.plan, clients, progress=progress)
    return outcome


def prepare(config: PypicloudConfig, options: DeployOptions, action: str,
            clients: AwsClients, *, dry_run: bool = False,
            progress: Callable[[str], None] | None = None, peers: Sequence[Peer] = (),
            leaving: Sequence[str] = ()) -> Outcome:
    """:func:`run`'s reading half: the plan (or status's report) and nothing applied, so
    that a run of several inis can plan every region before it changes any.

    ``peers`` and ``leaving`` are what :func:`run_many` hands each ini (see
    :func:`.deploy.plan_delete`).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if action == "status":
            report = deploy.status(config, options, clients, progress=progress, peers=peers)
            return Outcome(action, dry_run=True, report=report)
        if action == "create":
            found = deploy.plan_create(config, options, clients, progress=progress,
                                       peers=peers)
        else:
            found = deploy.plan_delete(config, options, clients, peers=peers,
                                       leaving=leaving)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, clients.endpoint_sources) from exc
    return Outcome(action, dry_run=dry_run, plan=found)


@dataclass
class SiteOutcome:
    """One ini's part of a run of several: its site, and what it planned and did."""

    site: Site
    outcome: Outcome
    clients: AwsClients

    def to_json(self) -> dict[str, Any]:
        """The ini's document: which sync it is, then what one ini's ``--json`` prints."""
        site = self.site
        return {"ini": site.ini, "region": site.region, "bucket": site.bucket,
                "function": site.function_name, "notes": list(site.notes),
                **self.outcome.to_json()}


@dataclass
class ManyOutcome:
    """What a run of several inis planned and did, one section per ini, in their order."""

    action: str
    dry_run: bool
    sections: list[SiteOutcome]

    @property
    def changed(self) -> bool:
        return any(section.outcome.changed for section in self.sections)

    @property
    def is_empty(self) -> bool:
        """No ini's plan has a step (status: always False, it plans nothing to apply)."""
        plans = [section.outcome.plan for section in self.sections]
        return all(found is not None and found.is_empty for found in plans)

    @property
    def applied(self) -> list[StepResult]:
        return [result for section in self.sections for result in section.outcome.applied]

    @property
    def healthy(self) -> bool:
        """Status: every region in sync and no check failed."""
        return all(section.outcome.report is not None and section.outcome.report.healthy
                   for section in self.sections)

    def to_json(self) -> list[dict[str, Any]]:
        return [section.to_json() for section in self.sections]


def run_many(configs: Sequence[PypicloudConfig], options: Sequence[DeployOptions],
             action: str, *, dry_run: bool = False,
             progress: Callable[[str], None] | None = None,
             on_plan: Callable[[SiteOutcome], None] | None = None,
             session: Any = None) -> ManyOutcome:
    """:func:`run` for several inis (one ``options`` each) as one deploy.

    Every region is planned, and ``on_plan`` sees every section, before any change: a
    refusal in any region stops the run before its first call.  Then each region's steps
    are applied, region by region, except those marked ``after_peers`` (a replication
    rule needs every peer bucket versioned), which follow once every region's others are
    done; delete takes them first, so that no rule still points at a bucket it is
    removing.  The inis' sites come from :mod:`.topology`.
    """
    import boto3

    from .topology import sites

    if action not in ACTIONS:
        raise ValueError(f"unknown provisioning action {action!r}")
    session = session or boto3.Session()
    say = progress or (lambda message: None)
    found = sites(configs, options, default_region=session.region_name)
    sections = []
    for site in found:
        say(f"planning {site.label}")
        try:
            clients = AwsClients.from_config(site.config, site.options, session=session)
            outcome = prepare(site.config, site.options, action, clients, dry_run=dry_run,
                              progress=progress, peers=site.peers,
                              leaving=_leaving(site, found) if action == "delete" else ())
        except (ConfigError, ProvisionError) as exc:
            _in_site(exc, site)
            raise
        sections.append(SiteOutcome(site, outcome, clients))
    result = ManyOutcome(action, dry_run, sections)
    if on_plan is not None:
        for section in sections:
            on_plan(section)
    if action == "status" or dry_run or result.is_empty:
        return result
    phases = [False, True] if action == "create" else [True, False]
    for after_peers in phases:
        for section in sections:
            _apply_part(section, after_peers, result, progress)
    return result


def _leaving(site: Site, found: Sequence[Site]) -> list[str]:
    """The other syncs' EventBridge rules on this site's bucket, deleted in the same run."""
    from .names import delivery_rule_name

    return [delivery_rule_name(other.function_name) for other in found
            if other is not site and other.bucket == site.bucket]


def _apply_part(section: SiteOutcome, after_peers: bool, result: ManyOutcome,
                progress: Callable[[str], None] | None) -> None:
    import dataclasses

    planned = section.outcome.plan
    assert planned is not None
    steps = [step for step in planned.steps if step.after_peers == after_peers]
    if not steps:
        return
    if progress is not None:
        progress(f"{section.site.label}:")
    try:
        section.outcome.applied += executor.apply(dataclasses.replace(planned, steps=steps),
                                                  section.clients, progress=progress)
    except ApplyError as exc:
        earlier = len(result.applied)
        exc.done = result.applied + exc.done
        if earlier:
            exc.template += f"; {earlier} earlier step(s) of this run were applied too"
        _in_site(exc, section.site)
        raise


def _in_site(exc: Exception, site: Site) -> None:
    """Open the error's message with the ini, region and bucket it is about."""
    if isinstance(exc, ProvisionError):
        exc.template = f"{site.label}: {exc.template}"
        exc.args = (exc.render(Fix.for_cli),)
    else:
        exc.args = (f"{site.label}: {exc}", *exc.args[1:])


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
