"""Prove, and restore, that a pypicloud cache lists exactly the packages in its bucket.

Events can be lost (objects uploaded before the sync existed, outages longer than
Lambda's retries, races), so the event path alone cannot promise "in sync".  pypicloud's
own answer, ``cache.reload_from_storage()``, HEADs every object and rewrites every
entry; on a large index that is minutes of S3 calls to learn that nothing changed.

This module compares names instead of contents: one paginated listing of the bucket
under ``storage.prefix`` against the cache's filenames, read in bulk per backend.  Only
the difference costs per-object calls, and those go through the same per-object step
as the Lambda handler (:func:`~pypicloud_s3sync.function.sync.head_object`, then
:func:`~pypicloud_s3sync.function.sync.package_from_state`), so a key ends up in
the same cache state whichever path noticed it.  ``deep`` additionally re-reads every
object's metadata, for when objects were overwritten behind the cache's back.

The CLI (``ppc-s3sync reconcile``), the admin endpoint and the scheduled Lambda event
all call :func:`reconcile`.
"""

from __future__ import annotations

import functools
import json
import logging
import posixpath
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from ..backends import backend_of
from ..config import SyncTarget
from .cache import open_cache as _open_cache
from .sync import (
    JSON_DIALECTS,
    clear_filename,
    committing,
    head_object,
    is_package_key,
    package_from_state,
    redis_script,
    save_package,
    stored_path,
)

LOG = logging.getLogger(__name__)

#: Default number of HEAD requests in flight.  S3 serves far more; the bound keeps a
#: large drift from opening hundreds of connections from an operator's laptop.
DEFAULT_WORKERS = 16

#: Seconds a time-bounded run keeps in hand when it stops: enough to finish the repair
#: under way, commit and return before Lambda ends the invocation.
STOP_MARGIN_SECONDS = 10.0

#: Megabytes a memory-bounded run keeps free when it stops listing: the comparison and
#: the repairs after the listing need some room too.
STOP_MARGIN_MB = 32.0

#: ``progress(phase, done, total)``: ``phase`` is ``"list"`` (pages read so far, total
#: unknown) or ``"read"`` (objects read out of ``total``).
Progress = Callable[[str, int, "int | None"], None]


# -- what the cache holds ----------------------------------------------------------------

@dataclass(slots=True)
class CachedEntry:
    """One cache row, as little of it as the comparison needs.

    ``package`` is only loaded for a deep run (which compares metadata); otherwise the
    entry costs a filename, a name and the object key pypicloud recorded for it.
    """

    filename: str
    name: str | None  # None: not read (DynamoDB); looked up only if needed
    path: str | None = None
    package: Any = None


def _path_of(data: Any) -> str | None:
    if isinstance(data, dict):
        path = data.get("path")
        return path if isinstance(path, str) else None
    return None


def _sql_entries(cache: Any, full: bool) -> Iterator[CachedEntry]:
    from pypicloud.cache.sql import SQLPackage

    if full:
        for pkg in cache.db.query(SQLPackage):
            yield CachedEntry(pkg.filename, pkg.name, _path_of(pkg.data), pkg)
        return
    dialect = cache.db.get_bind().dialect.name
    if dialect in JSON_DIALECTS:
        yield from (CachedEntry(*row) for row in cache.db.execute(_sql_entries_query(dialect)))
        return
    # Without JSON functions the whole column is read and decoded by pypicloud's type,
    # which predates SQLAlchemy 1.4's statement cache and warns about it on every new
    # statement; that is pypicloud's to fix, not the operator's.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will not produce a cache key")
        rows = cache.db.query(SQLPackage.filename, SQLPackage.name, SQLPackage.data).all()
    for filename, name, data in rows:
        yield CachedEntry(filename, name, _path_of(data))


@functools.cache
def _sql_entries_query(dialect: str) -> Any:
    """One SELECT of filename, name and the recorded path, built once per dialect.

    The database extracts the path from pypicloud's JSON text column, so the rest of
    ``data`` (hashes, uploader, summary: most of a row) is neither sent nor decoded.
    """
    from pypicloud.cache.sql import SQLPackage
    from sqlalchemy import select

    table = SQLPackage.__table__
    return select(table.c.filename, table.c.name, stored_path(dialect))


#: Every cached filename with its project and recorded path, in one call per chunk of
#: project names: pypicloud's name set is read first, then this walks each name's
#: filename set and reads ``path`` from each package hash, inside Redis.  Replies are
#: flat: name, filename, path (JSON, or false when the hash has none), ...
_REDIS_ENTRIES = """
local out = {}
for i = 2, #ARGV do
  local name = ARGV[i]
  for _, filename in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'set:' .. name)) do
    out[#out + 1] = name
    out[#out + 1] = filename
    out[#out + 1] = redis.call('HGET', ARGV[1] .. 'package:' .. filename, 'path')
  end
end
return out
"""

#: Project names per script call: one call walks this many filename sets, so Redis is
#: never busy with one reconcile's read for long, whatever the size of the index.
_REDIS_CHUNK = 500


def _redis_entries(cache: Any, full: bool) -> Iterator[CachedEntry]:
    """Walk pypicloud's own name and filename sets, which are what /simple serves."""
    db = cache.db
    names = list(db.smembers(cache.redis_set))
    if full:
        pipe = db.pipeline(transaction=False)
        for name in names:
            pipe.smembers(cache.redis_filename_set(name))
        pairs = [(name, fn) for name, fns in zip(names, pipe.execute(), strict=True)
                 for fn in fns]
        pipe = db.pipeline(transaction=False)
        for _, filename in pairs:
            pipe.hgetall(cache.redis_key(filename))
        for (name, filename), value in zip(pairs, pipe.execute(), strict=True):
            # pypicloud's own decoder of its hash layout; an empty hash means a filename
            # listed in the sets without data, which a refresh repairs.
            package = cache._load(dict(value)) if value else None  # noqa: SLF001
            path = _path_of(package.data) if package is not None else None
            yield CachedEntry(filename, name, path, package)
        return
    script = redis_script(cache, _REDIS_ENTRIES)
    pipe = db.pipeline(transaction=False)
    for start in range(0, len(names), _REDIS_CHUNK):
        script(args=[cache.redis_prefix, *names[start:start + _REDIS_CHUNK]], client=pipe)
    for flat in pipe.execute():
        for i in range(0, len(flat), 3):
            path = json.loads(flat[i + 2]) if flat[i + 2] else None
            yield CachedEntry(flat[i + 1], flat[i], path if isinstance(path, str) else None)


def _dynamo_entries(cache: Any, full: bool) -> Iterator[CachedEntry]:
    from pypicloud.cache.dynamo import DynamoPackage

    if full:
        for pkg in cache.engine.scan(DynamoPackage):
            yield CachedEntry(pkg.filename, pkg.name, _path_of(pkg.data), pkg)
        return
    # Only the key and data.path, straight from botocore's pages: the rest of the item
    # (hashes, uploader, summary) is most of its size, and each attribute returned is
    # paid for in transfer and decoding.  The name is only needed for an entry that
    # records no path and whose object is gone; ``_plan`` looks that one up.
    engine = cache.engine
    pages = engine.dynamo.client.get_paginator("scan").paginate(
        TableName=DynamoPackage.meta_.ddb_tablename(engine.namespace),
        ProjectionExpression="filename, #d.#p",
        ExpressionAttributeNames={"#d": "data", "#p": "path"},
    )
    for page in pages:
        for item in page["Items"]:
            path = item.get("data", {}).get("M", {}).get("path", {}).get("S")
            yield CachedEntry(item["filename"]["S"], None, path)


def _generic_entries(cache: Any, full: bool) -> Iterator[CachedEntry]:
    """Any other ICache: only ``distinct()`` and ``all(name)`` are promised."""
    for name in cache.distinct():
        for pkg in cache.all(name):
            yield CachedEntry(pkg.filename, pkg.name, _path_of(pkg.data), pkg if full else None)


def _entry_reader(cache: Any) -> Callable[[Any, bool], Iterator[CachedEntry]]:
    return {"sql": _sql_entries, "redis": _redis_entries,
            "dynamo": _dynamo_entries}.get(backend_of(cache), _generic_entries)


def cached_entries(cache: Any, *, full: bool = False) -> dict[str, CachedEntry]:
    """Every filename the cache serves, read in bulk with the backend's own index.

    pypicloud's ICache has no "all filenames" call; ``distinct()`` + ``all(name)`` costs
    one round trip per project, so each known backend gets a bulk read instead.
    """
    return {entry.filename: entry for entry in _entry_reader(cache)(cache, full)}


# -- what the bucket holds ---------------------------------------------------------------

@dataclass
class BucketListing:
    """Package objects under the prefix, by filename, and what listing them cost."""

    keys: dict[str, str]
    pages: int
    ignored: int
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    complete: bool = True
    stopped: str = ""


def list_bucket(s3_client: Any, target: SyncTarget, progress: Progress | None = None,
                stop: Callable[[], str | None] | None = None) -> BucketListing:
    """All package keys under ``target.prefix``, one ListObjectsV2 call per 1,000 keys.

    pypicloud keys a package by its filename, so the listing is too.  Two objects with
    the same filename (e.g. after ``storage.prepend_hash`` was switched) are kept apart
    in ``duplicates`` and the first one listed stands for the file.  When ``stop()``
    gives a reason between pages the listing stops there, with ``complete`` False and
    that reason: a partial listing must not be compared with the cache.
    """
    paginator = s3_client.get_paginator("list_objects_v2")
    keys: dict[str, str] = {}
    duplicates: dict[str, list[str]] = {}
    pages = ignored = 0
    for page in paginator.paginate(Bucket=target.bucket, Prefix=target.prefix):
        pages += 1
        for obj in page.get("Contents", ()):
            key = obj["Key"]
            if not is_package_key(key, target.prefix):
                ignored += 1
                continue
            filename = posixpath.basename(key)
            if filename in keys:
                duplicates.setdefault(filename, [keys[filename]]).append(key)
                continue
            keys[filename] = key
        if progress is not None:
            progress("list", pages, None)
        why = stop() if stop is not None else None
        if why:
            return BucketListing(keys=keys, pages=pages, ignored=ignored,
                                 duplicates=duplicates, complete=False, stopped=why)
    return BucketListing(keys=keys, pages=pages, ignored=ignored, duplicates=duplicates)


# -- the report --------------------------------------------------------------------------

@dataclass
class ReconcileReport:
    """What a reconcile found and did; ``to_dict()`` is what the endpoint and the
    scheduled event return, ``summary()`` what the CLI prints."""

    bucket: str
    prefix: str
    deep: bool
    dry_run: bool
    objects: int = 0
    cached: int = 0
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    not_packages: list[str] = field(default_factory=list)
    ignored: int = 0
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    list_pages: int = 0
    s3_calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: False when the run stopped before the end because its time was up; ``stopped``
    #: then says where, and how far it got.
    complete: bool = True
    stopped: str = ""

    @property
    def in_sync(self) -> bool:
        """True when the cache already matched the bucket (nothing to add, remove or fix);
        never for a run that stopped early, which cannot know."""
        return self.complete and not (self.added or self.removed or self.updated)

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.removed) + len(self.updated)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["in_sync"] = self.in_sync
        return data

    def summary(self, limit: int = 20) -> str:
        """Human-readable outcome: counts first, then the filenames that changed."""
        where = f"s3://{self.bucket}/{self.prefix}"
        calls = ", ".join(f"{op} {n}" for op, n in sorted(self.s3_calls.items())) or "none"
        lines = [
            f"{where}: {_plural(self.objects, 'package object')}, "
            f"{_plural(self.cached, 'cache entry', 'cache entries')}"
            + (" (deep: every object's metadata read)" if self.deep else ""),
        ]
        if not self.complete:
            lines.append(f"stopped before the end: {self.stopped}")
        if self.in_sync and self.complete:
            lines.append("in sync: nothing to change")
        elif self.in_sync:
            lines.append("nothing changed before it stopped")
        elif self.dry_run:
            lines.append(f"would add {len(self.added)}, remove {len(self.removed)}, "
                         f"update {len(self.updated)} (dry run: the cache was not changed)")
        else:
            lines.append(f"added {len(self.added)}, removed {len(self.removed)}, "
                         f"updated {len(self.updated)}")
        prefix = "to " if self.dry_run else ""
        labels = ("add", "remove", "update") if self.dry_run else ("added", "removed", "updated")
        for label, names in ((prefix + labels[0], self.added), (prefix + labels[1], self.removed),
                             (prefix + labels[2], self.updated),
                             ("vanished while reading", self.vanished),
                             ("skipped, not a package", self.not_packages)):
            for name in sorted(names)[:limit]:
                lines.append(f"  {label}: {name}")
            if len(names) > limit:
                lines.append(f"  ... and {len(names) - limit} more ({label})")
        for filename, keys in sorted(self.duplicates.items())[:limit]:
            lines.append(f"  warning: {filename} is stored twice: {', '.join(keys)}")
        lines.append(f"S3 calls: {sum(self.s3_calls.values())} ({calls}) in "
                     f"{self.seconds:.2f} s")
        return "\n".join(lines)


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


class S3CallCounter:
    """Counts the API calls a boto3 client makes, through botocore's event hooks.

    Attached to the client that does the work, it counts what the operator pays for:
    one per API call, each paginator page included (botocore's own retries of a call
    are not counted again).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        client.meta.events.register("before-call.s3.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def detach(self) -> None:
        self.client.meta.events.unregister("before-call.s3.*", self._count)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)


# -- the comparison ----------------------------------------------------------------------

def _metadata_view(package: Any) -> tuple[Any, ...]:
    """What a deep run compares: the fields pypicloud reads back from the object.

    ``last_modified`` is left out on purpose: pypicloud stamps the cache entry when the
    upload starts and S3 stamps the object when it completes, so they never agree.
    Values pass through pypicloud's own metadata normaliser, because S3 metadata is
    ASCII only and an accented summary must not count as drift on every run.
    """
    from pypicloud.util import normalize_metadata_value

    def norm(value: Any) -> Any:
        return normalize_metadata_value(value) if isinstance(value, str | bytes) else value

    data = {k: norm(v) for k, v in (package.data or {}).items() if v}
    return (package.name, package.version, norm(package.summary or ""),
            tuple(sorted(data.items())))


@dataclass
class _Plan:
    """Keys to read, each with why: ``missing`` (not in cache), ``gone`` (cache entry
    without object), ``moved`` (object under another key than the cache says),
    ``deep`` (re-read to compare metadata)."""

    reads: list[tuple[str, str, str]]  # (reason, filename, key)


def _plan(target: SyncTarget, entries: dict[str, CachedEntry], listing: BucketListing,
          deep: bool, name_of: Callable[[str], str | None]) -> _Plan:
    reads: list[tuple[str, str, str]] = []
    for filename, key in listing.keys.items():
        entry = entries.get(filename)
        if entry is None:
            reads.append(("missing", filename, key))
        elif entry.path is not None and entry.path != key and (
            entry.path not in listing.duplicates.get(filename, ())
        ):
            reads.append(("moved", filename, key))
        elif deep:
            reads.append(("deep", filename, key))
    for filename, entry in entries.items():
        if filename not in listing.keys:
            # Confirm with a HEAD before clearing: the object may have been re-uploaded
            # since the listing, and the handler decides by object state the same way.
            if entry.path is None and entry.name is None:
                entry.name = name_of(filename)
            reads.append(("gone", filename, entry.path or _expected_key(target, entry)))
    return _Plan(reads)


def _expected_key(target: SyncTarget, entry: CachedEntry) -> str:
    """Where pypicloud would have stored this file (``ObjectStoreStorage.get_path``)."""
    import hashlib

    path = f"{entry.name or ''}/{entry.filename}"
    if target.prepend_hash:
        path = hashlib.md5(entry.filename.encode()).hexdigest()[:4] + "/" + path
    return target.prefix + path


#: A read's outcome: the package, or why there is none.
VANISHED = "vanished"
NOT_A_PACKAGE = "not-a-package"


def _read_one(s3_client: Any, bucket: str, key: str, new_package: Callable[..., Any]) -> Any:
    """The handler's own two steps (HEAD, then pypicloud's ``package_from_object``),
    kept apart so the report can tell a deleted object from one that is no package."""
    state = head_object(s3_client, bucket, key)
    if state is None:
        return VANISHED
    package = package_from_state(state, new_package)
    return NOT_A_PACKAGE if package is None else package


def _read_all(s3_client: Any, bucket: str, new_package: Callable[..., Any],
              reads: list[tuple[str, str, str]], workers: int,
              progress: Progress | None) -> Iterator[tuple[tuple[str, str, str], Any]]:
    """HEAD the planned keys on a bounded pool; yield (read, package or VANISHED or
    NOT_A_PACKAGE) as they finish, so the caller writes to the cache from one thread
    while the reads continue."""
    total = len(reads)
    if progress is not None:
        progress("read", 0, total)
    if not reads:
        return
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers),
                            thread_name_prefix="s3sync-reconcile") as pool:
        pending: dict[Future[Any], tuple[str, str, str]] = {}
        todo = iter(reads)

        def submit(n: int) -> None:
            for read in todo:
                pending[pool.submit(_read_one, s3_client, bucket, read[2],
                                    new_package)] = read
                n -= 1
                if n <= 0:
                    return

        # Keep only a few batches queued: the pool stays busy without holding
        # a future for each of 10,000 keys in a deep run.
        submit(workers * 4)
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    read = pending.pop(future)
                    yield read, future.result()
                    done += 1
                if progress is not None:
                    progress("read", done, total)
                submit(len(finished))
        finally:
            # The caller stopped early (out of time, or a failed write): the queued
            # reads are not wanted any more; the few in flight finish on their own.
            for future in pending:
                future.cancel()


def reconcile(
    cache: Any,
    s3_client: Any,
    target: SyncTarget,
    *,
    deep: bool = False,
    dry_run: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
    time_left: Callable[[], float] | None = None,
    memory_left: Callable[[], float] | None = None,
) -> ReconcileReport:
    """Make ``cache`` list exactly the package objects under ``target``; report what changed.

    The cache is read before the bucket on purpose: pypicloud writes the object before
    the cache entry, so a package uploaded meanwhile can only look "missing" (and is
    then read and saved, harmlessly), never "gone".  Every removal is confirmed by a
    HEAD of the object first.  Writes go through pypicloud's ``cache.save`` /
    ``cache.clear`` from this thread only (cache sessions are not thread-safe); the
    HEADs run on ``workers`` threads sharing ``s3_client`` (boto3 clients are).
    ``dry_run`` reads everything a real run reads and writes nothing.

    ``time_left()`` (seconds; the Lambda context's remaining time) bounds the run: when
    fewer than :data:`STOP_MARGIN_SECONDS` are left, it stops between two listing pages
    (changing nothing: a partial listing proves nothing) or between two repairs
    (keeping, and on SQL committing, the ones made), and the report says so
    (``complete`` False, ``stopped``).  Each repair is a whole, state-based step, so
    the next run starts over from a smaller difference.  ``memory_left()`` (MB) stops
    the listing the same way before an index too large for the function's memory gets
    it killed without a word.
    """
    started = time.monotonic()

    def out_of_time() -> str | None:
        if time_left is not None and time_left() < STOP_MARGIN_SECONDS:
            return "time ran out"
        return None

    def out_of_room() -> str | None:
        if memory_left is not None and memory_left() < STOP_MARGIN_MB:
            return "memory ran short"
        return out_of_time()

    counter = S3CallCounter(s3_client)
    report = ReconcileReport(bucket=target.bucket, prefix=target.prefix, deep=deep,
                             dry_run=dry_run)
    try:
        # The cache is read inside the same transaction that writes: SQL objects loaded
        # for a deep run are then updated in place, and the commit covers them.
        with nullcontext() if dry_run else committing(cache):
            entries = cached_entries(cache, full=deep)
            listing = list_bucket(s3_client, target, progress, out_of_room)
            report.cached = len(entries)
            report.objects = len(listing.keys)
            report.list_pages = listing.pages
            report.ignored = listing.ignored
            report.duplicates = listing.duplicates
            if listing.complete:
                _apply(cache, s3_client, target, report, entries, listing, deep=deep,
                       dry_run=dry_run, workers=workers, progress=progress,
                       out_of_time=out_of_time)
            else:
                report.complete = False
                fix = ("more memory (s3sync.memory)" if listing.stopped.startswith("memory")
                       else "a longer timeout (s3sync.timeout, at most 900 s)")
                report.stopped = (
                    f"{listing.stopped} while listing the bucket: {listing.pages} pages "
                    f"({len(listing.keys)} package objects) listed, nothing compared or "
                    f"changed; give the function {fix}, or run ppc-s3sync reconcile")
    finally:
        counter.detach()
        report.s3_calls = counter.snapshot()
        report.seconds = time.monotonic() - started
    LOG.info("reconcile s3://%s/%s: %d added, %d removed, %d updated, %d S3 calls",
             target.bucket, target.prefix, len(report.added), len(report.removed),
             len(report.updated), sum(report.s3_calls.values()))
    if not report.complete:
        LOG.warning("reconcile s3://%s/%s stopped before the end: %s", target.bucket,
                    target.prefix, report.stopped)
    return report


def _apply(cache: Any, s3_client: Any, target: SyncTarget, report: ReconcileReport,
           entries: dict[str, CachedEntry], listing: BucketListing, *, deep: bool,
           dry_run: bool, workers: int, progress: Progress | None,
           out_of_time: Callable[[], str | None]) -> None:
    """Read the keys the comparison names and repair their entries, until done or out
    of time (the repairs made stand; the report says how far it got)."""
    plan = _plan(target, entries, listing, deep, lambda filename: getattr(
        cache.fetch(filename), "name", None))
    reads = _read_all(s3_client, target.bucket, cache.new_package, plan.reads, workers,
                      progress)
    for done, ((reason, filename, key), outcome) in enumerate(reads):
        if out_of_time():
            reads.close()
            report.complete = False
            report.stopped = (
                f"time ran out after {done} of {len(plan.reads)} objects to read were "
                "applied; those are kept, the next run continues with the rest")
            return
        _repair_entry(cache, report, entries.get(filename), reason, filename, key,
                      outcome, dry_run)


def _repair_entry(cache: Any, report: ReconcileReport, entry: CachedEntry | None,
                  reason: str, filename: str, key: str, outcome: Any, dry_run: bool) -> None:
    """Bring one filename's cache entry to the object's state just read, with the
    handler's own writers (``save_package`` replaces stale Redis fields,
    ``clear_filename`` keeps an entry that belongs to another object's path)."""
    if outcome in (VANISHED, NOT_A_PACKAGE):
        if entry is None:
            # Listed, then deleted before the HEAD, or an object pypicloud would not
            # list either: nothing to cache.
            (report.vanished if outcome == VANISHED else report.not_packages).append(key)
            return
        report.removed.append(filename)
        if not dry_run:
            clear_filename(cache, filename, key)
        return
    package = outcome
    if entry is None:
        report.added.append(filename)
    elif reason == "deep" and entry.package is not None and (
        _metadata_view(entry.package) == _metadata_view(package)
    ):
        return
    elif reason == "gone" and entry.path == package.data.get("path"):
        return  # re-uploaded after the listing: the entry is right after all
    else:
        report.updated.append(filename)
    if not dry_run:
        save_package(cache, package)


# -- opening the server's own cache and bucket (CLI and admin tooling) -------------------

def check_bucket(s3_client: Any, target: SyncTarget) -> None:
    """Fail with a fixable message unless the bucket exists and we may read it.

    A missing bucket must stop the run rather than look like an empty one, which would
    clear the whole cache (and pypicloud itself would create it on its next start).
    """
    from botocore.exceptions import ClientError

    from ..config import ConfigError

    try:
        s3_client.head_bucket(Bucket=target.bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise ConfigError(
                f"bucket {target.bucket} (storage.bucket) does not exist in "
                f"{target.region or 'the default region'}; reconcile never creates buckets. "
                "Check storage.bucket and storage.region_name"
            ) from exc
        if code in ("403", "AccessDenied"):
            raise ConfigError(
                f"access to bucket {target.bucket} was denied; reconcile needs "
                "s3:ListBucket on it and s3:GetObject under the prefix"
            ) from exc
        raise


def open_cache(settings: Any) -> Any:
    """pypicloud's own cache for these settings, as the function opens it.

    Reconcile reads S3 through its own client, so the cache gets the function's storage,
    which parses ``storage.*`` as pypicloud does and makes no AWS call (not even the
    bucket HEAD-or-create of pypicloud's S3 storage).
    """
    from .. import compat

    compat.apply()
    return _open_cache(settings)


# -- the scheduled variant (EventBridge -> the sync function) -----------------------------


def resident_memory_mb() -> float:
    """This process's resident memory now, the figure that grows towards Lambda's
    ``memory_limit_in_mb`` as the listing does.

    Not ``getrusage``'s ``ru_maxrss``: Linux keeps that high-water mark across
    ``execve``, so a runtime started by a large parent process (a test runner, a
    supervisor) would begin with the parent's peak and stop before listing a page.
    """
    import os
    import resource

    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):  # not Linux: the peak is what there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_scheduled(cache: Any, s3_client: Any, bucket: str | None, prefix: str,
                  event: dict[str, Any], *, workers: int = DEFAULT_WORKERS,
                  context: Any = None) -> dict[str, Any]:
    """Reconcile from inside the Lambda function, on a schedule rule's event.

    A schedule is the safety net for events that never arrived, so it runs the same
    :func:`reconcile` as the CLI.  ``detail`` may ask for ``{"deep": true}`` or
    ``{"dry_run": true}`` (a rule's constant input); EventBridge's own schedule events
    carry an empty ``detail``, which means a normal run.  The function must know its
    bucket: a reconcile cannot guess it from an event.  With Lambda's ``context`` the
    run stops before the invocation's timeout or its memory limit (see
    :func:`reconcile`'s ``time_left``) and its result says so, instead of being cut off
    without a word.
    """
    if not bucket:
        raise ValueError(
            "a scheduled reconcile needs storage.bucket in PYPICLOUD_SETTINGS "
            "(the bucket to list)"
        )
    detail = event.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    storage = getattr(cache, "storage", None)
    target = SyncTarget(bucket=bucket, prefix=prefix,
                        prepend_hash=bool(getattr(storage, "prepend_hash", True)))
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    limit_mb = getattr(context, "memory_limit_in_mb", None)
    report = reconcile(cache, s3_client, target, deep=bool(detail.get("deep")),
                       dry_run=bool(detail.get("dry_run")), workers=workers,
                       time_left=(lambda: remaining() / 1000) if remaining else None,
                       memory_left=(lambda: int(limit_mb) - resident_memory_mb())
                       if limit_mb else None)
    return report.to_dict()
