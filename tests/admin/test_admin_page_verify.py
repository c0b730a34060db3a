"""The sync page's Verify button in a real browser, against two regions on moto.

The server is the first region's pypicloud, its ``s3sync.verify_with`` naming the
second's ini; the regions' syncs and the replication run in-process while the canary
travels (tests/support/region_sync.py). The run is held at its first delete, inside
AWS, so that its progress is seen on the page before the lags are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support.aws_gate import Gate
from ..support.browser import log_in, readable_on_a_phone, serve, wait_for_operation
from ..support.pypicloud_app import ADMIN
from ..support.region_moto import region_server, regions_on_moto
from ..support.region_sync import RegionSync
from ..support.topology import Region

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Region]]:
    with regions_on_moto(tmp_path_factory.mktemp("regions"), 2) as provisioned:
        yield provisioned


def open_page(page: Any, url: str) -> None:
    page.goto(f"{url}/acct/login")
    log_in(page, url, ADMIN)
    page.goto(f"{url}/admin/s3sync")


def cells(page: Any, rows: str) -> list[list[str]]:
    """Each row's cells' text, as the table shows them."""
    return page.eval_on_selector_all(
        rows, "rows => rows.map(row => [...row.cells].map(cell => cell.textContent))")


def label(region: Region) -> str:
    return f"{region.bucket} ({region.name})"


def test_verify_shows_its_progress_then_the_lags_of_every_pair(
        page: Any, regions: list[Region], gate: Gate, tmp_path: Path) -> None:
    first, second = regions
    server = region_server(first, tmp_path, **{"s3sync.verify_with": str(second.ini),
                                               "s3sync.admin.wait": "1"})
    gate.operations = {"DeleteObject", "DeleteObjects"}
    with serve(server) as url, RegionSync(regions):
        open_page(page, url)
        assert str(second.ini) in page.inner_text("#verify-with")
        assert page.locator("#verify-how").is_hidden()
        page.click("#verify")
        assert gate.reached.wait(60), "the verify never deleted its canary"
        wait_for_operation(page, "Verify", "running")
        page.locator("#operation .progress").get_by_text("uploaded ").first.wait_for()
        assert page.locator("#verify").is_disabled()
        page.shot("verify-running")
        gate.release.set()
        wait_for_operation(page, "Verify")

        page.locator("#operation").get_by_text("Every link holds").wait_for()
        rows = cells(page, "#verify-lags tbody tr")
        [header] = cells(page, "#verify-lags thead tr")
        page.shot("verified")
        readable_on_a_phone(page, "verified")
    assert header == ["Pair", "Direction", "Replication lag", "Sync lag",
                      "Delete replication lag", "Delete sync lag"]
    pair = " ↔ ".join(sorted([label(first), label(second)]))
    directions = {row[1]: row for row in rows}
    for source, destination in ((first, second), (second, first)):
        row = directions[f"{label(source)} → {label(destination)}"]
        assert row[0] == pair
        assert all(re.fullmatch(r"\d+\.\d\d s", cell) for cell in row[2:]), row
    for region in regions:
        own = next(row for row in rows if row[0] == label(region))
        assert own[1] == "own cache"
        assert re.fullmatch(r"\d+\.\d\d s", own[3]) and re.fullmatch(r"\d+\.\d\d s", own[5])
    assert len(rows) == 4


def test_without_the_setting_the_page_says_how_to_enable_verify(
        page: Any, regions: list[Region], tmp_path: Path) -> None:
    with serve(region_server(regions[0], tmp_path)) as url:
        open_page(page, url)
        how = page.locator("#verify-how")
        how.wait_for()
        assert "set s3sync.verify_with in the server's ini" in how.inner_text()
        assert page.locator("#verify").is_hidden()
