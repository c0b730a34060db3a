"""Every reader of the bucket reaches it the way pypicloud does, from the same settings.

Someone who set ``storage.endpoint_url``, ``storage.signature_version`` or
``storage.addressing_style`` for their bucket needs the function, ``ppc-s3sync
reconcile`` and the admin endpoint to honour it as pypicloud's own S3 storage does.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.validate import ParamValidationDecorator
from pypicloud.util import EnvironSettings

from pypicloud_s3sync import cli
from pypicloud_s3sync.function.s3 import s3_client

from ..support.pypicloud_app import ADMIN, basic_auth

#: Not the other tests' bucket name: the admin endpoint's lock is one file per bucket name
#: for the whole host, shared with any test run alongside this one.
BUCKET = "client-settings-packages"


def settings(**values: str) -> EnvironSettings:
    return EnvironSettings({f"storage.{k}": v for k, v in values.items()}, {})


def credentials(client: Any) -> tuple[str, str, str | None]:
    frozen = client._request_signer._credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


def s3_option(client: Any, name: str) -> Any:
    return (client.meta.config.s3 or {}).get(name)


@pytest.mark.parametrize(("given", "check"), [
    ({"region_name": "eu-west-1"}, lambda c: c.meta.region_name == "eu-west-1"),
    ({"endpoint_url": "http://minio.internal:9000"},
     lambda c: c.meta.endpoint_url == "http://minio.internal:9000"),
    ({"region_name": "eu-west-1", "use_ssl": "false"},
     lambda c: c.meta.endpoint_url.startswith("http://")),
    ({"signature_version": "s3"}, lambda c: (c.meta.config.signature_version,
                                             s3_option(c, "signature_version"))
     == ("s3", "s3")),
    ({"addressing_style": "path"}, lambda c: s3_option(c, "addressing_style") == "path"),
    ({"use_accelerate_endpoint": "true"},
     lambda c: s3_option(c, "use_accelerate_endpoint") is True),
    ({"payload_signing_enabled": "true"},
     lambda c: s3_option(c, "payload_signing_enabled") is True),
    ({"verify": "false"}, lambda c: c._endpoint.http_session._verify is False),
    ({"verify": "/etc/ssl/private-ca.pem"},
     lambda c: c._endpoint.http_session._verify == "/etc/ssl/private-ca.pem"),
    ({"connect_timeout": "3", "read_timeout": "7"},
     lambda c: (c.meta.config.connect_timeout, c.meta.config.read_timeout) == (3, 7)),
    ({"max_pool_connections": "40"}, lambda c: c.meta.config.max_pool_connections == 40),
    ({"user_agent": "mirror/1.0"},
     lambda c: c.meta.config.user_agent.startswith("mirror/1.0 ")),
    ({"user_agent_extra": "site-a"}, lambda c: c.meta.config.user_agent_extra == "site-a"),
    ({"parameter_validation": "false"},
     lambda c: not isinstance(c._serializer, ParamValidationDecorator)),
    ({"proxies": "https = http://proxy.internal:3128"},
     lambda c: c.meta.config.proxies == {"https": "http://proxy.internal:3128"}),
    ({"aws_access_key_id": "AKIASTORAGE", "aws_secret_access_key": "storage-secret",
      "aws_session_token": "storage-token"},
     lambda c: credentials(c) == ("AKIASTORAGE", "storage-secret", "storage-token")),
], ids=lambda value: "+".join(value) if isinstance(value, dict) else "")
def test_each_storage_setting_reaches_the_client(aws_env: None, given: dict[str, str],
                                                 check: Callable[[Any], bool]) -> None:
    assert check(s3_client(settings(**given)))
    assert not check(default_client())  # the setting made the difference


@functools.cache
def default_client() -> Any:
    return s3_client(settings())


#: Every client setting pypicloud reads, given at once (no endpoint: moto in process
#: answers AWS's own addresses only).
ALL_SETTINGS = {
    "region_name": "eu-west-1", "use_ssl": "false", "signature_version": "s3v4",
    "addressing_style": "path", "use_accelerate_endpoint": "false",
    "payload_signing_enabled": "true", "verify": "false", "api_version": "2006-03-01",
    "connect_timeout": "3", "read_timeout": "7", "max_pool_connections": "40",
    "user_agent": "mirror/1.0", "user_agent_extra": "site-a", "parameter_validation": "true",
    "proxies": "https = http://proxy.internal:3128", "aws_access_key_id": "AKIASTORAGE",
    "aws_secret_access_key": "storage-secret", "aws_session_token": "storage-token",
}


def view(client: Any) -> dict[str, Any]:
    """What decides where and how a client's requests go."""
    config = client.meta.config
    return {
        "region": client.meta.region_name, "endpoint": client.meta.endpoint_url,
        "api_version": client.meta.service_model.api_version,
        "verify": client._endpoint.http_session._verify, "credentials": credentials(client),
        **{name: getattr(config, name) for name in (
            "signature_version", "s3", "connect_timeout", "read_timeout",
            "max_pool_connections", "user_agent", "user_agent_extra",
            "parameter_validation", "proxies")},
    }


def test_the_client_is_the_one_pypicloud_builds_for_the_same_settings(aws: None) -> None:
    from pypicloud.storage import S3Storage

    given = settings(**ALL_SETTINGS)
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    theirs = S3Storage.get_bucket(BUCKET, given).meta.client

    assert view(s3_client(given)) == view(theirs)


def test_a_pool_for_parallel_reads_grows_but_never_shrinks(aws_env: None) -> None:
    assert s3_client(settings(), min_pool_connections=32).meta.config.max_pool_connections == 32
    assert s3_client(settings(max_pool_connections="50"), min_pool_connections=32
                     ).meta.config.max_pool_connections == 50
    assert s3_client(settings(), min_pool_connections=4).meta.config.max_pool_connections == 10


# -- the three callers, seen from the requests they send ---------------------------------

class Requests:
    """Every request botocore sends while recording, as (address, addressing style,
    signing scheme, the user agent's last word): what the storage settings decide."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []
        self.active = False

    def __call__(self, request: Any, **_: Any) -> None:
        if self.active:
            url = urlsplit(request.url)
            agent = request.headers.get("User-Agent", b"")
            agent = agent.decode() if isinstance(agent, bytes) else agent
            auth = request.headers.get("Authorization", b"")
            auth = auth.decode() if isinstance(auth, bytes) else auth
            style = "path" if url.path.split("/")[1] == BUCKET else "virtual"
            self.seen.append((f"{url.scheme}://{url.netloc}", style, auth.split(" ")[0],
                              agent.rsplit(" ", 1)[-1]))

    @contextlib.contextmanager
    def of(self) -> Iterator[set[tuple[str, str, str, str]]]:
        found: set[tuple[str, str, str, str]] = set()
        start, self.active = len(self.seen), True
        try:
            yield found
        finally:
            self.active = False
            found.update(self.seen[start:])


@pytest.fixture
def requests_sent(aws: None) -> Iterator[Requests]:
    """Hooked into every botocore session made from now on (pypicloud's included):
    first in line, so it sees each request before moto answers it."""
    import botocore.handlers

    recorder = Requests()
    builtin = botocore.handlers.BUILTIN_HANDLERS
    default_session = boto3.DEFAULT_SESSION
    botocore.handlers.BUILTIN_HANDLERS = [("before-send", recorder), *builtin]
    boto3.DEFAULT_SESSION = None
    try:
        yield recorder
    finally:
        botocore.handlers.BUILTIN_HANDLERS = builtin
        boto3.DEFAULT_SESSION = default_session


def test_function_cli_and_admin_send_requests_as_pypicloud_does(
    requests_sent: Requests, pypicloud_factory: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given the server's settings, each of our readers addresses, signs and names
    itself as pypicloud's own storage does (plain HTTP, path style, SigV2 here)."""
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with requests_sent.of() as pypicloud:
        server = pypicloud_factory(bucket=BUCKET, create_bucket=False, **{
            "storage.region_name": "eu-west-1", "storage.use_ssl": "false",
            "storage.addressing_style": "path", "storage.signature_version": "s3",
            "storage.user_agent_extra": "site-a"})
        server.upload("alpha", "1.0")
    assert pypicloud == {("http://s3.eu-west-1.amazonaws.com", "path", "AWS", "site-a")}

    from pypicloud_s3sync.function import handler

    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(server.settings))
    handler.reset()
    try:
        with requests_sent.of() as function:
            handler.handle_event({"detail-type": "Scheduled Event", "detail": {}})
    finally:
        handler.reset()
    with requests_sent.of() as command:
        assert cli.main(["reconcile", str(server.ini)]) == 0
    with requests_sent.of() as admin:
        res = server.app.post("/admin/s3sync/reconcile", "{}", status="*",
                              extra_environ=basic_auth(ADMIN), content_type="application/json")
        assert res.status_int == 200, res.text

    assert function == command == admin == pypicloud



def test_the_client_fails_fast_unless_the_settings_say_otherwise(aws_env: None) -> None:
    config = default_client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (2, 10)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    chosen = s3_client(settings(connect_timeout="5", read_timeout="30")).meta.config
    assert (chosen.connect_timeout, chosen.read_timeout) == (5, 30)


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[str, list[Any]]]:
    """An endpoint that accepts connections and never answers (a route into nowhere)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_an_s3_that_never_answers_fails_after_three_attempts(aws_env: None) -> None:
    from botocore.exceptions import ReadTimeoutError

    with silent_server() as (url, accepted):
        client = s3_client(settings(endpoint_url=url, read_timeout="1",
                                    region_name="us-east-1"))
        with pytest.raises(ReadTimeoutError):
            client.head_object(Bucket=BUCKET, Key="a/a-1.0.tar.gz")
        assert len(accepted) == 3  # standard retry mode; botocore's legacy mode tries 5


def test_unreachable_s3_fails_the_invocation_with_a_line_naming_the_route(
    aws_env: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    from pypicloud_s3sync.function import handler

    with socket.socket() as probe:  # a port nobody listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps({
        "pypi.db": "sql", "db.url": f"sqlite:///{tmp_path / 'cache.sqlite'}",
        "storage.bucket": BUCKET, "storage.region_name": "us-east-1",
        "storage.endpoint_url": closed}))
    handler.reset()
    key = "60af/alpha/alpha-1.0.tar.gz"
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}
    try:
        with pytest.raises(handler.SyncError, match=key):
            handler.handle_event(event, None)
    finally:
        handler.reset()
    *_, line = (json.loads(x) for x in capsys.readouterr().out.splitlines() if '"action"' in x)
    assert line["action"] == "failed" and line["key"] == key
    assert "S3 gateway endpoint or a NAT route" in line["reason"]
