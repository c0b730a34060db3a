"""Reconcile against real caches and a real pypicloud: drift made the ways it happens.

Objects appear behind a cache's back when another pypicloud (another region's, via
replication) writes to the bucket, and disappear when someone deletes them in S3
directly.  Both are produced for real here; the checks are what an operator looks at:
what pypicloud serves afterwards, the report, the exit status and the S3 bill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync import cli
from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.function.reconcile import cached_entries, open_cache, reconcile

BUCKET = "packages"


def s3() -> Any:
    return boto3.client("s3", region_name="us-east-1")


def key_of(server: Any, filename: str) -> str:
    """Where pypicloud put ``filename``, as the cache recorded it."""
    return server.cache().fetch(filename).data["path"]


def run(server: Any, **kwargs: Any) -> Any:
    """One reconcile with the server's own settings, as the CLI would build it."""
    config = load_config(str(server.ini))
    cache = open_cache(config.settings)
    return reconcile(cache, s3(), config.target, **kwargs)


@pytest.fixture
def region_a(aws: None, pypicloud_factory: Any, cache_backend: str) -> Any:
    """pypicloud on the backend under test, with three packages uploaded through it."""
    server = pypicloud_factory(cache=cache_backend, bucket=BUCKET, prefix="pkgs/")
    for name in ("alpha", "beta", "gamma"):
        server.upload(name, "1.0")
    return server


@pytest.fixture
def region_b(pypicloud_factory: Any, tmp_path: Path) -> Any:
    """A second pypicloud on the same bucket with a cache of its own: what it uploads
    is in the bucket with pypicloud's metadata, and unknown to region A's cache."""
    return pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/",
                             **{"db.url": f"sqlite:///{tmp_path / 'region-b.sqlite'}"})


def test_in_sync_costs_one_list_call(region_a: Any) -> None:
    report = run(region_a)

    assert report.in_sync
    assert (report.objects, report.cached) == (3, 3)
    assert report.s3_calls == {"ListObjectsV2": 1}


def test_drift_both_ways_is_fixed_with_one_head_per_difference(
    region_a: Any, region_b: Any
) -> None:
    region_b.upload("delta", "2.0", summary="made elsewhere")
    s3().delete_object(Bucket=BUCKET, Key=key_of(region_a, "beta-1.0.tar.gz"))
    assert region_a.simple("delta") == []
    assert region_a.simple("beta") == ["beta-1.0.tar.gz"]

    report = run(region_a)

    assert report.added == ["delta-2.0.tar.gz"]
    assert report.removed == ["beta-1.0.tar.gz"]
    assert report.updated == []
    assert report.s3_calls == {"ListObjectsV2": 1, "HeadObject": 2}
    assert region_a.simple("delta") == ["delta-2.0.tar.gz"]
    assert region_a.simple("beta") == []
    added = region_a.cache().fetch("delta-2.0.tar.gz")
    assert added.summary == "made elsewhere"
    assert added.data["path"] == key_of(region_b, "delta-2.0.tar.gz")
    assert run(region_a).in_sync


def test_an_entry_recorded_without_a_path_whose_object_is_gone_is_cleared(
    region_a: Any,
) -> None:
    """Older pypicloud versions recorded no path: the HEAD then goes where pypicloud
    would have stored the file, which takes the project name (not part of DynamoDB's
    bulk read, so looked up for this entry alone)."""
    from pypicloud_s3sync.function.sync import committing, save_package

    config = load_config(str(region_a.ini))
    cache = open_cache(config.settings)
    orphan = cache.new_package("omega", "1.0", "omega-1.0.tar.gz")
    orphan.data.pop("path", None)
    with committing(cache):
        save_package(cache, orphan)
    assert region_a.simple("omega") == ["omega-1.0.tar.gz"]

    report = reconcile(cache, s3(), config.target)

    assert report.removed == ["omega-1.0.tar.gz"]
    assert report.s3_calls == {"ListObjectsV2": 1, "HeadObject": 1}
    assert region_a.simple("omega") == []
    assert run(region_a).in_sync


def test_dry_run_reports_and_changes_nothing(region_a: Any, region_b: Any) -> None:
    region_b.upload("delta", "2.0")
    s3().delete_object(Bucket=BUCKET, Key=key_of(region_a, "gamma-1.0.tar.gz"))

    report = run(region_a, dry_run=True)

    assert (report.added, report.removed) == (["delta-2.0.tar.gz"], ["gamma-1.0.tar.gz"])
    assert not report.in_sync
    assert region_a.simple("delta") == []
    assert region_a.simple("gamma") == ["gamma-1.0.tar.gz"]
    again = run(region_a, dry_run=True)
    assert (again.added, again.removed) == (report.added, report.removed)


def test_deep_rereads_metadata_that_changed_behind_the_cache(region_a: Any) -> None:
    key = key_of(region_a, "alpha-1.0.tar.gz")
    head = s3().head_object(Bucket=BUCKET, Key=key)
    metadata = {**head["Metadata"], "summary": "rewritten in S3"}
    s3().copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": key},
                     Metadata=metadata, MetadataDirective="REPLACE")

    shallow = run(region_a)
    assert shallow.in_sync  # names match; a shallow run does not read metadata
    deep = run(region_a, deep=True)

    assert deep.updated == ["alpha-1.0.tar.gz"]
    assert deep.s3_calls == {"ListObjectsV2": 1, "HeadObject": 3}
    assert region_a.cache().fetch("alpha-1.0.tar.gz").summary == "rewritten in S3"
    assert run(region_a, deep=True).in_sync


def test_listing_reads_every_cached_filename(region_a: Any) -> None:
    entries = cached_entries(region_a.cache())

    assert sorted(entries) == ["alpha-1.0.tar.gz", "beta-1.0.tar.gz", "gamma-1.0.tar.gz"]
    for filename, entry in entries.items():
        assert entry.path == key_of(region_a, filename)
        assert entry.path.startswith("pkgs/")


# -- the command line ----------------------------------------------------------------------

def test_cli_exit_status_says_whether_anything_had_to_change(
    aws: None, pypicloud_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET)
    server.upload("alpha", "1.0")
    server.upload("beta", "1.0")
    ini = str(server.ini)

    assert cli.main(["reconcile", ini]) == 0
    out, err = capsys.readouterr()
    assert "in sync" in out
    assert err == ""  # not a terminal: no progress bar
    assert cli.main(["reconcile", ini, "-q"]) == 0
    assert capsys.readouterr().out == ""

    s3().delete_object(Bucket=BUCKET, Key=key_of(server, "beta-1.0.tar.gz"))
    assert cli.main(["reconcile", ini, "--dry-run"]) == cli.EXIT_DRIFT
    out, _ = capsys.readouterr()
    assert "to remove: beta-1.0.tar.gz" in out and "dry run" in out
    assert server.simple("beta") == ["beta-1.0.tar.gz"]

    assert cli.main(["reconcile", ini, "--workers", "2"]) == cli.EXIT_DRIFT
    assert "removed: beta-1.0.tar.gz" in capsys.readouterr().out
    assert server.simple("beta") == []
    assert cli.main(["reconcile", ini, "-q"]) == 0


def test_cli_refuses_a_missing_bucket_without_creating_it(
    aws: None, tmp_path: Path, cache_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ..support.pypicloud_app import write_ini

    ini = tmp_path / "server.ini"
    write_ini(ini, {"storage.bucket": "no-such-bucket", **cache_settings("sqlite")})

    assert cli.main(["reconcile", str(ini)]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "no-such-bucket" in err and "does not exist" in err
    assert "no-such-bucket" not in {b["Name"] for b in s3().list_buckets()["Buckets"]}


def test_cli_reports_an_unreachable_s3_with_its_own_status(
    aws_env: None, tmp_path: Path, cache_settings: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ..support.pypicloud_app import write_ini

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    ini = tmp_path / "server.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "storage.endpoint_url": "http://127.0.0.1:9",
                    **cache_settings("sqlite")})

    assert cli.main(["reconcile", str(ini)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "error: EndpointConnectionError" in err
    assert len(err.splitlines()) == 2  # the failure and what to do; no traceback


@pytest.mark.slow
def test_progress_bar_on_a_terminal_only(moto_server: str, pypicloud_factory: Any) -> None:
    """The console script in its own process, stderr once on a real pty, once on a pipe."""
    import os
    import pty
    import subprocess
    import sys

    server = pypicloud_factory(cache="sqlite", bucket=BUCKET,
                               **{"storage.endpoint_url": moto_server})
    server.upload("alpha", "1.0")
    server.upload("beta", "1.0")
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    client.delete_object(Bucket=BUCKET, Key=key_of(server, "beta-1.0.tar.gz"))
    command = [sys.executable, "-m", "pypicloud_s3sync.cli", "reconcile", str(server.ini),
               "--dry-run"]

    master, slave = pty.openpty()
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        terminal = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the pty is closed once everything was read
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(master)
    assert done.returncode == cli.EXIT_DRIFT
    assert b"listing bucket: 1 page" in terminal
    assert b"reading objects" in terminal and b"1/1" in terminal
    assert b"to remove: beta-1.0.tar.gz" in done.stdout

    piped = subprocess.run(command, capture_output=True, timeout=120)
    assert piped.returncode == cli.EXIT_DRIFT
    assert b"listing" not in piped.stderr and b"reading" not in piped.stderr


def test_objects_that_are_not_packages_cost_nothing(aws: None, pypicloud_factory: Any) -> None:
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/")
    server.upload("alpha", "1.0")
    for key in ("pkgs/index.html", "pkgs/folder/", "elsewhere/beta-1.0.tar.gz"):
        s3().put_object(Bucket=BUCKET, Key=key, Body=b"not a package")

    report = run(server)

    assert report.in_sync
    assert (report.objects, report.ignored) == (1, 2)  # "elsewhere/" is not even listed
    assert report.s3_calls == {"ListObjectsV2": 1}


def test_an_object_uploaded_again_during_the_run_is_not_cleared(
    aws: None, pypicloud_factory: Any
) -> None:
    """Deleted before the listing, back before the HEAD: the HEAD decides, not the list."""
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET)
    server.upload("alpha", "1.0")
    key = key_of(server, "alpha-1.0.tar.gz")
    head = s3().head_object(Bucket=BUCKET, Key=key)
    body = s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3().delete_object(Bucket=BUCKET, Key=key)

    client = s3()

    def upload_again(**_: Any) -> None:
        client.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=head["Metadata"])

    client.meta.events.register("after-call.s3.ListObjectsV2", upload_again)
    config = load_config(str(server.ini))
    report = reconcile(open_cache(config.settings), client, config.target)

    assert report.removed == [] and report.in_sync
    assert report.s3_calls == {"ListObjectsV2": 1, "HeadObject": 1, "PutObject": 1}
    assert server.simple("alpha") == ["alpha-1.0.tar.gz"]


# -- the scheduled variant, through the Lambda handler ---------------------------------------

#: What an EventBridge schedule rule delivers to its Lambda target.
SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-27T03:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/pypicloud-s3sync-reconcile"],
    "detail": {},
}


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    from pypicloud_s3sync.function import handler as module

    module.reset()
    yield module
    module.reset()


def test_a_schedule_event_reconciles_inside_the_function(
    aws: None, pypicloud_factory: Any, region_b: Any, handler: Any,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    server = pypicloud_factory(cache="redis", bucket=BUCKET, prefix="pkgs/")
    server.upload("alpha", "1.0")
    region_b.upload("delta", "2.0")
    settings = load_config(str(server.ini)).function.values
    assert settings["storage.bucket"] == BUCKET
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(settings))

    result = handler.handle_event(SCHEDULED_EVENT, None)

    assert result["added"] == ["delta-2.0.tar.gz"] and result["in_sync"] is False
    assert result["s3_calls"] == {"ListObjectsV2": 1, "HeadObject": 1}
    assert server.simple("delta") == ["delta-2.0.tar.gz"]
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["action"], e["added"], e["removed"]) for e in logged] == [("reconcile", 1, 0)]
    assert handler.handle_event(SCHEDULED_EVENT, None)["in_sync"] is True

    deep = {**SCHEDULED_EVENT, "detail": {"deep": True}}
    assert handler.handle_event(deep, None)["s3_calls"]["HeadObject"] == 2


def test_a_file_stored_under_two_keys_is_reported_not_rewritten(
    aws: None, pypicloud_factory: Any
) -> None:
    """E.g. after ``storage.prepend_hash`` was switched: the cache's key still exists."""
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET)
    server.upload("alpha", "1.0")
    key = key_of(server, "alpha-1.0.tar.gz")
    s3().copy_object(Bucket=BUCKET, Key="alpha/alpha-1.0.tar.gz",
                     CopySource={"Bucket": BUCKET, "Key": key})

    report = run(server)

    assert report.in_sync
    assert report.duplicates == {"alpha-1.0.tar.gz": sorted([key, "alpha/alpha-1.0.tar.gz"])}
    assert "stored twice" in report.summary()
    assert report.s3_calls == {"ListObjectsV2": 1}


# -- what is read but not cached, and what a deep run removes ---------------------------------

def test_a_listed_object_that_is_no_package_is_reported_and_not_cached(
    aws: None, pypicloud_factory: Any
) -> None:
    """A file with a package's extension but neither pypicloud's metadata nor a name
    and version in its filename: pypicloud would not list it, so neither does the cache."""
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/")
    server.upload("alpha", "1.0")
    s3().put_object(Bucket=BUCKET, Key="pkgs/README.tar.gz", Body=b"notes")

    report = run(server)

    assert (report.not_packages, report.vanished, report.added) == (["pkgs/README.tar.gz"], [], [])
    assert report.in_sync
    assert "  skipped, not a package: pkgs/README.tar.gz" in report.summary().splitlines()
    assert set(cached_entries(server.cache())) == {"alpha-1.0.tar.gz"}


def test_an_object_deleted_between_listing_and_reading_is_reported_not_cached(
    aws: None, pypicloud_factory: Any, region_b: Any
) -> None:
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/")
    region_b.upload("delta", "2.0")
    key = key_of(region_b, "delta-2.0.tar.gz")
    client = s3()
    client.meta.events.register(
        "after-call.s3.ListObjectsV2",
        lambda **_: s3().delete_object(Bucket=BUCKET, Key=key))

    config = load_config(str(server.ini))
    report = reconcile(open_cache(config.settings), client, config.target)

    assert (report.vanished, report.not_packages, report.added) == ([key], [], [])
    assert f"  vanished while reading: {key}" in report.summary().splitlines()
    assert cached_entries(server.cache()) == {}


def test_a_deep_run_removes_an_entry_whose_object_is_no_package_any_more(
    aws: None, pypicloud_factory: Any
) -> None:
    """Overwritten in S3 without pypicloud's metadata, under a filename that names no
    version: pypicloud would not list the object now, so the entry goes."""
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/")
    key = "pkgs/README.tar.gz"
    s3().put_object(Bucket=BUCKET, Key=key, Body=b"v1",
                    Metadata={"name": "readme", "version": "1.0"})
    assert run(server).added == ["README.tar.gz"]
    s3().put_object(Bucket=BUCKET, Key=key, Body=b"v2")

    assert run(server).in_sync  # the names still agree: only a deep run reads it
    report = run(server, deep=True)

    assert (report.removed, report.not_packages, report.vanished) == (["README.tar.gz"], [], [])
    assert cached_entries(server.cache()) == {}


# -- a bucket that cannot be listed must stop the run, never look empty ----------------------

def test_a_missing_bucket_is_named_with_its_region_and_what_to_check(
    aws: None, tmp_path: Path, cache_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ..support.pypicloud_app import write_ini

    # Without storage.region_name, the region is the environment's (AWS_DEFAULT_REGION).
    for region, where in (("eu-west-1", "eu-west-1"), (None, "us-east-1")):
        ini = tmp_path / "server.ini"
        write_ini(ini, {"storage.bucket": "no-such-bucket", **cache_settings("sqlite"),
                        **({"storage.region_name": region} if region else {})})
        assert cli.main(["reconcile", str(ini)]) == cli.EXIT_CONFIG
        assert capsys.readouterr().err == (
            f"ppc-s3sync reconcile: error: bucket no-such-bucket (storage.bucket) does not "
            f"exist in {where}; reconcile never creates buckets. Check storage.bucket and "
            "storage.region_name\n")


@pytest.mark.parametrize("status", [403, 500])
def test_a_bucket_that_cannot_be_read_stops_the_run_with_its_own_error(
    aws: None, status: int
) -> None:
    """HeadBucket (botocore's model, from the S3 API Reference): "If the bucket does not
    exist or you do not have permission to access it, the HEAD request returns a generic
    404 Not Found or 403 Forbidden code. A message body is not included, so you cannot
    determine the exception beyond these error codes."  moto does not refuse a HEAD for
    want of s3:ListBucket, so a Stubber gives the answer; any other status is no
    verdict on the bucket and propagates as it is."""
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    from pypicloud_s3sync.config import ConfigError, SyncTarget
    from pypicloud_s3sync.function.reconcile import check_bucket

    client = s3()
    with Stubber(client) as stub:
        stub.add_client_error("head_bucket", service_error_code=str(status),
                              http_status_code=status)
        expected = ConfigError if status == 403 else ClientError
        with pytest.raises(expected) as info:
            check_bucket(client, SyncTarget(bucket=BUCKET, prefix="pkgs/"))
    if status == 403:
        assert str(info.value) == (
            f"access to bucket {BUCKET} was denied; reconcile needs s3:ListBucket on it "
            "and s3:GetObject under the prefix")


def test_an_entry_whose_object_moved_to_another_key_is_pointed_at_it(
    aws: None, pypicloud_factory: Any, cache_backend: str
) -> None:
    """The object now lives only under another key (moved in S3, e.g. after
    ``storage.prepend_hash`` was switched): pypicloud would download from the old key
    and fail, so the entry is rewritten from one HEAD of the new one.  Every backend's
    bulk read must return the recorded key for this to be seen: the filename alone is
    listed and cached, as if nothing were wrong."""
    server = pypicloud_factory(cache=cache_backend, bucket=BUCKET)
    server.upload("alpha", "1.0")
    old = key_of(server, "alpha-1.0.tar.gz")
    new = "alpha/alpha-1.0.tar.gz"
    s3().copy_object(Bucket=BUCKET, Key=new, CopySource={"Bucket": BUCKET, "Key": old})
    s3().delete_object(Bucket=BUCKET, Key=old)

    report = run(server)

    assert (report.updated, report.removed, report.added) == (["alpha-1.0.tar.gz"], [], [])
    assert report.s3_calls == {"ListObjectsV2": 1, "HeadObject": 1}
    assert key_of(server, "alpha-1.0.tar.gz") == new
    assert server.simple("alpha") == ["alpha-1.0.tar.gz"]


def test_a_file_stored_twice_is_not_rewritten_whichever_key_is_listed_first(
    aws: None, pypicloud_factory: Any
) -> None:
    """As above, with the copy's key sorting before the cached one: ListObjectsV2
    returns keys in UTF-8 binary order, so the copy stands for the file in the
    listing, and the cached key, still present, must keep the entry as it is."""
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET)
    server.upload("alpha", "1.0")
    key = key_of(server, "alpha-1.0.tar.gz")
    first = "-/alpha-1.0.tar.gz"  # "-" sorts before every hex digit and letter
    s3().copy_object(Bucket=BUCKET, Key=first, CopySource={"Bucket": BUCKET, "Key": key})

    report = run(server)

    assert report.in_sync and report.duplicates == {"alpha-1.0.tar.gz": [first, key]}
    assert report.s3_calls == {"ListObjectsV2": 1}
    assert key_of(server, "alpha-1.0.tar.gz") == key


def test_an_entry_without_a_recorded_path_is_confirmed_where_pypicloud_puts_the_file(
    aws: None, pypicloud_factory: Any
) -> None:
    """An entry that records no S3 path (written by something other than pypicloud's
    S3 storage) and is not listed: its object is HEADed where pypicloud's
    ``ObjectStoreStorage.get_path`` puts it (prefix, md5 of the filename, name), so a
    file uploaded there again after the listing keeps its entry, which now records the
    path.  A HEAD anywhere else would find nothing and remove a served package."""
    import hashlib

    from pypicloud_s3sync.function.sync import committing

    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/")
    server.upload("alpha", "1.0")
    key = key_of(server, "alpha-1.0.tar.gz")
    assert key == f"pkgs/{hashlib.md5(b'alpha-1.0.tar.gz').hexdigest()[:4]}/alpha/alpha-1.0.tar.gz"
    head = s3().head_object(Bucket=BUCKET, Key=key)
    body = s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3().delete_object(Bucket=BUCKET, Key=key)
    cache = server.cache()
    with committing(cache):
        cache.save(cache.new_package("alpha", "1.0", "alpha-1.0.tar.gz"))
    assert "path" not in server.cache().fetch("alpha-1.0.tar.gz").data

    client = s3()
    client.meta.events.register(
        "after-call.s3.ListObjectsV2",
        lambda **_: s3().put_object(Bucket=BUCKET, Key=key, Body=body,
                                    Metadata=head["Metadata"]))
    config = load_config(str(server.ini))
    report = reconcile(open_cache(config.settings), client, config.target)

    assert (report.removed, report.updated) == ([], ["alpha-1.0.tar.gz"])
    assert key_of(server, "alpha-1.0.tar.gz") == key
    assert server.simple("alpha") == ["alpha-1.0.tar.gz"]
