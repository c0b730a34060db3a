"""The sync page: ``/admin/s3sync`` opened in a browser instead of called by a script.

Operators of pypicloud live in its web admin, not in curl, so the endpoint's URL also
serves one self-contained HTML page (``page.html``: inline CSS and script, nothing
fetched from elsewhere, so it works on a server with no internet). The page only calls
the JSON API on the same URL, from the same origin and with JSON bodies: every guard
the API has (admins only, same-origin, 409 while busy, 202 and polling) applies to it
unchanged, and nothing here decides anything the API does not.

A browser asks for ``text/html`` first; scripts, curl and ``fetch()`` do not, so they
keep getting JSON from the same URL.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyramid.response import Response

from ..config import redact_url

if TYPE_CHECKING:
    from pyramid.request import Request

    from ..config import PypicloudConfig

TEMPLATE = Path(__file__).with_name("page.html")

#: The view predicate's name (``add_view(..., s3sync_page=True)``).
PREDICATE = "s3sync_page"

_OFFERS = ["application/json", "text/html"]


def wants_page(request: Request) -> bool:
    """True when the client ranks HTML above JSON, as a browser's address bar does.

    No ``Accept`` header or ``*/*`` (curl, webtest, ``fetch()``) ranks both equally and
    gets JSON, so every existing client of the API is answered as before.
    """
    offers = request.accept.acceptable_offers(_OFFERS)
    return bool(offers) and offers[0][0] == "text/html"


class PagePredicate:
    """``s3sync_page=True``: the view answers only requests that want the page."""

    def __init__(self, value: bool, config: Any) -> None:
        self.value = bool(value)

    def text(self) -> str:
        return f"{PREDICATE} = {self.value}"

    phash = text

    def __call__(self, context: Any, request: Request) -> bool:
        return wants_page(request) == self.value


def target(config: PypicloudConfig) -> dict[str, Any]:
    """Where this server syncs, without a password: what the page shows at the top."""
    settings = config.settings
    where = settings.get("db.url") or settings.get("db.host") or settings.get("db.region_name")
    return {
        "bucket": config.target.bucket,
        "prefix": config.target.prefix,
        "region": config.target.region,
        "cache": config.cache_backend,
        "cache_location": redact_url(str(where)) if where else None,
    }


def _headers(nonce: str) -> dict[str, str]:
    """The page runs admin actions, so no other site may frame it (clickjacking) and the
    browser runs no script or style but its own inline ones."""
    return {
        "Cache-Control": "no-store",
        "Vary": "Accept",
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'"),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def _json_for_script(data: Any) -> str:
    """JSON that cannot close the ``<script>`` element it is embedded in."""
    return (json.dumps(data, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def page(request: Request, api_path: str, target_info: dict[str, Any] | None,
         config_error: str | None, verify_with: list[str] | None = None) -> Response:
    """The page, with what it needs to start: the API's URL, who is logged in, the target.

    ``config_error`` is shown instead of the target when the server's settings cannot
    drive a sync; the status call then says the same in detail. ``verify_with`` (the
    other regions' inis) decides between the Verify button and the line saying how to
    enable it.
    """
    from .peers import HOW_TO_ENABLE

    nonce = secrets.token_urlsafe(18)
    boot = {
        "api": api_path,
        "home": request.app_url(),
        "user": request.authenticated_userid,
        "target": target_info,
        "config_error": config_error,
        "verify_with": verify_with or [],
        "verify_how": HOW_TO_ENABLE,
    }
    html = (TEMPLATE.read_text(encoding="utf-8")
            .replace("{{nonce}}", nonce)
            .replace("{{boot}}", _json_for_script(boot)))
    return _html(html, 200, _headers(nonce))


def login_redirect(request: Request) -> Response:
    """Anonymous browsers go to pypicloud's own login page, as its web UI sends them.

    pypicloud's login takes them to its home page afterwards (it has no "came from"),
    so the page is opened again from there; the API keeps answering 401 to scripts.
    """
    response = Response(status=303)
    response.headers.update({"Location": request.app_url("acct", "login"),
                             "Cache-Control": "no-store", "Vary": "Accept"})
    return response


def forbidden(request: Request) -> Response:
    """403 for a logged-in user who is not an admin, in words, not pypicloud's JSON."""
    from html import escape

    user = escape(str(request.authenticated_userid))
    body = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>403 Forbidden</title>"
        "</head><body><h1>403 Forbidden</h1>"
        f"<p>You are logged in as <strong>{user}</strong>, who is not a pypicloud admin. "
        "The S3 sync page is for admins only: log in as an admin, or ask one to add you "
        "to <code>auth.admins</code>.</p>"
        f"<p><a href='{escape(request.app_url())}'>Back to pypicloud</a></p></body></html>"
    )
    return _html(body, 403, {"Cache-Control": "no-store", "Vary": "Accept",
                             "Content-Security-Policy": "default-src 'none'",
                             "X-Frame-Options": "DENY"})


def _html(text: str, status: int, headers: dict[str, str]) -> Response:
    response = Response(status=status, content_type="text/html", charset="utf-8")
    response.text = text
    response.headers.update(headers)
    return response
