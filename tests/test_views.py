"""``/admin/s3sync`` in pypicloud's real app (built from an ini), AWS through moto.

What an operator (and an attacker) would try: who may call it, what a dry run, a
provisioning and a teardown do to the account, what two admins clicking at once get,
whether a cross-site page can use a logged-in admin's cookie, and whether any answer
quotes a secret from the ini.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from .pypicloud_app import ADMIN, USER, Pypicloud, basic_auth

URL = "/admin/s3sync"
BUCKET = "packages"

# Distinctive secrets: if any of these shows up in an answer, it leaked.
AWS_KEY_ID = "AKIAVIEWSLEAKCHECK01"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/viewsLEAKcheckKEY"
DB_PASSWORD = "Pg-pass-views-0xC0FFEE"


def call(app: Any, method: str, user: tuple[str, str] | None = ADMIN,
         body: Any = None, content_type: str | None = "application/json",
         headers: dict[str, str] | None = None) -> Any:
    """One request as an API client would send it (JSON body for POST/DELETE)."""
    kwargs: dict[str, Any] = {"status": "*", "headers": headers or {},
                              "extra_environ": basic_auth(user) if user else {}}
    if method in ("post", "delete", "put"):
        if content_type == "application/json":
            kwargs["params"] = json.dumps({} if body is None else body)
        elif body is not None:
            kwargs["params"] = body
        if content_type:
            kwargs["content_type"] = content_type
    return getattr(app, method)(URL, **kwargs)


def aws_state() -> dict[str, Any]:
    """What a provisioning can change, as an operator would look at it in the console."""
    iam = boto3.client("iam")
    lam = boto3.client("lambda")
    s3 = boto3.client("s3")
    events = boto3.client("events")
    notification = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    notification.pop("ResponseMetadata", None)
    return {
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "functions": sorted((f["FunctionName"], f["CodeSha256"])
                            for f in lam.list_functions()["Functions"]),
        "notification": notification,
        "rules": sorted(r["Name"] for r in events.list_rules()["Rules"]),
    }


@pytest.fixture
def server(aws: None, pypicloud_factory: Callable[..., Pypicloud]) -> Pypicloud:
    """pypicloud with the plugin, two users and AWS keys in its ini."""
    return pypicloud_factory(**{
        "storage.aws_access_key_id": AWS_KEY_ID,
        "storage.aws_secret_access_key": AWS_SECRET,
    })


# -- who may call it ---------------------------------------------------------------------

@pytest.mark.parametrize("who", [None, USER], ids=["anonymous", "non-admin"])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_only_admins_get_in_exactly_as_with_pypiclouds_own_admin_views(
        server: Pypicloud, method: str, who: tuple[str, str] | None) -> None:
    before = aws_state()
    ours = call(server.app, method, who)
    # pypicloud's own admin views, same caller, same method.
    theirs_url = "/admin/pending_users" if method == "get" else "/admin/rebuild"
    theirs = getattr(server.app, method)(
        theirs_url, status="*", extra_environ=basic_auth(who) if who else {})
    assert ours.status_int == theirs.status_int == (401 if who is None else 403)
    if who is None:
        assert ours.headers["WWW-Authenticate"] == theirs.headers["WWW-Authenticate"]
    assert aws_state() == before


def test_other_methods_are_refused_with_the_allowed_ones_named(server: Pypicloud) -> None:
    res = call(server.app, "put", ADMIN, {})
    assert res.status_int == 405
    assert res.headers["Allow"] == "GET, POST, DELETE"
    assert call(server.app, "put", None, {}).status_int == 401


# -- CSRF --------------------------------------------------------------------------------

def login(app: Any, user: tuple[str, str]) -> None:
    """Log in through pypicloud's own login view, as its web UI does: a session cookie."""
    res = app.post("/acct/login", {"username": user[0], "password": user[1]})
    assert res.status_int == 200
    assert app.cookies, "pypicloud set no session cookie"


def test_a_cross_site_form_post_with_an_admin_session_changes_nothing(
        server: Pypicloud) -> None:
    app = server.app
    login(app, ADMIN)
    assert app.get(URL, status="*").status_int != 401  # the cookie alone authenticates
    before = aws_state()

    # What a hostile page can make a browser send without a preflight: a form post.
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data",
                         "text/plain"):
        res = app.post(URL, params={"dry_run": "false"} if "form" in content_type else "{}",
                       content_type=content_type, status="*",
                       headers={"Origin": "https://evil.example"})
        assert res.status_int in (403, 415), res
        assert "error" in res.json
        res = app.post(URL, params={"dry_run": "false"} if "form" in content_type else "{}",
                       content_type=content_type, status="*")
        assert res.status_int == 415, res
        assert "application/json" in res.json["message"]
    res = app.delete(URL, status="*")
    assert res.status_int == 415

    # JSON with a foreign Origin (what a misconfigured CORS proxy would let through).
    for method in ("post", "delete"):
        res = call(app, method, None, {}, headers={"Origin": "https://evil.example"})
        assert res.status_int == 403
        assert res.json["error"] == "cross_origin"
        res = call(app, method, None, {}, headers={"Sec-Fetch-Site": "cross-site"})
        assert res.status_int == 403
    assert aws_state() == before


def test_same_origin_json_from_the_ui_session_is_accepted(server: Pypicloud) -> None:
    app = server.app
    login(app, ADMIN)
    res = call(app, "post", None, {"dry_run": True}, headers={"Origin": "http://localhost"})
    assert res.status_int == 200, res.text
    assert res.json["dry_run"] is True


def test_bad_bodies_are_refused_with_what_to_send(server: Pypicloud) -> None:
    app = server.app
    res = server.app.post(URL, params="{not json", content_type="application/json",
                          extra_environ=basic_auth(ADMIN), status="*")
    assert res.status_int == 400
    assert "JSON" in res.json["message"]
    assert call(app, "post", ADMIN, ["dry_run"]).status_int == 400
    res = call(app, "post", ADMIN, {"dry_run": "yes"})
    assert res.status_int == 400
    assert "dry_run" in res.json["message"]
    res = call(app, "post", ADMIN, {"function_name": "other"})
    assert res.status_int == 400
    assert "function_name" in res.json["message"]
