"""The endpoint's mechanics on their own: its settings, the lock, secret scrubbing and
how AWS failures are reported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from pypicloud_s3sync.admin.security import (
    AdminSettings,
    Busy,
    normalise_origin,
    provisioning_lock,
    scrub,
    secret_values,
)
from pypicloud_s3sync.admin.views import error_for
from pypicloud_s3sync.config import ConfigError


def test_admin_settings_are_read_under_our_prefix_with_environment_overrides(monkeypatch):
    settings = {"s3sync.admin.wait": "5",
                "s3sync.admin.allowed_origins": "https://PyPI.example.com:443 http://ui:8080"}
    admin = AdminSettings.from_settings(settings)
    assert admin.wait_seconds == 5
    assert admin.allowed_origins == {"https://pypi.example.com", "http://ui:8080"}
    monkeypatch.setenv("PPC_S3SYNC_ADMIN_WAIT", "7.5")
    assert AdminSettings.from_settings(settings).wait_seconds == 7.5
    assert AdminSettings.from_settings({}).wait_seconds > 0


@pytest.mark.parametrize("settings, fragment", [
    ({"s3sync.admin.wait": "soon"}, "s3sync.admin.wait"),
    ({"s3sync.admin.wait": "0"}, "above 0"),
    ({"s3sync.admin.wait": "3600"}, "at most 600"),
    ({"s3sync.admin.allowed_origins": "pypi.example.com"}, "scheme://host"),
])
def test_bad_admin_settings_stop_the_server_with_what_to_fix(settings, fragment):
    with pytest.raises(ConfigError, match=fragment):
        AdminSettings.from_settings(settings)


def test_a_bad_admin_setting_stops_pypicloud_at_startup(aws, pypicloud_factory):
    with pytest.raises(ConfigError, match="s3sync.admin.wait"):
        pypicloud_factory(**{"s3sync.admin.wait": "forever"})


def test_origins_compare_as_browsers_send_them():
    assert normalise_origin("HTTPS://Example.COM:443/") == "https://example.com"
    assert normalise_origin("http://example.com:8080") == "http://example.com:8080"
    assert normalise_origin("null") == ""
    assert normalise_origin("http://Example.com:80/") == "http://example.com"
    assert normalise_origin("http://example.com:81") == "http://example.com:81"
    assert normalise_origin("https://example.com:80") == "https://example.com:80"
    assert normalise_origin("ftp://example.com") == ""


@pytest.mark.parametrize(("host", "origin", "allowed"), [
    ("pypi.example.com:443", "https://pypi.example.com", True),
    ("pypi.example.com:80", "http://pypi.example.com", True),
    ("pypi.example.com:8443", "https://pypi.example.com", False),
    ("localhost", "ftp://localhost", False),  # not a scheme a browser page has
])
def test_the_servers_own_origin_is_recognised_whatever_port_the_host_names(
        host, origin, allowed):
    from pyramid.request import Request

    from pypicloud_s3sync.admin.errors import ApiError
    from pypicloud_s3sync.admin.security import AdminSettings, check_same_origin

    request = Request.blank("/admin/s3sync", headers={"Host": host, "Origin": origin})
    if allowed:
        check_same_origin(request, AdminSettings())
    else:
        with pytest.raises(ApiError) as info:
            check_same_origin(request, AdminSettings())
        assert (info.value.status, info.value.error) == (403, "cross_origin")
        assert origin in info.value.message  # what to add, and where
        assert ("provisioning can only be triggered from the server's own origin or an API "
                "client (add the origin to s3sync.admin.allowed_origins if it is yours)"
                ) in info.value.message


def test_a_browser_that_only_says_cross_site_is_refused_with_that_reason():
    from pyramid.request import Request

    from pypicloud_s3sync.admin.errors import ApiError
    from pypicloud_s3sync.admin.security import AdminSettings, check_same_origin

    request = Request.blank("/admin/s3sync", headers={"Sec-Fetch-Site": "cross-site"})
    with pytest.raises(ApiError) as info:
        check_same_origin(request, AdminSettings())
    assert (info.value.status, info.value.error, info.value.message) == (
        403, "cross_origin", "refused: the browser reports this request as cross-site")
    check_same_origin(Request.blank("/", headers={"Sec-Fetch-Site": "same-origin"}),
                      AdminSettings())


# -- the lock ----------------------------------------------------------------------------

def test_a_second_provisioning_in_this_process_is_refused_not_queued():
    with provisioning_lock("bucket/a"):
        outcome = []

        def other():
            try:
                with provisioning_lock("bucket/a"):
                    outcome.append("ran")
            except Busy:
                outcome.append("busy")

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(5)
        assert outcome == ["busy"]
    with provisioning_lock("bucket/a"):  # released again afterwards
        pass


def test_a_provisioning_in_another_worker_process_on_this_host_is_seen():
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys
            from pypicloud_s3sync.admin.security import provisioning_lock
            with provisioning_lock("bucket/multi-process"):
                print("held", flush=True)
                sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy), provisioning_lock("bucket/multi-process"):
            pass
    finally:
        holder.stdin.close()
        holder.wait(10)
    with provisioning_lock("bucket/multi-process"):
        pass


# -- secrets -----------------------------------------------------------------------------

def test_every_secret_setting_is_recognised():
    settings = {
        "storage.aws_access_key_id": "AKIAEXAMPLEKEY",
        "storage.aws_secret_access_key": "secret/with+chars",
        "db.url": "postgresql://pypi:db-password-1@db.internal/pypi",
        "session.encrypt_key": "encrypt-key-value",
        "session.validate_key": "validate-key-value",
        "user.admin": "$6$rounds=1000$hashhash",
        "auth.ldap.service_password": "ldap-password",
        "storage.bucket": "packages",
        "pypi.db": "sql",
    }
    secrets = secret_values(settings, environ={"AWS_SECRET_ACCESS_KEY": "env-secret-key"})
    assert {"AKIAEXAMPLEKEY", "secret/with+chars", "db-password-1", "encrypt-key-value",
            "validate-key-value", "$6$rounds=1000$hashhash", "ldap-password",
            "env-secret-key"} <= secrets
    assert "packages" not in secrets and "sql" not in secrets
    from_environment = secret_values({}, environ={
        "PPC_DB_URL": "redis://:redis-password@cache:6379/0",
        "PPC_STORAGE_AWS_SECRET_ACCESS_KEY": "env-storage-secret",
        "PPC_STORAGE_BUCKET": "packages-bucket",
        # Only the first "_" after PPC_ is the dot: session.encrypt_key.
        "PPC_SESSION_ENCRYPT_KEY": "env-encrypt-key",
    })
    assert from_environment == {"redis-password", "env-storage-secret", "env-encrypt-key"}
    text = {"message": "could not use postgresql://pypi:db-password-1@db.internal/pypi",
            "list": ["key AKIAEXAMPLEKEY", 3]}
    assert scrub(text, secrets) == {
        "message": "could not use postgresql://pypi:***@db.internal/pypi",
        "list": ["key ***", 3],
    }


# -- AWS failures ------------------------------------------------------------------------

def test_aws_refusals_are_reported_as_upstream_errors_not_as_logins(aws):
    # A genuine error from (moto's) S3: the bucket does not exist.
    with pytest.raises(ClientError) as caught:
        boto3.client("s3").get_bucket_notification_configuration(Bucket="no-such-bucket")
    error = error_for(caught.value)
    assert error.status == 502
    assert "NoSuchBucket" in error.message
    assert "GetBucketNotificationConfiguration" in error.message

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}},
                         "CreateRole")
    error = error_for(denied)
    assert (error.status, error.error) == (502, "aws_access_denied")
    assert "CreateRole" in error.message and "permission" in error.message

    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}},
                            "UpdateFunctionCode")
    assert (error_for(throttled).status, error_for(throttled).headers) == (
        503, {"Retry-After": "30"})
    busy = ClientError({"Error": {"Code": "ResourceConflictException", "Message": "x"}},
                       "UpdateFunctionConfiguration")
    assert error_for(busy).status == 409
    assert error_for(NoCredentialsError()).status == 500
    assert error_for(EndpointConnectionError(endpoint_url="https://x")).status == 504
    assert error_for(ConfigError("storage.bucket is not set")).error == "config"


def test_every_kind_of_failure_has_an_http_answer():
    """The sorting lives beside the errors; a kind added there must get a status here."""
    from pypicloud_s3sync.admin.views import ANSWERS
    from pypicloud_s3sync.provision.awsfailure import KINDS

    assert set(ANSWERS) == set(KINDS)


def test_a_refusal_names_the_flag_on_the_command_line_and_the_setting_through_the_api(
        aws, tmp_path):
    """The planner's fix for a foreign function of our name, rendered by each front end."""
    import json

    from pypicloud_s3sync.provision import iam
    from pypicloud_s3sync.provision.errors import DeployError
    from pypicloud_s3sync.provision.operation import run
    from pypicloud_s3sync.provision.options import DeployOptions

    from ..support.deploy_helpers import BUCKET, REGION, make_config, write_zip

    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    role = boto3.client("iam").create_role(
        RoleName="old", AssumeRolePolicyDocument=json.dumps(iam.trust_policy()))["Role"]["Arn"]
    function_zip = write_zip(tmp_path / "function.zip")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="pypicloud_s3_sync", Runtime="python3.12", Role=role,
        Handler="lambda_script.handle", Code={"ZipFile": function_zip.read_bytes()})
    config = make_config(tmp_path, **{"s3sync.bundle": str(function_zip)})
    with pytest.raises(DeployError) as caught:
        run(config, DeployOptions.from_config(config), "create", dry_run=True)
    assert "pass -f to update its code" in str(caught.value)
    assert "with -n" in str(caught.value)
    error = error_for(caught.value)
    assert (error.status, error.error) == (409, "conflict")
    assert '{"force": true} in the request' in error.message
    assert "s3sync.function_name" in error.message
    assert " -f " not in error.message and " -n" not in error.message


def test_an_aws_refusal_is_not_a_config_error(aws, tmp_path):
    """The command line exits 1 for it (not 2): the operator's config is not at fault."""
    from pypicloud_s3sync.provision.errors import AwsError
    from pypicloud_s3sync.provision.operation import run
    from pypicloud_s3sync.provision.options import DeployOptions

    from ..support.deploy_helpers import BUCKET, REGION, make_config

    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    session = boto3.Session()

    def refuse(model, **_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, model.name)

    session.events.register("before-call.iam.GetRole", refuse)
    config = make_config(tmp_path)
    with pytest.raises(AwsError) as caught:
        run(config, DeployOptions.from_config(config), "status", session=session)
    assert not isinstance(caught.value, ConfigError)
    assert (error_for(caught.value).status, error_for(caught.value).error) == (
        502, "aws_access_denied")


def test_a_zip_the_server_cannot_build_points_to_building_it_elsewhere():
    from pypicloud_s3sync.bundle import builder as bundle
    from pypicloud_s3sync.bundle.errors import BundleError
    from pypicloud_s3sync.config import load_config

    config = load_config({"pypi.storage": "s3", "storage.bucket": "packages",
                          "pypi.db": "redis", "db.url": "redis://cache:6379/0"})
    with pytest.raises(BundleError) as caught:
        bundle.build_bundle(config, runtime="python3.10")
    error = error_for(caught.value)
    assert (error.status, error.error) == (500, "bundle")
    assert "python3.10" in error.message and "s3sync.bundle" in error.message


def _blocking_status(release: threading.Event, calls: list[int]):
    def compute(progress):
        calls.append(1)
        assert release.wait(30)
        return {"in_sync": True, "run": len(calls)}
    return compute


def test_a_status_that_outlasts_every_wait_is_still_answered_to_the_next_poll():
    from pypicloud_s3sync.admin.jobs import StatusRuns

    runs, release, calls = StatusRuns(), threading.Event(), []
    compute = _blocking_status(release, calls)
    first = runs.get(compute, lambda exc: None, wait=0.01)
    assert not first.done.is_set()  # the GET answered 202
    release.set()
    assert first.done.wait(30)
    # It finished between two polls: the next poll gets it, nothing is recomputed.
    second = runs.get(compute, lambda exc: None, wait=0.01)
    assert second is first and second.result == {"in_sync": True, "run": 1}
    # Once answered, the next GET reads AWS again.
    third = runs.get(compute, lambda exc: None, wait=5)
    assert third.result == {"in_sync": True, "run": 2}


def test_a_status_begun_before_an_operation_ended_is_not_reused():
    from pypicloud_s3sync.admin.jobs import StatusRuns

    runs, release, calls = StatusRuns(), threading.Event(), []
    compute = _blocking_status(release, calls)
    before = runs.get(compute, lambda exc: None, wait=0.01, generation=0)
    # An apply finished meanwhile: what "before" reads may predate it.
    after = runs.get(compute, lambda exc: None, wait=0.01, generation=1)
    assert after is not before
    release.set()
    assert before.done.wait(30) and after.done.wait(30)
    assert runs.get(compute, lambda exc: None, wait=5, generation=1) is after


def test_a_secret_inside_a_longer_one_leaves_nothing_of_either():
    """The longer secret is replaced first: the shorter one first would leave the rest
    of the longer one readable around the stars."""
    secrets = secret_values({"db.password": "zzzzzz", "session.encrypt_key": "aazzzzzzbb"},
                            environ={})
    assert secrets == {"zzzzzz", "aazzzzzzbb"}  # six characters are enough to be one
    assert scrub(["key aazzzzzzbb", "pw zzzzzz"], secrets) == ["key ***", "pw ***"]


def test_secrets_are_found_wherever_they_stand_among_other_settings():
    """A number, an unparsable URL or an unrelated variable before a secret must not
    end the search for it."""
    settings = {"pyramid.reload": 5, "storage.endpoint_url": "http://[::1",
                "storage.aws_secret_access_key": "behind-a-number-1"}
    environ = {"HOME": "/root", "PPC_DB_URL": "postgresql://u:pw-behind-home@db/x",
               "PPC_USER_ADMIN": "admin-hash-from-env"}
    found = secret_values(settings, environ=environ)
    assert {"behind-a-number-1", "pw-behind-home", "admin-hash-from-env"} <= found
    assert "/root" not in found
