"""``POST /admin/s3sync/reconcile`` in pypicloud's real app, with drift made for real.

The drift is what the endpoint exists for: a package uploaded through a second pypicloud
on the same bucket (another region's server, as replication would leave it) is in S3
with pypicloud's metadata and unknown to this server's cache; an object deleted in S3
directly still shows in this server's /simple.  What an operator checks afterwards is
what this server serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from ..support.aws_gate import Gate, in_thread
from ..support.pypicloud_app import ADMIN, USER, Pypicloud, basic_auth, call_api

URL = "/admin/s3sync/reconcile"
BUCKET = "packages"
AWS_KEY_ID = "AKIARECONCILELEAK001"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/reconcileLEAKcheck"


def call(app: Any, method: str = "post", user: tuple[str, str] | None = ADMIN,
         body: Any = None, content_type: str | None = "application/json",
         headers: dict[str, str] | None = None) -> Any:
    return call_api(app, URL, method, user, body, content_type, headers)


@pytest.fixture
def server(aws: None, pypicloud_factory: Callable[..., Pypicloud]) -> Pypicloud:
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/", **{
        "storage.aws_access_key_id": AWS_KEY_ID,
        "storage.aws_secret_access_key": AWS_SECRET,
    })
    server.upload("alpha", "1.0")
    server.upload("beta", "1.0")
    return server


@pytest.fixture
def drift(server: Pypicloud, pypicloud_factory: Callable[..., Pypicloud],
          tmp_path: Path) -> None:
    """delta uploaded through another pypicloud; beta's object deleted in S3 directly."""
    elsewhere = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/", **{
        "db.url": f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"})
    elsewhere.upload("delta", "2.0", summary="uploaded in another region")
    key = server.cache().fetch("beta-1.0.tar.gz").data["path"]
    boto3.client("s3", region_name="us-east-1").delete_object(Bucket=BUCKET, Key=key)
    assert server.simple("delta") == [] and server.simple("beta") == ["beta-1.0.tar.gz"]


@pytest.mark.parametrize("who, status", [(None, 401), (USER, 403)],
                         ids=["anonymous", "non-admin"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_only_admins_get_in(server: Pypicloud, drift: None, method: str,
                            who: tuple[str, str] | None, status: int) -> None:
    res = call(server.app, method, who)
    theirs = getattr(server.app, method)(
        "/admin/rebuild" if method == "post" else "/admin/pending_users", status="*",
        extra_environ=basic_auth(who) if who else {})
    assert res.status_int == theirs.status_int == status
    assert server.simple("delta") == []  # nothing ran


def test_admin_fixes_real_drift_and_gets_the_report(server: Pypicloud, drift: None) -> None:
    res = call(server.app, "post", ADMIN, {})

    assert res.status_int == 200, res.text
    assert res.json["state"] == "succeeded" and res.json["action"] == "reconcile"
    report = res.json["report"]
    assert (report["added"], report["removed"]) == (["delta-2.0.tar.gz"], ["beta-1.0.tar.gz"])
    assert report["in_sync"] is False and report["dry_run"] is False
    assert report["s3_calls"] == {"ListObjectsV2": 1, "HeadObject": 2}
    assert server.simple("delta") == ["delta-2.0.tar.gz"]
    assert server.simple("beta") == []
    assert server.cache().fetch("delta-2.0.tar.gz").summary == "uploaded in another region"

    again = call(server.app, "post", ADMIN, {})
    assert again.json["report"]["in_sync"] is True
    assert again.json["report"]["s3_calls"] == {"ListObjectsV2": 1}
    last = call(server.app, "get", ADMIN)
    assert last.status_int == 200 and last.json["id"] == again.json["id"]
    for secret in (AWS_KEY_ID, AWS_SECRET):
        assert secret not in res.text + again.text + last.text


def test_dry_run_reports_and_changes_nothing(server: Pypicloud, drift: None) -> None:
    res = call(server.app, "post", ADMIN, {"dry_run": True})

    assert res.status_int == 200, res.text
    assert res.json["dry_run"] is True
    assert res.json["report"]["added"] == ["delta-2.0.tar.gz"]
    assert server.simple("delta") == []
    assert server.simple("beta") == ["beta-1.0.tar.gz"]


def test_deep_rereads_metadata(server: Pypicloud) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    key = server.cache().fetch("alpha-1.0.tar.gz").data["path"]
    metadata = {**s3.head_object(Bucket=BUCKET, Key=key)["Metadata"], "summary": "changed"}
    s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": key},
                   Metadata=metadata, MetadataDirective="REPLACE")

    assert call(server.app, "post", ADMIN, {}).json["report"]["in_sync"] is True
    res = call(server.app, "post", ADMIN, {"deep": True})
    assert res.json["report"]["updated"] == ["alpha-1.0.tar.gz"]
    assert server.cache().fetch("alpha-1.0.tar.gz").summary == "changed"


def test_form_posts_foreign_origins_and_bad_bodies_are_refused(
        server: Pypicloud, drift: None) -> None:
    app = server.app
    res = app.post("/acct/login", {"username": ADMIN[0], "password": ADMIN[1]})
    assert res.status_int == 200 and app.cookies
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        res = call(app, "post", None, "dry_run=false", content_type=content_type)
        assert res.status_int == 415, res.text
    res = call(app, "post", None, {}, headers={"Origin": "https://evil.example"})
    assert (res.status_int, res.json["error"]) == (403, "cross_origin")
    assert call(app, "post", None, {"deep": "yes"}).status_int == 400
    res = call(app, "post", None, {"force": True})
    assert res.status_int == 400 and "force" in res.json["message"]
    assert server.simple("delta") == []  # none of them ran
    res = call(app, "put", ADMIN, {})
    assert (res.status_int, res.headers["Allow"]) == (405, "GET, POST")
    # The same session with JSON from its own origin is what the UI would send.
    res = call(app, "post", None, {}, headers={"Origin": "http://localhost"})
    assert res.status_int == 200, res.text
    assert server.simple("delta") == ["delta-2.0.tar.gz"]


def test_one_at_a_time_and_a_slow_run_answers_202_with_a_status_to_poll(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], gate: Gate) -> None:
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, **{"s3sync.admin.wait": "0.5"})
    server.upload("alpha", "1.0")
    gate.operations = {"ListObjectsV2"}

    first, answer = in_thread(lambda: call(server.app, "post", ADMIN, {}))
    assert gate.reached.wait(30), "the reconcile never listed the bucket"
    first.join(30)
    assert answer[0].status_int == 202, answer[0].text
    assert answer[0].headers["Location"].endswith(URL)
    assert answer[0].json["state"] == "running"
    for url in (URL, "/admin/s3sync"):
        res = server.app.post(url, params="{}", content_type="application/json",
                              extra_environ=basic_auth(ADMIN), status="*")
        assert res.status_int == 409 and res.json["error"] == "busy", res.text
    gate.release.set()
    deadline = time.monotonic() + 60
    while (res := call(server.app, "get")).json["state"] == "running":
        assert time.monotonic() < deadline, res.text
        time.sleep(0.1)
    assert res.json["state"] == "succeeded"
    assert res.json["report"]["in_sync"] is True
    assert res.json["progress"][0] == "listing bucket: 1 page"
    # The lock was released: a new run starts (it may outlast the short wait when the
    # machine is busy, so 202 counts too; "busy" would be 409).
    assert call(server.app, "post", ADMIN, {}).status_int in (200, 202)
    while call(server.app, "get").json["state"] == "running":  # not past the moto mock
        assert time.monotonic() < deadline + 60
        time.sleep(0.1)


def test_get_before_any_reconcile_says_how_to_start_one(server: Pypicloud) -> None:
    res = call(server.app, "get")
    assert res.status_int == 404
    assert "POST" in res.json["message"]
