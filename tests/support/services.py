"""Real cache servers for the tests: databases of our own, made and removed by us.

Each test session creates its own PostgreSQL and MariaDB database
(``s3sync_test_<pid>``, so two sessions on one machine never meet) and claims an empty
Redis database number with a marker key.  Nothing we did not create is ever dropped or
flushed.  With ``PPC_S3SYNC_REQUIRE_SERVICES=1`` (set in CI) a server that is down
fails the run; otherwise the tests that need it are skipped with the reason.

The admin addresses can be changed with ``PPC_S3SYNC_TEST_POSTGRES``,
``PPC_S3SYNC_TEST_MYSQL`` and ``PPC_S3SYNC_TEST_REDIS``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

#: Every cache backend pypicloud has, each tested against its real server (DynamoDB on moto).
CACHE_BACKENDS = ["sqlite", "postgresql", "mysql", "redis", "dynamo"]

POSTGRES_ADMIN = os.environ.get(
    "PPC_S3SYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN = os.environ.get("PPC_S3SYNC_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/")
REDIS_ADMIN = os.environ.get("PPC_S3SYNC_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_CLAIM_KEY = "s3sync_test:claimed-by"


def services_required() -> bool:
    return os.environ.get("PPC_S3SYNC_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def unavailable(what: str, exc: BaseException) -> None:
    """Fail in CI, skip elsewhere; either way say which server and why."""
    message = f"{what} is not reachable ({type(exc).__name__}: {exc})".splitlines()[0]
    if services_required():
        pytest.fail(f"{message}; PPC_S3SYNC_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(f"{message}; start it to run these tests")


def _database_name() -> str:
    return f"s3sync_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"


@dataclass
class SQLDatabase:
    """A database this test session created on a real server, and how to drop it."""

    url: str
    admin_url: str
    name: str

    def drop(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{self.name}`"))
        engine.dispose()

    def reset(self) -> None:
        """Empty our own database between tests (every table in it is pypicloud's)."""
        from sqlalchemy import MetaData, create_engine

        engine = create_engine(self.url)
        meta = MetaData()
        meta.reflect(bind=engine)
        meta.drop_all(bind=engine)
        engine.dispose()


def create_sql_database(admin_url: str) -> SQLDatabase:
    from sqlalchemy import create_engine, text

    name = _database_name()
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine.dispose()
    parts = urlsplit(admin_url)
    url = parts._replace(path="/" + name).geturl()
    return SQLDatabase(url=url, admin_url=admin_url, name=name)


@dataclass
class RedisDatabase:
    """An empty Redis database number that we marked as ours."""

    url: str
    token: str

    def client(self):  # noqa: ANN201 - redis is an optional import
        import redis

        return redis.Redis.from_url(self.url)

    def reset(self) -> None:
        """Remove everything but our claim; the database was empty when we claimed it."""
        client = self.client()
        for key in client.scan_iter("*"):
            if key.decode() != REDIS_CLAIM_KEY:
                client.delete(key)

    def release(self) -> None:
        self.reset()
        self.client().delete(REDIS_CLAIM_KEY)


def claim_redis_database(admin_url: str) -> RedisDatabase:
    import redis

    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    for number in range(15, 0, -1):
        url = f"{admin_url.rstrip('/')}/{number}"
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        if client.dbsize() != 0:
            continue
        if client.set(REDIS_CLAIM_KEY, token, nx=True, ex=6 * 3600) and client.dbsize() == 1:
            return RedisDatabase(url=url, token=token)
    raise RuntimeError("no empty Redis database (1-15) is free to claim")


@contextlib.contextmanager
def temporary_cache(backend: str, workdir: Path,
                    region: str = "us-east-1") -> Iterator[dict[str, str]]:
    """``pypi.db``/``db.*`` settings of an empty cache of our own, removed afterwards.

    For scripts outside pytest (the benchmarks); tests use the ``cache_settings`` fixture.
    """
    if backend == "sqlite":
        yield {"pypi.db": "sql", "db.url": f"sqlite:///{workdir / 'cache.sqlite'}"}
    elif backend in ("postgresql", "mysql"):
        db = create_sql_database(POSTGRES_ADMIN if backend == "postgresql" else MYSQL_ADMIN)
        try:
            yield {"pypi.db": "sql", "db.url": db.url}
        finally:
            db.drop()
    elif backend == "redis":
        redis_db = claim_redis_database(REDIS_ADMIN)
        try:
            yield {"pypi.db": "redis", "db.url": redis_db.url}
        finally:
            redis_db.release()
    elif backend == "dynamo":
        yield {"pypi.db": "dynamo", "db.region_name": region}
    else:
        raise SystemExit(f"unknown backend {backend!r}: use sqlite, postgresql, mysql, "
                         "redis or dynamo")
