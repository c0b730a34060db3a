"""Each form of database or cache URL, exactly as every output shows it and as the
function receives it.

``tests/shared/test_url_secrets.py`` drives the outputs themselves (plans, the CLI's
lines, the admin API, the function's log); this file pins, for each form a driver
accepts, the one text all of them print (``redact``), the URL the function is given
when the password comes from Secrets Manager (``without_secrets``) and the secrets the
admin API scrubs from any answer (``url_secrets``).  An exact text, not "the password
is absent": a redaction that also ate the host or the user would hide the secret and
leave the operator unable to tell which database a message is about.
"""

from __future__ import annotations

import pytest

from pypicloud_s3sync.urlsecrets import (
    has_secret,
    redact,
    redact_text,
    url_secrets,
    without_secrets,
)

#: url -> (shown in every output, given to the function, the secrets a driver reads)
FORMS = {
    # libpq / SQLAlchemy userinfo; a password may hold "/", "?", "#" or "@" (SQLAlchemy
    # reads it up to the first "@", so both readings are secrets).
    "postgresql://ppc:Userinfo-pw1@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"Userinfo-pw1"}),
    "postgresql://ppc:Slash/pw7@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"Slash/pw7"}),
    "postgresql://ppc:Q?pw15@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"Q?pw15"}),
    "postgresql://ppc:Hash#pw16@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"Hash#pw16"}),
    "postgresql://ppc:At@pw14@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"At@pw14", "At"}),
    "mysql+pymysql://ppc:p%40ss%2Fword6@db.internal/pypi": (
        "mysql+pymysql://ppc:***@db.internal/pypi", "mysql+pymysql://ppc@db.internal/pypi",
        {"p%40ss%2Fword6", "p@ss/word6"}),
    # Without a path or before a query.
    "postgresql://ppc:pw22@db.internal": (
        "postgresql://ppc:***@db.internal", "postgresql://ppc@db.internal", {"pw22"}),
    "postgresql://ppc:pw23@db.internal?sslmode=require": (
        "postgresql://ppc:***@db.internal?sslmode=require",
        "postgresql://ppc@db.internal?sslmode=require", {"pw23"}),
    # An "@" after the host (in the query) is no part of the userinfo.
    "postgresql://ppc:pw29@db/pypi?x=a@b": (
        "postgresql://ppc:***@db/pypi?x=a@b", "postgresql://ppc@db/pypi?x=a@b", {"pw29"}),
    "postgresql://db/pypi?x=u:v@w": (
        "postgresql://db/pypi?x=u:v@w", "postgresql://db/pypi?x=u:v@w", set()),
    # Query parameters: libpq, PyMySQL, redis-py, ODBC; a key may be percent-encoded.
    "postgresql://ppc@db.internal/pypi?password=Query-pw2": (
        "postgresql://ppc@db.internal/pypi?password=***", "postgresql://ppc@db.internal/pypi",
        {"Query-pw2"}),
    "postgresql://ppc@db.internal/pypi?password=Plus+sign8": (
        "postgresql://ppc@db.internal/pypi?password=***", "postgresql://ppc@db.internal/pypi",
        {"Plus+sign8", "Plus sign8"}),
    ("postgresql://ppc@db.internal/pypi?sslmode=verify-full&sslkey=/etc/ppc/key-file3.pem"
     "&sslpassword=Sslkey-pw4"): (
        "postgresql://ppc@db.internal/pypi?sslmode=verify-full&sslkey=***&sslpassword=***",
        "postgresql://ppc@db.internal/pypi?sslmode=verify-full",
        {"/etc/ppc/key-file3.pem", "Sslkey-pw4"}),
    "mysql+pymysql://ppc@db.internal/pypi?passwd=Passwd-pw5&charset=utf8mb4": (
        "mysql+pymysql://ppc@db.internal/pypi?passwd=***&charset=utf8mb4",
        "mysql+pymysql://ppc@db.internal/pypi?charset=utf8mb4", {"Passwd-pw5"}),
    "mssql+pyodbc://ppc@dsn?PWD=Odbc-pw17&driver=x": (
        "mssql+pyodbc://ppc@dsn?PWD=***&driver=x", "mssql+pyodbc://ppc@dsn?driver=x",
        {"Odbc-pw17"}),
    "postgresql://db.internal/pypi?user=a@b&p%61ssword=pw20": (
        "postgresql://db.internal/pypi?user=a@b&p%61ssword=***",
        "postgresql://db.internal/pypi?user=a@b", {"pw20"}),
    "postgresql://ppc:pw24@db/pypi?a=1&password=pw25&b=2": (
        "postgresql://ppc:***@db/pypi?a=1&password=***&b=2", "postgresql://ppc@db/pypi?a=1&b=2",
        {"pw24", "pw25"}),
    # A fragment is no query: "password=" after "#" is not read by any driver.
    "postgresql://ppc:pw18@db.internal/pypi?password=pw19#frag=password=no": (
        "postgresql://ppc:***@db.internal/pypi?password=***#frag=password=no",
        "postgresql://ppc@db.internal/pypi?#frag=password=no", {"pw18", "pw19"}),
    # Redis: a password without a user, an ACL user, query parameters.
    "redis://:Redis-pw9@cache.internal:6379/0": (
        "redis://:***@cache.internal:6379/0", "redis://cache.internal:6379/0", {"Redis-pw9"}),
    "rediss://default:Redis-acl10@cache.internal:6380/0": (
        "rediss://default:***@cache.internal:6380/0", "rediss://default@cache.internal:6380/0",
        {"Redis-acl10"}),
    "redis://cache.internal:6379/0?password=Redis-query11": (
        "redis://cache.internal:6379/0?password=***", "redis://cache.internal:6379/0",
        {"Redis-query11"}),
    "rediss://cache.internal:6380/0?ssl_keyfile=/etc/redis/key12.pem&ssl_password=Redis-ssl13": (
        "rediss://cache.internal:6380/0?ssl_keyfile=***&ssl_password=***",
        "rediss://cache.internal:6380/0", {"/etc/redis/key12.pem", "Redis-ssl13"}),
    # Generated passwords hold any punctuation (Secrets Manager's GetRandomPassword
    # draws from all of it by default): "#", "?", "=", ":" and "@" in the password must
    # not let the query's secrets, or part of the password, show.
    "postgresql://ppc:a#b@db/pypi?sslpassword=Ssl-pw30": (
        "postgresql://ppc:***@db/pypi?sslpassword=***", "postgresql://ppc@db/pypi",
        {"a#b", "Ssl-pw30"}),
    "postgresql://ppc:Pw?x=1@db/pypi?sslpassword=Ssl-pw32": (
        "postgresql://ppc:***@db/pypi?sslpassword=***", "postgresql://ppc@db/pypi",
        {"Pw?x=1", "Ssl-pw32"}),
    "postgresql://ppc:Q?pw39@db.internal/pypi?password=Query-pw40": (
        "postgresql://ppc:***@db.internal/pypi?password=***",
        "postgresql://ppc@db.internal/pypi", {"Q?pw39", "Query-pw40"}),
    "postgresql://ppc:Hash#pw@34@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"Hash#pw@34", "Hash#pw"}),
    "postgresql://ppc:Ends#@pw42@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"Ends#@pw42", "Ends#"}),
    "postgresql://ppc:Ends-with@@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"Ends-with@", "Ends-with"}),
    "postgresql://ppc:Colon:pw35@db.internal/pypi": (
        "postgresql://ppc:***@db.internal/pypi", "postgresql://ppc@db.internal/pypi",
        {"Colon:pw35"}),
    "postgresql://ppc:p@ss@w0rd@db/pypi": (
        "postgresql://ppc:***@db/pypi", "postgresql://ppc@db/pypi", {"p@ss@w0rd", "p"}),
    # "?", "#" and "://" later in the URL than the secret.
    "postgresql://ppc@db/pypi?password=Query-pw33&application_name=a?b": (
        "postgresql://ppc@db/pypi?password=***&application_name=a?b",
        "postgresql://ppc@db/pypi?application_name=a?b", {"Query-pw33"}),
    "postgresql://ppc@db/pypi?password=pw31#frag#more": (
        "postgresql://ppc@db/pypi?password=***#frag#more",
        "postgresql://ppc@db/pypi?#frag#more", {"pw31"}),
    "redis://:Redis-pw37@cache.internal:6379/0?client_name=http://x": (
        "redis://:***@cache.internal:6379/0?client_name=http://x",
        "redis://cache.internal:6379/0?client_name=http://x", {"Redis-pw37"}),
    # The database's name is kept to its last letter; redis-py reads the scheme in
    # any case (urllib lowercases it).
    "mysql+pymysql://ppc@db.internal/INDEX?passwd=Passwd-pw41": (
        "mysql+pymysql://ppc@db.internal/INDEX?passwd=***",
        "mysql+pymysql://ppc@db.internal/INDEX", {"Passwd-pw41"}),
    "REDIS://:Upper-pw36@cache/0": ("REDIS://:***@cache/0", "REDIS://cache/0", {"Upper-pw36"}),
    # Nothing secret: shown and given as they are.
    "sqlite:////var/lib/pypi.sqlite": (
        "sqlite:////var/lib/pypi.sqlite", "sqlite:////var/lib/pypi.sqlite", set()),
    "postgresql://ppc:@db.internal/pypi": (
        "postgresql://ppc:@db.internal/pypi", "postgresql://ppc:@db.internal/pypi", set()),
    "postgresql://ppc@db.internal/pypi?password=": (
        "postgresql://ppc@db.internal/pypi?password=",
        "postgresql://ppc@db.internal/pypi?password=", set()),
    # SQLAlchemy splits the query on "&" alone: after ";" the value goes on.
    "postgresql://db.internal/pypi?options=-c%20x;password=pw21": (
        "postgresql://db.internal/pypi?options=-c%20x;password=pw21",
        "postgresql://db.internal/pypi?options=-c%20x;password=pw21", set()),
    "no-scheme:pw@host": ("no-scheme:pw@host", "no-scheme:pw@host", set()),
}


@pytest.mark.parametrize("url", list(FORMS))
def test_each_form_is_shown_and_given_without_its_secrets(url: str) -> None:
    shown, given, secrets = FORMS[url]
    assert redact(url) == shown
    assert without_secrets(url) == given
    assert url_secrets(url) == secrets
    assert has_secret(url) is bool(secrets)


def test_urls_inside_a_message_are_redacted_and_the_rest_kept() -> None:
    """A driver's error quotes the URL in free text, between quotes or brackets."""
    message = ("could not connect to postgresql://ppc:pw26@db/pypi; then 'redis://:pw27@c/0'"
               ' and "mysql://u:pw28@h/d"<x> (sqlite:///no-secret) REDIS://:pw29@c/0')
    assert redact_text(message) == (
        "could not connect to postgresql://ppc:***@db/pypi; then 'redis://:***@c/0'"
        ' and "mysql://u:***@h/d"<x> (sqlite:///no-secret) REDIS://:***@c/0')
