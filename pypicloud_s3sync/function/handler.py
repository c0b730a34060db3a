"""The Lambda entry point (deployed as ``pypicloud_s3sync.handler.handle_event``).

The first invocation of a container builds a minimal pypicloud (the cache through
pypicloud's own ``configure()``, see :mod:`.cache`, and one S3 client) from the
``PYPICLOUD_SETTINGS`` environment variable; warm invocations reuse both, so an event
costs one HEAD and one cache write.  Nothing is built at import time, which keeps the
module importable (and testable) without settings.

``PYPICLOUD_SETTINGS`` is a JSON object of pypicloud settings.  The smallest one that
works is the original's contract, ``pypi.db`` plus the ``db.*`` keys: every record's own
bucket is then read and no prefix is filtered.  ``storage.bucket``, ``storage.prefix``,
``storage.region_name`` and ``storage.endpoint_url`` narrow and direct that when given,
and the S3 client honours the other ``storage.*`` client settings as pypicloud does.
``PPC_*`` environment variables override settings exactly as in pypicloud.  A database
password never needs to be in the environment: ``s3sync.db_url_secret`` names a Secrets
Manager secret or SSM parameter that holds it (see :mod:`.dbsecret`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import posixpath
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import compat
from ..urlsecrets import redact_text, url_secrets
from .events import Record, Skipped, is_scheduled_event, iter_keys, parse_event
from .metrics import InvocationMetrics

if TYPE_CHECKING:
    from .sync import Outcome

#: The environment variable that carries the settings.
SETTINGS_VAR = "PYPICLOUD_SETTINGS"

#: Our own option (in PYPICLOUD_SETTINGS): seconds of HEAD-to-commit after which a write
#: is verified with a second HEAD; "off" never verifies.
VERIFY_OPTION = "s3sync.verify_after"

LOG = logging.getLogger("pypicloud_s3sync.handler")

#: Keys in a row that must fail before the rest of an SQS batch is reported failed
#: without being tried: one failure may be that key's alone, two say the backend is down.
GIVE_UP_AFTER = 2


class HandlerConfigError(ValueError):
    """PYPICLOUD_SETTINGS cannot drive the function; the message says what to change."""


class SyncError(RuntimeError):
    """Applying one key failed because S3 or the cache failed; Lambda should retry."""

    def __init__(self, bucket: str, key: str, cause: BaseException) -> None:
        super().__init__(
            f"could not sync s3://{bucket}/{key}: {type(cause).__name__}: {cause}"
        )
        self.bucket = bucket
        self.key = key


class _StdoutHandler(logging.Handler):
    """Writes bare lines to whatever ``sys.stdout`` is now: CloudWatch keeps them as is."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never break the sync
            self.handleError(record)


def _setup_logging() -> None:
    if any(isinstance(h, _StdoutHandler) for h in LOG.handlers):
        return
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(os.environ.get("PPC_S3SYNC_LOG_LEVEL", "INFO").upper())
    LOG.propagate = False


#: The database's secrets as this container knows them: no log line may carry one.
_LOG_SECRETS: set[str] = set()


def _clean(value: Any) -> Any:
    """A field without any URL's password or any known secret (a driver's error message
    may quote the connection URL or the password)."""
    if not isinstance(value, str):
        return value
    value = redact_text(value)
    for secret in sorted(_LOG_SECRETS, key=len, reverse=True):
        value = value.replace(secret, "***")
    return value


def log_line(**fields: Any) -> None:
    """One JSON object per line, so CloudWatch Logs Insights can query the fields."""
    if LOG.isEnabledFor(logging.INFO):
        LOG.info(json.dumps({k: _clean(v) for k, v in fields.items() if v is not None},
                            sort_keys=True, default=str))


# -- bootstrap ---------------------------------------------------------------------------


def read_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings dict from ``PYPICLOUD_SETTINGS``, or an error naming the variable."""
    environ = os.environ if environ is None else environ
    raw = environ.get(SETTINGS_VAR)
    if raw is None or not raw.strip():
        raise HandlerConfigError(
            f"{SETTINGS_VAR} is not set: give the function a JSON object of pypicloud "
            'settings, at least {"pypi.db": ..., "db.url": ...}'
        )
    try:
        loaded = json.loads(raw)
    except ValueError as exc:
        raise HandlerConfigError(f"{SETTINGS_VAR} is not valid JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise HandlerConfigError(
            f"{SETTINGS_VAR} must be a JSON object of settings, not {type(loaded).__name__}"
        )
    settings: dict[str, str] = {}
    for key, value in loaded.items():
        if isinstance(value, dict | list):
            raise HandlerConfigError(
                f"{SETTINGS_VAR}: {key} must be a string, as in pypicloud's ini"
            )
        if value is None:
            continue
        settings[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return settings


def _storage_settings(settings: Any) -> dict[str, Any]:
    """pypicloud's own reading of ``storage.*`` (prefix, region...), minus its bucket HEAD.

    CloudFront only changes how the server hands out download URLs; the objects are in
    S3 all the same, so the function treats ``cloudfront`` as ``s3``.
    """
    name = settings.get("pypi.storage", "s3")
    if name not in ("s3", "cloudfront"):
        raise HandlerConfigError(
            f"{SETTINGS_VAR}: pypi.storage = {name}; the function reads packages from S3, "
            "so leave it out or set it to s3"
        )
    from .offline_storage import OfflineS3Storage

    return OfflineS3Storage.configure(settings)


@dataclass
class Runtime:
    """What a warm container keeps between invocations."""

    cache: Any
    s3: Any
    bucket: str | None
    prefix: str
    verify_after: float | None
    #: Where the cache's settings came from, to reopen it with a rotated password.
    settings: Any = None
    db_secret: str | None = field(default=None, repr=False)
    #: ``db.url`` as the settings give it (without the password the secret adds).
    db_url_base: str | None = None
    #: The outcomes of the invocation under way (see :mod:`.metrics`).
    metrics: InvocationMetrics = field(default_factory=InvocationMetrics)

    @classmethod
    def from_settings(cls, raw: Mapping[str, str],
                      environ: Mapping[str, str] | None = None) -> Runtime:
        """Build the cache with pypicloud's own factory, and the S3 client, once."""
        # pyramid's pkg_resources import and requests' missing chardet warn at every cold
        # start; neither is anything an operator reading CloudWatch can act on.
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated",
                                category=UserWarning)
        warnings.filterwarnings("ignore", message="Unable to find acceptable character",
                                module="requests")
        # The container is the function's alone: pypicloud's web application and the
        # other cache backends, which its package inits import, are never needed here.
        from ..backends import defer_package_inits
        from .cache import open_cache
        from .imports import without_cloudfront_signing
        from .s3 import s3_client

        defer_package_inits()
        without_cloudfront_signing()
        from pypicloud.util import EnvironSettings

        from ..config import ConfigError, cache_backend

        env = dict(os.environ if environ is None else environ)
        settings = EnvironSettings(dict(raw), env)
        compat.apply(settings.get("pypi.db", "sql"))
        try:
            cache_backend(settings)
        except ConfigError as exc:
            raise HandlerConfigError(f"{SETTINGS_VAR}: {exc}") from exc
        storage_kwargs = _storage_settings(settings)
        verify_after = _verify_after(settings.get(VERIFY_OPTION))  # checked before connecting
        db_url_base = settings.get("db.url")
        db_secret = _resolve_db_url(settings, db_url_base)
        # pypicloud's ICache.configure builds a storage; open_cache gives it one that makes
        # no AWS call (see offline_storage) instead of HEADing, or even creating, the bucket.
        cache = open_cache(settings)
        from .reconcile import DEFAULT_WORKERS as RECONCILE_WORKERS  # after the deferral

        return cls(
            cache=cache,
            # A scheduled reconcile shares this client between its parallel HEADs.
            s3=s3_client(settings, min_pool_connections=RECONCILE_WORKERS),
            bucket=storage_kwargs.get("bucket") or None,
            prefix=storage_kwargs.get("bucket_prefix") or "",
            verify_after=verify_after,
            settings=settings,
            db_secret=db_secret,
            db_url_base=db_url_base,
        )

    def refresh_secret(self, exc: BaseException) -> bool:
        """After the database refused the password: read the secret again, and reopen
        the cache when it changed (rotated).  False when there is nothing new to try."""
        from .cache import open_cache
        from .dbsecret import is_auth_failure

        if self.db_secret is None or not is_auth_failure(exc):
            return False
        before = self.settings.get("db.url")
        fresh = _resolve_db_url(self.settings, self.db_url_base)
        if self.settings.get("db.url") == before:
            log_line(action="secret", reason="the database refused the password; the "
                     "secret still holds the same one")
            return False
        self.db_secret = fresh
        self.close()
        self.cache = open_cache(self.settings)
        log_line(action="secret", reason="the database refused the password; read the "
                 "secret again and reconnected with the new one")
        return True

    def close(self) -> None:
        """Give back database connections (a SQL engine keeps a pool open)."""
        if hasattr(self.cache, "dbmaker"):
            self.cache.db.close()
            self.cache.dbmaker.kw["bind"].dispose()

    def handle(self, event: Any, context: Any = None) -> dict[str, Any] | None:
        """Apply one invocation's event; see :func:`handle_event`."""
        # Checked here, not by importing reconcile: most events are keys, and the first
        # one of a cold start should not pay for a module only schedules use.
        if is_scheduled_event(event):
            return self.reconcile(event, context)
        self.metrics = InvocationMetrics()
        try:
            return self._handle(event)
        finally:
            # Also when the invocation fails: the failures are what an alarm watches.
            self.metrics.emit()

    def _handle(self, event: Any) -> dict[str, Any] | None:
        parsed = parse_event(event)
        failed_messages: set[str] = set()
        for skipped in parsed.skipped:
            if parsed.sqs_message_ids is not None and skipped.unreadable:
                # Deleting it would lose it; failed, the queue's redrive policy moves it
                # to the dead-letter queue, where someone can read what was sent.
                failed_messages.add(skipped.message_id or "")
                # The line is how an operator finds the message later in the dead-letter
                # queue: by its key, or by its message id when it names none.
                named = "" if skipped.key else f"; it names no key (message {skipped.message_id})"
                self._log_skipped(skipped, "failed", named + " (reported in batchItemFailures: "
                                  "left on the queue for its redrive policy, then the "
                                  "dead-letter queue)")
            else:
                self._log_skipped(skipped)
        error: SyncError | None = None
        failed_in_a_row = 0
        for (bucket, key), records in iter_keys(parsed.records):
            if failed_in_a_row >= GIVE_UP_AFTER:
                # Two keys in a row failed: the cache or S3 is down for every key, so the
                # rest would each wait for it only to fail; reported failed untried, they
                # go back to the queue all the same.
                failed_messages.update(r.message_id for r in records if r.message_id)
                for record in records:
                    self._log_record(record, "failed",
                                     "not attempted after earlier failures", 0)
                continue
            try:
                self.apply(bucket, key, records)
            except SyncError as exc:
                error = exc
                failed_in_a_row += 1
                failed_messages.update(r.message_id for r in records if r.message_id)
            else:
                # One key that fails alone (S3 refuses that object) must not send the
                # batch's other messages back: each return counts towards the queue's
                # maxReceiveCount, and an innocent message would reach the dead-letter
                # queue with it.
                failed_in_a_row = 0
        if parsed.sqs_message_ids is not None:
            if error is not None and failed_messages >= set(parsed.sqs_message_ids):
                # Nothing applied: an error sends the whole batch back as the full list
                # would, and it is what makes Lambda back off ("If your function code
                # caused the error, [...] Lambda gradually backs off", while with
                # ReportBatchItemFailures it "doesn't scale down message polling"), so
                # an outage spends fewer of each message's receives before the
                # dead-letter queue.
                raise error
            return {"batchItemFailures": [
                {"itemIdentifier": mid} for mid in parsed.sqs_message_ids
                if mid in failed_messages
            ]}
        if error is not None:
            raise error
        return None

    def reconcile(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """An EventBridge schedule's event: the same reconcile as ``ppc-s3sync reconcile``,
        stopping in time, and saying so, when the invocation's ``context`` runs out."""
        from .reconcile import run_scheduled

        if not self.bucket:
            raise HandlerConfigError(
                f"{SETTINGS_VAR}: a scheduled reconcile needs storage.bucket (the bucket to list)"
            )
        try:
            result = run_scheduled(self.cache, self.s3, self.bucket, self.prefix, event,
                                   context=context)
        except Exception as exc:
            if not self.refresh_secret(exc):
                raise
            result = run_scheduled(self.cache, self.s3, self.bucket, self.prefix, event,
                                   context=context)
        return _small_result(result)

    def apply(self, bucket: str, key: str, records: list[Record]) -> None:
        """Sync one key (all its records), logging one line per record."""
        from .sync import is_package_key

        first = records[0]
        started = time.perf_counter()
        if self.bucket is not None and bucket != self.bucket:
            reason = f"bucket {bucket} is not storage.bucket ({self.bucket})"
            action = "skipped"
        elif not is_package_key(key, self.prefix):
            action = "skipped"
            reason = (f"outside storage.prefix {self.prefix!r}" if not key.startswith(self.prefix)
                      else "not a package file")
        else:
            try:
                outcome = self._sync_recovering(bucket, key, first.alt_keys)
            except Exception as exc:  # noqa: BLE001 - S3 or cache failure: report, then retry
                ms = (time.perf_counter() - started) * 1000
                for record in records:
                    self._log_record(record, "failed",
                                     f"{type(exc).__name__}: {exc}{_no_route_hint(exc)}", ms)
                raise SyncError(bucket, key, exc) from exc
            action, reason = outcome.action, outcome.reason
            if outcome.key != key:
                reason += f" (found as {outcome.key!r})"
        ms = (time.perf_counter() - started) * 1000
        for index, record in enumerate(records):
            self._log_record(record, action, reason if index == 0 else
                             f"{reason} (same key as an earlier record; read once)", ms)

    def _sync_recovering(self, bucket: str, key: str, alt_keys: tuple[str, ...]) -> Outcome:
        """``sync_key``, tried again once for each way a connection that worked before can
        stop working: the pooled SQL connection died while the container was frozen (the
        pool has dropped it, so the next try opens a fresh one), and the password was
        rotated (the secret is read again).  A rotation that also drops connections
        shows both, one after the other."""
        from .sync import sync_key

        recovered: set[str] = set()
        while True:
            try:
                return sync_key(self.cache, self.s3, bucket, key, alt_keys=alt_keys,
                                verify_after=self.verify_after)
            except Exception as exc:
                if _stale_connection(exc) and "connection" not in recovered:
                    recovered.add("connection")
                elif "secret" not in recovered and self.refresh_secret(exc):
                    recovered.add("secret")
                else:
                    raise

    def _log_record(self, record: Record, action: str, reason: str, ms: float) -> None:
        self.metrics.add(action, record.event_time)
        _log_record(record, action, reason, ms)

    def _log_skipped(self, skipped: Skipped, action: str = "skipped", note: str = "") -> None:
        self.metrics.add(action)
        _log_skipped(skipped, action, note)


#: Filenames per kind in a scheduled reconcile's return value.  A first reconcile of a
#: large index would otherwise list every package file, towards Lambda's 6 MB limit on
#: a response; the log lines carry every name.
RESULT_NAMES = 100
#: Filename lists in a reconcile report, and how many of the names left out of the
#: return value one log line carries.
_NAME_LISTS = ("added", "removed", "updated", "vanished", "not_packages")
_NAMES_PER_LOG_LINE = 200


def _small_result(result: dict[str, Any]) -> dict[str, Any]:
    """Counts plus the first names of each kind; the names left out go to the log."""
    small = {k: v for k, v in result.items() if k not in _NAME_LISTS and k != "duplicates"}
    counts = {}
    rest: dict[str, list[str]] = {}
    for kind in _NAME_LISTS:
        names = sorted(result.get(kind) or [])
        counts[kind] = len(names)
        small[kind] = names[:RESULT_NAMES]
        rest[kind] = names[RESULT_NAMES:]
    duplicates = sorted((result.get("duplicates") or {}).items())
    counts["duplicates"] = len(duplicates)
    small["duplicates"] = dict(duplicates[:RESULT_NAMES])
    small["counts"] = counts
    small["truncated"] = any(n > RESULT_NAMES for n in counts.values())
    log_line(action="reconcile", **{k: v for k, v in small.items()
                                    if k not in _NAME_LISTS and k not in ("duplicates",
                                                                          "counts")},
             added=counts["added"], removed=counts["removed"], updated=counts["updated"])
    if result.get("complete") is False:
        log_line(action="reconcile-stopped", reason=result.get("stopped", ""))
    for kind, names in rest.items():
        for start in range(0, len(names), _NAMES_PER_LOG_LINE):
            log_line(action="reconcile-" + kind,
                     filenames=names[start:start + _NAMES_PER_LOG_LINE])
    if len(duplicates) > RESULT_NAMES:
        log_line(action="reconcile-duplicates", duplicates=dict(duplicates[RESULT_NAMES:]))
    return small


def _resolve_db_url(settings: Any, db_url: str | None) -> str | None:
    """Put the URL ``s3sync.db_url_secret`` leads to into ``db.url``; the secret's value.

    None without a reference.  Every reading of the URL's secrets is remembered, so that
    no log line of this container can carry one.
    """
    from .dbsecret import OPTION, SecretError, boto3_client, database_url, parse_ref, read_value

    reference = settings.get(OPTION)
    if not reference:
        return None
    try:
        ref = parse_ref(str(reference))
        value = read_value(ref, boto3_client)
        _LOG_SECRETS.update(v for v in {value.strip()} if len(v) >= 4)
        url = database_url(value, db_url, ref)
    except SecretError as exc:
        raise HandlerConfigError(f"{SETTINGS_VAR}: {exc}") from exc
    _LOG_SECRETS.update(url_secrets(url))
    settings["db.url"] = url
    return value


def _no_route_hint(exc: BaseException) -> str:
    """What to check when S3 could not be reached at all (the usual cause on Lambda)."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError):
        return ("; S3 is unreachable from the function: in a VPC, its subnets need an S3 "
                "gateway endpoint or a NAT route")
    return ""


def _stale_connection(exc: BaseException) -> bool:
    """True for a SQL error that means "this pooled connection was dead" (now discarded)."""
    return bool(getattr(exc, "connection_invalidated", False))


def _verify_after(value: str | None) -> float | None:
    from ..config import ConfigError, parse_verify_after
    from .sync import VERIFY_AFTER_SECONDS

    try:
        return parse_verify_after(value, VERIFY_AFTER_SECONDS)
    except ConfigError as exc:
        raise HandlerConfigError(f"{SETTINGS_VAR}: {exc}") from exc


def _log_record(record: Record, action: str, reason: str, ms: float) -> None:
    log_line(key=record.key, bucket=record.bucket, action=action, reason=reason,
             ms=round(ms, 3), event=record.event_name, sequencer=record.sequencer,
             message_id=record.message_id, filename=posixpath.basename(record.key))


def _log_skipped(skipped: Skipped, action: str = "skipped", note: str = "") -> None:
    log_line(key=skipped.key, bucket=skipped.bucket, action=action,
             reason=skipped.reason + note, ms=0, event=skipped.event_name,
             message_id=skipped.message_id)


# -- the entry point ------------------------------------------------------------------------

_RUNTIME: Runtime | None = None
_FROZEN = False


@contextlib.contextmanager
def _bootstrapping() -> Iterator[None]:
    """No cyclic garbage collection while the bootstrap imports; then freeze what it made.

    The imports create some 165,000 objects (modules, classes, functions) and almost no
    garbage (about 700 objects for a SQL cache).  The collector would walk them several
    times along the way, a fifth of a cold start, and on every full collection after it
    as well, although they live as long as the container.  ``gc.freeze`` (once per
    process) moves them out of its sight.
    """
    global _FROZEN
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True


def runtime() -> Runtime:
    """The warm runtime, built on first use from ``PYPICLOUD_SETTINGS``.

    A failed bootstrap is not remembered, so the next invocation tries again (a database
    that was briefly unreachable must not poison the container).
    """
    global _RUNTIME
    if _RUNTIME is None:
        _setup_logging()
        with _bootstrapping():
            _RUNTIME = Runtime.from_settings(read_settings())
    return _RUNTIME


def reset() -> None:
    """Forget the warm runtime, closing its connections (tests, benchmarks)."""
    global _RUNTIME
    if _RUNTIME is not None:
        _RUNTIME.close()
    _RUNTIME = None


def handle_event(event: Any, context: Any = None) -> dict[str, Any] | None:
    """Lambda handler: apply S3 object events to this region's pypicloud cache.

    Returns ``{"batchItemFailures": [...]}`` for SQS batches (naming the messages whose
    keys failed; raises if all of them failed) and None otherwise.  A failure of S3 or
    the cache raises :class:`SyncError` naming the key, so Lambda retries the event.
    """
    return runtime().handle(event, context)


def _bootstrap_during_init() -> None:
    """Under Lambda's runtime, build the warm runtime while the handler module loads.

    Lambda imports the handler in its init phase, before the first event: a bootstrap
    done there is reported, when it fails, as an init error
    (``Runtime.InitError``/our exception's type, with its message) instead of failing
    every event the same way, and its time is not added to the first event's.  A
    failed init is retried by Lambda on the next invocation, so a database that was
    briefly down does not poison the container.  Outside Lambda (no
    ``AWS_LAMBDA_RUNTIME_API``: tests, the local runner) the module stays importable
    without settings and bootstraps on first use.
    """
    if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
        runtime()


_bootstrap_during_init()


__all__ = [
    "SETTINGS_VAR",
    "HandlerConfigError",
    "Runtime",
    "SyncError",
    "handle_event",
    "read_settings",
    "reset",
    "runtime",
]
