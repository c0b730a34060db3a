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
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from pypicloud_s3sync.bundle import Target, build_bundle, find_interpreter
from pypicloud_s3sync.localrun import install_runtime_packages, unpack
from pypicloud_s3sync.settings import load_config

from .lambda_runtime_api import Outcome, RuntimeApi, start_function, stop_function

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TARGETS = ("python3.11", "python3.12", "python3.13")
BACKENDS = ("sqlite", "postgresql", "mysql", "redis", "dynamo")
SOURCES = ("dev-venv", "plain-venv")
BUCKET = "packages"

#: The ``db.url`` drivers the bundles are built for (the bundle depends on the driver,
#: not on which database the URL names).
BUILD_DB = {
    "sqlite": {"pypi.db": "sql", "db.url": "sqlite:////tmp/never-opened.sqlite"},
    "postgresql": {"pypi.db": "sql", "db.url": "postgresql://user@db.example/pypi"},
    "mysql": {"pypi.db": "sql", "db.url": "mysql+pymysql://user@db.example/pypi"},
    "redis": {"pypi.db": "redis", "db.url": "redis://127.0.0.1:6379/15"},
    "dynamo": {"pypi.db": "dynamo", "db.region_name": "us-east-1"},
}


def interpreter_or_skip(runtime: str) -> str:
    found = find_interpreter(Target.of(runtime, "x86_64"))
    if found is None:
        pytest.skip(f"no {runtime} interpreter on this machine (looked at this Python, "
                    f"{runtime} on PATH and pyenv's versions), so its bundle cannot be run")
    return found[0]


@pytest.fixture(scope="session")
def work_root(builder_cache_dir: Path) -> Path:
    """Where the session keeps venvs, runtime packages and zips, beside the builder's
    cache (shared with the other bundle tests, so each wheel is downloaded once)."""
    return builder_cache_dir / "lambda"


def _make_plain_venv(venv: Path) -> Path:
    """A server venv made as the install docs say, with nothing upgraded: for Python
    3.11 that is pip 23.2 and setuptools 65.5, whose pkg_resources cannot run on 3.12+."""
    marker = venv / ".installed"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        proc = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "-e", f"{REPO}[all]"],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"making {venv} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        marker.touch()
    return venv


def _build_in_plain_venv(venv: Path, ini: Path, runtime: str, out: Path, cache_dir: Path) -> None:
    proc = subprocess.run(
        [str(venv / "bin" / "ppc-build-lambda-bundle"), str(ini), "--runtime", runtime,
         "-o", str(out)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PPC_S3SYNC_CACHE_DIR": str(cache_dir)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ppc-build-lambda-bundle --runtime {runtime} in {venv}: "
                           f"{proc.stderr[-3000:]}")


class Bundles:
    """Zips by (backend, runtime, source venv), each built once per session.

    The plain venv and its bundles are made in a background thread as soon as the first
    test asks for any bundle (the dev-venv cases run first), so the second core works
    while the first runs functions.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache_dir = root.parent
        self.futures: dict[tuple[str, str, str], Future] = {}
        self.plain = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plain-venv")
        self.venv: Future | None = None
        self.lock = threading.Lock()

    def _ini(self, backend: str) -> Path:
        ini = self.root / "ini" / f"{backend}.ini"
        ini.parent.mkdir(parents=True, exist_ok=True)
        ini.write_text("[app:main]\nuse = egg:pypicloud\npypi.storage = s3\n"
                       f"storage.bucket = {BUCKET}\n"
                       + "".join(f"{k} = {v}\n" for k, v in BUILD_DB[backend].items()))
        return ini

    def _out(self, backend: str, runtime: str, source: str) -> Path:
        out = self.root / "zips" / f"{backend}-{runtime}-{source}.zip"
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def start_plain(self) -> None:
        with self.lock:
            if self.venv is not None:
                return
            venv = self.root / f"plain-venv-py3{sys.version_info.minor}"
            self.venv = self.plain.submit(_make_plain_venv, venv)
            for runtime in TARGETS:
                if find_interpreter(Target.of(runtime, "x86_64")) is None:
                    continue
                for backend in BACKENDS:
                    key = (backend, runtime, "plain-venv")
                    self.futures[key] = self.plain.submit(
                        self._plain_build, venv, backend, runtime)

    def _plain_build(self, venv: Path, backend: str, runtime: str) -> Path:
        assert self.venv is not None
        self.venv.result()
        out = self._out(backend, runtime, "plain-venv")
        _build_in_plain_venv(venv, self._ini(backend), runtime, out, self.cache_dir)
        return out

    def get(self, backend: str, runtime: str, source: str) -> Path:
        self.start_plain()
        key = (backend, runtime, source)
        if key not in self.futures:
            done: Future = Future()
            out = self._out(backend, runtime, source)
            saved = os.environ.get("PPC_S3SYNC_CACHE_DIR")
            os.environ["PPC_S3SYNC_CACHE_DIR"] = str(self.cache_dir)
            try:
                build_bundle(load_config({"pypi.storage": "s3", "storage.bucket": BUCKET,
                                          **BUILD_DB[backend]}), runtime=runtime, output=out)
            finally:
                if saved is None:
                    os.environ.pop("PPC_S3SYNC_CACHE_DIR", None)
                else:
                    os.environ["PPC_S3SYNC_CACHE_DIR"] = saved
            done.set_result(out)
            self.futures[key] = done
        return self.futures[key].result()


@pytest.fixture(scope="session")
def bundles(work_root: Path) -> Iterator[Bundles]:
    made = Bundles(work_root)
    yield made
    made.plain.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def runtime_packages(work_root: Path) -> Callable[[str], Path]:
    """``runtime_packages("python3.12")``: boto3 and awslambdaric installed by that
    Python's pip, as Lambda's runtime has them outside /var/task."""
    ric = version("awslambdaric")

    def install(runtime: str) -> Path:
        python = interpreter_or_skip(runtime)
        return install_runtime_packages(work_root / f"runtime-{runtime}", python=python,
                                        extra=(f"awslambdaric=={ric}",))

    return install


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
    iam.put_user_policy(UserName=user, PolicyName="function", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{bucket}/{denied_key}"},
        ],
    }))
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
    bundles: Bundles, runtime_packages, tmp_path: Path,
) -> None:
    python = interpreter_or_skip(runtime)
    bucket = f"packages-{uuid.uuid4().hex[:8]}"
    extra = {"storage.endpoint_url": moto_server}
    if backend == "dynamo":
        host, port = moto_server.removeprefix("http://").rsplit(":", 1)
        extra.update({"db.host": host, "db.port": port, "db.secure": "false",
                      "db.namespace": bucket + "-"})
    server = pypicloud_factory(cache=backend, bucket=bucket, **extra)
    zip_path = bundles.get(backend, runtime, source)
    task = unpack(zip_path, tmp_path / "task")
    packages = runtime_packages(runtime)
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
