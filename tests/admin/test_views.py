"""``/admin/s3sync`` in pypicloud's real app (built from an ini), AWS through moto.

What an operator (and an attacker) would try: who may call it, what a dry run, a
provisioning and a teardown do to the account, what two admins clicking at once get,
whether a cross-site page can use a logged-in admin's cookie, and whether any answer
quotes a secret from the ini.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from ..support.aws_gate import Gate, in_thread
from ..support.pypicloud_app import ADMIN, USER, Pypicloud, basic_auth, call_api

URL = "/admin/s3sync"
BUCKET = "packages"

# Distinctive secrets: if any of these shows up in an answer, it leaked.
AWS_KEY_ID = "AKIAVIEWSLEAKCHECK01"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/viewsLEAKcheckKEY"
DB_PASSWORD = "Pg-pass-views-0xC0FFEE"
ENDPOINT_PASSWORD = "Endpoint-pass-views-0xBEEF"


def call(app: Any, method: str, user: tuple[str, str] | None = ADMIN,
         body: Any = None, content_type: str | None = "application/json",
         headers: dict[str, str] | None = None) -> Any:
    """One request as an API client would send it (JSON body for POST/DELETE)."""
    return call_api(app, URL, method, user, body, content_type, headers)


def aws_state() -> dict[str, Any]:
    """What a provisioning can change, as an operator would look at it in the console."""
    iam = boto3.client("iam")
    lam = boto3.client("lambda")
    s3 = boto3.client("s3")
    events = boto3.client("events")
    notification = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    notification.pop("ResponseMetadata", None)
    return {
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "functions": sorted((f["FunctionName"], f["CodeSha256"])
                            for f in lam.list_functions()["Functions"]),
        "notification": notification,
        "rules": sorted(r["Name"] for r in events.list_rules()["Rules"]),
    }


@pytest.fixture
def function_zip(tmp_path: Path) -> Path:
    """A function zip the operator built beforehand and named in ``s3sync.bundle``.

    moto stores the code without running it, so its contents only need to be a zip;
    the bundle's own tests run real bundles.
    """
    path = tmp_path / "function.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("pypicloud_s3sync/__init__.py", "")
    return path


@pytest.fixture
def server(aws: None, pypicloud_factory: Callable[..., Pypicloud],
           function_zip: Path) -> Pypicloud:
    """pypicloud with the plugin, two users, AWS keys and a prebuilt zip in its ini."""
    return pypicloud_factory(**{
        "storage.aws_access_key_id": AWS_KEY_ID,
        "storage.aws_secret_access_key": AWS_SECRET,
        "s3sync.bundle": str(function_zip),
    })


# -- who may call it ---------------------------------------------------------------------

@pytest.mark.parametrize("who", [None, USER], ids=["anonymous", "non-admin"])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_only_admins_get_in_exactly_as_with_pypiclouds_own_admin_views(
        server: Pypicloud, method: str, who: tuple[str, str] | None) -> None:
    before = aws_state()
    ours = call(server.app, method, who)
    # pypicloud's own admin views, same caller, same method.
    theirs_url = "/admin/pending_users" if method == "get" else "/admin/rebuild"
    theirs = getattr(server.app, method)(
        theirs_url, status="*", extra_environ=basic_auth(who) if who else {})
    assert ours.status_int == theirs.status_int == (401 if who is None else 403)
    if who is None:
        assert ours.headers["WWW-Authenticate"] == theirs.headers["WWW-Authenticate"]
    assert aws_state() == before


def test_other_methods_are_refused_with_the_allowed_ones_named(server: Pypicloud) -> None:
    res = call(server.app, "put", ADMIN, {})
    assert res.status_int == 405
    assert res.headers["Allow"] == "GET, POST, DELETE"
    assert call(server.app, "put", None, {}).status_int == 401


# -- CSRF --------------------------------------------------------------------------------

def login(app: Any, user: tuple[str, str]) -> None:
    """Log in through pypicloud's own login view, as its web UI does: a session cookie."""
    res = app.post("/acct/login", {"username": user[0], "password": user[1]})
    assert res.status_int == 200
    assert app.cookies, "pypicloud set no session cookie"


def test_a_cross_site_form_post_with_an_admin_session_changes_nothing(
        server: Pypicloud) -> None:
    app = server.app
    login(app, ADMIN)
    assert app.get(URL, status="*").status_int != 401  # the cookie alone authenticates
    before = aws_state()

    # What a hostile page can make a browser send without a preflight: a form post.
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data",
                         "text/plain"):
        res = app.post(URL, params={"dry_run": "false"} if "form" in content_type else "{}",
                       content_type=content_type, status="*",
                       headers={"Origin": "https://evil.example"})
        assert res.status_int in (403, 415), res
        assert "error" in res.json
        res = app.post(URL, params={"dry_run": "false"} if "form" in content_type else "{}",
                       content_type=content_type, status="*")
        assert res.status_int == 415, res
        assert res.json["error"] == "unsupported_media_type"
        assert res.json["message"] == (
            "send the request with 'Content-Type: application/json' and a JSON object body "
            "(e.g. {} or {\"dry_run\": true}); form posts are refused to keep other sites "
            "from triggering this endpoint")
    res = app.delete(URL, status="*")
    assert res.status_int == 415

    # JSON with a foreign Origin (what a misconfigured CORS proxy would let through).
    for method in ("post", "delete"):
        res = call(app, method, None, {}, headers={"Origin": "https://evil.example"})
        assert res.status_int == 403
        assert res.json["error"] == "cross_origin"
        res = call(app, method, None, {}, headers={"Sec-Fetch-Site": "cross-site"})
        assert res.status_int == 403
    assert aws_state() == before


def test_same_origin_json_from_the_ui_session_is_accepted(server: Pypicloud) -> None:
    app = server.app
    login(app, ADMIN)
    res = call(app, "post", None, {"dry_run": True}, headers={"Origin": "http://localhost"})
    assert res.status_int == 200, res.text
    assert res.json["dry_run"] is True


def test_same_origin_behind_a_tls_proxy_is_accepted_and_a_lookalike_is_not(
        server: Pypicloud) -> None:
    # The proxy terminates TLS and passes the Host on: pypicloud sees http, the browser
    # sends its https origin.
    proxied = {**basic_auth(ADMIN), "HTTP_HOST": "pypi.example.com"}
    for origin, status in [("https://pypi.example.com", 200),
                           ("https://pypi.example.com.evil.example", 403),
                           ("https://evil.example", 403), ("null", 403)]:
        res = server.app.post(URL, params=json.dumps({"dry_run": True}),
                              content_type="application/json", extra_environ=proxied,
                              headers={"Origin": origin}, status="*")
        assert res.status_int == status, (origin, res.text)


def test_bad_bodies_are_refused_with_what_to_send(server: Pypicloud) -> None:
    """Each refusal says what was wrong and what is accepted, with the code a client
    branches on; a flag that is not a JSON boolean ("false" is true in Python) is refused
    instead of read as set."""
    app = server.app
    res = server.app.post(URL, params="{not json", content_type="application/json",
                          extra_environ=basic_auth(ADMIN), status="*")
    assert res.status_int == 400
    assert res.json["error"] == "bad_request"
    assert res.json["message"].startswith("the body is not valid JSON: ")

    def refusal(body: Any, method: str = "post", url: str = URL) -> dict[str, Any]:
        res = getattr(app, method)(url, params=json.dumps(body), status="*",
                                   content_type="application/json",
                                   extra_environ=basic_auth(ADMIN))
        assert res.status_int == 400, res.text
        return res.json

    assert refusal(["dry_run"]) == {"error": "bad_request",
                                    "message": "the body must be a JSON object such as {}"}
    assert refusal({"function_name": "other", "bucket": "b"}) == {
        "error": "bad_request",
        "message": "unknown field(s) bucket, function_name; accepted: dry_run, force. "
                   "Everything else is configured in the server's ini under s3sync.*"}
    assert refusal({"force": True}, "delete")["message"].startswith(
        "unknown field(s) force; accepted: dry_run. ")
    for method, url, key in (("post", URL, "dry_run"), ("post", URL, "force"),
                             ("post", f"{URL}/reconcile", "deep")):
        assert refusal({key: "false"}, method, url) == {
            "error": "bad_request", "message": f"{key} must be true or false"}


# -- what it does ------------------------------------------------------------------------

def test_dry_run_returns_the_plan_and_changes_nothing(server: Pypicloud) -> None:
    before = aws_state()
    res = call(server.app, "post", ADMIN, {"dry_run": True})
    assert res.status_int == 200, res.text
    assert res.json["dry_run"] is True
    assert res.json["applied"] == []
    steps = res.json["plan"]["steps"]
    assert {step["resource"] for step in steps} >= {"role", "function", "notification"}
    assert "delete" not in {step["action"] for step in steps}
    assert aws_state() == before
    res = call(server.app, "delete", ADMIN, {"dry_run": True})
    assert res.status_int == 200
    assert res.json["plan"]["steps"] == []  # nothing to tear down yet


def test_provision_then_status_in_sync_then_teardown_leaves_the_account_as_it_was(
        server: Pypicloud) -> None:
    # Someone else's notification on the bucket: it must survive both directions.
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName="audit")["QueueUrl"],
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [
            {"Id": "audit", "QueueArn": queue, "Events": ["s3:ObjectRestore:*"]}]})
    before = aws_state()

    res = call(server.app, "get", ADMIN)
    assert res.status_int == 200, res.text
    assert res.json["in_sync"] is False
    assert {row["actual"] for row in res.json["resources"]} == {"missing"}
    assert aws_state() == before  # GET changed nothing

    res = call(server.app, "post", ADMIN, {})
    assert res.status_int == 200, res.text
    created = res.json
    assert created["state"] == "succeeded" and created["dry_run"] is False
    assert [s["summary"] for s in created["applied"]] == [
        s["summary"] for s in created["plan"]["steps"]]
    assert created["applied"], "nothing was applied"
    after_create = aws_state()
    assert [name for name, _ in after_create["functions"]] == ["pypicloud_s3_sync"]
    queues = after_create["notification"]["QueueConfigurations"]
    assert [q["Id"] for q in queues] == ["audit"]

    res = call(server.app, "get", ADMIN)
    assert res.status_int == 200
    assert res.json["in_sync"] is True, res.json["resources"]
    assert all(row["in_sync"] for row in res.json["resources"])
    # The path checks come with it, as status --json prints them.
    checks = {check["check"]: check for check in res.json["checks"]}
    assert checks["function"]["status"] == "ok"
    assert checks["replication"]["status"] == "warn"  # the test bucket replicates nowhere
    assert res.json["healthy"] is True
    assert res.json["operation"]["id"] == created["id"]
    assert aws_state() == after_create  # GET changed nothing

    res = call(server.app, "post", ADMIN, {})  # re-running is safe: nothing to do
    assert res.status_int == 200
    assert res.json["plan"]["steps"] == [] and res.json["applied"] == []
    assert aws_state() == after_create

    res = call(server.app, "delete", ADMIN, {})
    assert res.status_int == 200, res.text
    assert res.json["applied"]
    assert aws_state() == before
    assert call(server.app, "get", ADMIN).json["in_sync"] is False


def test_a_second_provisioning_while_one_runs_gets_409_not_a_second_deploy(
        server: Pypicloud, gate: Gate) -> None:
    first, answer = in_thread(lambda: call(server.app, "post", ADMIN, {}))
    try:
        assert gate.reached.wait(30), "the first provisioning never reached AWS"
        for method in ("post", "delete"):
            res = call(server.app, method, ADMIN, {})
            assert res.status_int == 409, res.text
            assert res.json["error"] == "busy"
            assert "create started by admin" in res.json["message"]
            assert res.json["operation"]["state"] == "running"
        res = call(server.app, "get", ADMIN)  # status is still available meanwhile
        assert res.status_int == 200
        assert res.json["operation"]["state"] == "running"
    finally:
        gate.release.set()
        first.join(60)
    assert answer[0].status_int == 200, answer[0].text
    assert answer[0].json["state"] == "succeeded"
    functions = boto3.client("lambda").list_functions()["Functions"]
    assert len(functions) == 1
    assert call(server.app, "get", ADMIN).json["in_sync"] is True
    assert call(server.app, "post", ADMIN, {}).status_int == 200  # the lock was released


def test_a_slow_provisioning_frees_the_worker_and_reports_progress(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], function_zip: Path,
        gate: Gate) -> None:
    server = pypicloud_factory(**{"s3sync.bundle": str(function_zip),
                                  "s3sync.admin.wait": "0.5"})
    res = call(server.app, "post", ADMIN, {})
    # The worker came back while the provisioning's first AWS call is still held.
    assert res.status_int == 202, res.text
    assert res.json["state"] == "running"
    assert res.headers["Location"].endswith(URL)
    assert gate.reached.wait(30)
    assert call(server.app, "post", ADMIN, {}).status_int == 409
    gate.release.set()
    deadline = time.monotonic() + 60
    while True:
        status = call(server.app, "get", ADMIN)
        if status.status_int == 200 and status.json["operation"]["state"] != "running":
            break
        assert time.monotonic() < deadline, status.text
        time.sleep(0.2)
    operation = status.json["operation"]
    assert operation["state"] == "succeeded"
    assert len(operation["applied"]) == len(operation["plan"]["steps"])
    assert operation["progress"][0].startswith("[1/")
    assert status.json["in_sync"] is True


def test_a_slow_status_frees_the_worker_and_is_computed_once(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], function_zip: Path,
        gate: Gate) -> None:
    """Three GETs while status is slow: each answers at once, and the status is computed
    once for all three.  That count is the promise, so the held GetRole (status's first
    read) is counted."""
    server = pypicloud_factory(**{"s3sync.bundle": str(function_zip),
                                  "s3sync.admin.wait": "0.5"})
    gate.operations = {"GetRole"}
    for _ in range(3):
        res = call(server.app, "get", ADMIN)
        assert res.status_int == 202, res.text
        assert res.json["state"] == "computing"
        assert res.headers["Retry-After"]
    assert gate.held == ["GetRole"]  # three GETs, one computation
    gate.release.set()
    deadline = time.monotonic() + 30
    while (res := call(server.app, "get", ADMIN)).status_int == 202:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert res.status_int == 200
    assert res.json["in_sync"] is False


@pytest.mark.slow
def test_building_the_zip_on_the_server_does_not_hold_the_worker(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, builder_cache_dir: Path) -> None:
    """No ``s3sync.bundle``: the server builds the zip itself (nothing built yet, the
    slow case; the wheels the run already downloaded are copied in)."""
    import sys

    from ..support.builder_cache import cache_copy

    monkeypatch.setenv("PPC_S3SYNC_CACHE_DIR", str(
        cache_copy(builder_cache_dir, tmp_path / "bundle-cache", pure_builds=False)))
    server = pypicloud_factory(**{"s3sync.runtime": f"python3.{sys.version_info.minor}",
                                  "s3sync.admin.wait": "1"})
    res = call(server.app, "post", ADMIN, {})
    # 202 "running": the worker did not wait for the build.
    assert res.status_int == 202, res.text
    assert res.json["state"] == "running"
    assert call(server.app, "post", ADMIN, {"dry_run": True}).status_int == 409
    deadline = time.monotonic() + 300
    while True:
        status = call(server.app, "get", ADMIN)
        if status.status_int == 200 and status.json["operation"]["state"] != "running":
            break
        assert time.monotonic() < deadline, status.text
        time.sleep(0.5)
    operation = status.json["operation"]
    assert operation["state"] == "succeeded", operation
    assert any("zip" in line for line in operation["progress"])  # the build reported
    code = {row["resource"]: row for row in status.json["resources"]}["function-code"]
    deployed = boto3.client("lambda").get_function_configuration(
        FunctionName="pypicloud_s3_sync")["CodeSha256"]
    assert code["desired"].split()[0] == deployed
    assert status.json["in_sync"] is True


def test_a_server_whose_config_cannot_sync_still_runs_and_says_why(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], tmp_path: Path) -> None:
    # Plugin included for the compatibility fixes only, packages on local disk.
    server = pypicloud_factory(**{"pypi.storage": "file", "storage.dir": str(tmp_path / "files")})
    assert server.upload("demo", "1.0").status_int == 200
    for method in ("get", "post", "delete"):
        res = call(server.app, method, ADMIN, {})
        assert res.status_int == 500, res.text
        assert res.json["error"] == "config"
        assert "pypi.storage = s3" in res.json["message"]


def test_aws_refusing_the_servers_credentials_comes_back_as_json(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], function_zip: Path) -> None:
    from moto.core import enable_iam_authentication

    iam = boto3.client("iam")
    iam.create_user(UserName="pypicloud-server")
    iam.put_user_policy(UserName="pypicloud-server", PolicyName="read-only",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                            "Effect": "Allow", "Resource": "*",
                            "Action": ["s3:*", "sts:GetCallerIdentity"]}]}))
    key = iam.create_access_key(UserName="pypicloud-server")["AccessKey"]
    server = pypicloud_factory(**{"storage.aws_access_key_id": key["AccessKeyId"],
                                  "storage.aws_secret_access_key": key["SecretAccessKey"],
                                  "s3sync.bundle": str(function_zip)})
    with enable_iam_authentication():
        for method in ("get", "post", "delete"):
            res = call(server.app, method, ADMIN, {})
            assert res.status_int == 502, res.text
            assert res.json["error"] == "aws_access_denied"
            assert "iam:GetRole" in res.json["message"]  # which permission is missing
            assert "admin API documentation" in res.json["message"]
            assert key["SecretAccessKey"] not in res.text
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_unreachable_aws_is_a_gateway_timeout(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], function_zip: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    server = pypicloud_factory(**{"s3sync.endpoint_url": "http://127.0.0.1:9",
                                  "s3sync.bundle": str(function_zip)})
    for method in ("get", "post"):
        res = call(server.app, method, ADMIN, {})
        assert res.status_int == 504, res.text
        assert res.json["error"] == "aws_unreachable"
        assert "127.0.0.1:9" in res.json["message"]


# -- secrets -----------------------------------------------------------------------------

def test_no_answer_and_no_log_line_contains_a_secret(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], function_zip: Path,
        cache_settings: Callable[[str], dict[str, str]], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
) -> None:
    from urllib.parse import urlsplit

    db_url = urlsplit(cache_settings("postgresql")["db.url"])
    user = db_url.username or "postgres"
    # The local server trusts connections, so the password is accepted and ignored.
    url_with_password = db_url._replace(
        netloc=f"{user}:{DB_PASSWORD}@{db_url.hostname}:{db_url.port or 5432}").geturl()
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="pypicloud_s3sync")
    server = pypicloud_factory(cache="postgresql", **{
        "db.url": url_with_password,
        "storage.aws_access_key_id": AWS_KEY_ID,
        "storage.aws_secret_access_key": AWS_SECRET,
        "s3sync.bundle": str(function_zip),
    })
    secrets = [DB_PASSWORD, AWS_KEY_ID, AWS_SECRET, server.settings["session.encrypt_key"],
               server.settings["session.validate_key"], server.settings["user.admin"]]
    answers = [
        call(server.app, "get", ADMIN),
        call(server.app, "post", ADMIN, {"dry_run": True}),
        call(server.app, "post", ADMIN, {}),  # refused: the db.url holds a password
    ]
    assert answers[1].status_int == 409
    assert "db.url" in answers[1].json["message"]
    assert "***" in answers[1].json["message"]

    # The operator chooses to copy the password into the function: now the plan itself
    # carries it, and the answers still must not.
    server = pypicloud_factory(cache="postgresql", **{
        "db.url": url_with_password,
        "storage.aws_access_key_id": AWS_KEY_ID,
        "storage.aws_secret_access_key": AWS_SECRET,
        "s3sync.bundle": str(function_zip),
        "s3sync.db_password": "copy",
    })
    answers += [
        call(server.app, "post", ADMIN, {"dry_run": True}),
        call(server.app, "post", ADMIN, {}),
        call(server.app, "get", ADMIN),
        call(server.app, "delete", ADMIN, {"dry_run": True}),
    ]
    assert answers[-3].status_int == 200, answers[-3].text
    environment = boto3.client("lambda").get_function_configuration(
        FunctionName="pypicloud_s3_sync")["Environment"]["Variables"]
    assert DB_PASSWORD in environment["PYPICLOUD_SETTINGS"]  # it was there to leak
    answers.append(call(server.app, "delete", ADMIN, {}))
    assert answers[-1].status_int == 200

    # An AWS error quotes the endpoint it could not reach, userinfo and all.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    server = pypicloud_factory(**{
        "s3sync.endpoint_url": f"http://ops:{ENDPOINT_PASSWORD}@127.0.0.1:9",
        "s3sync.bundle": str(function_zip),
    })
    for method in ("get", "post"):
        answers.append(call(server.app, method, ADMIN, {}))
        assert answers[-1].status_int == 504, answers[-1].text
        assert "http://ops:***@127.0.0.1:9" in answers[-1].json["message"]
    secrets.append(ENDPOINT_PASSWORD)
    assert "***@127.0.0.1:9" in caplog.text  # the traceback was logged, scrubbed
    for answer in answers:
        for secret in secrets:
            assert secret not in answer.text, (answer.request.method, answer.text)
    for secret in secrets:
        assert secret not in caplog.text
