"""Events per second of the Lambda handler, side by side, on every cache backend.

For each backend, three contenders handle the same workload, one single-record
invocation at a time (S3 -> Lambda delivers one record per invocation): N/2 packages,
each created and then deleted, so N invocations.  Only the invocation is timed; the S3
put/delete that causes each event is not.

* ours     ``pypicloud_s3sync.handler.handle_event``, warm (bootstrapped once, as a
           warm Lambda container is).
* original pypicloud 1.3.12's ``pypicloud._lambda_handler.handle_s3_event`` with our
           compatibility fixes applied, so it gets as far as it can; "fails: ..." says
           where it stops (checked by reading the cache back after the first create and
           delete, through pypicloud's own cache).
* floor    the least any correct handler must do, with clients built once: one HEAD and
           one cache write (``cache.save`` / ``cache.clear``, or one DELETE statement on
           SQL) per event, no parsing, no logging.

S3 and DynamoDB are moto in process (as in the issue's measurements); PostgreSQL,
MariaDB and Redis are the real local servers, in databases of our own; ``dynamo-local``
is pypicloud's DynamoDB cache on AWS's DynamoDB Local (benchmarks/dynamodb_local.py).

Run: ``.venv/bin/python benchmarks/handler_throughput.py [-n 500] [--backends sqlite redis]``
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

BUCKET = "packages"
REGION = "us-east-1"
TEST_EVENT = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
BACKENDS = ["sqlite", "postgresql", "mysql", "redis", "dynamo", "dynamo-local"]


class Fails(Exception):
    """The contender cannot handle the workload; the message says where it stops."""


# -- the cache databases ------------------------------------------------------------------

@contextlib.contextmanager
def cache_settings(backend: str) -> Iterator[dict[str, str]]:
    """A fresh cache of our own for ``backend``; removed afterwards (``dynamo-local``: a
    DynamoDB Local started for it)."""
    from benchmarks.dynamodb_local import temporary_cache

    with tempfile.TemporaryDirectory() as tmp, \
            temporary_cache(backend, Path(tmp), REGION) as settings:
        yield settings


def fresh_cache(settings: dict[str, str]) -> Any:
    from tests.support.pypicloud_app import build_cache

    return build_cache({**settings, "pypi.storage": "file", "storage.dir": "/tmp"})


def close(cache: Any) -> None:
    if hasattr(cache, "dbmaker"):
        cache.db.close()
        cache.dbmaker.kw["bind"].dispose()


def is_cached(settings: dict[str, str], filename: str) -> bool:
    cache = fresh_cache(settings)
    try:
        return cache.fetch(filename) is not None
    finally:
        close(cache)


# -- the workload -------------------------------------------------------------------------

def key_for(name: str, filename: str) -> str:
    return f"{hashlib.md5(filename.encode()).hexdigest()[:4]}/{name}/{filename}"


def s3_event(event_name: str, key: str) -> dict[str, Any]:
    """A record as S3 sends it to Lambda directly (AWS's key encoding; these keys have
    no characters that encoding changes, so the original can read them too)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2026-01-01T00:00:00.000Z", "eventName": event_name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET},
               "object": {"key": key, "size": 10, "sequencer": "0055AED6DCD90281E5"}},
    }]}


Invoke = Callable[[dict[str, Any], str, str], None]


def run(label: str, invoke: Invoke, s3: Any, settings: dict[str, str],
        packages: range) -> float:
    """Seconds spent in ``invoke`` for these packages, each created then deleted.

    Package 0 is checked through pypicloud's own cache after its create and after its
    delete, so a contender that "runs" but does not sync is reported as failing.
    """
    elapsed = 0.0
    for i in packages:
        name = f"{label}{i}"
        filename = f"{name}-1.0.tar.gz"
        key = key_for(name, filename)
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"0123456789",
                      Metadata={"name": name, "version": "1.0", "summary": "bench"})
        for event_name in ("ObjectCreated:Put", "ObjectRemoved:Delete"):
            if event_name.startswith("ObjectRemoved"):
                s3.delete_object(Bucket=BUCKET, Key=key)
            event = s3_event(event_name, key)
            started = time.perf_counter()
            try:
                # Both handlers write their log lines (ours JSON, the original print());
                # they go where Lambda would send them, here to /dev/null.
                with contextlib.redirect_stdout(DEVNULL):
                    invoke(event, name, key)
            except Exception as exc:  # noqa: BLE001 - reported as the contender's failure
                raise Fails(f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}") from exc
            elapsed += time.perf_counter() - started
            if i == 0:
                present = is_cached(settings, filename)
                if event_name.startswith("ObjectCreated") and not present:
                    raise Fails("the created package is not in the cache pypicloud reads")
                if event_name.startswith("ObjectRemoved") and present:
                    raise Fails("the deleted package is still in the cache pypicloud reads")
    return elapsed


# -- the contenders -----------------------------------------------------------------------

def ours(settings: dict[str, str]) -> Invoke:
    from pypicloud_s3sync.function import handler

    os.environ[handler.SETTINGS_VAR] = json.dumps({
        **settings, "storage.bucket": BUCKET, "storage.region_name": REGION})
    handler.reset()
    with contextlib.redirect_stdout(DEVNULL):
        handler.handle_event(TEST_EVENT, None)  # warm container: bootstrap done
    return lambda event, name, key: handler.handle_event(event, None)


def original(settings: dict[str, str]) -> Invoke:
    from pypicloud._lambda_handler import handle_s3_event

    os.environ["PYPICLOUD_SETTINGS"] = json.dumps(settings)  # 1.3.12's handler reads only these
    return lambda event, name, key: handle_s3_event(event, None)


def floor(settings: dict[str, str]) -> Invoke:
    """One HEAD and one cache write per event, clients built once."""
    import boto3
    from botocore.exceptions import ClientError

    cache = fresh_cache(settings)
    s3 = boto3.client("s3", region_name=REGION)
    sql = hasattr(cache, "dbmaker")

    def invoke(event: dict[str, Any], name: str, key: str) -> None:
        record = event["Records"][0]
        filename = key.rsplit("/", 1)[1]
        if record["eventName"].startswith("ObjectCreated"):
            head = s3.head_object(Bucket=BUCKET, Key=key)
            meta = head["Metadata"]
            cache.save(cache.new_package(meta["name"], meta["version"], filename,
                                         head["LastModified"], summary=meta.get("summary"),
                                         path=key))
            if sql:
                cache.db.commit()
            return
        with contextlib.suppress(ClientError):
            s3.head_object(Bucket=BUCKET, Key=key)
        if sql:
            from pypicloud.cache.sql import SQLPackage

            cache.db.query(SQLPackage).filter_by(filename=filename).delete()
            cache.db.commit()
        else:
            cache.clear(cache.new_package(name, "1.0", filename))

    invoke.close = lambda: close(cache)  # type: ignore[attr-defined]
    return invoke


CONTENDERS: dict[str, Callable[[dict[str, str]], Invoke]] = {
    "ours": ours, "original": original, "floor": floor}


#: The contenders take turns in this many rounds (of a few packages each), so that load
#: from other processes on the machine falls on all of them alike instead of on whoever
#: runs during a spike.
ROUNDS = 25


def bench_backend(backend: str, n: int) -> dict[str, float | str]:
    import boto3
    from moto import mock_aws

    from pypicloud_s3sync import compat
    from pypicloud_s3sync.function import handler

    compat.apply()
    packages = max(n // 2, 1)
    results: dict[str, float | str] = {}
    elapsed = dict.fromkeys(CONTENDERS, 0.0)
    with cache_settings(backend) as settings, mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        close(fresh_cache(settings))  # tables exist before anyone is timed
        invokers: dict[str, Invoke] = {}
        for label, make in CONTENDERS.items():
            try:
                invokers[label] = make(settings)  # clients built once, as in a warm container
            except Exception as exc:  # noqa: BLE001 - setup failure is a failure too
                results[label] = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
        try:
            for round_no in range(ROUNDS):
                chunk = range(round_no * packages // ROUNDS,
                              (round_no + 1) * packages // ROUNDS)
                for label, invoke in invokers.items():
                    if label in results:  # failed earlier
                        continue
                    try:
                        elapsed[label] += run(label, invoke, s3, settings, chunk)
                    except Fails as exc:
                        results[label] = f"fails: {exc}"
        finally:
            for invoke in invokers.values():
                if hasattr(invoke, "close"):
                    invoke.close()
            handler.reset()
    for label, seconds in elapsed.items():
        if label not in results:
            results[label] = 2 * packages / seconds
    return results


def fmt(value: float | str) -> str:
    return f"{value:8.1f}" if isinstance(value, float) else "       -"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.options import benchmark_parser

    parser = benchmark_parser(
        __doc__, n=500, backends=BACKENDS,
        n_help="invocations per contender and backend (N/2 packages, each created and "
               "deleted)")
    args = parser.parse_args(argv)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION=REGION)

    print(f"{args.n} single-record invocations per contender (create, then delete); "
          "events/s, higher is better")
    print(f"{'backend':<12} {'ours':>8} {'original':>8} {'floor':>8}   "
          f"{'ours/floor time':>15} {'ours vs original':>16}")
    worst = 0.0
    notes: list[str] = []
    # Each backend in a process of its own, as each function runs in its own container:
    # otherwise one backend's leftovers (modules, connection pools, moto's state) sit in
    # the garbage collector's way of the next one, and the last backend pays for all.
    spawn = multiprocessing.get_context("spawn")
    for backend in args.backends:
        with spawn.Pool(1) as pool:
            res = pool.apply(bench_backend, (backend, args.n))
        ours_v, orig_v, floor_v = res["ours"], res["original"], res["floor"]
        ratio = speedup = "-"
        if isinstance(ours_v, float) and isinstance(floor_v, float):
            r = floor_v / ours_v  # time per event: ours / floor
            worst = max(worst, r)
            ratio = f"{r:.2f}x"
        if isinstance(ours_v, float) and isinstance(orig_v, float):
            speedup = f"{ours_v / orig_v:.1f}x faster"
        print(f"{backend:<12} {fmt(ours_v)} {fmt(orig_v)} {fmt(floor_v)}   "
              f"{ratio:>15} {speedup:>16}", flush=True)
        for label, value in res.items():
            if isinstance(value, str):
                notes.append(f"  {backend} {label}: {value}")
    if notes:
        print("\n".join(["where a contender fails:", *notes]))
    print(f"worst ours/floor time per event: {worst:.2f}x (target <= 1.15x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
