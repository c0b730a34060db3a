"""The database password from Secrets Manager or SSM: the function bootstraps from each
kind of reference, reads it again after the database refuses it (rotation), its role
allows exactly those reads, and create refuses a reference the function could not use.

The cache is a real Redis whose ACL user has a password, so a refused password is the
server's own answer, not a stand-in.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.function import handler
from pypicloud_s3sync.provision import iam
from pypicloud_s3sync.provision.desired import function_environment
from pypicloud_s3sync.provision.options import DeployOptions

from ..support import aws_trace, moto_gaps
from ..support.deploy_helpers import write_zip
from ..support.pypicloud_app import write_ini
from ..support.sync_harness import SyncBucket, cached
from .test_function_policy import (
    BUCKET,
    EXPECTED_CACHE,
    FUNCTION,
    REGION,
    check_policy,
    run_every_path,
)

FIRST, SECOND, WRONG = "first-Pass-1", "second-Pass-2", "third-Pass-3"
KINDS = ("secretsmanager-url", "secretsmanager-json", "ssm-password", "ssm-customer-key")
READS = {"secretsmanager.GetSecretValue", "ssm.GetParameter"}


class RedisUser:
    """An ACL user with a password on the test's own Redis database."""

    def __init__(self, url: str) -> None:
        import redis

        self.admin = redis.Redis.from_url(url)
        self.name = f"s3sync-{uuid.uuid4().hex[:8]}"
        self.parts = urlsplit(url)
        self.set_password(FIRST)

    def set_password(self, password: str) -> None:
        """Change the password and drop the user's connections, as a rotation does."""
        self.admin.acl_setuser(self.name, enabled=True, reset_passwords=True,
                               passwords=[f"+{password}"], keys=["*"], commands=["+@all"])
        self.admin.client_kill_filter(user=self.name)

    def url(self, password: str | None) -> str:
        secret = f":{password}" if password is not None else ""
        return self.parts._replace(netloc=f"{self.name}{secret}@{self.parts.netloc}").geturl()

    def close(self) -> None:
        self.admin.acl_deluser(self.name)
        self.admin.close()


@pytest.fixture
def redis_user(cache_settings: Callable[[str], dict[str, str]]) -> Iterator[RedisUser]:
    user = RedisUser(cache_settings("redis")["db.url"])
    yield user
    user.close()


def store(kind: str, user: RedisUser, password: str, arn: str | None = None) -> str:
    """Put the password (the way ``kind`` holds it) in Secrets Manager or SSM; the ARN."""
    if kind.startswith("ssm"):
        ssm = boto3.client("ssm", region_name=REGION)
        key = {"KeyId": customer_key()} if kind == "ssm-customer-key" else {}
        ssm.put_parameter(Name="/pypi/db-password", Value=password, Type="SecureString",
                          Overwrite=True, **key)
        return ssm.get_parameter(Name="/pypi/db-password")["Parameter"]["ARN"]
    value = (user.url(password) if kind == "secretsmanager-url"
             else json.dumps({"username": user.name, "password": password, "engine": "redis"}))
    secrets = boto3.client("secretsmanager", region_name=REGION)
    if arn:
        secrets.put_secret_value(SecretId=arn, SecretString=value)
        return arn
    return secrets.create_secret(Name="pypi-db", SecretString=value)["ARN"]


def customer_key() -> str:
    """The one customer managed key of the test account (made on first use)."""
    kms = boto3.client("kms", region_name=REGION)
    aliases = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/pypi-db"]
    if aliases:
        return kms.describe_key(KeyId="alias/pypi-db")["KeyMetadata"]["Arn"]
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/pypi-db", TargetKeyId=arn)
    return arn


def deploy_settings(tmp_path: Path, user: Any, arn: str,
                    monkeypatch: pytest.MonkeyPatch, kind: str = "",
                    pypi_db: str = "redis") -> tuple[dict[str, Any], dict[str, str]]:
    """(the role's policy, the function's settings) as create writes them, for a server
    whose own ini holds the password in db.url (``user.url``)."""
    ini = tmp_path / "pypicloud.ini"
    key = ({"s3sync.db_url_secret_kms_key": customer_key()} if kind == "ssm-customer-key"
           else {})
    write_ini(ini, {"pypi.db": pypi_db, "db.url": user.url(FIRST), "storage.bucket": BUCKET,
                    "s3sync.db_url_secret": arn, **key})
    config = load_config(str(ini))
    environment = function_environment(config, DeployOptions.from_config(config))
    monkeypatch.setenv(handler.SETTINGS_VAR, json.dumps(environment, sort_keys=True))
    policy = iam.role_policy(config, account=aws_trace.ACCOUNT, region=REGION,
                             function_name=FUNCTION)
    return policy, environment


@pytest.mark.parametrize("kind", KINDS)
def test_the_function_bootstraps_from_the_secret_and_its_role_allows_just_that_read(
        kind: str, function_tracer: aws_trace.Tracer, redis_user: RedisUser, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    arn = store(kind, redis_user, FIRST)
    policy, environment = deploy_settings(tmp_path, redis_user, arn, monkeypatch, kind)
    assert FIRST not in json.dumps(environment)
    secret_grants = [s for s in policy["Statement"] if s.get("Sid") == "DatabaseSecret"]
    assert [s["Resource"] for s in secret_grants] == [arn]
    key_grants = [s for s in policy["Statement"] if s.get("Sid") == "DatabaseSecretKey"]
    if kind == "ssm-customer-key":
        assert [(s["Resource"], s["Condition"]) for s in key_grants] == [(customer_key(), {
            "StringEquals": {"kms:ViaService": f"ssm.{REGION}.amazonaws.com"}})]
    else:
        assert key_grants == []
    server = {"pypi.db": "redis", "db.url": redis_user.url(FIRST), "storage.bucket": BUCKET}
    bucket = SyncBucket.create(server)

    paths = run_every_path(bucket, "", tracer=function_tracer)

    check_policy(policy, paths, "")
    reads = [c.name for calls in paths.values() for c in calls if c.name in READS]
    assert len(reads) == 1, reads  # once per container, at cold start
    assert set(cached(server)) == EXPECTED_CACHE


@pytest.mark.parametrize("kind", KINDS)
def test_a_rotated_password_is_read_again_after_the_database_refuses_the_old_one(
        kind: str, function_tracer: aws_trace.Tracer, redis_user: RedisUser, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    arn = store(kind, redis_user, FIRST)
    policy, _ = deploy_settings(tmp_path, redis_user, arn, monkeypatch, kind)
    rotate_through_the_function(
        redis_user, {"pypi.db": "redis", "storage.bucket": BUCKET},
        lambda password: store(kind, redis_user, password, arn=arn), function_tracer, policy)


def rotate_through_the_function(user: Any, server: dict[str, str],
                                store_password: Callable[[str], Any],
                                tracer: aws_trace.Tracer, policy: dict[str, Any]) -> None:
    """Three events through the function, for a database ``user`` (``set_password``,
    ``url``) whose password the secret holds: one on the first password; one after a
    rotation (the database takes only the new password and drops every connection, the
    secret holds it); one after the password changed without the secret.  Then what an
    operator checks: one read of the secret each time, the log's two lines and no
    password in it, every call allowed by the role's policy, the first two packages
    cached and the third event failed for Lambda to retry."""
    bucket = SyncBucket.create({**server, "db.url": user.url(FIRST)})
    log = io.StringIO()
    capture = logging.StreamHandler(log)
    handler.LOG.addHandler(capture)
    try:
        _, alpha = bucket.put_package("alpha", "1.0")
        with tracer.recording() as cold:
            handler.handle_event(alpha.event("aws"), None)

        user.set_password(SECOND)
        store_password(SECOND)
        _, beta = bucket.put_package("beta", "1.0")
        with tracer.recording() as rotated:
            handler.handle_event(beta.event("aws"), None)

        user.set_password(WRONG)
        _, gamma = bucket.put_package("gamma", "1.0")
        with tracer.recording() as refused, pytest.raises(handler.SyncError):
            handler.handle_event(gamma.event("aws"), None)
    finally:
        handler.LOG.removeHandler(capture)
        handler.reset()  # its pooled connection must not outlive the user

    for calls in (cold, rotated, refused):
        assert len([c for c in calls if c.name in READS]) == 1
    assert "read the secret again and reconnected" in log.getvalue()
    assert "the secret still holds the same one" in log.getvalue()
    for secret in (FIRST, SECOND, WRONG):
        assert secret not in log.getvalue()
    assert not aws_trace.denied(policy, aws_trace.iam_requests([*cold, *rotated, *refused]))
    user.set_password(SECOND)
    assert set(cached({**server, "db.url": user.url(SECOND)})) == {"alpha-1.0.tar.gz",
                                                                   "beta-1.0.tar.gz"}


# -- create's checks ------------------------------------------------------------------------

def create_with(tmp_path: Path, reference: str, db_url: str) -> tuple[int, str]:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"pypi.db": "redis", "db.url": db_url, "storage.bucket": BUCKET,
                    "s3sync.db_url_secret": reference})
    bundle = str(write_zip(tmp_path / "function.zip"))
    return main(["create", str(ini), "--bundle", bundle, "--dry-run"]), ""


@pytest.mark.parametrize("problem", ["missing", "not-a-url", "other-region", "not-an-arn"])
def test_create_refuses_a_secret_the_function_could_not_use(
        problem: str, aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    value = "this is no URL, Hidden-Value-7"
    arn = secrets.create_secret(Name="pypi-db", SecretString=value)["ARN"]
    reference = {
        "missing": arn.replace("pypi-db", "pypi-gone"),
        "not-a-url": arn,
        "other-region": boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
            Name="pypi-db", SecretString="redis://u:Hidden-Value-7@cache:6379/0")["ARN"],
        "not-an-arn": "pypi-db",
    }[problem]
    code, _ = create_with(tmp_path, reference, "redis://cache.internal:6379/0")
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1
    expected = {"missing": "does not exist", "not-a-url": "is not a URL",
                "other-region": "is in eu-west-1, but the function would be in us-east-1",
                "not-an-arn": "is not the ARN of a Secrets Manager secret"}[problem]
    assert expected in err
    assert "Hidden-Value-7" not in err
    if problem == "missing":  # the message says how to make it: no docs ship with a wheel
        assert (f"aws secretsmanager create-secret --region {REGION} --name pypi-gone "
                "--secret-string DATABASE_URL") in err


def test_create_reads_the_secret_once_and_shows_no_password(
        function_tracer: aws_trace.Tracer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="pypi-db", SecretString="redis://ppc:Stored-Pass-8@cache.internal:6379/0")["ARN"]
    with function_tracer.recording() as calls:
        code, _ = create_with(tmp_path, arn, "redis://ppc:Ini-Pass-9@cache.internal:6379/0")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert [c.name for c in calls].count("secretsmanager.GetSecretValue") == 1
    for secret in ("Stored-Pass-8", "Ini-Pass-9"):
        assert secret not in out.out + out.err


@pytest.mark.parametrize("service, variable", [
    ("secretsmanager", "AWS_ENDPOINT_URL_SECRETS_MANAGER"), ("ssm", "AWS_ENDPOINT_URL_SSM")])
def test_the_secret_client_fails_fast_like_the_s3_client(aws_env, monkeypatch, service,
                                                          variable):
    """botocore's Config says "connect_timeout: The time in seconds till a timeout
    exception is thrown when attempting to make a connection. The default is 60
    seconds", and its legacy retry mode tries five times: a function in a VPC with no
    way to Secrets Manager would spend its whole init there, saying nothing.  The secret
    client gets the S3 client's bounds instead, and its error names the endpoint.

    The endpoint is a loopback port bound by no listener (held by this test, so no other
    process takes it), so the call fails on its first connection whatever the machine's
    speed; the bound itself is asserted on the client's configuration."""
    import socket

    from botocore.exceptions import EndpointConnectionError

    from pypicloud_s3sync.function import dbsecret, s3

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}"
        monkeypatch.setenv(variable, url)
        client = dbsecret.boto3_client(service, REGION)
        assert client.meta.endpoint_url == url
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (s3.CONNECT_TIMEOUT,
                                                                 s3.READ_TIMEOUT)
        assert config.retries == s3.RETRIES
        arn = (f"arn:aws:secretsmanager:{REGION}:123456789012:secret:pypi-db-AbCdEf"
               if service == "secretsmanager"
               else f"arn:aws:ssm:{REGION}:123456789012:parameter/pypi/db")
        with pytest.raises(EndpointConnectionError) as failure:
            dbsecret.read_value(dbsecret.parse_ref(arn), dbsecret.boto3_client)
    assert url in str(failure.value)
