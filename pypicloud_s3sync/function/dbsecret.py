"""The database URL (or its password) from Secrets Manager or SSM, never from the environment.

``s3sync.db_url_secret`` names the secret by ARN, so that the role can be granted that
one resource and the function needs no other setting to find it: the ARN says the
service, the region and the account.  The value is a URL (used as ``db.url``), a JSON
object with ``url`` or ``password`` (and optionally ``username``: what RDS's managed
rotation stores), or a bare password that goes into ``db.url``'s userinfo.

The function reads it once per container and again after the database refuses the
password, which is how a rotated password reaches a warm container without a redeploy.
``create`` reads it once at plan time through :func:`resolve_url` as well, so that a
secret that is missing, unreadable or not usable fails before anything is deployed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..urlsecrets import has_secret

#: The setting (and ``PYPICLOUD_SETTINGS`` key) that names the secret.
OPTION = "s3sync.db_url_secret"

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>secretsmanager|ssm):(?P<region>[a-z0-9-]+):"
    r"(?P<account>\d{12}):(?P<resource>(?:secret:.+)|(?:parameter/.+))$"
)

#: Messages a driver raises when the database refused the credentials (lowercased).
_AUTH_FAILURES = (
    "password authentication failed",  # PostgreSQL
    "access denied for user",  # MySQL / MariaDB
    "wrongpass",  # Redis 6+ ACL
    "invalid password",  # Redis requirepass
    "noauth",  # Redis: a password is needed
    "invalid username-password pair",
    "authentication failed",
)


#: Where a URL's authority (userinfo and host) ends.
_AUTHORITY_END = re.compile(r"[/?#]")


class SecretError(ValueError):
    """The secret cannot give the function a database URL; the message says why."""


@dataclass(frozen=True)
class SecretRef:
    """Where the secret is, read off its ARN."""

    arn: str
    service: str
    region: str
    account: str
    partition: str

    @property
    def kind(self) -> str:
        return "Secrets Manager secret" if self.service == "secretsmanager" else "SSM parameter"


def parse_ref(value: str) -> SecretRef:
    """The reference in ``s3sync.db_url_secret``; a :class:`SecretError` if it is none."""
    match = _ARN.match(value.strip())
    if match is None:
        raise SecretError(
            f"{OPTION} = {value} is not the ARN of a Secrets Manager secret "
            "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX) or of an SSM "
            "parameter (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME); the ARN lets the "
            "function's role be granted that one secret"
        )
    return SecretRef(arn=value.strip(), service=match["service"], region=match["region"],
                     account=match["account"], partition=match["partition"])


def read_value(ref: SecretRef, client: Callable[[str, str], Any]) -> str:
    """The secret's string; ``client(service, region)`` builds the boto3 client."""
    api = client(ref.service, ref.region)
    if ref.service == "secretsmanager":
        answer = api.get_secret_value(SecretId=ref.arn)
        if "SecretString" not in answer:
            raise SecretError(f"{ref.kind} {ref.arn} holds binary data, not a URL or password")
        return str(answer["SecretString"])
    return str(api.get_parameter(Name=ref.arn, WithDecryption=True)["Parameter"]["Value"])


def _with_password(url: str, password: str, username: str | None = None) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SecretError(
            "the secret holds a password, but db.url is no URL to put it in; "
            "store the whole database URL in the secret instead"
        )
    if has_secret(url):
        raise SecretError(
            "the secret holds a password, but db.url holds one as well; remove it from "
            "db.url (or store the whole URL in the secret)"
        )
    # The user ends at the last "@" before the path, query or fragment: an "@" in the
    # query ("application_name=a@b") is not the userinfo's, and a password put there
    # would reach the server as that parameter's value.
    authority = _AUTHORITY_END.search(rest)
    host_start = rest.rfind("@", 0, authority.start() if authority else len(rest)) + 1
    user = rest[:host_start - 1] if host_start else ""
    if username is not None:
        user = quote(username, safe="")
    return f"{scheme}://{user}:{quote(password, safe='')}@{rest[host_start:]}"


def database_url(value: str, db_url: str | None, ref: SecretRef | None = None) -> str:
    """The ``db.url`` the cache opens, from the secret's value and the settings' URL.

    Never quotes the value in an error: a value that is not what we expect may still be
    the password.
    """
    where = f"{ref.kind} {ref.arn}" if ref else "the secret"
    text = value.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise SecretError(f"{where} looks like JSON but does not parse") from exc
        if isinstance(document, dict) and isinstance(document.get("url"), str):
            return database_url(document["url"], db_url, ref)
        if isinstance(document, dict) and isinstance(document.get("password"), str):
            if not db_url:
                raise SecretError(f"{where} holds a password, but there is no db.url to "
                                  "put it in; store the whole URL as its value")
            return _with_password(db_url, document["password"], document.get("username"))
        raise SecretError(f"{where} is a JSON object without a \"url\" or \"password\" key")
    if "://" in text:
        scheme = text.partition("://")[0]
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme) or any(c.isspace()
                                                                           for c in text):
            raise SecretError(f"{where} is not a URL (nor a password: it holds \"://\")")
        return text
    if not text or any(c.isspace() for c in text):
        raise SecretError(f"{where} is not a URL, and is no password either (it is empty "
                          "or holds white space)")
    if not db_url:
        raise SecretError(f"{where} is not a URL, and there is no db.url to put it in as "
                          "the password; store the whole database URL in it")
    return _with_password(db_url, text)


def is_auth_failure(exc: BaseException) -> bool:
    """True when the database refused the credentials (possibly rotated since read)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if type(item).__name__ == "AuthenticationError":  # redis-py
            return True
        if any(text in str(item).lower() for text in _AUTH_FAILURES):
            return True
        todo += [item.__cause__, item.__context__, getattr(item, "orig", None)]
    return False


def boto3_client(service: str, region: str) -> Any:
    """A client for the secret's own region (the ARN's, not the function's default).

    It fails as fast as the S3 client (:mod:`.s3`'s timeouts and retries): the secret is
    read during init, where botocore's 60 s connect timeout, tried five times, would
    spend the function's whole start on a VPC with no way to the service.
    """
    import boto3
    from botocore.config import Config

    from .s3 import CONNECT_TIMEOUT, READ_TIMEOUT, RETRIES

    return boto3.client(service, region_name=region, config=Config(
        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, retries=dict(RETRIES)))


__all__ = ["OPTION", "SecretError", "SecretRef", "boto3_client", "database_url",
           "is_auth_failure", "parse_ref", "read_value"]
