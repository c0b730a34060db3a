"""The run: open every region, purge leftovers, upload a canary in each, wait for it
everywhere, delete it, wait for it to go everywhere, purge; diagnose a wait that ran
out.  Whatever stops the run (a broken link, the deadline, Ctrl-C, an error), the
purge in ``finally`` runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from . import canary, diagnose
from .cleanup import purge
from .overhead import Meter
from .report import Lags, VerifyReport
from .sites import CacheUnreachable, Clients, Site, close, exists, listed, open_site
from .wait import Deadline, poll

if TYPE_CHECKING:
    from ..config import PypicloudConfig

#: Seconds the whole run may take by default (``--timeout``): S3 replicates most
#: objects within seconds, and Replication Time Control promises 15 minutes at worst.
DEFAULT_TIMEOUT = 300.0

Progress = Callable[[str], None]


def check_configs(configs: Sequence[PypicloudConfig]) -> None:
    """At least two inis, each with its own bucket; else what to give instead."""
    if len(configs) < 2:
        raise ConfigError("verify needs the ini of every region, at least two (ppc-s3sync "
                          "verify a.ini b.ini): a canary proves a path between regions")
    buckets = [config.target.bucket for config in configs]
    repeated = sorted({bucket for bucket in buckets if buckets.count(bucket) > 1})
    if repeated:
        raise ConfigError(f"storage.bucket {repeated[0]} is named by more than one of the "
                          "inis: give each region's ini once, each with its own bucket")


@dataclass(frozen=True)
class Link:
    """One thing to wait for: ``stage`` ("replication" or "sync", "delete_..." in the
    delete phase) of ``source``'s canary in ``destination``."""

    source: int
    destination: int
    stage: str


def verify(configs: Sequence[PypicloudConfig], *, endpoint_url: str | None = None,
           timeout: float = DEFAULT_TIMEOUT, progress: Progress | None = None,
           session: Any = None, sleep: Callable[[float], None] = time.sleep) -> VerifyReport:
    """Prove the path between every pair of regions (see the package's text).

    ``endpoint_url`` replaces every AWS endpoint (``--endpoint-url``); ``session`` is
    the boto3 session for the diagnosis's Lambda and SQS reads (the buckets are read
    with pypicloud's own credentials, ``storage.*``).  A broken link is in the report,
    not raised; a KeyboardInterrupt is raised after the purge.
    """
    check_configs(configs)
    deadline = Deadline.after(timeout)  # the whole run's, opening and purging included
    say = progress or (lambda message: None)
    meter = Meter()
    sites: list[Site] = []
    report = VerifyReport([], canary.NAME)
    try:
        clients = Clients()
        for config in configs:
            sites.append(open_site(config, endpoint_url, meter, clients))
        report.sites = [site.to_json() for site in sites]
        report.leftovers = purge(sites, meter, passes=1)
        if report.leftovers:
            say(f"removed {len(report.leftovers)} canary leftover(s) of an earlier run")
        runner = _Runner(sites, meter, deadline, say, sleep, session)
        report.broken = runner.run()
        report.pairs, report.own = runner.lags()
    finally:
        try:
            report.removed = purge(sites, meter)
        finally:
            for site in sites:
                close(site)
            report.cost = meter.to_json()
    return report


class _Runner:
    """The two phases over one set of sites and one deadline."""

    def __init__(self, sites: list[Site], meter: Meter, deadline: Deadline,
                 say: Progress, sleep: Callable[[float], None], session: Any) -> None:
        self.sites, self.meter, self.deadline = sites, meter, deadline
        self.say, self.sleep, self.session = say, sleep, session
        self.seen: dict[Link, float] = {}

    def run(self) -> diagnose.BrokenLink | None:
        unreachable = next((site for site in self.sites if site.cache_error), None)
        if unreachable is not None:
            return diagnose.cache(unreachable)
        started = int(time.time() * 1000)
        for number, site in enumerate(self.sites):
            site.canary = canary.make(site.storage, started, number)
            canary.upload(site.storage, site.canary)
            site.uploaded_at = time.monotonic()
            self.say(f"uploaded {site.canary.filename} to {site.label}")
        broken = self._phase(delete=False)
        if broken is not None:
            return broken
        for site in self.sites:
            assert site.canary is not None
            canary.delete(site.storage, site.canary)
            site.deleted_at = time.monotonic()
        self.say("deleted every canary")
        return self._phase(delete=True)

    def links(self, delete: bool) -> list[Link]:
        """In the order diagnosed: each source's own sync, then each destination's
        replication before its sync."""
        prefix = "delete_" if delete else ""
        found = []
        for s in range(len(self.sites)):
            found.append(Link(s, s, prefix + "sync"))
            for d in range(len(self.sites)):
                if d != s:
                    found += [Link(s, d, prefix + "replication"), Link(s, d, prefix + "sync")]
        return found

    def _phase(self, delete: bool) -> diagnose.BrokenLink | None:
        pending = self.links(delete)
        failed: list[tuple[Site, Site]] = []

        def step() -> bool:
            try:
                self._look(pending, delete)
            except _Unreachable as exc:
                failed.append(exc.args)
                return True
            return not pending

        def show() -> None:
            self.say(f"waiting for {len(pending)} link(s), e.g. {self._name(pending[0])}")

        with self.meter.wait():
            poll(step, self.deadline, sleep=self.sleep, progress=show)
        if failed:
            source, destination = failed[0]
            return diagnose.cache(destination, source)
        if not pending:
            return None
        return self._diagnose(pending, delete)

    def _look(self, pending: list[Link], delete: bool) -> None:
        """One poll of every destination: HEADs for the replicas still awaited, one
        cache read for the entries."""
        for d, destination in enumerate(self.sites):
            mine = [link for link in pending if link.destination == d]
            if not mine:
                continue
            entries = None
            for link in mine:
                source = self.sites[link.source]
                assert source.canary is not None
                if link.stage.endswith("replication"):
                    there = exists(destination, source.canary.key)
                else:
                    if entries is None:
                        try:
                            entries = listed(destination, self.meter)
                        except CacheUnreachable:
                            raise _Unreachable(source, destination) from None
                    there = source.canary.filename in entries
                if there != delete:
                    self._seen(link, pending, delete)

    def _seen(self, link: Link, pending: list[Link], delete: bool) -> None:
        source = self.sites[link.source]
        since = source.deleted_at if delete else source.uploaded_at
        assert since is not None
        self.seen[link] = time.monotonic() - since
        pending.remove(link)
        self.say(f"{self._name(link)}: {self.seen[link]:.2f} s")

    def _name(self, link: Link) -> str:
        source, destination = self.sites[link.source], self.sites[link.destination]
        stage = link.stage.replace("_", " ")
        if link.source == link.destination:
            return f"{source.label} own cache {stage}"
        return f"{source.label} -> {destination.label} {stage}"

    def _diagnose(self, pending: list[Link], delete: bool) -> diagnose.BrokenLink:
        """A replication rule that cannot carry the canary (or its delete marker) is
        broken for certain, so it is named before a link that was merely still
        pending when the time ran out; else the first pending link, as far as it can
        be read."""
        found: dict[tuple[int, int], diagnose.BrokenLink] = {}
        for link in pending:
            if link.stage.endswith("replication"):
                pair = (link.source, link.destination)
                found[pair] = diagnose.replication(self.sites[link.source],
                                                   self.sites[link.destination],
                                                   delete=delete)
                if found[pair].link in diagnose.CONFIGURED_WRONG:
                    return found[pair]
        link = pending[0]
        source, destination = self.sites[link.source], self.sites[link.destination]
        if link.stage.endswith("replication"):
            return found[(link.source, link.destination)]
        return diagnose.function(source, destination, self.session, watch=self.meter.watch)

    def lags(self) -> tuple[list[Lags], list[Lags]]:
        pairs, own = [], []
        for s, source in enumerate(self.sites):
            for d, destination in enumerate(self.sites):
                lags = Lags(source.label, destination.label)
                for link, seconds in self.seen.items():
                    if (link.source, link.destination) == (s, d):
                        lags.seconds[link.stage] = seconds
                (own if s == d else pairs).append(lags)
        return pairs, own


class _Unreachable(Exception):
    """A destination's cache raised during a wait: (source, destination)."""
