"""The browser fixtures of the page's tests (tests/support/browser.py has the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support.browser import launch_browser, new_page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module: starting it is the slow part of these tests."""
    with launch_browser() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser profile (no cookies) with a screenshot helper, ``page.shot(name)``."""
    with new_page(browser, tmp_path) as tab:
        yield tab
