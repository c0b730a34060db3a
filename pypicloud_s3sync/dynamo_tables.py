"""pypicloud's ``DynamoCache.configure`` without its table creation.

pypicloud's configure ends with flywheel's ``engine.create_schema()``, which lists every
table in the account (``dynamodb:ListTables``, grantable only on ``"*"``) and creates
the missing ones.  The sync must never do either: the tables are the server's, the
function's role would need account-wide DynamoDB rights, and a function that quietly
created empty tables under a mistyped ``db.namespace`` would sync into nowhere.  So
configure runs as pypicloud wrote it (settings, ``db.tablenames``, the connection, model
registration), and only its last step is replaced by one DescribeTable per table, which
the role grants on exactly those tables.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .settings import ConfigError

#: configure() swaps a module global of pypicloud's for the duration of one call.
_LOCK = threading.Lock()


class MissingTableError(ConfigError):
    """A cache table does not exist; the message says how it gets created."""


def check_tables(engine: Any) -> list[str]:
    """DescribeTable for each registered model's table; raise if one is missing.

    Returns the table names checked.  Errors other than "not found" (access denied,
    throttling) propagate as DynamoDB reported them.
    """
    names = []
    for model in engine.models.values():
        name = model.meta_.ddb_tablename(engine.namespace)
        if engine.dynamo.describe_table(name) is None:
            raise MissingTableError(
                f"DynamoDB table {name} does not exist (pypi.db = dynamo); the sync never "
                "creates tables: start the pypicloud server once with this config (it "
                "creates them), or point db.tablenames / db.namespace at the existing ones"
            )
        names.append(name)
    return names


@contextmanager
def _checking_engine() -> Iterator[None]:
    import pypicloud.cache.dynamo as dynamo_cache

    engine_class = dynamo_cache.Engine

    class CheckingEngine(engine_class):  # type: ignore[misc, valid-type]
        """flywheel's Engine whose ``create_schema`` only checks that the tables exist."""

        def create_schema(self, *args: Any, **kwargs: Any) -> list[str]:  # noqa: ARG002
            check_tables(self)
            return []

    with _LOCK:
        dynamo_cache.Engine = CheckingEngine
        try:
            yield
        finally:
            dynamo_cache.Engine = engine_class


def configure(cache_class: type, settings: Any) -> dict[str, Any]:
    """``cache_class.configure(settings)``, checking the tables instead of creating them."""
    with _checking_engine():
        return cache_class.configure(settings)


__all__ = ["MissingTableError", "check_tables", "configure"]
