"""The sync page in a real browser: Debian's Chromium driven by Playwright's Python
client (its own browser downloads are never used), pypicloud served over real HTTP, and
what the page's tests wait for and check.  The fixtures built on these are in
tests/admin/conftest.py."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import services
from .pypicloud_app import Pypicloud

#: How long the page may take to show something, in ms (it polls once a second; a busy
#: two-core machine needs far more than an idle one).
SHOWS = 60_000


def chromium_path() -> str | None:
    """Debian's Chromium, or the one ``PPC_S3SYNC_TEST_CHROMIUM`` names."""
    explicit = os.environ.get("PPC_S3SYNC_TEST_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


def no_browser(reason: str) -> None:
    """Skip where no browser is installed; in CI (services required) that is a failure."""
    message = (f"no headless browser for the page tests: {reason}; install Debian's chromium "
               "(apt-get install chromium) and playwright (the test extras)")
    if services.services_required():
        pytest.fail(f"{message}; PPC_S3SYNC_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def launch_browser() -> Iterator[Any]:
    """Chromium, headless; skipped (or, in CI, failed) where there is none."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        no_browser(f"playwright is not installed ({exc})")
    path = chromium_path()
    if path is None:
        no_browser("no chromium executable on PATH")
    if not os.path.exists(path):
        no_browser(f"{path} does not exist")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=path, headless=True)
        except Error as exc:
            no_browser(f"{path} did not start ({str(exc).splitlines()[0]})")
        yield chromium
        chromium.close()


@contextlib.contextmanager
def new_page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser profile (no cookies) with a screenshot helper, ``page.shot(name)``."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(SHOWS)
    tab = context.new_page()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    counter = iter(range(1, 100))

    def shot(name: str) -> Path:
        path = shots / f"{next(counter):02d}-{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    tab.shot = shot
    try:
        yield tab
    finally:
        context.close()


@contextlib.contextmanager
def serve(server: Pypicloud) -> Iterator[str]:
    """pypicloud's WSGI app served over real HTTP on a free loopback port."""
    from webtest.http import StopableWSGIServer

    httpd = StopableWSGIServer.create(server.app.app, host="127.0.0.1", threads=4)
    try:
        assert httpd.wait(), "the test HTTP server did not start"
        yield httpd.application_url.rstrip("/")
    finally:
        httpd.shutdown()



def log_in(page: Any, site: str, user: tuple[str, str]) -> None:
    """Through pypicloud's own login page (its Angular form), as a person would."""
    page.fill("input[placeholder=Username]", user[0])
    page.fill("input[placeholder=Password]", user[1])
    # The form posts through Angular: wait for that answer first, so that a login that
    # never left the page fails here, saying so, rather than as a navigation timeout.
    with page.expect_response(lambda r: r.url == f"{site}/acct/login"
                              and r.request.method == "POST") as answer:
        page.click("button:has-text('Log in')")
    assert answer.value.ok, f"logging in as {user[0]}: HTTP {answer.value.status}"
    # pypicloud sends everyone home after logging in, and its Angular router then adds
    # "#/" in place: whichever of the two URLs the page is at when this looks, it is home.
    page.wait_for_url(re.compile(re.escape(site) + r"/(#/?)?$"))



def operation_state(page: Any) -> str | None:
    return page.get_attribute("#operation", "data-state")


def wait_for_operation(page: Any, title: str, state: str = "succeeded") -> None:
    page.wait_for_function(
        "([title, state]) => { const box = document.getElementById('operation');"
        " const head = box.querySelector('.op-title');"
        " return head && head.textContent === title && box.dataset.state === state; }",
        arg=[title, state])



#: Every element whose text must be whole at phone width; ``pre`` scrolls on purpose.
TEXT = "main td, main th, main dd, main dt, main li, main p, main h2, main h3, main label"
#: The width of a small phone, in CSS pixels.
PHONE = 420


def readable_on_a_phone(page: Any, name: str) -> None:
    """At phone width nothing runs off the page and no text is cut off inside its box;
    a screenshot of it goes with the others."""
    size = page.viewport_size
    page.set_viewport_size({"width": PHONE, "height": 900})
    try:
        found = page.evaluate("""(selector) => {
            const root = document.documentElement;
            const cut = [];
            for (const node of document.querySelectorAll(selector)) {
                const box = node.getBoundingClientRect();
                if (!box.width) continue;  // not shown
                if (node.scrollWidth > node.clientWidth + 1 || box.right > root.clientWidth + 1
                        || box.left < -1) {
                    cut.push(node.tagName + ": " + node.textContent.trim().slice(0, 60));
                }
            }
            const narrow = [...document.querySelectorAll("#checks td, #path td")]
                .filter((td) => td.getBoundingClientRect().width
                         && td.getBoundingClientRect().width < 40
                         && !td.classList.contains("inline"))
                .map((td) => td.textContent.trim().slice(0, 60));
            return {scroll: root.scrollWidth, width: root.clientWidth, cut, narrow};
        }""", TEXT)
        page.shot(f"{name}-phone")
    finally:
        page.set_viewport_size(size)
    assert found["scroll"] <= found["width"], found
    assert found["cut"] == [], found["cut"]
    # Squeezed into a column a few letters wide, text is "readable" only in name.
    assert found["narrow"] == [], found["narrow"]

