"""Secret rotation against the databases people rotate: PostgreSQL and MariaDB.

A real login role on the test's own database, whose password the test changes the way a
rotation does (ALTER the password, drop the role's connections).  The function's next
event is refused by the server itself, reads the secret once more, reconnects and
applies; a password that is still wrong (the secret was not updated) fails the event.
The secret holds the whole URL, or the JSON document Secrets Manager's RDS rotation
keeps (AWS Secrets Manager User Guide, "JSON structure of a database secret": engine,
host, username, password, dbname, port), of which the function takes the password and
username and keeps the rest of ``db.url``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from ..support import aws_trace
from .test_db_secret import FIRST, deploy_settings, rotate_through_the_function
from .test_function_policy import BUCKET, REGION

#: PostgreSQL roles in this group must give their password even from 127.0.0.1.
PASSWORD_GROUP = "s3sync_password_login"


class SQLUser:
    """A login role with a password, allowed everything on the test's own database."""

    def __init__(self, url: str, admin_url: str, database: str) -> None:
        from sqlalchemy import create_engine

        self.parts = urlsplit(url)
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.postgres = self.engine.dialect.name == "postgresql"
        self.name = f"s3sync_{uuid.uuid4().hex[:8]}"
        self.database = database
        self.url_of_database = url
        if self.postgres:
            self._run(f"DO $$ BEGIN CREATE ROLE {PASSWORD_GROUP} NOLOGIN; EXCEPTION WHEN "
                      "duplicate_object THEN NULL; END $$",
                      f"CREATE ROLE {self.name} LOGIN PASSWORD '{FIRST}' IN ROLE "
                      f"{PASSWORD_GROUP}",
                      f'ALTER DATABASE "{database}" OWNER TO {self.name}')
        else:
            self._run(f"CREATE USER '{self.name}'@'%' IDENTIFIED BY '{FIRST}'",
                      f"GRANT ALL ON `{database}`.* TO '{self.name}'@'%'")

    def _run(self, *statements: str) -> None:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))

    def _sessions(self) -> list[str]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            if self.postgres:
                return [str(r[0]) for r in conn.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE usename = :name"),
                    {"name": self.name})]
            return [str(r[0]) for r in conn.execute(text(
                "SELECT id FROM information_schema.processlist WHERE user = :name"),
                {"name": self.name})]

    def set_password(self, password: str) -> None:
        """Change the password and drop the user's connections, as a rotation does."""
        if self.postgres:
            self._run(f"ALTER ROLE {self.name} PASSWORD '{password}'",
                      *(f"SELECT pg_terminate_backend({pid})" for pid in self._sessions()))
        else:
            self._run(f"ALTER USER '{self.name}'@'%' IDENTIFIED BY '{password}'",
                      *(f"KILL {pid}" for pid in self._sessions()))

    def url(self, password: str | None) -> str:
        secret = f":{password}" if password is not None else ""
        host = self.parts.netloc.rpartition("@")[2]
        return self.parts._replace(netloc=f"{self.name}{secret}@{host}").geturl()

    def rds_document(self, password: str) -> str:
        """The JSON Secrets Manager's RDS rotation keeps."""
        return json.dumps({
            "engine": "postgres" if self.postgres else "mariadb",
            "host": self.parts.hostname, "port": self.parts.port or 0,
            "username": self.name, "password": password, "dbname": self.database,
            "dbInstanceIdentifier": "pypi-cache"})

    def refuses_a_wrong_password(self) -> bool:
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import OperationalError

        engine = create_engine(self.url("not-the-password"))
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError:
            return True
        finally:
            engine.dispose()
        return False

    def close(self) -> None:
        if self.postgres:
            from sqlalchemy import create_engine, text

            self._run(*(f"SELECT pg_terminate_backend({pid})" for pid in self._sessions()))
            # What the role made (pypicloud's tables) lives in the test's database.
            owned = create_engine(self.url_of_database, isolation_level="AUTOCOMMIT")
            with owned.connect() as conn:
                conn.execute(text(f"REASSIGN OWNED BY {self.name} TO CURRENT_USER"))
                conn.execute(text(f"DROP OWNED BY {self.name}"))
            owned.dispose()
            self._run(f"DROP ROLE {self.name}")
        else:
            self._run(*(f"KILL {pid}" for pid in self._sessions()),
                      f"DROP USER '{self.name}'@'%'")
        self.engine.dispose()


@pytest.fixture(params=["postgresql", "mysql"])
def sql_user(request: pytest.FixtureRequest) -> Iterator[SQLUser]:
    db = request.getfixturevalue("postgres_db" if request.param == "postgresql"
                                 else "mysql_db")
    db.reset()
    user = SQLUser(db.url, db.admin_url, db.name)
    try:
        if not user.refuses_a_wrong_password():
            pytest.skip(f"{request.param} on 127.0.0.1 takes any password (trust), so no "
                        "rotation can be shown; put 'host all +s3sync_password_login "
                        "127.0.0.1/32 scram-sha-256' above the trust line of pg_hba.conf "
                        "and reload the server (.ci/run does)")
        yield user
    finally:
        user.close()


def store(shape: str, user: SQLUser, password: str, arn: str | None = None) -> str:
    value = user.url(password) if shape == "url" else user.rds_document(password)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    if arn:
        secrets.put_secret_value(SecretId=arn, SecretString=value)
        return arn
    return secrets.create_secret(Name=f"pypi-db-{uuid.uuid4().hex[:6]}",
                                 SecretString=value)["ARN"]


@pytest.mark.parametrize("shape", ["url", "rds-json"])
def test_a_rotated_database_password_is_read_again_and_a_wrong_one_fails_the_event(
        shape: str, sql_user: SQLUser, function_tracer: aws_trace.Tracer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    arn = store(shape, sql_user, FIRST)
    policy, environment = deploy_settings(tmp_path, sql_user, arn, monkeypatch,
                                          pypi_db="sql")
    assert FIRST not in json.dumps(environment)
    rotate_through_the_function(
        sql_user, {"pypi.db": "sql", "storage.bucket": BUCKET},
        lambda password: store(shape, sql_user, password, arn=arn), function_tracer, policy)
