"""A scheduled reconcile that cannot finish in one invocation says so, and keeps its work.

Lambda ends an invocation at its timeout, and kills one that outgrows its memory,
without the function getting a word in.  AWS's Python context object offers the
figures to stop first (https://docs.aws.amazon.com/lambda/latest/dg/python-context.html):
"get_remaining_time_in_millis – Returns the number of milliseconds left before the
execution times out." and "memory_limit_in_mb – The amount of memory that's allocated
for the function."  The context here is such an object with chosen figures; the
clock runs down with the S3 calls the run makes, as a real invocation's does.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.function.reconcile import (
    STOP_MARGIN_SECONDS,
    open_cache,
    reconcile,
)

BUCKET = "packages"
SCHEDULED_EVENT = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
MISSING = ("delta", "epsilon", "zeta", "eta")


class Context:
    """The two figures of Lambda's context object that a reconcile reads.

    ``seconds`` is what is left before the timeout; ``run_down_with`` makes each S3
    call of one operation on a client use up some of it.
    """

    def __init__(self, seconds: float, memory_limit_in_mb: int = 10240) -> None:
        self.seconds = seconds
        self.memory_limit_in_mb = memory_limit_in_mb

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)

    def run_down_with(self, client: Any, operation: str, per_call: float) -> None:
        def spend(**_: Any) -> None:
            self.seconds -= per_call

        client.meta.events.register(f"after-call.s3.{operation}", spend)


@pytest.fixture
def behind(aws: None, pypicloud_factory: Any, tmp_path: Any) -> tuple[Any, Any]:
    """A SQL cache (whose repairs only count once committed) that lacks four packages
    another pypicloud uploaded to the same bucket."""
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/")
    server.upload("alpha", "1.0")
    other = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix="pkgs/",
                              **{"db.url": f"sqlite:///{tmp_path / 'other.sqlite'}"})
    for name in MISSING:
        other.upload(name, "1.0")
    return server, other


def served(server: Any) -> set[str]:
    return {name for name in MISSING if server.simple(name)}


@pytest.fixture
def handler() -> Any:
    from pypicloud_s3sync.function import handler as module

    module.reset()
    yield module
    module.reset()


def test_out_of_time_while_listing_changes_nothing_and_says_so(
    behind: tuple[Any, Any], handler: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A partial listing proves nothing (every unlisted entry would look gone), so the
    run stops without comparing; the result and a log line say why and how far."""
    server, _ = behind
    monkeypatch.setenv(handler.SETTINGS_VAR,
                       json.dumps(load_config(str(server.ini)).function.values))

    result = handler.handle_event(SCHEDULED_EVENT, Context(STOP_MARGIN_SECONDS - 1))

    assert result["complete"] is False and result["in_sync"] is False
    assert result["stopped"].startswith("time ran out while listing the bucket: 1 pages")
    assert "longer timeout" in result["stopped"]
    assert (result["added"], result["removed"]) == ([], [])
    assert served(server) == set()
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["reason"] for line in logged if line["action"] == "reconcile-stopped"] == [
        result["stopped"]]

    again = handler.handle_event(SCHEDULED_EVENT, Context(600))
    assert again["complete"] is True and again["stopped"] == ""
    assert sorted(again["added"]) == sorted(f"{n}-1.0.tar.gz" for n in MISSING)
    assert served(server) == set(MISSING)


def test_out_of_memory_while_listing_stops_before_lambda_kills_it(
    behind: tuple[Any, Any], handler: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A function whose memory is (nearly) used up stops listing and names the fix,
    instead of being killed with nothing in its result."""
    server, _ = behind
    monkeypatch.setenv(handler.SETTINGS_VAR,
                       json.dumps(load_config(str(server.ini)).function.values))

    result = handler.handle_event(SCHEDULED_EVENT, Context(600, memory_limit_in_mb=128))

    assert result["complete"] is False
    assert result["stopped"].startswith("memory ran short while listing the bucket")
    assert "more memory (s3sync.memory)" in result["stopped"]
    assert served(server) == set()


def test_out_of_time_while_repairing_keeps_what_was_applied_and_the_next_run_continues(
    behind: tuple[Any, Any],
) -> None:
    """Time runs out once the bucket is listed and two objects are read: the run stops
    between repairs, the entries it reported are committed and served, and the next
    run adds exactly the rest."""
    server, _ = behind
    config = load_config(str(server.ini))
    s3 = boto3.client("s3", region_name="us-east-1")
    context = Context(STOP_MARGIN_SECONDS + 1.5)
    context.run_down_with(s3, "HeadObject", 1.0)

    report = reconcile(open_cache(config.settings), s3, config.target, workers=1,
                       time_left=lambda: context.get_remaining_time_in_millis() / 1000)

    assert report.complete is False
    assert report.stopped.startswith("time ran out after ")
    assert report.stopped.endswith(f" of {len(MISSING)} objects to read were applied; "
                                   "those are kept, the next run continues with the rest")
    assert len(report.added) < len(MISSING)
    assert served(server) == {f.split("-")[0] for f in report.added}

    rest = reconcile(open_cache(config.settings), s3, config.target)
    assert rest.complete is True
    assert sorted(report.added + rest.added) == sorted(f"{n}-1.0.tar.gz" for n in MISSING)
    assert served(server) == set(MISSING)


def test_a_runtime_started_by_a_large_process_still_has_its_memory():
    """The memory a run measures against ``memory_limit_in_mb`` is what the function
    holds now.  Linux's ``ru_maxrss`` is a high-water mark kept across ``execve``: a
    runtime a large process starts (a supervisor, a test runner) would read that
    process's peak, count its memory as gone, and stop before listing one page.  Here a
    process holding 400 MiB starts a fresh Python, as Lambda's init would be started."""
    import subprocess
    import sys

    child = ("from pypicloud_s3sync.function.reconcile import resident_memory_mb; "
             "print(resident_memory_mb())")
    parent = ("import subprocess, sys; held = bytearray(400 * 2**20); held[::4096] = "
              "b'x' * len(held[::4096]); "
              f"print(subprocess.run([sys.executable, '-c', {child!r}], "
              "capture_output=True, text=True, check=True).stdout)")
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True,
                         check=True).stdout
    assert float(out.split()[-1]) < 200, out
