"""From an S3 key to the pypicloud cache: read the object's state, then make the cache agree.

Everything here is state-based on purpose.  S3 delivers events at least once and in no
guaranteed order, so the event only says *which* key to look at; what the cache should
hold comes from the object as it is now (one HEAD).  Applying that twice, or in any
order, leaves the cache the same, which is what makes retries and redelivery safe.

The functions are shared by the Lambda handler and the reconcile command, so they take
a plain boto3 S3 client and a cache built by pypicloud's own factory, and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import posixpath
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pypicloud.util import ALL_EXTENSIONS

from ..backends import backend_of

if TYPE_CHECKING:
    from pypicloud.cache.base import ICache
    from pypicloud.models import Package


@dataclass(frozen=True)
class ObjectState:
    """What one HEAD says about an object.

    It has the three attributes ``S3Storage.package_from_object`` reads (``key``,
    ``metadata``, ``last_modified``), so pypicloud's own code turns it into a package,
    and an ``etag`` so that two reads of the same key can be compared.
    """

    key: str
    metadata: dict[str, str]
    last_modified: datetime
    etag: str = ""
    version_id: str | None = field(default=None, compare=False)


def is_package_key(key: str, prefix: str) -> bool:
    """True when ``key`` could hold a package pypicloud serves from ``prefix``.

    Decided from the key alone, so that objects which are not packages (an index page, a
    "folder" marker, anything outside pypicloud's prefix) cost no S3 call.  pypicloud
    itself only stores files whose names end in one of its distribution extensions
    (``parse_filename`` refuses anything else on upload), so that is the test here.
    """
    if not key.startswith(prefix) or key.endswith("/"):
        return False
    filename = posixpath.basename(key)
    return bool(filename) and filename.endswith(ALL_EXTENSIONS)


def head_object(s3_client: Any, bucket: str, key: str) -> ObjectState | None:
    """The object's current state, or None when it does not exist (404 / delete marker).

    Any other error (403, throttling, network) propagates: only "not there" is an
    answer, everything else means we do not know and must not touch the cache.
    """
    from botocore.exceptions import ClientError

    try:
        head = s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        # A HEAD's answer has no body, so botocore's error code is only the status
        # again: the status is the one thing to read, on S3 and every look-alike.
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return None
        raise
    return ObjectState(
        key=key,
        metadata=head.get("Metadata") or {},
        last_modified=head["LastModified"],
        etag=head.get("ETag", ""),
        version_id=head.get("VersionId"),
    )


def package_from_state(
    state: ObjectState, new_package: Callable[..., Package]
) -> Package | None:
    """pypicloud's own ``S3Storage.package_from_object`` on a HEAD result.

    None when pypicloud would not list the object either (no name/version metadata and
    an unparsable filename), so the cache must not hold it.
    """
    from pypicloud.storage.s3 import S3Storage

    return S3Storage.package_from_object(state, new_package)


# -- writing to the cache -------------------------------------------------------------------

@contextlib.contextmanager
def committing(cache: ICache) -> Iterator[None]:
    """Commit the cache writes made inside the block, or roll them all back on error.

    SQL needs this: outside pyramid_tm nothing commits pypicloud's session, and a failure
    halfway must not leave the session holding a partial change for the next event.  We
    commit the session itself, as pypicloud does outside a request
    (``SQLCache.reload_if_needed``): it takes whatever the session began earlier too, and
    pypicloud's own ``clear_all`` may roll the same session back in the middle of a block.
    A cache built with a request belongs to ``request.tm`` and is left to it.  Redis and
    DynamoDB write immediately, so for them this does nothing.
    """
    if backend_of(cache) != "sql" or getattr(cache, "request", None) is not None:
        yield
        return
    session = cache.db
    try:
        yield
        session.commit()
    except BaseException:
        # Also after a failed commit: the session must not carry the half-done
        # change into the next key.
        session.rollback()
        raise


def save_package(cache: ICache, package: Package) -> None:
    """Store ``package`` so that it *replaces* whatever the cache had for its filename.

    SQL (``merge``) and DynamoDB (``put`` with overwrite) replace the whole entry, but
    pypicloud's Redis cache writes with HMSET, which keeps fields the new version no
    longer has (an old ``requires_python`` would survive an overwrite).  For Redis we drop
    the hash and save in the same MULTI/EXEC pipeline, so readers never see a gap.
    """
    if backend_of(cache) == "redis":
        pipe = cache.db.pipeline()
        pipe.delete(cache.redis_key(package.filename))
        cache.save(package, pipe=pipe)
        pipe.execute()
        return
    cache.save(package)


def clear_filename(cache: ICache, filename: str, key: str) -> str:
    """Remove the cache entry for ``filename``; returns what happened.

    The stored entry decides, not a name guessed from the filename (which can be wrong):
    Redis and DynamoDB need the package's real *name* to keep their per-name indexes
    right.  When the entry records an S3 path other than ``key``, it belongs to another
    object with the same filename and is kept.

    Returns ``"cleared"``, ``"absent"`` (nothing cached) or ``"other-path"``.
    """
    backend = backend_of(cache)
    if backend == "dynamo":
        return _clear_dynamo(cache, filename, key)
    if backend == "redis":
        return _clear_redis(cache, filename, key)
    return _clear_sql(cache, filename, key)


def _clear_sql(cache: ICache, filename: str, key: str) -> str:
    """``clear_filename`` for SQL: usually one DELETE whose condition is the path check.

    The row holds no index elsewhere, so a DELETE by primary key (as pypicloud's own
    graceful reload does) removes what ``fetch`` + ``clear`` would.  Putting the path
    check into the DELETE saves the read before it: that read was the one round trip
    per delete the handler made beyond the least possible.  The condition only deletes
    a row that records ``key`` or no path at all, which the check below would delete
    too; when it deletes nothing, pypicloud's ``fetch`` and that check decide.
    """
    dialect = cache.db.get_bind().dialect.name
    if dialect in JSON_DIALECTS:
        deleted = cache.db.execute(_path_checked_delete(dialect),
                                   {"filename": filename, "key": key})
        if deleted.rowcount:
            return "cleared"
    stored = cache.fetch(filename)
    if stored is None:
        return "absent"
    recorded = (stored.data or {}).get("path")
    if recorded and recorded != key:
        return "other-path"
    # By statement, not pypicloud's ``clear`` (an ORM delete): a concurrent container
    # may have deleted the row since the fetch, which is "absent", not SQLAlchemy's
    # "expected to delete 1 row(s); 0 were matched" warning.
    cache.db.expunge(stored)
    deleted = cache.db.execute(_delete_by_filename(), {"filename": filename})
    return "cleared" if deleted.rowcount else "absent"


@functools.cache
def _delete_by_filename() -> Any:
    from pypicloud.cache.sql import SQLPackage
    from sqlalchemy import bindparam, delete

    table = SQLPackage.__table__
    return delete(table).where(table.c.filename == bindparam("filename"))


#: SQL dialects whose JSON functions SQLAlchemy can compile against pypicloud's text column.
JSON_DIALECTS = frozenset({"postgresql", "mysql", "sqlite"})


def stored_path(dialect: str) -> Any:
    """The ``path`` pypicloud recorded in a row's ``data``, as a SQL expression (NULL when
    none), for a dialect in ``JSON_DIALECTS``: read by the database, not decoded in Python.

    The column is taken as plain text: pypicloud's JSONEncodedDict has no ``cache_ok``, so
    a statement naming it would be compiled anew each time.  PostgreSQL needs the text
    cast to json; MariaDB refuses CAST(... AS JSON) but its JSON functions read text as
    it is, and so do MySQL's and SQLite's.
    """
    from sqlalchemy import JSON, Text, cast, column, type_coerce

    data = column("data", Text)
    as_json = cast(data, JSON) if dialect == "postgresql" else type_coerce(data, JSON)
    return as_json["path"].as_string()


@functools.cache
def _path_checked_delete(dialect: str) -> Any:
    """DELETE the row of ``:filename`` if it records ``:key`` or no path; built once."""
    from pypicloud.cache.sql import SQLPackage
    from sqlalchemy import bindparam, delete, or_

    path = stored_path(dialect)
    table = SQLPackage.__table__
    return delete(table).where(table.c.filename == bindparam("filename"),
                               or_(path.is_(None), path == bindparam("key")))


#: pypicloud's ``RedisCache.clear`` (delete the hash, drop the filename from the project's
#: set, and the project from the name set with its summary when that set is empty), done
#: inside Redis in one call, and only when the hash records the key being cleared (or no
#: path).  ``clear`` needs the package's name, which only the hash holds, so in Python
#: this is a read and then one or two pipelines: two or three round trips where the
#: script makes one.  KEYS: the package hash.  ARGV: key prefix, filename, the key as
#: pypicloud stores it (JSON).  Returns {0} absent, {1} cleared, {2, path} other path.
_REDIS_CLEAR = """
local name = redis.call('HGET', KEYS[1], 'name')
if not name then return {0} end
local path = redis.call('HGET', KEYS[1], 'path')
if path and path ~= ARGV[3] then return {2, path} end
redis.call('DEL', KEYS[1])
local filenames = ARGV[1] .. 'set:' .. name
redis.call('SREM', filenames, ARGV[2])
if redis.call('SCARD', filenames) == 0 then
  redis.call('SREM', ARGV[1] .. 'set', name)
  redis.call('DEL', ARGV[1] .. 'summary:' .. name)
end
return {1}
"""


def _clear_redis(cache: ICache, filename: str, key: str) -> str:
    """``clear_filename`` for Redis: pypicloud's ``clear``, path-checked, in one round trip.

    See ``_REDIS_CLEAR``.  A path recorded in another JSON spelling of the same key (the
    script compares text) is decided here, by pypicloud's own ``fetch`` and ``clear``.
    """
    import json

    script = redis_script(cache, _REDIS_CLEAR)
    key_json = json.dumps(key)
    status, *rest = script(keys=[cache.redis_key(filename)],
                           args=[cache.redis_prefix, filename, key_json], client=cache.db)
    if status == 0:
        return "absent"
    if status == 1:
        return "cleared"
    if json.loads(rest[0]) != key:
        return "other-path"
    stored = cache.fetch(filename)
    if stored is None:
        return "absent"
    cache.clear(stored)
    return "cleared"


#: redis-py Scripts by source: each runs by EVALSHA, loaded into a server on first use.
_REDIS_SCRIPTS: dict[str, Any] = {}


def redis_script(cache: ICache, source: str) -> Callable[..., Any]:
    """Run ``source`` on ``cache``'s Redis (``keys=``, ``args=``, ``client=`` a pipeline),
    checking on first use that pypicloud names its keys as the scripts spell them."""
    script = _REDIS_SCRIPTS.get(source)
    if script is None:
        check_redis_layout(cache)
        script = _REDIS_SCRIPTS[source] = cache.db.register_script(source)
    return script


def check_redis_layout(cache: ICache) -> None:
    """The Redis scripts spell pypicloud's key names themselves; stop if this pypicloud
    spells them otherwise, rather than read or clear the wrong keys."""
    prefix = cache.redis_prefix
    layout = (cache.redis_set, cache.redis_filename_set("n"), cache.redis_key("f"),
              cache.redis_summary_key("n"))
    if layout != (prefix + "set", prefix + "set:n", prefix + "package:f",
                  prefix + "summary:n"):
        raise RuntimeError(f"pypicloud's Redis key layout is not the one pypicloud-s3sync "
                           f"knows: {layout}")


def _clear_dynamo(cache: ICache, filename: str, key: str) -> str:
    """``clear_filename`` for DynamoDB: one conditional DeleteItem, no read first.

    Every DynamoDB call is a round trip, and a fetch before the delete made deletes a
    third slower.  pypicloud keeps a package at ``.../<name>/<filename>``, so the key
    names the project: the delete is conditional on that name and on the recorded path,
    and then pypicloud's own ``_maybe_delete_summary`` keeps the summary table right, as
    ``clear`` would.  When the condition fails, DynamoDB returns the item in the same
    call: nothing cached, another object's entry (kept), or an entry whose name or path
    the key does not tell, which :func:`_clear_dynamo_as_stored` deletes as stored.
    """
    from botocore.exceptions import ClientError
    from pypicloud.cache.dynamo import DynamoPackage

    engine = cache.engine
    table = DynamoPackage.meta_.ddb_tablename(engine.namespace)
    name = posixpath.basename(posixpath.dirname(key))
    if not name:
        return _clear_dynamo_as_stored(cache, table, filename, key)
    try:
        engine.dynamo.client.delete_item(
            TableName=table, Key={"filename": {"S": filename}},
            ConditionExpression="#n = :name AND #d.#p = :key",
            ExpressionAttributeNames={"#n": "name", "#d": "data", "#p": "path"},
            ExpressionAttributeValues={":name": {"S": name}, ":key": {"S": key}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        item = exc.response.get("Item")
        if not item:
            return "absent"
        path = item.get("data", {}).get("M", {}).get("path", {}).get("S")
        if path and path != key:
            return "other-path"
        return _clear_dynamo_as_stored(cache, table, filename, key)
    cache._maybe_delete_summary(name)
    return "cleared"


def _clear_dynamo_as_stored(cache: ICache, table: str, filename: str, key: str) -> str:
    """The entry for ``filename`` unless it records another path; its stored name
    (returned by the same DeleteItem) then keeps the summary right."""
    from dynamo3.exception import ConditionalCheckFailedException

    try:
        old = cache.engine.dynamo.delete_item2(
            table, {"filename": filename}, returns="ALL_OLD",
            condition="attribute_not_exists(#d.#p) OR #d.#p = :key",
            alias={"#d": "data", "#p": "path"}, expr_values={":key": key})
    except ConditionalCheckFailedException:
        return "other-path"
    if not old:
        return "absent"
    cache._maybe_delete_summary(old["name"])
    return "cleared"


# -- one key, end to end --------------------------------------------------------------------

#: Default for ``verify_after``: a HEAD-to-commit window longer than this gets re-checked.
VERIFY_AFTER_SECONDS = 0.05

#: How often one key is re-applied when it keeps changing under us before we give up.
MAX_ATTEMPTS = 3

#: PostgreSQL (SQLSTATE) and MySQL/MariaDB (error number) codes of a transaction that
#: lost to a concurrent one: serialization failure, deadlock.
_CONFLICT_CODES = frozenset({"40001", "40P01", "1213"})


def write_conflict(cache: ICache, exc: BaseException) -> bool:
    """True when a SQL write failed only because another container wrote the same row.

    pypicloud's ``save`` is SQLAlchemy's ``merge``: a SELECT, then an INSERT or an
    UPDATE.  Two containers saving one filename both find no row and both INSERT (the
    second fails on the primary key); a save that found the row loses it to a
    concurrent delete (the UPDATE matches nothing).  Neither says anything about the
    object, and since the apply is state-based, applying the key again is the answer.
    """
    if backend_of(cache) != "sql":
        return False
    from sqlalchemy.exc import DBAPIError, IntegrityError
    from sqlalchemy.orm.exc import StaleDataError

    if isinstance(exc, IntegrityError | StaleDataError):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        code = getattr(orig, "pgcode", None)
        if code is None and getattr(orig, "args", None):
            code = orig.args[0]
        return str(code) in _CONFLICT_CODES
    return False


class KeepsChanging(RuntimeError):
    """The object changed during every attempt; a retry later will read it again."""


@dataclass(frozen=True)
class Outcome:
    """What :func:`sync_key` did to the cache for one key, for the log line."""

    action: str  # "saved", "cleared" or "skipped"
    reason: str
    key: str
    heads: int = 1


def _same_state(a: ObjectState | None, b: ObjectState | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.etag, a.last_modified, a.version_id) == (b.etag, b.last_modified, b.version_id)


def _make_cache_agree(cache: ICache, state: ObjectState | None,
                      absent_keys: tuple[str, ...]) -> tuple[str, str]:
    """Make the cache agree with one HEAD result; returns (action, reason)."""
    package = package_from_state(state, cache.new_package) if state is not None else None
    with committing(cache):
        if package is not None:
            save_package(cache, package)
            return "saved", f"object present; cached {package.name} {package.version}"
        why = ("object absent" if state is None else
               "object is not a package pypicloud would list (no name/version metadata, "
               "unparsable filename)")
        results = {clear_filename(cache, posixpath.basename(k), k) for k in absent_keys}
    if "cleared" in results:
        return "cleared", f"{why}; cache entry removed"
    if "other-path" in results:
        return "skipped", f"{why}; the cached entry of that filename is another key's"
    return "skipped", f"{why}; nothing cached"


def sync_key(
    cache: ICache,
    s3_client: Any,
    bucket: str,
    key: str,
    *,
    alt_keys: tuple[str, ...] = (),
    verify_after: float | None = VERIFY_AFTER_SECONDS,
) -> Outcome:
    """Make the cache hold exactly what ``bucket``/``key`` holds now.

    One HEAD decides: present -> save (replacing any stale entry), absent -> clear.
    ``alt_keys`` are other spellings of the key (an EventBridge key whose encoding is
    uncertain), tried only when ``key`` is absent.

    Concurrent invocations: a write can only be overtaken by a newer event's write if
    our HEAD-to-commit window is longer than S3 takes to deliver that newer event, so
    when the window exceeds ``verify_after`` seconds we HEAD again and re-apply if the
    object changed meanwhile (``None`` never verifies, ``0`` always does).  A SQL write
    that lost to another container's write of the same row (:func:`write_conflict`) is
    rolled back and the key applied again from a new HEAD.  The fast path stays one HEAD
    and one write.  Other errors propagate; nothing else is retried here.
    """
    heads = 0
    conflicts = 0
    for attempt in range(MAX_ATTEMPTS):
        started = time.monotonic()
        state = head_object(s3_client, bucket, key)
        heads += 1
        found_key = key
        if state is None:
            for alt in alt_keys:
                state = head_object(s3_client, bucket, alt)
                heads += 1
                if state is not None:
                    found_key = alt
                    break
        absent_keys = (key, *alt_keys) if state is None else (found_key,)
        try:
            action, reason = _make_cache_agree(cache, state, absent_keys)
        except Exception as exc:
            # Rolled back already (committing); the last attempt's error propagates.
            if attempt + 1 == MAX_ATTEMPTS or not write_conflict(cache, exc):
                raise
            conflicts += 1
            continue
        if conflicts:
            reason += f" (applied again after {conflicts} concurrent write(s) of the same row)"
        wrote = action != "skipped"
        if not wrote or verify_after is None or time.monotonic() - started < verify_after:
            return Outcome(action, reason, found_key, heads)
        again = head_object(s3_client, bucket, found_key)
        heads += 1
        if _same_state(state, again):
            return Outcome(action, reason + " (verified after a slow write)", found_key,
                           heads)
    raise KeepsChanging(
        f"s3://{bucket}/{key} changed while it was being applied {MAX_ATTEMPTS} times"
    )


__all__ = [
    "KeepsChanging",
    "ObjectState",
    "Outcome",
    "clear_filename",
    "committing",
    "head_object",
    "is_package_key",
    "package_from_state",
    "redis_script",
    "save_package",
    "sync_key",
    "write_conflict",
]
