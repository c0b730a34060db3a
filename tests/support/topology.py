"""Regions on moto, as the multi-region deploy makes them: one place to provision them.

Each region: a bucket in its own AWS region and a pypicloud ini (a SQLite cache of its
own), and all of them deployed by one create of every ini, which versions the buckets
and makes a replication rule from every bucket to every other one, delete markers
included.  :func:`replicate` writes rules by hand instead, for a test that breaks them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from pypicloud_s3sync.config import PypicloudConfig, load_config
from pypicloud_s3sync.provision import deploy, operation

from .deploy_helpers import make_bucket, write_zip
from .pypicloud_app import write_ini

PREFIX = "pkgs/"
ROLE = "arn:aws:iam::123456789012:role/replication"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


@dataclass
class Region:
    """One region's bucket, ini and config."""

    name: str
    bucket: str
    ini: Path
    config: PypicloudConfig
    #: Every setting of the ini, for a test that writes a variant of it.
    settings: dict[str, str]

    def s3(self, endpoint_url: str | None = None) -> Any:
        return boto3.client("s3", region_name=self.name, endpoint_url=endpoint_url)

    @property
    def label(self) -> str:
        """How verify's report names the region's bucket."""
        return f"{self.bucket} ({self.name})"


def replication_rules(source: Region, others: Sequence[Region], *,
                      delete_markers: bool = True) -> dict[str, Any]:
    """The source's rules: one per destination, the packages' prefix, delete markers."""
    return {"Role": ROLE, "Rules": [{
        "ID": f"to-{other.bucket}", "Priority": number + 1, "Status": "Enabled",
        "Filter": {"Prefix": PREFIX},
        "DeleteMarkerReplication": {"Status": "Enabled" if delete_markers else "Disabled"},
        "Destination": {"Bucket": f"arn:aws:s3:::{other.bucket}"},
    } for number, other in enumerate(others)]}


def replicate(regions: Sequence[Region], *, delete_markers: bool = True) -> None:
    """Every bucket replicates to every other by rules of someone else's, replacing
    create's (PutBucketReplication)."""
    for source in regions:
        others = [region for region in regions if region is not source]
        source.s3().put_bucket_replication(
            Bucket=source.bucket,
            ReplicationConfiguration=replication_rules(source, others,
                                                       delete_markers=delete_markers))


def provision(directory: Path, count: int, *, name: str = "packages") -> list[Region]:
    """``count`` regions under ``directory``, deployed as one ``ppc-s3sync create`` of
    their inis (``--delivery sqs``, so moto's S3 sends the bucket's events to the sync's
    queue; ``--allow-versioning``, so every bucket replicates to every other): inside
    moto, call it within the test's mock."""
    bundle = str(write_zip(directory / "function.zip"))
    regions = []
    for number, aws_region in enumerate(REGIONS[:count]):
        bucket = f"{name}-{aws_region}"
        make_bucket(bucket, aws_region)
        ini = directory / f"region{number}.ini"
        settings = write_ini(ini, {
            "storage.bucket": bucket, "storage.prefix": PREFIX,
            "storage.region_name": aws_region, "pypi.db": "sql",
            "db.url": f"sqlite:///{directory / f'cache{number}.sqlite'}"})
        regions.append(Region(aws_region, bucket, ini, load_config(str(ini)), settings))
    create_all(regions, bundle)
    return regions


def create_all(regions: Sequence[Region], bundle: str) -> None:
    """``ppc-s3sync create`` of every region's ini at once, as :func:`provision` made
    them; a test that broke a rule removes it first (create keeps someone else's)."""
    configs = [region.config for region in regions]
    operation.run_many(configs, [deploy.DeployOptions.from_config(
        config, delivery="sqs", allow_versioning=True, bundle=bundle) for config in configs],
        "create")


def restore(regions: Sequence[Region]) -> None:
    """Back to what :func:`provision` made: the replication rules a test wrote by hand
    removed, and create run again over whatever else it changed."""
    for region in regions:
        region.s3().delete_bucket_replication(Bucket=region.bucket)
    create_all(regions, str(regions[0].ini.parent / "function.zip"))


def function_environment(region: Region, function: str = "pypicloud_s3_sync") -> dict[str, str]:
    """The deployed function's environment variables, as Lambda hands them to it."""
    found = boto3.client("lambda", region_name=region.name).get_function_configuration(
        FunctionName=function)
    return dict(found.get("Environment", {}).get("Variables", {}))


def set_function_settings(region: Region, settings: dict[str, str],
                          function: str = "pypicloud_s3_sync") -> None:
    """Replace the deployed function's ``PYPICLOUD_SETTINGS`` (as a console edit would)."""
    env = function_environment(region, function)
    env["PYPICLOUD_SETTINGS"] = json.dumps(settings)
    boto3.client("lambda", region_name=region.name).update_function_configuration(
        FunctionName=function, Environment={"Variables": env})


def canaries_left(regions: Sequence[Region]) -> list[str]:
    """Every canary object version, delete marker and cache entry, in every region."""
    from pypicloud_s3sync.function.cache import close_cache
    from pypicloud_s3sync.function.reconcile import open_cache
    from pypicloud_s3sync.verify import canary

    found = []
    for region in regions:
        listing = region.s3().list_object_versions(Bucket=region.bucket, Prefix=PREFIX)
        found += [f"{region.bucket}: {item['Key']}"
                  for item in listing.get("Versions", []) + listing.get("DeleteMarkers", [])
                  if canary.NAME in item["Key"]]
        cache = open_cache(region.config.cache_settings())
        try:
            found += [f"cache of {region.bucket}: {package.filename}"
                      for package in cache.all(canary.NAME)]
        finally:
            close_cache(cache)
    return found
