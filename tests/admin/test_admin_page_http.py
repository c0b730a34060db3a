"""``/admin/s3sync`` answers browsers with the sync page and everyone else as before.

pypicloud's real app (webtest), AWS through moto; no browser needed: what is checked is
who gets which answer for which ``Accept``, and what the page's HTML may and may not
contain (no secret, nothing loaded from another host, not frameable).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ..support.pypicloud_app import ADMIN, USER, Pypicloud, basic_auth

URL = "/admin/s3sync"
#: What Chromium sends when its address bar opens a page.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/pageLEAKcheckKEY0"


@pytest.fixture
def server(aws: None, pypicloud_factory: Callable[..., Pypicloud], tmp_path: Path) -> Pypicloud:
    bundle = tmp_path / "function.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("pypicloud_s3sync/__init__.py", "")
    return pypicloud_factory(prefix="pkgs/", **{
        "storage.aws_access_key_id": "AKIAPAGELEAKCHECK001",
        "storage.aws_secret_access_key": AWS_SECRET,
        "s3sync.bundle": str(bundle),
    })


def get(server: Pypicloud, accept: str | None, user: tuple[str, str] | None = None):
    headers = {"Accept": accept} if accept else {}
    return server.app.get(URL, headers=headers, status="*",
                          extra_environ=basic_auth(user) if user else {})


def test_an_anonymous_browser_is_sent_to_pypiclouds_login_and_scripts_still_get_401(
        server: Pypicloud) -> None:
    res = get(server, BROWSER)
    assert res.status_int == 303
    assert res.headers["Location"] == "http://localhost/acct/login"
    assert server.app.get(res.headers["Location"]).status_int == 200  # pypicloud's own page
    for accept in (None, "*/*", "application/json"):
        res = get(server, accept)
        assert res.status_int == 401, accept
        assert res.headers["WWW-Authenticate"].startswith("Basic")


def test_a_user_who_is_not_an_admin_gets_403_in_words(server: Pypicloud) -> None:
    res = get(server, BROWSER, USER)
    assert res.status_int == 403
    assert res.content_type == "text/html"
    assert "alice" in res.text and "auth.admins" in res.text
    assert "<script" not in res.text
    assert get(server, "application/json", USER).status_int == 403


def test_an_admin_browser_gets_the_page_and_an_api_client_gets_json(
        server: Pypicloud) -> None:
    res = get(server, BROWSER, ADMIN)
    assert res.status_int == 200
    assert res.content_type == "text/html"
    assert res.headers["Cache-Control"] == "no-store"
    assert "Accept" in res.headers["Vary"]
    api = get(server, None, ADMIN)
    assert api.status_int == 200 and api.content_type == "application/json"
    assert "resources" in api.json


def test_the_page_loads_nothing_from_elsewhere_and_cannot_be_framed(server: Pypicloud) -> None:
    res = get(server, BROWSER, ADMIN)
    html = res.text
    # Every script and style is inline and carries the nonce the policy names.
    policy = res.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert res.headers["X-Frame-Options"] == "DENY"
    assert re.findall(r"<script nonce=\"([^\"]+)\"", html) == [nonce]
    assert re.findall(r"<style nonce=\"([^\"]+)\"", html) == [nonce]
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", html)
    assert not re.search(r"https?://", html.split('<script type="application/json"')[0])
    # A second load gets a fresh nonce.
    assert get(server, BROWSER, ADMIN).headers["Content-Security-Policy"] != policy


def test_the_page_names_the_target_and_quotes_no_secret(server: Pypicloud) -> None:
    html = get(server, BROWSER, ADMIN).text
    boot = json.loads(re.search(
        r'<script type="application/json" id="boot">(.*?)</script>', html, re.S).group(1))
    assert boot["api"] == URL and boot["user"] == ADMIN[0]
    assert boot["target"]["bucket"] == "packages" and boot["target"]["prefix"] == "pkgs/"
    assert boot["target"]["cache"] == "sql"
    for secret in (AWS_SECRET, "AKIAPAGELEAKCHECK001"):
        assert secret not in html


def test_a_server_whose_config_cannot_sync_still_serves_the_page_with_the_reason(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], tmp_path: Path) -> None:
    server = pypicloud_factory(**{"pypi.storage": "file", "storage.dir": str(tmp_path / "f")})
    res = get(server, BROWSER, ADMIN)
    assert res.status_int == 200
    boot = json.loads(re.search(
        r'<script type="application/json" id="boot">(.*?)</script>', res.text, re.S).group(1))
    assert boot["target"] is None
    assert "pypi.storage = s3" in boot["config_error"]
