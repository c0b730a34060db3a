"""``ppc-s3sync verify`` on moto, for two and three regions: it passes on a working
topology with every lag measured, names each kind of broken link with its fix, and
leaves no canary behind, whatever ends the run.

The regions are provisioned as the deploy makes them (tests/support/topology.py);
while verify runs, tests/support/region_sync.py runs each region's sync in-process
(its queue read as Lambda's poller would, the handler built from the deployed
function's environment) and the replicator standing in for S3's replication.  What
moto cannot show: real replication's timing and its IAM role, Lambda's own poller, and
a function's logs (verify names the log group; nothing here writes one).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync import cli
from pypicloud_s3sync.config import ConfigError, load_config
from pypicloud_s3sync.provision import operation
from pypicloud_s3sync.verify import canary, diagnose
from pypicloud_s3sync.verify.overhead import Meter
from pypicloud_s3sync.verify.report import VerifyReport
from pypicloud_s3sync.verify.sites import open_site

from ..support.pypicloud_app import write_ini
from ..support.region_moto import regions_on_moto
from ..support.region_sync import RegionSync
from ..support.topology import (
    PREFIX,
    Region,
    canaries_left,
    function_environment,
    replicate,
    restore,
    set_function_settings,
)

pytestmark = pytest.mark.slow

#: A working path takes about a second here (a few on a loaded machine); a break is only
#: found when the wait ends, and a break in the delete phase needs the uploads to have
#: arrived everywhere first, which takes several seconds on a machine running two workers.
PASSING = 30.0
BREAKING = 15.0


@pytest.fixture(scope="module", params=[2, 3], ids=["2 regions", "3 regions"])
def topology(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Region]]:
    """Regions provisioned once per module and count, inside a moto of their own."""
    with regions_on_moto(tmp_path_factory.mktemp(f"regions{request.param}"),
                         request.param) as regions:
        yield regions


@pytest.fixture
def regions(topology: list[Region]) -> Iterator[list[Region]]:
    """The module's regions, put back as provisioned after each test's break."""
    environments = [function_environment(region) for region in topology]
    yield topology
    restore(topology)
    for region, env in zip(topology, environments, strict=True):
        if function_environment(region) != env:
            set_function_settings(region, json.loads(env["PYPICLOUD_SETTINGS"]))


def verify(regions: list[Region], timeout: float = PASSING, **kwargs: Any) -> VerifyReport:
    """The run, while every region's sync and the replication run."""
    with RegionSync(regions):
        return operation.verify([region.config for region in regions], timeout=timeout,
                                **kwargs)


def printed_document(out: str) -> dict[str, Any]:
    """The command's JSON document, among the log lines the in-process functions wrote
    to the same stdout (one line each)."""
    lines = out.splitlines()
    start = lines.index("{")
    return json.loads("\n".join(lines[start:lines.index("}", start) + 1]))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_working_topology_passes_with_every_lag_measured(regions: list[Region]) -> None:
    report = verify(regions)
    assert report.ok and report.exit_code == 0, report.describe()
    count = len(regions)
    assert len(report.pairs) == count * (count - 1)
    assert {(pair.source, pair.destination) for pair in report.pairs} == {
        (a.label, b.label)
        for a in regions for b in regions if a is not b}
    for lags in report.pairs + report.own:
        document = lags.to_json()
        measured = [value for key, value in document.items() if key.endswith("_lag")]
        assert measured and all(value is not None and value >= 0 for value in measured), document
    assert len(report.own) == count
    assert report.leftovers == []
    assert canaries_left(regions) == []


def test_a_bucket_without_a_replication_rule_is_named_with_the_fix(
        regions: list[Region]) -> None:
    last, first = regions[-1], regions[0]
    last.s3().delete_bucket_replication(Bucket=last.bucket)
    report = verify(regions, timeout=BREAKING)
    broken = report.broken
    assert broken is not None and report.exit_code != 0
    assert broken.link == diagnose.NO_RULE
    assert (broken.source, broken.destination) == (last.label, first.label)
    assert f"ppc-s3sync create {last.ini} {first.ini}" in broken.fix
    assert f"arn:aws:s3:::{first.bucket}" in broken.fix  # the rule to add, spelled out
    assert canaries_left(regions) == []


def test_a_rule_without_delete_marker_replication_is_named(regions: list[Region]) -> None:
    replicate(regions, delete_markers=False)
    report = verify(regions, timeout=BREAKING)
    broken = report.broken
    assert broken is not None and broken.link == diagnose.NO_DELETE_MARKERS, report.describe()
    assert broken.source == regions[0].label
    assert "DeleteMarkerReplication Status=Enabled" in broken.fix
    # The uploads did arrive everywhere before the deletes did not.
    assert all(pair.seconds.get("sync") is not None for pair in report.pairs)
    assert canaries_left(regions) == []


def test_a_failing_function_is_named_with_its_logs(regions: list[Region]) -> None:
    broken_region = regions[1]
    settings = json.loads(function_environment(broken_region)["PYPICLOUD_SETTINGS"])
    set_function_settings(broken_region, {**settings, "pypi.db": "redis",
                                          "db.url": f"redis://127.0.0.1:{closed_port()}/0"})
    report = verify(regions, timeout=BREAKING)
    broken = report.broken
    assert broken is not None and broken.link == diagnose.FUNCTION_FAILING, report.describe()
    assert broken.destination == broken_region.label
    assert "pypicloud_s3_sync" in broken.message
    assert "in flight" in broken.message  # the queue's messages it failed, read
    assert f"/aws/lambda/pypicloud_s3_sync in {broken_region.name}" in broken.fix
    assert canaries_left(regions) == []


def test_an_unreachable_cache_is_named_with_its_error_redacted(
        regions: list[Region], tmp_path: Path) -> None:
    unreachable = tmp_path / "unreachable.ini"
    write_ini(unreachable, {**regions[-1].settings, "pypi.db": "redis",
                            "db.url": f"redis://:s3cret@127.0.0.1:{closed_port()}/0"})
    configs = [region.config for region in regions[:-1]] + [load_config(str(unreachable))]
    with RegionSync(regions):
        report = operation.verify(configs, timeout=BREAKING)
    broken = report.broken
    assert broken is not None and broken.link == diagnose.CACHE_UNREACHABLE
    assert broken.destination == regions[-1].label
    assert "ConnectionError" in broken.message
    assert "s3cret" not in json.dumps(report.to_json())
    assert canaries_left(regions) == []


@pytest.mark.parametrize("topology", [2], indirect=True, ids=["2 regions"])
def test_ctrl_c_mid_wait_leaves_no_canary(regions: list[Region]) -> None:
    def interrupt(line: str) -> None:
        if line.endswith(" s"):  # a lag seen: the wait is under way
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        verify(regions, progress=interrupt)
    assert canaries_left(regions) == []


@pytest.mark.parametrize("topology", [2], indirect=True, ids=["2 regions"])
def test_the_next_run_removes_what_an_interrupted_run_left(regions: list[Region]) -> None:
    """A run killed outright (no ``finally``) left its canary in the first bucket, its
    replica in the second, and both caches' entries."""
    first = regions[0]
    storage = open_site(first.config, None, Meter()).storage
    left = canary.make(storage, 1, 0)
    with RegionSync(regions) as sync:
        canary.upload(storage, left)
        # Until it is everywhere, however slow the machine: PASSING is verify's own wait.
        deadline = time.monotonic() + PASSING
        while (len(canaries_left(regions)) < 2 * len(regions)
               and time.monotonic() < deadline):
            sync._stop.wait(0.05)
    assert len(canaries_left(regions)) == 2 * len(regions)
    # Where cli.rst says every canary lies, with the metadata pypicloud's upload writes.
    assert left.key == f"{PREFIX}c0de/{canary.NAME}/{left.filename}"
    metadata = first.s3().head_object(Bucket=first.bucket, Key=left.key)["Metadata"]
    assert (metadata["name"], metadata["version"]) == (canary.NAME, left.version)

    report = verify(regions)
    assert report.ok, report.describe()
    found = {(item.where, item.what, item.name) for item in report.leftovers}
    assert (first.bucket, "version", left.key) in found
    assert (regions[1].bucket, "version", left.key) in found
    assert (f"cache of {regions[1].bucket}", "entry", left.filename) in found
    assert canaries_left(regions) == []


@pytest.mark.parametrize("topology", [2], indirect=True, ids=["2 regions"])
def test_the_command_prints_json_and_exits_by_the_outcome(
        regions: list[Region], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inis = [str(region.ini) for region in regions]
    with RegionSync(regions):
        assert cli.main(["verify", *inis, "--json", "-q", "--timeout", str(PASSING)]) == 0
    document = printed_document(capsys.readouterr().out)
    assert document["ok"] is True and document["broken"] is None
    assert set(document) >= {"sites", "pairs", "own", "leftovers", "overhead", "waits"}
    assert set(document["pairs"][0]) == {"source", "destination", "replication_lag",
                                         "sync_lag", "delete_replication_lag",
                                         "delete_sync_lag"}
    assert document["overhead"]["calls"] > 0 and document["overhead"]["seconds"] > 0

    unreachable = tmp_path / "unreachable.ini"
    write_ini(unreachable, {**regions[1].settings, "pypi.db": "redis",
                            "db.url": f"redis://127.0.0.1:{closed_port()}/0"})
    assert cli.main(["verify", inis[0], str(unreachable), "--timeout", "5"]) == 3
    out = capsys.readouterr().out
    assert f"broken link: {diagnose.CACHE_UNREACHABLE}" in out and "fix: " in out
    assert canaries_left(regions) == []


@pytest.mark.parametrize("topology", [2], indirect=True, ids=["2 regions"])
def test_one_ini_one_bucket_twice_or_a_missing_bucket_is_a_usage_error(
        regions: list[Region], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ini = str(regions[0].ini)
    assert cli.main(["verify", ini]) == 2
    assert "at least two" in capsys.readouterr().err
    assert cli.main(["verify", ini, ini]) == 2
    assert "each with its own bucket" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        operation.verify([regions[0].config])
    missing = tmp_path / "missing.ini"
    write_ini(missing, {**regions[1].settings, "storage.bucket": "no-such-bucket"})
    assert cli.main(["verify", ini, str(missing)]) == 2
    assert "bucket no-such-bucket (storage.bucket in" in capsys.readouterr().err
    assert boto3.client("s3").list_object_versions(
        Bucket=regions[0].bucket, Prefix=PREFIX).get("Versions") is None
