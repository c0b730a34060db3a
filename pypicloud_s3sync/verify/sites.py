"""One region of the run: its ini, its bucket (our S3 client and pypicloud's storage)
and its pypicloud cache, read as its server reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..backends import backend_of
from ..urlsecrets import redact_text
from . import canary

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .overhead import Meter


class CacheUnreachable(Exception):
    """The region's cache raised when opened or read; the message is redacted."""


@dataclass
class Site:
    """One ini of the run."""

    config: PypicloudConfig
    endpoint_url: str | None
    s3: Any
    storage: Any
    cache: Any = None
    cache_error: str | None = None
    canary: canary.Canary | None = None
    uploaded_at: float | None = None
    deleted_at: float | None = None

    @property
    def bucket(self) -> str:
        return self.config.target.bucket

    @property
    def region(self) -> str:
        return self.config.target.region or "us-east-1"

    @property
    def label(self) -> str:
        return f"{self.bucket} ({self.region})"

    @property
    def key_prefix(self) -> str:
        return canary.key_prefix(self.config.target.prefix, self.config.target.prepend_hash)

    def to_json(self) -> dict[str, str]:
        return {"bucket": self.bucket, "region": self.region,
                "config": self.config.config_uri}


def open_site(config: PypicloudConfig, endpoint_url: str | None, meter: Meter,
              clients: Clients | None = None) -> Site:
    """Our S3 client, the bucket checked, pypicloud's storage on that client, and the
    cache; a cache that fails to open is recorded, not raised, so that the run can name
    it as the broken link.  ``clients`` are shared by the run's sites."""
    from ..function.s3 import s3_client

    clients = clients or Clients()
    endpoint = config.endpoint_url(endpoint_url)
    s3 = meter.watch(s3_client(config.settings, endpoint_url=endpoint,
                               session=clients.session))
    _check_bucket(s3, config)
    storage = canary.open_storage(config.settings, s3, clients.resource())
    site = Site(config, endpoint, s3, storage)
    try:
        site.cache = open_cache(config, endpoint_url)
    except Exception as exc:  # noqa: BLE001 - whatever the backend raises is the finding
        site.cache_error = describe(exc)
    return site


def _check_bucket(s3: Any, config: PypicloudConfig) -> None:
    """A missing bucket is the ini's mistake, said as such (pypicloud itself would
    create it on its next start, empty)."""
    from botocore.exceptions import ClientError

    from ..config import ConfigError

    try:
        s3.head_bucket(Bucket=config.target.bucket)
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
            raise
        raise ConfigError(
            f"bucket {config.target.bucket} (storage.bucket in {config.config_uri}) does "
            f"not exist in {config.target.region or 'the default region'}; verify never "
            "creates buckets: check storage.bucket and storage.region_name") from exc


class Clients:
    """What the run's S3 clients share: one session (S3's service model read once) and
    one boto3 resource factory for pypicloud's ``Bucket`` objects."""

    def __init__(self) -> None:
        from ..function.s3 import fast_session

        self.session = fast_session()
        self._resource: Any = None

    def resource(self) -> Any:
        if self._resource is None:
            # Its own client is never called: every Bucket gets a site's client.
            self._resource = self.session.resource("s3", region_name="us-east-1",
                                              aws_access_key_id="unused",
                                              aws_secret_access_key="unused")
        return self._resource


def open_cache(config: PypicloudConfig, endpoint_url: str | None) -> Any:
    from ..function.reconcile import open_cache as open_pypicloud_cache

    return open_pypicloud_cache(config.cache_settings(endpoint_url))


def describe(exc: BaseException) -> str:
    """The cache's own error, one line, every password in it withheld."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return redact_text(text)


def listed(site: Site, meter: Meter) -> dict[str, str]:
    """The canary's entries in the site's cache, filename to the key each records,
    read as the server's /simple/ page reads them (``cache.all(name)``); raises
    :class:`CacheUnreachable`."""
    if site.cache is None:
        raise CacheUnreachable(site.cache_error or "not opened")
    meter.cache_reads += 1
    try:
        entries = {package.filename: str(package.data.get("path") or "")
                   for package in site.cache.all(canary.NAME)}
    except Exception as exc:  # noqa: BLE001
        _end_read(site.cache, failed=True)
        site.cache_error = describe(exc)
        raise CacheUnreachable(site.cache_error) from exc
    _end_read(site.cache)
    return entries


def _end_read(cache: Any, failed: bool = False) -> None:
    """A SQL session's read ends its transaction, so the next poll sees other writers'
    commits (the function's); the server's request does the same."""
    if backend_of(cache) == "sql":
        try:
            cache.db.rollback()
        except Exception:  # noqa: BLE001
            if not failed:
                raise


def exists(site: Site, key: str) -> bool:
    """Whether ``key`` is an object in the site's bucket now (HEAD; a delete marker is
    "no")."""
    from ..function.sync import head_object

    return head_object(site.s3, site.bucket, key) is not None


def close(site: Site) -> None:
    if site.cache is not None:
        from ..function.cache import close_cache

        close_cache(site.cache)
