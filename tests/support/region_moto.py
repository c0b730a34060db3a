"""The regions of tests/support/topology.py inside a moto of their own, with the fixes of
moto_gaps that their sync needs: what a test module takes once and shares between its
tests (the deploy of each region is the slow part)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import moto_gaps
from .pypicloud_app import Pypicloud, make_app, write_ini
from .topology import Region, provision

#: Fake credentials and a region, so nothing can reach (or bill) a real account.
FAKE_ACCOUNT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@contextlib.contextmanager
def regions_on_moto(directory: Path, count: int) -> Iterator[list[Region]]:
    """``count`` regions provisioned under ``directory``, every AWS call of the process
    going to one in-process moto until the block ends."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            patch.delenv(name, raising=False)
        for name, value in FAKE_ACCOUNT.items():
            patch.setenv(name, value)
        moto_gaps.account_settings(patch)
        moto_gaps.replication_checked(patch)
        moto_gaps.apply(patch)
        moto_gaps.delete_marker_events(patch)
        with mock_aws():
            yield provision(directory, count)


def region_server(region: Region, directory: Path, **extra: str) -> Pypicloud:
    """The region's own pypicloud, with the plugin, as its operator runs it: its ini
    plus ``extra`` settings (``s3sync.verify_with`` ...), and the function's zip the
    region was deployed with as ``s3sync.bundle`` and its delivery, so that a status
    builds no zip and finds the sync as deployed."""
    ini = directory / f"server-{region.name}-{len(list(directory.glob('server-*')))}.ini"
    settings = write_ini(ini, {**region.settings, "s3sync.delivery": "sqs",
                               "s3sync.bundle": str(region.ini.parent / "function.zip"),
                               **extra})
    return Pypicloud(ini=ini, settings=settings, app=make_app(ini))
