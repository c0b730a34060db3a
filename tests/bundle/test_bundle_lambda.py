"""Every bundle, run the way Lambda runs it: ``awslambdaric`` against a Runtime API.

For each cache backend, each target Python on this machine and each kind of server
venv (the development one, and one made with a plain ``python3 -m venv`` as operators
make them, with its stock pip and setuptools), the bundle is unzipped as /var/task and
started in a fresh interpreter of the target's version with only that and the
runtime's own packages (boto3, awslambdaric) on its path.  It then gets what Lambda
would send it: an S3 event, an EventBridge event, an SQS batch in which one key fails,
a delete, a scheduled reconcile; and, started again with broken settings, it must fail
its init with a readable error.  The cache must end as the bucket says.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from pypicloud_s3sync.bundle.localrun import unpack
from pypicloud_s3sync.config import load_config

from ..support import moto_gaps
from ..support.lambda_prepare import BACKENDS, SOURCES, TARGETS, Prepared, interpreter
from ..support.lambda_runtime_api import Outcome, RuntimeApi, start_function, stop_function

pytestmark = pytest.mark.slow


def interpreter_or_skip(runtime: str) -> str:
    found = interpreter(runtime)
    if found is None:
        pytest.skip(f"no {runtime} interpreter on this machine (looked at this Python, "
                    f"{runtime} on PATH and pyenv's versions), so its bundle cannot be run")
    return found


# -- what Lambda sends ------------------------------------------------------------------

def s3_record(name: str, bucket: str, key: str, sequencer: str = "0055AED6DCD90281E5") -> dict:
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-30T12:00:00.000Z", "eventName": name,
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "pypicloud-s3sync",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key, safe="/"), "size": 100,
                          "sequencer": sequencer}},
    }


def sqs_batch(*bodies: dict) -> dict:
    return {"Records": [{
        "messageId": f"message-{index}", "receiptHandle": uuid.uuid4().hex,
        "body": json.dumps(body), "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pypicloud-s3sync",
        "awsRegion": "us-east-1",
    } for index, body in enumerate(bodies)]}


def eventbridge_event(detail_type: str, bucket: str, key: str) -> dict:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
        "source": "aws.s3", "account": "123456789012", "time": "2026-11-30T12:00:00Z",
        "region": "us-east-1", "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": 100, "sequencer": "0055AED6DCD90281E6"},
                   "request-id": "R", "requester": "123456789012", "reason": "PutObject"},
    }


SCHEDULED = {"version": "0", "id": "s", "detail-type": "Scheduled Event",
             "source": "aws.events", "account": "123456789012", "region": "us-east-1",
             "time": "2026-11-30T12:00:00Z", "resources": [], "detail": {}}


# -- one key that S3 refuses to the function ---------------------------------------------------

def _moto_auth(endpoint: str, on: bool) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=b"0" if on else b"inf", method="POST",
        headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()


def _user_denied(endpoint: str, bucket: str, denied_key: str) -> dict[str, str]:
    """Credentials of an IAM user that may do what the function does, except read
    ``denied_key`` (moto enforces it once auth is on)."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    user = f"s3sync-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="function",
                        PolicyDocument=json.dumps(moto_gaps.for_moto_user({
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"],
                                 "Resource": "*"},
                                {"Effect": "Deny", "Action": "s3:GetObject",
                                 "Resource": f"arn:aws:s3:::{bucket}/{denied_key}"},
                            ],
                        })))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def _forget_everything(server) -> None:
    cache = server.cache()
    cache.clear_all()
    import transaction

    transaction.commit()


def _function_env(settings: dict[str, str], credentials: dict[str, str]) -> dict[str, str]:
    return {
        "PYPICLOUD_SETTINGS": json.dumps(settings),
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **credentials,
    }


def _answer(outcome: Outcome, log: Path) -> Outcome:
    assert outcome.kind == "response", f"{outcome}\n{log.read_text()[-3000:]}"
    return outcome


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("runtime", TARGETS)
@pytest.mark.parametrize("source", SOURCES)
def test_bundle_under_the_lambda_runtime_client(
    backend: str, runtime: str, source: str, moto_server: str, pypicloud_factory,
    lambda_prepared: Prepared, tmp_path: Path,
) -> None:
    python = interpreter_or_skip(runtime)
    bucket = f"packages-{uuid.uuid4().hex[:8]}"
    extra = {"storage.endpoint_url": moto_server}
    if backend == "dynamo":
        host, port = moto_server.removeprefix("http://").rsplit(":", 1)
        extra.update({"db.host": host, "db.port": port, "db.secure": "false",
                      "db.namespace": bucket + "-"})
    server = pypicloud_factory(cache=backend, bucket=bucket, **extra)
    zip_path = lambda_prepared.bundle(backend, runtime, source)
    # Lambda takes 50 MB; ours stay under 10 MiB (PostgreSQL's bundled libpq is the most).
    assert zip_path.stat().st_size <= 10 * 2**20, zip_path.stat().st_size
    task = unpack(zip_path, tmp_path / "task")
    setuptools = [p.name for p in task.glob("setuptools-*.dist-info")]
    if source == "plain-venv":
        # A stock setuptools older than 66.1 (python3.11's 65.5) is kept where it runs
        # (3.11) and replaced by a newer one where it cannot (3.12+).
        from packaging.version import Version

        [info] = setuptools
        bundled = Version(info.removeprefix("setuptools-").removesuffix(".dist-info"))
        stock = Version(lambda_prepared.plain_venv_version("setuptools"))
        too_old = stock < Version("66.1") and runtime != "python3.11"
        assert (bundled > stock) if too_old else (bundled == stock), (info, stock)
    packages = lambda_prepared.runtime_packages(runtime)
    settings = load_config(str(server.ini)).function.values
    log = tmp_path / "function.log"

    # Broken settings fail the init with a message that names what is wrong; started
    # now, it runs while the packages are uploaded.
    broken_api = RuntimeApi()
    broken = start_function(broken_api, python, task, packages, _function_env(
        {"pypi.db": settings["pypi.db"]}, {}), tmp_path / "broken.log")

    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    names = ("alpha", "beta", "gamma", "delta")
    for name in names:
        server.upload(name, "1.0")
    keys = {o["Key"].rsplit("/", 1)[-1].split("-")[0]: o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    files = {name: f"{name}-1.0.tar.gz" for name in names}
    _forget_everything(server)
    assert all(server.simple(name) == [] for name in names)

    credentials = _user_denied(moto_server, bucket, keys["delta"])
    api = RuntimeApi()
    process = start_function(api, python, task, packages,
                             _function_env(settings, credentials), log)
    try:
        # A direct S3 notification: the package appears in this region's cache.
        created = _answer(api.invoke({"Records": [s3_record(
            "ObjectCreated:CompleteMultipartUpload", bucket, keys["alpha"])]}, process), log)
        assert created.body is None
        assert server.simple("alpha") == [files["alpha"]]

        # EventBridge delivery.
        _answer(api.invoke(eventbridge_event("Object Created", bucket, keys["beta"]),
                           process), log)
        assert server.simple("beta") == [files["beta"]]

        # An SQS batch in which S3 refuses one key: only that message is reported.
        _moto_auth(moto_server, on=True)
        try:
            batch = _answer(api.invoke(sqs_batch(
                {"Records": [s3_record("ObjectCreated:Put", bucket, keys["gamma"])]},
                {"Records": [s3_record("ObjectCreated:Put", bucket, keys["delta"])]},
            ), process), log)
        finally:
            _moto_auth(moto_server, on=False)
        assert batch.body == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
        assert server.simple("gamma") == [files["gamma"]]
        assert server.simple("delta") == []

        # A delete.
        s3.delete_object(Bucket=bucket, Key=keys["alpha"])
        _answer(api.invoke({"Records": [s3_record("ObjectRemoved:Delete", bucket,
                                                   keys["alpha"], "0055AED6DCD90281F0")]},
                           process), log)
        assert server.simple("alpha") == []

        # The scheduled safety net, from the same warm container.
        _forget_everything(server)
        scheduled = _answer(api.invoke(SCHEDULED, process), log)
        assert scheduled.body["counts"]["added"] == 3
        assert scheduled.body["added"] == sorted(files[n] for n in ("beta", "delta", "gamma"))
        assert api.problems == []
    finally:
        stop_function(process)
        api.close()
    # The cache ends as the bucket says.
    in_bucket = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    for name in names:
        assert server.simple(name) == ([files[name]] if keys[name] in in_bucket else []), name

    try:
        outcome = broken_api.wait(None, broken, timeout=60)
    except RuntimeError:
        outcome = broken_api.init_error  # the client exits right after posting it
    finally:
        stop_function(broken)
        broken_api.close()
    assert outcome is not None and outcome.kind == "init-error", (
        (tmp_path / "broken.log").read_text()[-3000:])
    assert outcome.body["errorType"] == "HandlerConfigError"
    assert "PYPICLOUD_SETTINGS" in outcome.body["errorMessage"]
    assert broken_api.problems == []
