"""What the function makes of ``s3sync.db_url_secret`` and of the value it holds: the URL
its cache opens, the one line ``create`` and the function print when that is not
possible (never quoting the value, which may be the password), and which database
errors count as a refused password (the function then reads the secret again).

``test_db_secret.py`` runs these through create and the function against a Redis user
with a password; here each shape of value is pinned exactly, with moto for the reads.
"""

from __future__ import annotations

import boto3
import pytest

from pypicloud_s3sync.function.dbsecret import (
    SecretError,
    SecretRef,
    boto3_client,
    database_url,
    is_auth_failure,
    parse_ref,
    read_value,
)

SM_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pypi-db-AbCdEf"
SSM_ARN = "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/pypi/db"
DB_URL = "postgresql://ppc@db.internal:5432/pypi?sslmode=require"


def test_the_reference_is_read_off_its_arn() -> None:
    """The service, region and partition say which client reads it and what the
    role is granted; spaces around a pasted ARN are not part of it."""
    assert parse_ref(f"  {SM_ARN}\n") == SecretRef(
        arn=SM_ARN, service="secretsmanager", region="eu-west-1", account="123456789012",
        partition="aws")
    assert parse_ref(SM_ARN).kind == "Secrets Manager secret"
    assert parse_ref(SSM_ARN) == SecretRef(
        arn=SSM_ARN, service="ssm", region="cn-north-1", account="123456789012",
        partition="aws-cn")
    assert parse_ref(SSM_ARN).kind == "SSM parameter"


@pytest.mark.parametrize("value", [
    "pypi-db",
    "arn:aws:s3:::packages",
    "arn:aws:secretsmanager:eu-west-1:12345678901:secret:pypi-db",  # 11-digit account
    "arn:aws:ssm:eu-west-1:123456789012:document/pypi",
    "arn:aws:secretsmanager:eu-west-1:123456789012:pypi-db",
    "arn:aws:secretsmanager:EU-WEST-1:123456789012:secret:pypi-db",
])
def test_anything_else_is_refused_with_the_two_forms_it_may_take(value: str) -> None:
    with pytest.raises(SecretError) as info:
        parse_ref(value)
    assert str(info.value) == (
        f"s3sync.db_url_secret = {value} is not the ARN of a Secrets Manager secret "
        "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX) or of an SSM parameter "
        "(arn:aws:ssm:REGION:ACCOUNT:parameter/NAME); the ARN lets the function's role be "
        "granted that one secret")


#: (the secret's value, db.url) -> the URL the cache opens
OPENED = {
    ("postgresql://u:pw1@h/d", DB_URL): "postgresql://u:pw1@h/d",
    ("  postgresql://u:pw2@h/d\n", None): "postgresql://u:pw2@h/d",
    ('{"url": "redis://:pw3@cache/0"}', None): "redis://:pw3@cache/0",
    # RDS's rotation document: the password (and user) go into db.url, encoded.
    ('{"password": "p@ss/w rd", "username": "rotated user", "engine": "postgres"}', DB_URL):
        "postgresql://rotated%20user:p%40ss%2Fw%20rd@db.internal:5432/pypi?sslmode=require",
    ('{"password": "pw4"}', DB_URL): "postgresql://ppc:pw4@db.internal:5432/pypi?sslmode=require",
    ('{"url": 5, "password": "pw5"}', DB_URL):
        "postgresql://ppc:pw5@db.internal:5432/pypi?sslmode=require",
    # A bare password, into db.url's userinfo (Redis: no user).
    ("pw6", DB_URL): "postgresql://ppc:pw6@db.internal:5432/pypi?sslmode=require",
    (" pw7\n", "redis://cache:6379/0"): "redis://:pw7@cache:6379/0",
    ('["pw8"]', DB_URL): "postgresql://ppc:%5B%22pw8%22%5D@db.internal:5432/pypi?sslmode=require",
    # An "@" or "://" in db.url's query is not where the user ends: the password must
    # not land in application_name (which every user of the database can read).
    ("pw11", "postgresql://ppc@db.internal/pypi?application_name=s3sync@lambda"):
        "postgresql://ppc:pw11@db.internal/pypi?application_name=s3sync@lambda",
    ("pw12", "postgresql://db.internal/pypi?application_name=a@b"):
        "postgresql://:pw12@db.internal/pypi?application_name=a@b",
    ("pw13", "redis://cache:6379/0?client_name=http://x"):
        "redis://:pw13@cache:6379/0?client_name=http://x",
    # Azure's "user@server" logins: the user ends at the last "@" before the host, as
    # SQLAlchemy reads it.  And a URL without a path.
    ("pw17", "postgresql://ppc@pypi-db@pypi-db.postgres.database.azure.com/pypi"):
        "postgresql://ppc@pypi-db:pw17@pypi-db.postgres.database.azure.com/pypi",
    ("pw18", "redis://cache:6379"): "redis://:pw18@cache:6379",
    ('{"password": "pw14", "username": "app/rotated user"}', "postgresql://ppc@db.internal/pypi"):
        "postgresql://app%2Frotated%20user:pw14@db.internal/pypi",
    # A whole URL is taken as it is, "://" in its query or its scheme in capitals
    # (redis-py lowercases it) included.
    ("postgresql://u:pw15@h/d?application_name=http://x", None):
        "postgresql://u:pw15@h/d?application_name=http://x",
    ("REDIS://:pw16@cache/0", None): "REDIS://:pw16@cache/0",
}


@pytest.mark.parametrize(("value", "db_url"), list(OPENED))
def test_each_shape_of_value_gives_the_url_the_cache_opens(value: str, db_url: str | None
                                                          ) -> None:
    assert database_url(value, db_url) == OPENED[value, db_url]
    assert database_url(value, db_url, parse_ref(SM_ARN)) == OPENED[value, db_url]


#: (the secret's value, db.url) -> what is wrong, after "<the secret> "
REFUSED = {
    ('{"password": "pw-a"}', None):
        "holds a password, but there is no db.url to put it in; store the whole URL as its "
        "value",
    ('{"pw-b', DB_URL): "looks like JSON but does not parse",
    ('{"user": "pw-c"}', DB_URL): 'is a JSON object without a "url" or "password" key',
    ('{"password": 5, "u": "pw-d"}', DB_URL):
        'is a JSON object without a "url" or "password" key',
    ("pw e://x", DB_URL): 'is not a URL (nor a password: it holds "://")',
    ("http://pw f", DB_URL): 'is not a URL (nor a password: it holds "://")',
    ("1pw-g://x", DB_URL): 'is not a URL (nor a password: it holds "://")',
    ("", DB_URL): "is not a URL, and is no password either (it is empty or holds white space)",
    ("pw h", DB_URL):
        "is not a URL, and is no password either (it is empty or holds white space)",
    ('{"url": "pw-l m://x"}', DB_URL): 'is not a URL (nor a password: it holds "://")',
    ("pw-i", None): "is not a URL, and there is no db.url to put it in as the password; store "
                    "the whole database URL in it",
    ("pw-j", ""): "is not a URL, and there is no db.url to put it in as the password; store "
                  "the whole database URL in it",
}


@pytest.mark.parametrize(("value", "db_url"), list(REFUSED))
def test_a_value_that_gives_no_url_is_refused_without_quoting_it(value: str,
                                                                 db_url: str | None) -> None:
    for ref, named in ((None, "the secret"), (parse_ref(SM_ARN), f"Secrets Manager secret "
                                                                 f"{SM_ARN}")):
        with pytest.raises(SecretError) as info:
            database_url(value, db_url, ref)
        assert str(info.value) == f"{named} {REFUSED[value, db_url]}"
        for part in value.replace('"', " ").replace("{", " ").split():
            if part.startswith("pw"):
                assert part not in str(info.value)


@pytest.mark.parametrize(("db_url", "problem"), [
    ("postgresql://u:old@h/d",
     "the secret holds a password, but db.url holds one as well; remove it from db.url (or "
     "store the whole URL in the secret)"),
    ("postgresql://u@h/d?password=old",
     "the secret holds a password, but db.url holds one as well; remove it from db.url (or "
     "store the whole URL in the secret)"),
    ("sqlite-file.db",
     "the secret holds a password, but db.url is no URL to put it in; store the whole "
     "database URL in the secret instead"),
])
def test_a_password_needs_a_db_url_without_one(db_url: str, problem: str) -> None:
    for value in ("pw-k", '{"password": "pw-k"}'):
        with pytest.raises(SecretError) as info:
            database_url(value, db_url)
        assert str(info.value) == problem


def test_each_service_is_read_in_the_secrets_own_region(aws: None) -> None:
    """The function's region is us-east-1 here; the secrets live in eu-west-1 only.
    SSM: GetParameter returns a SecureString encrypted unless WithDecryption is true."""
    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    url_arn = secrets.create_secret(Name="pypi-db", SecretString="redis://:pw@c/0")["ARN"]
    binary_arn = secrets.create_secret(Name="pypi-bin", SecretBinary=b"\x00pw")["ARN"]
    ssm = boto3.client("ssm", region_name="eu-west-1")
    ssm.put_parameter(Name="/pypi/db", Value="pw-ssm", Type="SecureString")
    ssm_arn = ssm.get_parameter(Name="/pypi/db")["Parameter"]["ARN"]

    assert read_value(parse_ref(url_arn), boto3_client) == "redis://:pw@c/0"
    assert read_value(parse_ref(ssm_arn), boto3_client) == "pw-ssm"
    with pytest.raises(SecretError) as info:
        read_value(parse_ref(binary_arn), boto3_client)
    assert str(info.value) == (f"Secrets Manager secret {binary_arn} holds binary data, "
                               "not a URL or password")


def _raised(make: type[BaseException] | None = None, *args: object,
            cause: BaseException | None = None,
            context: BaseException | None = None) -> BaseException:
    """An exception as Python chains it: raised from ``cause`` or while handling
    ``context``."""
    try:
        if context is not None:
            try:
                raise context
            except BaseException:
                raise (make or RuntimeError)(*args) from cause
        raise (make or RuntimeError)(*args) from cause
    except BaseException as exc:
        return exc


def _refusals() -> dict[str, BaseException]:
    import psycopg2
    import pymysql
    import redis
    from sqlalchemy.exc import OperationalError

    postgres = psycopg2.OperationalError(
        'connection to server at "db" (10.0.0.5), port 5432 failed: FATAL:  password '
        'authentication failed for user "ppc"\n')
    mysql = pymysql.err.OperationalError(
        1045, "Access denied for user 'ppc'@'10.0.0.7' (using password: YES)")
    return {
        "postgresql": OperationalError("SELECT 1", {}, postgres),
        "mysql": OperationalError("SELECT 1", {}, mysql),
        "redis": redis.exceptions.AuthenticationError(
            "invalid username-password pair or user is disabled."),
        # As a message only (another client, or re-raised as another type):
        "redis-wrongpass": RuntimeError("WRONGPASS"),
        "redis-requirepass": RuntimeError("ERR invalid password"),
        "redis-noauth": RuntimeError("NOAUTH Authentication required."),
        "mongodb-style": RuntimeError("Authentication failed."),
        "acl-pair": RuntimeError("invalid username-password pair"),
        "as-a-cause": _raised(RuntimeError, "cache unavailable", cause=mysql),
        "as-a-context": _raised(RuntimeError, "cache unavailable",
                                context=redis.exceptions.AuthenticationError("x")),
        "a-cause-beside-a-context": _raised(RuntimeError, "cache unavailable", cause=mysql,
                                            context=RuntimeError("rollback failed")),
    }


@pytest.mark.parametrize("case", list(_refusals()))
def test_a_refused_password_is_recognised_from_every_driver(case: str) -> None:
    assert is_auth_failure(_refusals()[case]) is True


@pytest.mark.parametrize("message", [
    'connection to server at "db" (10.0.0.5), port 5432 failed: Connection refused',
    "(2003, \"Can't connect to MySQL server on 'db' (timed out)\")",
    "Error 111 connecting to cache:6379. Connection refused.",
    "password column is too long",
])
def test_other_failures_are_not_taken_for_a_refused_password(message: str) -> None:
    """Reading the secret again would not help; the error goes to the log as it is."""
    looped = RuntimeError(message)
    looped.__context__ = RuntimeError(message)
    looped.__context__.__context__ = looped  # a cycle must not hang the check
    assert is_auth_failure(looped) is False
    assert is_auth_failure(_raised(RuntimeError, message, cause=ValueError(message))) is False
