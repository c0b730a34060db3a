"""The S3 client of the function, of reconcile and of the admin endpoint, built from
``storage.*`` exactly as pypicloud's own S3 storage builds its client.

Whoever set ``storage.endpoint_url``, ``storage.signature_version`` or
``storage.addressing_style`` for their bucket needs every reader of that bucket to use
them; one builder keeps the three callers from drifting apart.  The settings read here
are those of ``S3Storage.get_bucket`` in pypicloud; only its bucket HEAD-or-create is
left out (none of our commands may create a bucket).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

#: Seconds to wait for a connection and for each read when ``storage.connect_timeout`` /
#: ``storage.read_timeout`` are not set.  botocore's own 60 s each, times its legacy five
#: attempts, would let a function with no route to S3 (in a VPC without an S3 gateway
#: endpoint or NAT) hang until Lambda kills it, with nothing in the log saying why.
CONNECT_TIMEOUT = 2
READ_TIMEOUT = 10

#: botocore's standard retry mode: three attempts in all, with jittered backoff, and
#: throttling and transient errors retried the same way by every caller.  A missing route
#: then fails within about 3 x CONNECT_TIMEOUT plus the backoff, well inside the
#: function's timeout.
RETRIES = {"mode": "standard", "total_max_attempts": 3}

#: Credential settings pypicloud hands to boto3 when set (else boto3's default chain).
CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def credentials(settings: Any) -> dict[str, str]:
    """The ``storage.aws_*`` credentials that are set, as boto3 keyword arguments."""
    given = {key: settings.get(f"storage.{key}") for key in CREDENTIAL_KEYS}
    return {key: str(value) for key, value in given.items() if value}


def _client_options(settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(Config kwargs, client kwargs)`` from ``storage.*``, read as pypicloud reads them."""
    from pyramid.settings import asbool, falsey

    def as_dict(value: Any) -> dict[str, Any]:
        from pyramid_duh.settings import asdict

        return asdict(value)

    def verify(value: Any) -> bool | str:
        """A CA bundle's path, or off (pypicloud's own reading of the setting)."""
        return False if str(value).strip().lower() in falsey else str(value)

    config = settings.get_as_dict(
        "storage.", region_name=str, signature_version=str, user_agent=str,
        user_agent_extra=str, connect_timeout=int, read_timeout=int,
        parameter_validation=asbool, max_pool_connections=int, proxies=as_dict)
    config["s3"] = settings.get_as_dict(
        "storage.", use_accelerate_endpoint=asbool, payload_signing_enabled=asbool,
        addressing_style=str, signature_version=str)
    client = settings.get_as_dict(
        "storage.", region_name=str, api_version=str, use_ssl=asbool, verify=verify,
        endpoint_url=str)
    client.update(credentials(settings))
    return config, client


def fast_session() -> Any:
    """A boto3 session of its own, whose listings parse timestamps quickly (see
    :func:`fast_timestamp`): one per client, or one that a command's several clients
    share, so that S3's service model is read once."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=fast_timestamp)
    return boto3.session.Session(botocore_session=core)


def s3_client(settings: Any, *, min_pool_connections: int = 0,
              endpoint_url: str | None = None, session: Any = None) -> Any:
    """An S3 client that reaches the bucket the way the pypicloud server does.

    ``endpoint_url`` (the commands' ``--endpoint-url`` or ``s3sync.endpoint_url``)
    replaces ``storage.endpoint_url``, as it does for every other AWS call the commands
    make, so that one option points the whole run at a moto server.

    ``min_pool_connections`` is for callers that share the client between threads
    (reconcile's parallel HEADs): the pool then holds at least one connection per
    thread, so none is thrown away, whatever ``storage.max_pool_connections`` says.

    Unlike pypicloud's client, ours fails fast: :data:`CONNECT_TIMEOUT` and
    :data:`READ_TIMEOUT` unless ``storage.connect_timeout`` / ``storage.read_timeout``
    say otherwise, and botocore's standard retry mode (:data:`RETRIES`).
    The client has a session of its own, or ``session`` (from :func:`fast_session`).
    """
    from botocore.config import Config
    from botocore.endpoint import MAX_POOL_CONNECTIONS

    config, client = _client_options(settings)
    config.setdefault("connect_timeout", CONNECT_TIMEOUT)
    config.setdefault("read_timeout", READ_TIMEOUT)
    config.setdefault("retries", dict(RETRIES))
    if endpoint_url:
        client["endpoint_url"] = endpoint_url
    pool = config.get("max_pool_connections", MAX_POOL_CONNECTIONS)
    if min_pool_connections > pool:
        config["max_pool_connections"] = min_pool_connections
    return (session or fast_session()).client("s3", config=Config(**config), **client)


def fast_timestamp(value: str) -> Any:
    """botocore's timestamp parsing, minus dateutil for the two forms S3 answers in.

    botocore parses every timestamp with dateutil, about 0.06 to 0.1 ms each: a second
    of CPU per 10,000 keys of a listing that reconcile never looks at, and a few percent
    of the handler's time per event in the HEAD's ``Last-Modified``.  The ISO 8601 form
    of ListObjectsV2 and the RFC 1123 form of HEAD's headers (always GMT) are parsed by
    the standard library instead (the same instant, in UTC); anything else goes to
    botocore's own parser.
    """
    from botocore.utils import parse_timestamp

    if isinstance(value, str):
        try:
            if value.endswith("Z") and "T" in value:
                return datetime.fromisoformat(value)
            if value.endswith(" GMT"):
                return parsedate_to_datetime(value)
        except ValueError:
            pass
    return parse_timestamp(value)
