"""Read a pypicloud server's own config.ini into what the sync needs.

Every command of ours goes through :func:`load_config`, so the CLI, the admin endpoint
and the bundle builder see the same settings the server sees: the same PasteDeploy
section, the same ``PPC_*`` environment overrides (pypicloud's ``EnvironSettings``) and
the same interpretation of ``storage.*`` (pypicloud's own ``configure()``).  There is
no second configuration system; we only add our own keys under ``s3sync.``.
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pypicloud.util import EnvironSettings

from . import compat
from .cache_endpoint import at_endpoint
from .endpoints import ENDPOINT_FORM, endpoint_problem, region_problem
from .urlsecrets import has_secret, redact, without_secrets

#: Our own settings live under this prefix in pypicloud's ini (``s3sync.function_name``...).
PREFIX = "s3sync."

#: Storage keys the Lambda function needs to find and filter objects (and, for a
#: scheduled reconcile, to know the key of a cache entry that has no recorded path), and
#: those that say how the bucket must be addressed and signed, which the function's S3
#: client honours as the server's does.  Credentials, CA bundles, proxies and timeouts
#: belong to the server's machine, not to the function.
FUNCTION_STORAGE_KEYS = (
    "storage.bucket",
    "storage.prefix",
    "storage.region_name",
    "storage.endpoint_url",
    "storage.prepend_hash",
    "storage.signature_version",
    "storage.addressing_style",
    "storage.use_ssl",
    "storage.use_accelerate_endpoint",
    "storage.payload_signing_enabled",
)


#: Every ``s3sync.*`` setting (docs/configuration.rst says, for each, its flag, default
#: and which commands read it; a test keeps the two equal).  A key not listed here is a
#: typo until proven otherwise: a silently ignored setting is how a deploy ends up other
#: than the operator wrote it.
SETTINGS = (
    # the deploy's options (provision.options.DeployOptions)
    "function_name", "force", "role_arn", "region", "endpoint_url", "runtime", "arch",
    "memory", "timeout", "subnet_ids", "security_group_ids", "delivery", "retry_attempts",
    "max_event_age", "on_failure", "db_password", "bundle", "reconcile_every",
    "db_url_secret_kms_key", "store_db_password", "kms_key_arn",
    "reserved_concurrency", "alarm_topic", "alarm_lag", "max_receives", "batch_size",
    "batch_window", "max_concurrency", "queue_kms_key_arn", "allow_versioning",
    "replication_time_control",
    # read by the function itself
    "verify_after", "db_url_secret",
    # the admin endpoint's own
    "admin.wait", "admin.allowed_origins", "verify_with",
)

#: Our settings the function itself reads; they travel in ``PYPICLOUD_SETTINGS``.
FUNCTION_OWN_KEYS = (PREFIX + "verify_after", PREFIX + "db_url_secret")

#: Environment variables of ours under the settings' ``PPC_S3SYNC_`` prefix that are not
#: settings: the bundle cache, the function's log level, and the test suite's switches
#: (docs/development.rst), plus any ``PPC_S3SYNC_TEST_*``.  Every other variable there
#: is checked like an ini key.
ENV_PREFIX = "PPC_S3SYNC_"
OTHER_VARIABLES = (
    "PPC_S3SYNC_CACHE_DIR", "PPC_S3SYNC_LOG_LEVEL", "PPC_S3SYNC_REQUIRE_SERVICES",
    "PPC_S3SYNC_HYPOTHESIS_PROFILE", "PPC_S3SYNC_SHOW_TRACE",
)


class ConfigError(ValueError):
    """The config cannot drive a sync; the message says what to change."""


@dataclass(frozen=True)
class SyncTarget:
    """Where the packages live: what the function listens to and reads from."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    prepend_hash: bool = True


@dataclass(frozen=True)
class FunctionSettings:
    """The ``PYPICLOUD_SETTINGS`` the function gets, and what was held back from it.

    ``withheld`` maps a setting to the reason it is not in ``values``: credentials are
    dropped silently (the function uses its IAM role), but a database URL with a
    password would leave the function unable to connect, so the caller must decide.
    """

    values: dict[str, str]
    withheld: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PypicloudConfig:
    """One pypicloud server's settings, as our commands use them."""

    config_uri: str
    settings: EnvironSettings
    target: SyncTarget
    function: FunctionSettings
    cache_backend: str

    def option(self, name: str, default: Any = None) -> Any:
        """An ``s3sync.<name>`` setting (environment override ``PPC_S3SYNC_<NAME>`` wins)."""
        return self.settings.get(PREFIX + name, default)

    @property
    def sqlite_cache(self) -> bool:
        """A SQL cache in a SQLite file: on this machine only, and with no server whose
        connections could run out."""
        url = str(self.settings.get("db.url") or "")
        return self.cache_backend == "sql" and url.lower().startswith("sqlite")

    def endpoint_url(self, given: str | None = None) -> str | None:
        """Where every AWS call goes: ``--endpoint-url``, else ``s3sync.endpoint_url``.

        None leaves each client at its default (S3 at ``storage.endpoint_url``).
        """
        return given or self.option("endpoint_url") or None

    def cache_settings(self, given_endpoint: str | None = None) -> EnvironSettings:
        """The settings our commands and the admin endpoint open the cache with: a
        DynamoDB cache goes to :meth:`endpoint_url` too (see :mod:`.cache_endpoint`)."""
        return at_endpoint(self.settings, self.cache_backend, self.endpoint_url(given_endpoint))

    def endpoint_sources(self, given: str | None = None) -> dict[str, str]:
        """Each endpoint URL a run may call, and the flag or setting that gave it.

        ``given`` is ``--endpoint-url`` (or the same option from Python); when it equals
        the setting, the setting is named, so the admin API never names a flag.
        """
        sources: dict[str, str] = {}
        if self.target.endpoint_url:
            sources[self.target.endpoint_url] = setting_source(
                self.settings, "storage.endpoint_url")
        own = self.option("endpoint_url")
        if own:
            sources[own] = setting_source(self.settings, PREFIX + "endpoint_url")
        if given and given != own:
            sources[given] = "--endpoint-url"
        return sources


def environ_key(key: str) -> str:
    """The ``PPC_*`` variable that overrides ``key``, as pypicloud's EnvironSettings names it."""
    return "PPC_" + key.upper().replace(".", "_")


def setting_source(settings: EnvironSettings, key: str) -> str:
    """``key`` when the ini's value is the one in effect, else its ``PPC_*`` variable."""
    ini = dict(settings.items())
    if key in ini and ini[key] == settings.get(key):
        return key
    return environ_key(key)


def _unknown(spelled: str, name: str, known: list[str], prefix: str = "") -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = (f"did you mean {prefix}{close[0]}?" if close
            else "configuration.rst lists the settings there are")
    return ConfigError(f"{spelled} is not a setting of pypicloud-s3sync; {hint}")


def check_setting_names(settings: Mapping[str, Any],
                        environ: Mapping[str, str] | None = None) -> None:
    """Refuse an ``s3sync.*`` key, or a ``PPC_S3SYNC_*`` variable, that nothing reads,
    naming the closest one that is: a typo in either would otherwise leave the deploy
    other than the operator wrote it.  ``environ`` defaults to the process's."""
    known = set(SETTINGS)
    for key in sorted(settings):
        if not key.startswith(PREFIX) or key[len(PREFIX):] in known:
            continue
        raise _unknown(key, key[len(PREFIX):], sorted(known), PREFIX)
    variables = sorted({environ_key(PREFIX + name) for name in SETTINGS}
                       | set(OTHER_VARIABLES))
    environ = os.environ if environ is None else environ
    for name in sorted(environ):
        if (name.startswith(ENV_PREFIX) and name not in variables
                and not name.startswith(ENV_PREFIX + "TEST_")):
            raise _unknown(f"environment variable {name}", name, variables)


def check_endpoint_url(url: str, source: str) -> str:
    """``url`` when it is an endpoint's address; else a ConfigError naming ``source``."""
    problem = endpoint_problem(url)
    if problem:
        raise ConfigError(f"{source} = {redact(url)!r} is not an endpoint URL: {problem}; "
                          f"give it as {ENDPOINT_FORM}")
    return url


_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


def kms_key_problem(value: str) -> str | None:
    """Why ``value`` cannot name a KMS key in a grant, or None.

    "To specify a KMS key in an IAM policy statement, you must use its key ARN. You
    cannot use a key id, alias name, or alias ARN to identify a KMS key in an IAM policy
    statement." (KMS developer guide, "Specifying KMS keys in IAM policy statements"):
    every setting of ours that names a key is also granted as the policy's resource, so
    an alias would deploy a grant on nothing the function uses.
    """
    if _KMS_KEY_ARN.match(value.strip()):
        return None
    what = "an alias" if "alias/" in value else "no key ARN"
    return (f"it is {what}, and IAM matches a key only by its key ARN; give that "
            "(arn:aws:kms:REGION:ACCOUNT:key/ID), which "
            f"'aws kms describe-key --key-id {value.strip()} --query KeyMetadata.Arn' prints")


def check_kms_key(value: str, source: str) -> str:
    """``value`` when it is a KMS key's ARN; else a ConfigError naming ``source``."""
    problem = kms_key_problem(value)
    if problem:
        raise ConfigError(f"{source} = {value!r} is not valid: {problem}")
    return value


def check_settings(settings: EnvironSettings,
                   environ: Mapping[str, str] | None = None) -> None:
    """What can be checked before anything is built: every name, the endpoint URL and
    the database secret's key.

    The server runs this at startup (the plugin's includeme) and every command when it
    loads the ini, so a mistake stops both at once, the same way.
    """
    check_setting_names(settings, environ)
    endpoint = settings.get(PREFIX + "endpoint_url")
    if endpoint:
        check_endpoint_url(str(endpoint), setting_source(settings, PREFIX + "endpoint_url"))
    # s3sync.kms_key_arn is a deploy option, checked with the others (provision.options).
    key = settings.get(PREFIX + "db_url_secret_kms_key")
    if key:
        check_kms_key(str(key), setting_source(settings, PREFIX + "db_url_secret_kms_key"))


def parse_verify_after(value: Any, default: float) -> float | None:
    """Seconds after which the function re-checks a slow write; None means never."""
    if value is None or str(value).strip() == "":
        return default
    if str(value).strip().lower() in ("off", "never", "false", "no"):
        return None
    try:
        seconds = float(value)
    except ValueError as exc:
        raise ConfigError(
            f"{PREFIX}verify_after = {value!r}; give seconds (e.g. 0.05) or off") from exc
    if seconds < 0:
        raise ConfigError(f"{PREFIX}verify_after must not be negative")
    return seconds


def split_config_uri(config_uri: str) -> tuple[str, str]:
    """``config.ini#name`` -> (path, app name); the name defaults to ``main`` as in pserve."""
    path, _, name = config_uri.partition("#")
    return path, name or "main"


def read_app_settings(config_uri: str) -> dict[str, str]:
    """The raw ``[app:NAME]`` settings of a PasteDeploy file, with clear errors."""
    from pyramid.paster import get_appsettings

    path, name = split_config_uri(config_uri)
    if not os.path.isfile(path):
        raise ConfigError(f"cannot read {path}: no such file (give the path to pypicloud's ini)")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"cannot read {path}: permission denied")
    try:
        return dict(get_appsettings(config_uri))
    except LookupError as exc:
        if f"app:{name}" in _sections(path):
            raise ConfigError(
                f"[app:{name}] in {path} has no 'use = egg:pypicloud' line; "
                "give the ini the server runs with"
            ) from exc
        raise ConfigError(
            f"{path} has no [app:{name}] section; name the section as {path}#NAME"
        ) from exc
    except (configparser.Error, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid ini file: {ini_problem(exc)}") from exc


def _unrepr(text: str) -> str:
    """ParsingError keeps each bad line as its repr (Python 3.11/3.12) or as is."""
    import ast

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, str) else text


def ini_problem(exc: Exception) -> str:
    """configparser's multi-line complaint as one line: where, and what is wrong there."""
    line = getattr(exc, "lineno", None)
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {line}: {exc.line.strip()!r} comes before any [section] header"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {line}: section [{exc.section}] appears twice"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {line}: {exc.option} appears twice in [{exc.section}]"
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        return "; ".join(f"line {number}: cannot read {_unrepr(text).strip()!r}"
                         for number, text in exc.errors)
    return " ".join(str(exc).split())


def _sections(path: str) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser.sections()


def setup_logging(config_uri: str) -> None:
    """Use the ini's [loggers] sections like pserve does; an ini without them is fine."""
    from pyramid.paster import setup_logging as paster_setup_logging

    path, _ = split_config_uri(config_uri)
    if "loggers" in _sections(path):
        paster_setup_logging(path)


def _storage_class(settings: EnvironSettings) -> type:
    from pypicloud.storage import CloudFrontS3Storage, S3Storage
    from pyramid.path import DottedNameResolver

    name = settings.get("pypi.storage", "file")
    known = {"s3": S3Storage, "cloudfront": CloudFrontS3Storage}
    try:
        storage = known.get(name) or DottedNameResolver().maybe_resolve(name)
    except (ImportError, ValueError):
        storage = None
    if not (isinstance(storage, type) and issubclass(storage, S3Storage)):
        raise ConfigError(
            f"pypi.storage = {name}: this sync needs pypi.storage = s3 (or cloudfront), "
            "because it listens to the S3 bucket's events"
        )
    return storage


def read_target(settings: EnvironSettings) -> SyncTarget:
    """Interpret ``storage.*`` with pypicloud's own ``configure()``, without touching AWS.

    ``S3Storage.configure`` would HEAD the bucket and create it when missing; a command
    that only plans must not create buckets, so a subclass supplies the bucket's name
    in place of that one network step and the rest of pypicloud's parsing runs as is.
    """
    storage = _storage_class(settings)

    class _Offline(storage):
        @classmethod
        def _subclass_specific_config(cls, settings, common_config):  # noqa: ANN001
            return {"bucket": settings.get("storage.bucket")}

    kwargs = _Offline.configure(settings)
    if not kwargs["bucket"]:
        raise ConfigError("storage.bucket is not set; name the S3 bucket pypicloud stores in")
    _check_storage_region(settings, kwargs["region_name"])
    return SyncTarget(
        bucket=kwargs["bucket"],
        prefix=kwargs["bucket_prefix"] or "",
        region=kwargs["region_name"],
        endpoint_url=settings.get("storage.endpoint_url"),
        prepend_hash=kwargs["prepend_hash"],
    )


def _check_storage_region(settings: EnvironSettings, region: str | None) -> None:
    """An AWS bucket's region must be one of AWS's; an S3-compatible store behind
    ``storage.endpoint_url`` has names of its own (``auto``...) and is left alone."""
    problem = region and not settings.get("storage.endpoint_url") and region_problem(region)
    if problem:
        source = setting_source(settings, "storage.region_name")
        raise ConfigError(f"{source} = {region!r} {problem}; set storage.region_name to "
                          "the bucket's region")


def cache_backend(settings: EnvironSettings) -> str:
    """Resolve ``pypi.db`` as pypicloud's ``get_cache_impl`` does; returns sql, redis or dynamo.

    Only the configured backend's module is imported (see :mod:`.backends`).
    """
    from .backends import backend_of, cache_class

    name = settings.get("pypi.db", "sql")
    try:
        cache_cls = cache_class(settings)
    except ImportError as exc:
        missing = _missing_client(name, exc)
        if missing is not None:
            library, extra = missing
            raise ConfigError(
                f"pypi.db = {name} needs {library}, which is not installed: "
                f"pip install 'pypicloud-s3sync[{extra}]'"
            ) from exc
        if name in BACKEND_CLIENTS or not _names_the_setting(name, exc):
            raise  # something inside the backend's import broke: its own message says what
        raise ConfigError(
            f"pypi.db = {name} is not a cache pypicloud knows; use sql, redis or dynamo "
            f"(or a dotted path to an ICache): {exc}"
        ) from exc
    except (ValueError, AttributeError) as exc:
        if name in BACKEND_CLIENTS or (
            isinstance(exc, AttributeError) and not _names_the_setting(name, exc)
        ):
            raise
        raise ConfigError(
            f"pypi.db = {name} is not a cache pypicloud knows; use sql, redis or dynamo "
            f"(or a dotted path to an ICache): {exc}"
        ) from exc
    backend = backend_of(cache_cls)
    if backend is None:
        raise ConfigError(
            f"pypi.db = {name}: the sync supports pypicloud's sql, redis and dynamo caches"
        )
    if backend in ("sql", "redis") and not settings.get("db.url"):
        raise ConfigError(f"pypi.db = {name} needs db.url (the {backend} connection URL)")
    if backend == "dynamo" and not (settings.get("db.region_name") or settings.get("db.host")):
        raise ConfigError("pypi.db = dynamo needs db.region_name (or db.host for a local one)")
    return backend


#: The client libraries each of pypicloud's backends imports, and our extra that
#: installs them.  Only these missing are a configuration problem; any other failure
#: while importing a backend is a bug somewhere and keeps its own traceback.
BACKEND_CLIENTS = {
    "sql": {"sqlalchemy": "all", "zope": "all", "transaction": "all"},
    "redis": {"redis": "redis"},
    "dynamo": {"flywheel": "dynamo", "dynamo3": "dynamo"},
}


def _missing_client(name: str, exc: ImportError) -> tuple[str, str] | None:
    """(library, extra) when ``exc`` says a backend's client library is not installed."""
    from .backends import BACKENDS

    clients = BACKEND_CLIENTS.get(name)
    # pypicloud re-raises some as its own ImportError ("You must 'pip install flywheel'"):
    # the module that was not found is in the chain.
    missing = None
    cause: BaseException | None = exc
    while cause is not None and missing is None:
        if isinstance(cause, ModuleNotFoundError):
            missing = cause.name
        cause = cause.__cause__ or cause.__context__
    if clients is None or not missing:
        return None
    top = missing.partition(".")[0]
    if top in clients:
        return top, clients[top]
    if missing == BACKENDS[name][0]:
        return missing, "all"
    return None


def _names_the_setting(name: str, exc: BaseException) -> bool:
    """True when the failure is about the dotted path itself (a module or attribute of
    it that does not exist), not about something that path's module imports."""
    parts = name.replace(":", ".").split(".")
    prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    if isinstance(exc, ModuleNotFoundError):
        return exc.name in prefixes
    if isinstance(exc, AttributeError):
        return getattr(exc, "name", None) in parts
    return isinstance(exc, ImportError) and exc.__traceback__ is not None and not any(
        frame.tb_frame.f_globals.get("__name__", "").startswith(tuple(prefixes))
        for frame in _frames(exc.__traceback__)
    )


def _frames(tb: Any) -> list[Any]:
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    return frames


def _is_credential(key: str) -> bool:
    lowered = key.lower()
    return (
        lowered.endswith("aws_access_key_id")
        or "secret" in lowered
        or "password" in lowered
        or "session_token" in lowered
    )


def redact_url(url: str) -> str:
    """The URL with every password, key and token replaced by ``***``, for messages."""
    return redact(url)


def function_settings(settings: EnvironSettings) -> FunctionSettings:
    """What the Lambda function needs to open the cache and find packages: no credentials.

    ``db.*`` comes with the environment overrides applied (as the cache's configure
    would see them); keys that hold credentials are dropped; a URL with a password is
    withheld and reported so that the operator chooses how the function gets it, unless
    ``s3sync.db_url_secret`` says where the function reads it: then the URL goes without
    its secrets, which the function fills in from there.
    """
    from_secret = bool(settings.get(PREFIX + "db_url_secret"))
    db = settings.clone()
    db.read_prefix_from_environ("db.")
    values: dict[str, str] = {"pypi.db": str(db.get("pypi.db", "sql")), "pypi.storage": "s3"}
    withheld: dict[str, str] = {}
    for key in sorted(k for k in db if k.startswith("db.")):
        value = str(db[key])
        if _is_credential(key):
            continue
        if has_secret(value) and from_secret:
            values[key] = without_secrets(value)
            continue
        if has_secret(value):
            withheld[key] = (
                f"{key} holds a password ({redact_url(value)}); it is not copied into the "
                "function's environment. Set it on the function yourself (for example as "
                f"PPC_{key.upper().replace('.', '_')}) or allow copying it explicitly"
            )
            continue
        values[key] = value
    for key in FUNCTION_STORAGE_KEYS + FUNCTION_OWN_KEYS:
        value = settings.get(key)
        if value not in (None, ""):
            values[key] = str(value)
    return FunctionSettings(values=values, withheld=withheld)


def load_settings(
    source: str | Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> EnvironSettings:
    """pypicloud's view of the settings: ini values with ``PPC_*`` overrides on top."""
    raw = read_app_settings(source) if isinstance(source, str) else dict(source)
    return EnvironSettings(raw, None if environ is None else dict(environ))


def load_config(
    source: str | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    configure_logging: bool = False,
) -> PypicloudConfig:
    """Load and check a pypicloud config for syncing; raises :class:`ConfigError`.

    ``source`` is a PasteDeploy URI (``config.ini`` or ``config.ini#name``) or an
    already-loaded settings mapping, as the running server has.
    """
    compat.apply()
    settings = load_settings(source, environ)
    check_settings(settings, environ)
    parse_verify_after(settings.get(FUNCTION_OWN_KEYS[0]), 0.0)
    if configure_logging and isinstance(source, str):
        setup_logging(source)
    target = read_target(settings)
    backend = cache_backend(settings)
    return PypicloudConfig(
        config_uri=source if isinstance(source, str) else "<settings>",
        settings=settings,
        target=target,
        function=function_settings(settings),
        cache_backend=backend,
    )
