"""Several inis as one deploy: each ini's site, and the buckets each replicates to.

Pure (no AWS call): from the loaded configs and their options it says where each sync
goes, which ini speaks for each bucket's replication, and what the inis cannot share,
before anything is read in any region.  One ini alone is its own site with no peers and
its options untouched, so it is provisioned exactly as it always was.

A bucket named by several inis (several servers, each with its own cache) gets one sync
per ini, all through EventBridge: S3 refuses two notification entries for one event
type whose key filters overlap ("Overlapping prefixes and suffixes are not supported",
Amazon S3 API reference, FilterRule), while every EventBridge rule sees every event.
Only the first ini naming a bucket gets its peers, so the bucket's replication is
planned once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..config import split_config_uri
from ..endpoints import partition
from .errors import DELIVERY_EVENTBRIDGE, FUNCTION_NAME, REGION, DeployError, Fix, OptionsError
from .peers import Peer

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .options import DeployOptions


@dataclass(frozen=True)
class Site:
    """One ini's sync: where it goes, with what, and the buckets it replicates to."""

    config: PypicloudConfig
    options: DeployOptions
    region: str
    peers: tuple[Peer, ...] = ()
    #: What the topology chose for this ini and why (said with its plan).
    notes: tuple[str, ...] = ()

    @property
    def ini(self) -> str:
        return self.config.config_uri

    @property
    def bucket(self) -> str:
        return self.config.target.bucket

    @property
    def prefix(self) -> str:
        return self.config.target.prefix

    @property
    def function_name(self) -> str:
        return self.options.function_name

    @property
    def label(self) -> str:
        """How the operator tells the sites apart: ini, region and bucket."""
        return f"{self.ini} ({self.region}, bucket {self.bucket})"


def sites(configs: Sequence[PypicloudConfig], options: Sequence[DeployOptions],
          default_region: str | None = None) -> list[Site]:
    """Each ini's site, in the order given; refuses (:class:`DeployError`,
    :class:`OptionsError`) what the inis cannot share, each with its fix.

    ``default_region`` is the AWS profile's, for an ini that names none.
    """
    if len(configs) != len(options):
        raise ValueError("one DeployOptions per config")
    _refuse_duplicates(configs)
    regions = [_region(config, opts, default_region, several=len(configs) > 1)
               for config, opts in zip(configs, options, strict=True)]
    first: dict[str, int] = {}
    for index, config in enumerate(configs):
        bucket = config.target.bucket
        if bucket in first and regions[first[bucket]] != regions[index]:
            other = configs[first[bucket]]
            raise DeployError(
                f"{other.config_uri} and {config.config_uri} both name bucket {bucket}, "
                f"in {regions[first[bucket]]} and {regions[index]}; a bucket is in one "
                "region",
                Fix(*REGION, f"set storage.region_name to the bucket's region in both, or "
                             f"drop {{}} {regions[index]}"))
        first.setdefault(bucket, index)
    sharing = {bucket: [i for i, c in enumerate(configs) if c.target.bucket == bucket]
               for bucket in first}
    result = []
    for index, (config, opts) in enumerate(zip(configs, options, strict=True)):
        bucket = config.target.bucket
        notes: tuple[str, ...] = ()
        if len(sharing[bucket]) > 1:
            opts, notes = _fan_out(config, opts, [configs[i] for i in sharing[bucket]])
        peers = ()
        if first[bucket] == index:
            peers = tuple(Peer(configs[i].target.bucket, regions[i], configs[i].target.prefix,
                               partition(regions[i]))
                          for other, i in first.items() if other != bucket)
        result.append(Site(config, opts, regions[index], peers, notes))
    _refuse_same_function(result)
    return result


def _refuse_duplicates(configs: Sequence[PypicloudConfig]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for config in configs:
        path, name = split_config_uri(config.config_uri)
        key = (os.path.realpath(path), name)
        if key in seen:
            raise OptionsError(
                f"{config.config_uri} is given twice (as {seen[key]} too); each ini is "
                "one sync, give it once")
        seen[key] = config.config_uri


def _region(config: PypicloudConfig, options: DeployOptions, default: str | None, *,
            several: bool) -> str:
    region = options.region or config.target.region or default
    if not region:
        where = f" for {config.config_uri}" if several else ""
        raise OptionsError(f"no AWS region{where}",
                           Fix(*REGION, "set storage.region_name in the ini or {} REGION"))
    return region


def _fan_out(config: PypicloudConfig, options: DeployOptions,
             sharing: Sequence[PypicloudConfig]) -> tuple[DeployOptions, tuple[str, ...]]:
    """Every ini on a shared bucket listens through EventBridge; one that set another
    delivery is refused rather than silently overridden."""
    others = ", ".join(c.config_uri for c in sharing if c is not config)
    bucket = config.target.bucket
    chosen = config.option("delivery")
    if options.delivery == "eventbridge":
        return options, ()
    if options.delivery != "direct" or chosen:
        raise DeployError(
            f"{config.config_uri} sets delivery {options.delivery}, but bucket {bucket} is "
            f"shared with {others}: S3 cannot send one event type to two destinations "
            "whose prefixes overlap, so every sync of a shared bucket listens through "
            "EventBridge",
            Fix(*DELIVERY_EVENTBRIDGE, "set s3sync.delivery = eventbridge in "
                                       f"{config.config_uri} (or remove it), or use {{}}"))
    note = (f"delivery eventbridge: bucket {bucket} is shared with {others}, and S3 "
            "cannot send one event type to two functions whose prefixes overlap; each "
            "sync gets its own EventBridge rule")
    return replace(options, delivery="eventbridge"), (note,)


def _refuse_same_function(found: Sequence[Site]) -> None:
    seen: dict[tuple[str, str], Site] = {}
    for site in found:
        key = (site.region, site.function_name)
        if key in seen:
            raise DeployError(
                f"{seen[key].ini} and {site.ini} would both deploy function "
                f"{site.function_name} in {site.region}; each sync needs its own function",
                Fix(*FUNCTION_NAME, f"set s3sync.function_name in {site.ini} (or "
                                    f"{seen[key].ini}) to another name, and give no {{}}, "
                                    "which names every ini's function"))
        seen[key] = site


__all__ = ["Site", "sites"]
