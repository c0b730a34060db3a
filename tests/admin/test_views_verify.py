"""``POST /admin/s3sync/verify`` in pypicloud's real app: the canary sent between this
server's region and those ``s3sync.verify_with`` names, on moto.

The regions are provisioned as the deploy makes them (tests/support/topology.py), and
while a verify runs, tests/support/region_sync.py runs each region's sync in-process
and the replicator stands in for S3's replication, as in the command's own tests.
What an operator checks is the answer: the lags of every pair and direction, or the
broken link with its fix, and that no canary is left behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pypicloud_s3sync.config import ConfigError
from pypicloud_s3sync.verify import diagnose

from ..support.pypicloud_app import ADMIN, USER, Pypicloud, basic_auth, call_api, write_ini
from ..support.region_moto import region_server, regions_on_moto
from ..support.region_sync import RegionSync
from ..support.topology import Region, canaries_left, restore

pytestmark = pytest.mark.slow

URL = "/admin/s3sync/verify"
#: A working path takes about a second here; a break is only found when the wait ends.
BREAKING = 5


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Region]]:
    with regions_on_moto(tmp_path_factory.mktemp("regions"), 2) as provisioned:
        yield provisioned


@pytest.fixture(scope="module")
def server(regions: list[Region], tmp_path_factory: pytest.TempPathFactory) -> Pypicloud:
    """The first region's pypicloud, verifying with the second."""
    return region_server(regions[0], tmp_path_factory.mktemp("server"),
                         **{"s3sync.verify_with": str(regions[1].ini)})


@pytest.fixture
def restored(regions: list[Region]) -> Iterator[list[Region]]:
    """The regions, put back as provisioned after a test's break."""
    yield regions
    restore(regions)


def call(app: Any, method: str = "post", user: tuple[str, str] | None = ADMIN,
         body: Any = None, headers: dict[str, str] | None = None) -> Any:
    return call_api(app, URL, method, user, body, headers=headers)


def test_admin_gets_the_lags_of_every_pair_and_direction(server: Pypicloud,
                                                         regions: list[Region]) -> None:
    with RegionSync(regions):
        res = call(server.app, body={})

    assert res.status_int == 200, res.text
    assert res.json["action"] == "verify" and res.json["state"] == "succeeded"
    report = res.json["report"]
    assert report["ok"] is True and report["broken"] is None
    first, second = regions[0].label, regions[1].label
    assert {(pair["source"], pair["destination"]) for pair in report["pairs"]} == {
        (first, second), (second, first)}
    for lags in report["pairs"] + report["own"]:
        measured = [value for key, value in lags.items() if key.endswith("_lag")]
        assert measured and all(value is not None and value >= 0 for value in measured), lags
    assert any(line.startswith("uploaded ") for line in res.json["progress"])
    assert "deleted every canary" in res.json["progress"]
    again = call(server.app, "get")
    assert again.status_int == 200 and again.json == res.json
    assert canaries_left(regions) == []


def test_a_broken_link_is_the_report_with_its_fix(server: Pypicloud,
                                                  restored: list[Region]) -> None:
    """The run worked, the path did not: the operation succeeds and its report names
    the link (the first region replicates nowhere), as the command's exit status 3."""
    first, second = restored
    first.s3().delete_bucket_replication(Bucket=first.bucket)
    with RegionSync(restored):
        res = call(server.app, body={"timeout": BREAKING})

    assert res.status_int == 200, res.text
    assert res.json["state"] == "succeeded" and res.json["report"]["ok"] is False
    broken = res.json["report"]["broken"]
    assert broken["link"] == diagnose.NO_RULE
    assert (broken["source"], broken["destination"]) == (first.label, second.label)
    assert f"ppc-s3sync create <this server's ini> {second.ini}" in broken["fix"]
    # The wait's once-a-second line is rewritten in place, not appended each time.
    waiting = [line for line in res.json["progress"] if line.startswith("waiting for ")]
    assert len(waiting) <= 1, waiting
    assert canaries_left(restored) == []


@pytest.mark.parametrize("who, status", [(None, 401), (USER, 403)],
                         ids=["anonymous", "non-admin"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_only_admins_get_in(server: Pypicloud, regions: list[Region], method: str,
                            who: tuple[str, str] | None, status: int) -> None:
    res = call(server.app, method, who, body={})
    theirs = getattr(server.app, method)(
        "/admin/rebuild" if method == "post" else "/admin/pending_users", status="*",
        extra_environ=basic_auth(who) if who else {})
    assert res.status_int == theirs.status_int == status
    assert canaries_left(regions) == []


def test_a_foreign_origin_a_form_post_and_a_bad_timeout_are_refused(
        server: Pypicloud, regions: list[Region]) -> None:
    app = server.app
    res = call(app, body={}, headers={"Origin": "https://evil.example"})
    assert (res.status_int, res.json["error"]) == (403, "cross_origin")
    res = call_api(app, URL, "post", ADMIN, "timeout=5",
                   content_type="application/x-www-form-urlencoded")
    assert res.status_int == 415
    for timeout in (0, "5", True, 3600):
        res = call(app, body={"timeout": timeout})
        assert (res.status_int, res.json["error"]) == (400, "bad_request"), timeout
        assert "at most 900" in res.json["message"]
    res = call(app, body={"dry_run": True})
    assert res.status_int == 400 and "accepted: timeout" in res.json["message"]
    res = call_api(app, URL, "put", ADMIN, {})
    assert (res.status_int, res.headers["Allow"]) == (405, "GET, POST")
    assert canaries_left(regions) == []


def test_without_the_setting_the_answer_says_to_set_it(regions: list[Region],
                                                       tmp_path: Path) -> None:
    server = region_server(regions[0], tmp_path)
    res = call(server.app, body={})
    assert res.status_int == 409, res.text
    assert res.json["error"] == "conflict"
    assert res.json["message"].startswith("no other region to verify with: set "
                                          "s3sync.verify_with in the server's ini")
    before = call(server.app, "get")
    assert before.status_int == 404 and "POST" in before.json["message"]


def test_an_ini_that_cannot_be_used_is_named_with_the_fix(regions: list[Region],
                                                          tmp_path: Path) -> None:
    missing = tmp_path / "eu-west-1.ini"
    own_bucket = tmp_path / "copy.ini"
    write_ini(own_bucket, regions[0].settings)
    for path, problem in [(missing, "no such file"),
                          (own_bucket, f"its storage.bucket {regions[0].bucket} is this "
                                       "server's own")]:
        server = region_server(regions[0], tmp_path, **{"s3sync.verify_with": str(path)})
        res = call(server.app, body={})
        assert res.status_int == 500, res.text
        assert res.json["error"] == "config"
        assert res.json["message"].startswith(f"s3sync.verify_with names {path}, which "
                                              "cannot be used: ")
        assert problem in res.json["message"]
        assert "Fix that file, or the path in s3sync.verify_with" in res.json["message"]
    assert canaries_left(regions) == []


def test_a_relative_path_stops_the_server_at_startup(regions: list[Region],
                                                     tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"%\(here\)s/eu-west-1.ini for one beside"):
        region_server(regions[0], tmp_path, **{"s3sync.verify_with": "eu-west-1.ini"})


def test_another_regions_cache_password_is_in_no_answer_and_no_log(
        regions: list[Region], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Its cache cannot be reached (nothing listens on port 9), which the report names
    at once, quoting the error: never with the password of that region's ini."""
    peer = tmp_path / "peer.ini"
    password = "peer-s3cret-pw"
    write_ini(peer, {**regions[1].settings, "pypi.db": "redis",
                     "db.url": f"redis://:{password}@127.0.0.1:9/0"})
    server = region_server(regions[0], tmp_path, **{"s3sync.verify_with": str(peer)})
    with caplog.at_level(logging.DEBUG):
        res = call(server.app, body={})
        last = call(server.app, "get")

    assert res.status_int == 200, res.text
    broken = res.json["report"]["broken"]
    assert broken["link"] == diagnose.CACHE_UNREACHABLE
    assert broken["destination"] == regions[1].label
    assert password not in res.text and password not in last.text
    assert password not in caplog.text
    assert password not in json.dumps(res.json["progress"])
    assert canaries_left(regions) == []
