"""Regions on moto, as the multi-region deploy makes them: one place to provision them.

Each region: a versioned bucket in its own AWS region, a pypicloud ini (a SQLite cache
of its own), the sync deployed by today's single-ini create with ``--delivery sqs`` (so
moto's S3 sends the bucket's events to the sync's queue), and a replication rule from
every bucket to every other one, delete markers included.  When the create of several
inis at once exists, :func:`provision` is the one place to switch to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from pypicloud_s3sync.config import PypicloudConfig, load_config
from pypicloud_s3sync.provision import deploy

from .deploy_helpers import create, write_zip
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
    """Every bucket replicates to every other (PutBucketReplication, as create will)."""
    for source in regions:
        others = [region for region in regions if region is not source]
        source.s3().put_bucket_replication(
            Bucket=source.bucket,
            ReplicationConfiguration=replication_rules(source, others,
                                                       delete_markers=delete_markers))


def provision(directory: Path, count: int, *, name: str = "packages") -> list[Region]:
    """``count`` regions under ``directory``, each deployed and replicating to every
    other (inside moto: call it within the test's mock)."""
    code = deploy.ZipBundle.from_path(write_zip(directory / "function.zip"))
    regions = []
    for number, aws_region in enumerate(REGIONS[:count]):
        bucket = f"{name}-{aws_region}"
        s3 = boto3.client("s3", region_name=aws_region)
        extra = ({} if aws_region == "us-east-1" else
                 {"CreateBucketConfiguration": {"LocationConstraint": aws_region}})
        s3.create_bucket(Bucket=bucket, **extra)
        s3.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": "Enabled"})
        ini = directory / f"region{number}.ini"
        settings = write_ini(ini, {
            "storage.bucket": bucket, "storage.prefix": PREFIX,
            "storage.region_name": aws_region, "pypi.db": "sql",
            "db.url": f"sqlite:///{directory / f'cache{number}.sqlite'}"})
        config = load_config(str(ini))
        create(config, code, delivery="sqs")
        regions.append(Region(aws_region, bucket, ini, config, settings))
    replicate(regions)
    return regions


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
