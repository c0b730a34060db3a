"""Every way a database or cache URL can carry a secret, through every output that could
show it: the withhold check, the plan (text and JSON), the command's error line, the
admin API's scrubbing, the function's log lines and the function's environment."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from pypicloud_s3sync.admin.security import scrub, secret_values
from pypicloud_s3sync.cli import main
from pypicloud_s3sync.config import load_config
from pypicloud_s3sync.function import handler
from pypicloud_s3sync.provision.desired import function_environment
from pypicloud_s3sync.provision.options import DeployOptions

from ..support import moto_gaps
from ..support.deploy_helpers import BUCKET, PREFIX, REGION, write_zip
from ..support.pypicloud_app import write_ini

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pypi-db-AbCdEf"

#: (cache, db.url, the secrets in it as a driver would read them)
FORMS = {
    "userinfo": ("sql", "postgresql://ppc:Userinfo-pw1@db.internal/pypi",
                 ["Userinfo-pw1"]),
    "password-param": ("sql", "postgresql://ppc@db.internal/pypi?password=Query-pw2",
                       ["Query-pw2"]),
    "sslkey-sslpassword": ("sql", "postgresql://ppc@db.internal/pypi?sslmode=verify-full"
                           "&sslkey=/etc/ppc/key-file3.pem&sslpassword=Sslkey-pw4",
                           ["/etc/ppc/key-file3.pem", "Sslkey-pw4"]),
    "passwd-param": ("sql", "mysql+pymysql://ppc@db.internal/pypi?passwd=Passwd-pw5"
                     "&charset=utf8mb4", ["Passwd-pw5"]),
    "percent-encoded": ("sql", "mysql+pymysql://ppc:p%40ss%2Fword6@db.internal/pypi",
                        ["p%40ss%2Fword6", "p@ss/word6"]),
    "slash-in-password": ("sql", "postgresql://ppc:Slash/pw7@db.internal/pypi",
                          ["Slash/pw7"]),
    "plus-in-param": ("sql", "postgresql://ppc@db.internal/pypi?password=Plus+sign8",
                      ["Plus+sign8", "Plus sign8"]),
    "redis-colon-at": ("redis", "redis://:Redis-pw9@cache.internal:6379/0", ["Redis-pw9"]),
    "redis-acl-user": ("redis", "rediss://default:Redis-acl10@cache.internal:6380/0",
                       ["Redis-acl10"]),
    "redis-param": ("redis", "redis://cache.internal:6379/0?password=Redis-query11",
                    ["Redis-query11"]),
    "redis-ssl-password": ("redis", "rediss://cache.internal:6380/0?ssl_keyfile="
                           "/etc/redis/key12.pem&ssl_password=Redis-ssl13",
                           ["/etc/redis/key12.pem", "Redis-ssl13"]),
}


@pytest.fixture(autouse=True)
def _moto_returns_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_gaps.apply(monkeypatch)


def write(tmp_path: Path, cache: str, url: str, **extra: str) -> str:
    path = tmp_path / "pypicloud.ini"
    write_ini(path, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, "pypi.db": cache,
                     "db.url": url, **extra})
    return str(path)


def assert_hidden(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{where} shows {secret!r}:\n{text}"


@pytest.mark.parametrize("form", sorted(FORMS))
def test_no_output_shows_a_secret_of_the_url(
        form: str, aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache, url, secrets = FORMS[form]
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    ini = write(tmp_path, cache, url)
    bundle = str(write_zip(tmp_path / "function.zip"))

    # The withhold check: not copied into the function unless the operator says so.
    config = load_config(ini)
    assert "db.url" in config.function.withheld
    assert_hidden(json.dumps(config.function.values), secrets, "the function's settings")
    assert_hidden(" ".join(config.function.withheld.values()), secrets, "the withhold note")

    # The command's refusal, its plan as text and as JSON (where the password is copied).
    assert main(["create", ini, "--bundle", bundle]) == 2
    refusal = capsys.readouterr()
    assert "db.url holds a password" in refusal.err
    assert_hidden(refusal.out + refusal.err, secrets, "the refusal")
    for extra in ([], ["--json"]):
        assert main(["create", ini, "--bundle", bundle, "--dry-run", "--allow-db-password",
                     *extra]) == 0
        shown = capsys.readouterr()
        assert_hidden(shown.out + shown.err, secrets, f"the plan {extra}")
        if extra:  # the JSON plan shows the function's settings, the password masked
            assert "***" in shown.out
    assert main(["create", ini, "--bundle", bundle, "--allow-db-password"]) == 0
    copied = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName="pypicloud_s3_sync")["Environment"]["Variables"]["PYPICLOUD_SETTINGS"]
    assert json.loads(copied)["db.url"] == url  # it was there to leak
    applied = capsys.readouterr()
    assert_hidden(applied.out + applied.err, secrets, "the applied plan")

    # The admin API's scrubbing, of a message quoting the URL and of a plan document.
    found = secret_values(config.settings, environ={})
    assert {s for s in secrets if len(s) >= 6} <= found
    answer = scrub({"message": f"could not connect to {url}", "plan": [url]}, found)
    assert_hidden(json.dumps(answer), secrets, "the admin answer")
    assert_hidden(json.dumps(scrub({"m": url}, frozenset())), secrets, "an unprimed scrub")

    # The function's log lines, when a driver's error quotes the URL.
    stream = io.StringIO()
    log_handler = logging.StreamHandler(stream)
    handler.LOG.addHandler(log_handler)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(handler.LOG, "level", logging.INFO)
            handler.log_line(action="failed", reason=f"OperationalError: cannot reach {url}")
    finally:
        handler.LOG.removeHandler(log_handler)
    assert "OperationalError" in stream.getvalue()
    assert_hidden(stream.getvalue(), secrets, "the function's log line")

    # With the password in Secrets Manager, the function's environment holds none of it.
    config = load_config(write(tmp_path, cache, url, **{"s3sync.db_url_secret": ARN}))
    assert not config.function.withheld
    environment = function_environment(config, DeployOptions.from_config(config))
    assert environment["s3sync.db_url_secret"] == ARN
    assert_hidden(json.dumps(environment), secrets, "the function's environment")
    # ...and still names the database (urlsplit of the original would not, for a
    # password holding "/").
    assert urlsplit(environment["db.url"]).hostname in ("db.internal", "cache.internal")


@pytest.mark.parametrize("query", ["password=Admin-Query-1", "sslpassword=Admin-Ssl-2&password"
                                   "=Admin-Query-3"])
def test_the_admin_endpoint_answers_and_logs_no_query_string_password(
        query: str, aws: None, pypicloud_factory: Any, cache_settings: Any,
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real endpoint, copying the password into the function as the operator chose:
    the plan carries it to AWS, and no answer or log line shows it."""
    from ..support.pypicloud_app import ADMIN, basic_auth

    moto_gaps.apply(monkeypatch)
    secrets = [v.split("=")[1] for v in query.split("&")]
    url = f"{cache_settings('postgresql')['db.url']}?{query}"  # the server trusts: ignored
    caplog.set_level(logging.INFO)
    server = pypicloud_factory(cache="postgresql", **{
        "db.url": url, "s3sync.db_password": "copy",
        "s3sync.bundle": str(write_zip(tmp_path / "function.zip"))})
    answers = []
    for method, body in (("post", {"dry_run": True}), ("post", {}), ("get", None),
                         ("delete", {"dry_run": True})):
        kwargs: dict[str, Any] = {"status": "*", "extra_environ": basic_auth(ADMIN)}
        if body is not None:
            kwargs.update(params=json.dumps(body), content_type="application/json")
        answers.append(getattr(server.app, method)("/admin/s3sync", **kwargs))
    assert answers[1].status_int == 200, answers[1].text
    copied = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName="pypicloud_s3_sync")["Environment"]["Variables"]["PYPICLOUD_SETTINGS"]
    assert all(secret in copied for secret in secrets)  # it was there to leak
    for answer in answers:
        assert_hidden(answer.text, secrets, f"{answer.request.method} answer")
    assert_hidden(caplog.text, secrets, "the server's log")
