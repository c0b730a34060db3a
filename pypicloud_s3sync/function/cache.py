"""Open pypicloud's cache through its own ``configure()``, without its web application.

The class comes from :mod:`pypicloud_s3sync.backends` (only the configured backend's
module is imported); it is then configured by pypicloud's own ``configure()``
classmethods, exactly as the server does, with a storage that makes no AWS call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from ..backends import backend_of, cache_class


def open_cache(settings: Any) -> Any:
    """pypicloud's cache for these settings, configured by its own ``configure()``.

    ``ICache.configure`` also builds a storage, and pypicloud's S3 storage HEADs the
    bucket and creates it when it is missing; the cache gets
    :class:`~pypicloud_s3sync.function.offline_storage.OfflineS3Storage` instead, which reads
    ``storage.*`` the same way and makes no AWS call.  The settings are cloned because
    ``configure`` pops keys.  A DynamoDB cache is configured without creating its tables
    (see :func:`configure_checking_tables`): it checks that they exist.
    """
    from .offline_storage import DOTTED_NAME

    cache_settings = settings.clone()
    cache_settings["pypi.storage"] = DOTTED_NAME
    cls = cache_class(cache_settings)
    if backend_of(cls) == "dynamo":
        return cls(**configure_checking_tables(cls, cache_settings))
    return cls(**cls.configure(cache_settings))


def close_cache(cache: Any) -> None:
    """Give a SQL cache's connections back: each command or admin job that opened the
    cache opened its own engine, and a server runs many."""
    session = getattr(cache, "db", None)
    if hasattr(session, "get_bind"):
        bind = session.get_bind()
        session.close()
        bind.dispose()


# -- DynamoDB: pypicloud's configure without its table creation ---------------------------
#
# pypicloud's DynamoCache.configure ends with flywheel's ``engine.create_schema()``,
# which lists every table in the account (``dynamodb:ListTables``, grantable only on
# "*") and creates the missing ones.  The sync must do neither: the tables are the
# server's, the function's role would need account-wide DynamoDB rights, and a function
# that quietly created empty tables under a mistyped ``db.namespace`` would sync into
# nowhere.  So configure runs as pypicloud wrote it (settings, ``db.tablenames``, the
# connection, model registration) and only its last step becomes one DescribeTable per
# table, which the role grants on exactly those tables.

#: configure swaps a module global of pypicloud's for the duration of one call.
_ENGINE_LOCK = threading.Lock()


def check_tables(engine: Any) -> list[str]:
    """DescribeTable for each registered model's table; ConfigError if one is missing.

    Returns the table names checked.  Errors other than "not found" (access denied,
    throttling) propagate as DynamoDB reported them.
    """
    from ..config import ConfigError

    names = []
    for model in engine.models.values():
        name = model.meta_.ddb_tablename(engine.namespace)
        if engine.dynamo.describe_table(name) is None:
            raise ConfigError(
                f"DynamoDB table {name} does not exist (pypi.db = dynamo); the sync never "
                "creates tables: start the pypicloud server once with this config (it "
                "creates them), or point db.tablenames / db.namespace at the existing ones"
            )
        names.append(name)
    return names


@contextlib.contextmanager
def _checking_engine() -> Iterator[None]:
    import pypicloud.cache.dynamo as dynamo_cache

    engine_class = dynamo_cache.Engine

    class CheckingEngine(engine_class):  # type: ignore[misc, valid-type]
        """flywheel's Engine whose ``create_schema`` only checks that the tables exist."""

        def create_schema(self, *args: Any, **kwargs: Any) -> list[str]:  # noqa: ARG002
            check_tables(self)
            return []

    with _ENGINE_LOCK:
        dynamo_cache.Engine = CheckingEngine
        try:
            yield
        finally:
            dynamo_cache.Engine = engine_class


def configure_checking_tables(cache_class: type, settings: Any) -> dict[str, Any]:
    """``cache_class.configure(settings)`` for a DynamoDB cache, checking its tables
    instead of creating them."""
    with _checking_engine():
        return cache_class.configure(settings)


__all__ = ["check_tables", "close_cache", "configure_checking_tables", "open_cache"]
