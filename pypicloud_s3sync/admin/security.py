"""What the admin endpoint needs besides the planner: its settings, the request guards
against cross-site use, the lock, secrets.

Kept apart from :mod:`pypicloud_s3sync.admin.views` so that the request handling there reads
as the HTTP contract (who may call, what comes back) and the mechanics live here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..config import PREFIX
from ..urlsecrets import redact_text, url_secrets
from .errors import ApiError

if TYPE_CHECKING:
    from pyramid.request import Request

#: How long a POST/DELETE waits for the planner before answering 202 (seconds).
DEFAULT_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class AdminSettings:
    """The endpoint's own ``s3sync.admin.*`` settings, checked once at startup.

    They are read when the plugin is included so that a typo stops the server with a
    clear message instead of surfacing on the first admin request.
    """

    wait_seconds: float = DEFAULT_WAIT_SECONDS
    allowed_origins: frozenset[str] = frozenset()
    #: ``s3sync.verify_with``: the other regions' inis, absolute paths.
    verify_with: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AdminSettings:
        """Read ``s3sync.admin.wait``, ``s3sync.admin.allowed_origins`` and
        ``s3sync.verify_with``."""
        from ..config import ConfigError, check_settings, load_settings

        env_settings = load_settings(settings)
        check_settings(env_settings)
        raw_wait = env_settings.get(PREFIX + "admin.wait", DEFAULT_WAIT_SECONDS)
        try:
            wait = float(raw_wait)
        except (TypeError, ValueError):
            wait = -1.0
        if not 0 < wait <= 600:
            raise ConfigError(
                f"{PREFIX}admin.wait = {raw_wait!r}: give the seconds a provisioning request "
                "may hold a worker, a number above 0 and at most 600"
            )
        origins = frozenset(
            normalise_origin(origin)
            for origin in str(env_settings.get(PREFIX + "admin.allowed_origins", "")).split()
        )
        if "" in origins:
            raise ConfigError(
                f"{PREFIX}admin.allowed_origins: each entry must be scheme://host[:port]"
            )
        return cls(wait_seconds=wait, allowed_origins=origins,
                   verify_with=verify_with_paths(env_settings.get(PREFIX + "verify_with")))


def verify_with_paths(value: Any) -> tuple[str, ...]:
    """The inis ``s3sync.verify_with`` lists, each absolute.

    pypicloud's app never learns the path of its own ini (PasteDeploy keeps it out of the
    settings), so a relative path would mean the server's working directory, which moves
    with how it is started; ``%(here)s/other.ini`` is PasteDeploy's own way to say "beside
    this ini", so it is what the refusal suggests.
    """
    from ..config import ConfigError

    paths = tuple(str(value or "").split())
    for path in paths:
        if not os.path.isabs(path):
            raise ConfigError(
                f"{PREFIX}verify_with names {path}, a relative path: give each other "
                f"region's ini as an absolute path, or as %(here)s/{path} for one beside "
                "this ini")
    return paths


def normalise_origin(origin: str) -> str:
    """``HTTPS://Host:443/`` -> ``https://host``: the form browsers send in ``Origin``."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    default_port = 443 if parts.scheme == "https" else 80
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


# -- request guards (CSRF) ---------------------------------------------------------------

def _host_without_default_port(host: str) -> str:
    """``Host`` as an origin would name it: browsers leave out :80 and :443."""
    host = host.lower()
    for default in (":80", ":443"):
        if host.endswith(default):
            return host[: -len(default)]
    return host


def check_same_origin(request: Request, settings: AdminSettings) -> None:
    """Refuse a mutating request a browser sent on behalf of another site.

    Browsers attach ``Origin`` to every cross-origin POST/DELETE (and ``Sec-Fetch-Site``
    in modern ones); scripts and curl usually send neither, and are let through. The
    host is compared, not the scheme, because a TLS-terminating proxy in front of
    pypicloud makes the browser's ``https`` origin arrive as plain ``http``.
    """
    origin = request.headers.get("Origin")
    if origin is not None:
        normalised = normalise_origin(origin)
        origin_host = urlsplit(normalised).netloc if normalised else None
        own_host = _host_without_default_port(request.host)
        if origin_host != own_host and normalised not in settings.allowed_origins:
            raise ApiError(
                403, "cross_origin",
                f"refused: this request comes from another site ({origin[:100]}); "
                "provisioning can only be triggered from the server's own origin or an API "
                "client (add the origin to s3sync.admin.allowed_origins if it is yours)",
            )
    elif request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise ApiError(403, "cross_origin",
                       "refused: the browser reports this request as cross-site")


def read_json_body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The request's JSON object; anything a plain HTML form could send is refused.

    ``Content-Type: application/json`` is what makes a cross-site request need a CORS
    preflight, which pypicloud never answers, so requiring it is the CSRF defence.
    """
    if request.content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type",
            "send the request with 'Content-Type: application/json' and a JSON object body "
            "(e.g. {} or {\"dry_run\": true}); form posts are refused to keep other sites "
            "from triggering this endpoint",
        )
    if not request.body:
        return {}
    try:
        body = request.json_body
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object such as {}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(
            400, "bad_request",
            f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}. "
            "Everything else is configured in the server's ini under s3sync.*",
        )
    for key in ("dry_run", "force", "deep"):
        if not isinstance(body.get(key, False), bool):
            raise ApiError(400, "bad_request", f"{key} must be true or false")
    return body


# -- one provisioning at a time ----------------------------------------------------------

class Busy(Exception):
    """Another provisioning holds the lock (in this process or another on this host)."""


_THREAD_LOCK = threading.Lock()


@contextlib.contextmanager
def provisioning_lock(key: str) -> Iterator[None]:
    """Hold the provisioning lock for ``key`` or raise :class:`Busy` at once.

    A thread lock covers the workers of one process; a ``flock`` on a file named after
    the key covers other processes on the same host (gunicorn/uWSGI workers). Servers
    on different hosts are not coordinated: the planner compares desired with actual
    state, so a second deploy racing the first fails on AWS's own conflicts or finds
    nothing left to do, and a re-run converges.
    """
    if not _THREAD_LOCK.acquire(blocking=False):
        raise Busy()
    try:
        with _file_lock(key):
            yield
    finally:
        _THREAD_LOCK.release()


@contextlib.contextmanager
def _file_lock(key: str) -> Iterator[None]:
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"pypicloud-s3sync-{digest}.lock")
    handle: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed in finally
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise Busy() from None
            raise
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


# -- secrets -----------------------------------------------------------------------------

_SECRET_KEY = re.compile(
    r"secret|password|passwd|access_key|session_token|security_token|encrypt_key"
    r"|validate_key|signing_key|private|credential|^user\.",
    re.IGNORECASE,
)

#: Environment variables whose values must never be echoed.
_SECRET_ENVIRON = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                   "AWS_SECURITY_TOKEN")

#: Shorter values are too likely to be ordinary words to be replaced everywhere.
_MIN_SECRET_LENGTH = 6


def secret_values(settings: Mapping[str, Any],
                  environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Every value in the settings (and AWS environment) that must not leave the server.

    The planner already keeps credentials out of what it produces; this is the second
    line: the endpoint scrubs these strings from every answer and log line, so that an
    AWS error or a future field that quotes a setting cannot leak one.
    """
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for key in list(settings.keys()):
        value = settings.get(key)
        if not isinstance(value, str):
            continue
        if _SECRET_KEY.search(key):
            found.add(value)
        for word in value.split():
            found.update(url_secrets(word))
    for name in _SECRET_ENVIRON:
        if environ.get(name):
            found.add(environ[name])
    # PPC_* variables override settings (and may exist without an ini key at all).
    for name, value in environ.items():
        if not name.startswith("PPC_"):
            continue
        if _SECRET_KEY.search(name[4:].lower().replace("_", ".", 1)):
            found.add(value)
        for word in value.split():
            found.update(url_secrets(word))
    return frozenset(v.strip() for v in found if len(v.strip()) >= _MIN_SECRET_LENGTH)


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (str, or JSON-like containers of them) with every secret replaced."""
    ordered = sorted(secrets, key=len, reverse=True)

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            # Structurally first: a URL's password may be too short to replace by value.
            item = redact_text(item)
            for secret in ordered:
                if secret in item:
                    item = item.replace(secret, "***")
            return item
        if isinstance(item, Mapping):
            return {clean(k): clean(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [clean(v) for v in item]
        return item

    return clean(value)
