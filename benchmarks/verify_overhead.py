"""What ``ppc-s3sync verify`` costs beyond its waits, for 2 and 3 regions on moto.

verify's answer is the waits (replication and each region's sync); everything else it
does is overhead: opening each region's bucket, pypicloud storage and cache, the two
purges, the uploads and deletes, the canary's name, the report.  This runs verify
against regions provisioned as the deploy makes them, with each region's sync and the
replication running in-process (tests/support/topology.py and region_sync.py, the
same harness the tests use), and prints, per region count, the median of N runs: AWS
calls and seconds outside the waits, and the waits' own calls and seconds.

moto answers in microseconds where AWS takes milliseconds: the calls column is what
carries over to AWS (multiply by a region's round trip), the seconds are this
machine's CPU.

Run: ``.venv/bin/python benchmarks/verify_overhead.py [-n 5] [--regions 2 3]``
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# pyramid (under pypicloud) imports pkg_resources, whose deprecation notice is about
# pyramid's code, not about anything measured here.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)


def measure(count: int, runs: int) -> dict[str, Any]:
    """verify ``runs`` times over ``count`` fresh regions; the medians."""
    import pytest
    from moto import mock_aws

    from pypicloud_s3sync.provision import operation
    from tests.support import moto_gaps
    from tests.support.region_sync import RegionSync
    from tests.support.topology import provision

    reports = []
    with pytest.MonkeyPatch.context() as patch, mock_aws(), \
            tempfile.TemporaryDirectory() as directory:
        moto_gaps.account_settings(patch)
        moto_gaps.apply(patch)
        moto_gaps.delete_marker_events(patch)
        with contextlib.redirect_stdout(io.StringIO()):
            regions = provision(Path(directory), count)
            with RegionSync(regions):
                for _ in range(runs):
                    report = operation.verify([r.config for r in regions], timeout=60)
                    if not report.ok:
                        raise RuntimeError(report.describe())
                    reports.append(report.to_json())

    def median(part: str, key: str) -> float:
        return statistics.median(report[part][key] for report in reports)

    return {"calls": median("overhead", "calls"), "seconds": median("overhead", "seconds"),
            "wait_calls": median("waits", "calls"), "wait_seconds": median("waits", "seconds"),
            "operations": reports[-1]["overhead"]["operations"]}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.options import benchmark_parser

    parser = benchmark_parser(__doc__, n=5, backends=["sqlite"],
                              n_help="verify runs per region count")
    parser.add_argument("--regions", nargs="+", type=int, default=[2, 3], choices=[2, 3],
                        metavar="COUNT", help="region counts to measure (default: 2 3)")
    args = parser.parse_args(argv)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
                      AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    logging.disable(logging.ERROR)  # moto's "no Docker" lines for every Lambda change
    print(f"median of {args.n} verify runs on moto (sqlite caches)")
    print(f"{'regions':<8} {'calls':>6} {'seconds':>8}   {'wait calls':>10} {'wait s':>7}")
    for count in args.regions:
        row = measure(count, args.n)
        print(f"{count:<8} {row['calls']:6.0f} {row['seconds']:8.2f}   "
              f"{row['wait_calls']:10.0f} {row['wait_seconds']:7.2f}", flush=True)
        print("         calls by operation: " + ", ".join(
            f"{name} {number}" for name, number in row["operations"].items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
