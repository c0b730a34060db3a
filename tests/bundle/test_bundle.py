"""The Lambda bundle: what is inside, for which target, and that it runs as Lambda runs it.

Bundles are real builds (pip downloads real wheels from the package index); the wheel
and bundle caches live in one directory per test session, so each target is
downloaded once.  Running a bundle means what Lambda does: unzip it, start a fresh
interpreter of the target's version with ``-I -S -B`` (no site-packages, read-only code)
and only the unzipped bundle plus the runtime's own packages (boto3 and its
dependencies, installed with ``pip --target``) on ``sys.path``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pypicloud_s3sync.bundle import builder, layout, versions
from pypicloud_s3sync.bundle.builder import Bundle, build_bundle
from pypicloud_s3sync.bundle.closure import Closure
from pypicloud_s3sync.bundle.errors import BundleError
from pypicloud_s3sync.bundle.ours import HANDLER
from pypicloud_s3sync.bundle.runtimes import RUNTIMES
from pypicloud_s3sync.bundle.target import ARCHITECTURES, DEFAULT_RUNTIME, Target, find_interpreter
from pypicloud_s3sync.bundle.wheels import WheelStore
from pypicloud_s3sync.cli import main
from pypicloud_s3sync.config import load_config

from ..support.builder_cache import cache_copy

pytestmark = pytest.mark.slow

PACKAGE = Path(__file__).resolve().parents[2] / "pypicloud_s3sync"
LOCAL_RUNTIME = f"python3.{sys.version_info.minor}"
ELF_MACHINES = {"x86_64": 62, "arm64": 183}
WHEEL_MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
GLIBC_MINOR = {"python3.11": 26, "python3.12": 34, "python3.13": 34, "python3.14": 34}

CACHE_DB = {
    "sqlite": {"pypi.db": "sql", "db.url": "sqlite:////tmp/s3sync-never-opened.sqlite"},
    "postgresql": {"pypi.db": "sql", "db.url": "postgresql://user@db.example/pypi"},
    "redis": {"pypi.db": "redis", "db.url": "redis://127.0.0.1:6379/15"},
    "dynamo": {"pypi.db": "dynamo", "db.region_name": "us-east-1"},
}


def config_for(cache: str, **extra: str):
    return load_config({"pypi.storage": "s3", "storage.bucket": "packages",
                        **CACHE_DB[cache], **extra})


@pytest.fixture(scope="session")
def bundle_cache(builder_cache_dir: Path) -> Path:
    """The run's wheel/bundle cache (conftest points the builder at it): each target is
    downloaded once."""
    return builder_cache_dir


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Bundle]:
    """``built("dynamo", "python3.12", "arm64")`` -> a Bundle, built once per session."""
    done: dict[tuple, Bundle] = {}
    out = tmp_path_factory.mktemp("bundles")

    def build(cache: str, runtime: str = LOCAL_RUNTIME, arch: str = "x86_64",
              include_boto3: bool = False) -> Bundle:
        key = (cache, runtime, arch, include_boto3)
        if key not in done:
            name = "-".join([cache, runtime, arch] + (["boto3"] if include_boto3 else []))
            done[key] = build_bundle(config_for(cache), runtime=runtime, arch=arch,
                                     include_boto3=include_boto3,
                                     output=out / f"{name}.zip")
        return done[key]

    return build


def interpreter_or_skip(runtime: str) -> str:
    found = find_interpreter(Target.of(runtime, "x86_64"))
    if found is None:
        pytest.skip(f"no {runtime} interpreter on this machine (looked at this Python, "
                    f"{runtime} on PATH and pyenv's versions), so its bundle cannot be run")
    return found[0]


def top_levels(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist()}


# -- errors the user can fix ---------------------------------------------------------------

def test_unsupported_runtime_and_architecture_are_refused_up_front() -> None:
    config = config_for("sqlite")
    with pytest.raises(BundleError, match="python3.10.*choose one of python3.11"):
        build_bundle(config, runtime="python3.10")
    with pytest.raises(BundleError, match="'ppc64le'.*x86_64, arm64"):
        build_bundle(config, arch="ppc64le")
    assert DEFAULT_RUNTIME == RUNTIMES[-1] == "python3.14"
    assert ARCHITECTURES == ("x86_64", "arm64")


def test_cli_errors_are_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text("[app:main]\nuse = egg:pypicloud\npypi.storage = s3\n"
                   "storage.bucket = packages\npypi.db = sql\ndb.url = sqlite://\n")
    assert main(["bundle", str(ini), "--runtime", "3.9", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("ppc-s3sync bundle: error: AWS stopped updating functions that use "
                       "python3.9 on 2026-09-30 (deprecated 2025-12-15); choose one of "
                       "python3.11, python3.12, python3.13, python3.14")
    (tmp_path / "mine.zip").write_text("not a bundle")
    assert main(["bundle", str(ini), "-o", str(tmp_path / "mine.zip"), "-q"]) == 2
    assert "mine.zip exists and is not a bundle" in capsys.readouterr().err
    assert (tmp_path / "mine.zip").read_text() == "not a bundle"


def test_a_dependency_without_a_wheel_for_the_target_is_named() -> None:
    """The server's psycopg2-binary publishes aarch64 wheels for glibc 2.27+ only, and
    Lambda's python3.11 runs on Amazon Linux 2 (glibc 2.26)."""
    with pytest.raises(BundleError) as info:
        build_bundle(config_for("postgresql"), runtime="python3.11", arch="arm64")
    version = importlib.metadata.version("psycopg2-binary")
    assert f"psycopg2-binary {version} has no wheel for python3.11 on arm64" in str(info.value)


def test_an_old_binary_dependency_without_a_wheel_is_named() -> None:
    """psycopg2-binary 2.9.1 (2021) has no CPython 3.14 wheels and cannot be built here."""
    store = WheelStore(Target.of("python3.14", "arm64"), lambda _: None)
    with pytest.raises(BundleError) as info:
        store.fetch({"psycopg2-binary": ("psycopg2-binary", "2.9.1")})
    message = str(info.value)
    assert "psycopg2-binary 2.9.1 has no wheel for python3.14 on arm64" in message
    assert "\n" not in message


def test_size_limits_are_checked_before_anything_is_written(
    built: Callable[..., Bundle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built("sqlite")  # warm the cache: the limits apply to cached bundles as well
    out = tmp_path / "function.zip"
    monkeypatch.setattr("pypicloud_s3sync.bundle.archive.MAX_ZIPPED", 1024 * 1024)
    with pytest.raises(BundleError, match=r"MiB zipped, over Lambda's 50 MB limit"):
        build_bundle(config_for("sqlite"), runtime=LOCAL_RUNTIME, output=out)
    monkeypatch.setattr("pypicloud_s3sync.bundle.archive.MAX_ZIPPED", 50 * 1024 * 1024)
    monkeypatch.setattr("pypicloud_s3sync.bundle.archive.MAX_UNZIPPED", 1024 * 1024)
    with pytest.raises(BundleError, match=r"MiB unzipped, over Lambda's 250 MB limit"):
        build_bundle(config_for("sqlite"), runtime=LOCAL_RUNTIME, output=out)
    assert not out.exists()


# -- what is inside -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("cache", "needed", "absent"),
    [
        ("sqlite", {"sqlalchemy"}, {"redis", "flywheel", "dynamo3", "psycopg2", "pymysql"}),
        ("redis", {"redis"}, {"sqlalchemy", "flywheel", "dynamo3", "psycopg2", "pymysql"}),
        ("dynamo", {"flywheel", "dynamo3"}, {"sqlalchemy", "redis", "psycopg2", "pymysql"}),
    ],
)
def test_only_what_the_cache_backend_needs(
    built: Callable[..., Bundle], cache: str, needed: set[str], absent: set[str]
) -> None:
    bundle = built(cache)
    tops = top_levels(bundle.path)
    # pypicloud needs pkg_resources; Lambda's 3.12+ runtimes have no setuptools.
    assert {"pypicloud", "pypicloud_s3sync", "pkg_resources", *needed} <= tops
    runtime_owned = {"boto3", "botocore", "s3transfer", "urllib3", "jmespath", "dateutil"}
    # cryptography only signs CloudFront URLs, which the function never does.
    assert not tops & (absent | runtime_owned
                       | {"pip", "_distutils_hack", "greenlet", "cryptography"})
    with zipfile.ZipFile(bundle.path) as archive:
        names = archive.namelist()
    assert not [n for n in names if re.search(r"(^|/)(tests?|testing)/", n)
                and not n.startswith("sqlalchemy/testing/")]
    assert not [n for n in names if n.startswith("setuptools/") and "/_vendor/" not in n]
    # The function package ships whole, with what it imports of ours (config, compat,
    # backends, urlsecrets for its log lines, and cache_endpoint and endpoints, which
    # config imports to check and place the commands' endpoint);
    # the commands, planner, admin views and this builder stay on the server.
    ours = {n.removeprefix("pypicloud_s3sync/") for n in names
            if n.startswith("pypicloud_s3sync/") and n.endswith(".py")}
    function = {str(p.relative_to(PACKAGE)) for p in (PACKAGE / "function").glob("*.py")}
    assert "dbsecret.py" in {p.name for p in (PACKAGE / "function").glob("*.py")}
    assert ours == function | {"__init__.py", "handler.py", "config.py", "compat.py",
                               "backends.py", "version.py", "urlsecrets.py",
                               "cache_endpoint.py", "endpoints.py"}, sorted(ours)
    assert bundle.size <= 10 * 1024 * 1024, f"{bundle.size / 2**20:.1f} MiB"


def test_versions_are_the_servers(built: Callable[..., Bundle]) -> None:
    with zipfile.ZipFile(built("dynamo").path) as archive:
        metadata = {
            name: archive.read(name).decode()
            for name in archive.namelist() if name.endswith(".dist-info/METADATA")
        }
    assert len(metadata) >= 15
    for text in metadata.values():
        name = re.search(r"^Name: (.+)$", text, re.M).group(1).strip()
        version = re.search(r"^Version: (.+)$", text, re.M).group(1).strip()
        assert version == importlib.metadata.version(name), name


def test_include_boto3_bundles_the_sdk(built: Callable[..., Bundle]) -> None:
    bundle = built("dynamo", include_boto3=True)
    assert {"boto3", "botocore", "s3transfer", "jmespath"} <= top_levels(bundle.path)
    assert bundle.size > built("dynamo").size


def _pyc_magic(runtime: str) -> bytes | None:
    if runtime == LOCAL_RUNTIME:
        return importlib.util.MAGIC_NUMBER
    found = find_interpreter(Target.of(runtime, "x86_64"))
    if found is None:
        return None
    code = "import importlib.util,sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    out = subprocess.run([found[0], "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    return bytes.fromhex(out)


def _glibc_needed(data: bytes) -> int:
    return max((int(m) for m in re.findall(rb"GLIBC_2\.(\d+)", data)), default=0)


def assert_fits_target(bundle: Bundle, min_natives: int) -> None:
    """Every compiled file and every bytecode file is for the bundle's runtime and CPU."""
    runtime, arch = bundle.runtime, bundle.arch
    minor = runtime.removeprefix("python3.")
    machine = WHEEL_MACHINES[arch]
    magic = _pyc_magic(runtime)
    natives = pycs = 0
    with zipfile.ZipFile(bundle.path) as archive:
        for info in archive.infolist():
            name, data = info.filename, archive.read(info)
            base = name.rsplit("/", 1)[-1]
            if data[:4] == b"\x7fELF":
                natives += 1
                assert data[4] == 2, f"{name}: not 64-bit"
                assert int.from_bytes(data[18:20], "little") == ELF_MACHINES[arch], name
                assert _glibc_needed(data) <= GLIBC_MINOR[runtime], name
                if ".cpython-" in base:
                    assert base.endswith(f".cpython-3{minor}-{machine}-linux-gnu.so"), name
                else:
                    assert base.endswith(".abi3.so") or ".libs/" in name, name
            elif base.endswith(".pyc"):
                pycs += 1
                assert magic is not None, f"{name}: bytecode, but no {runtime} to make it"
                assert data[:4] == magic, name
                if "/__pycache__/" in name:
                    assert f".cpython-3{minor}.pyc" in base, name
    # zope.interface, wrapt (+ psycopg2 and its vendored libraries)
    assert natives >= min_natives
    assert (pycs > 0) == (magic is not None)


@pytest.mark.parametrize(
    ("runtime", "arch", "cache"),
    [
        # psycopg2-binary has no aarch64 wheel for Amazon Linux 2's glibc 2.26.
        ("python3.11", "arm64", "dynamo"),
        # PostgreSQL: psycopg2-binary brings the most compiled files and vendored libs.
        ("python3.12", "arm64", "postgresql"),
        # The defaults; no python3.14 here, so no bytecode either.
        (DEFAULT_RUNTIME, "x86_64", "postgresql"),
    ],
)
def test_every_native_file_fits_the_target(
    built: Callable[..., Bundle], runtime: str, arch: str, cache: str
) -> None:
    """The x86_64 builds for 3.12 and 3.13 are checked too, in the run test below."""
    bundle = built(cache, runtime, arch)
    assert (bundle.runtime, bundle.arch) == (runtime, arch)
    assert_fits_target(bundle, 10 if cache == "postgresql" else 2)
    assert bundle.size <= 10 * 1024 * 1024, f"{bundle.size / 2**20:.1f} MiB"


def test_two_builds_are_byte_identical(
    built: Callable[..., Bundle], bundle_cache: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = built("redis")
    # A real second build from the same inputs: the cached zip must not answer it.
    monkeypatch.setenv("PPC_S3SYNC_CACHE_DIR", str(
        cache_copy(bundle_cache, tmp_path / "cache", pure_builds=True)))
    second = build_bundle(config_for("redis"), runtime=LOCAL_RUNTIME,
                          output=tmp_path / "again.zip")
    data = second.read_bytes()
    assert data == first.read_bytes()
    assert second.sha256 == first.sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert (second.size, second.unzipped_size) == (first.size, first.unzipped_size)
    with zipfile.ZipFile(second.path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_a_wheel_built_for_one_target_never_stands_in_for_another(
    built: Callable[..., Bundle], bundle_cache: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLAlchemy 1.4 has no wheel for 3.13, so it is built pure there; a 3.11 bundle
    built later from the same cache must still get 3.11's binary wheel, byte for byte
    what a fresh cache gives."""
    interpreter_or_skip("python3.13")
    built("sqlite", "python3.13")
    after_other_target = built("sqlite")
    # Fresh: nothing built, by either target; the downloaded wheels are copied.
    monkeypatch.setenv("PPC_S3SYNC_CACHE_DIR", str(cache_copy(
        bundle_cache, tmp_path / "fresh-cache", pure_builds=False)))
    fresh = build_bundle(config_for("sqlite"), runtime=LOCAL_RUNTIME,
                         output=tmp_path / "fresh.zip")
    assert fresh.sha256 == after_other_target.sha256
    with zipfile.ZipFile(fresh.path) as archive:
        assert any(n.startswith("sqlalchemy/") and n.endswith(".so") for n in archive.namelist())


def test_cli_writes_the_zip_named_after_the_function_and_prints_the_handler(
    built: Callable[..., Bundle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    reference = built("sqlite")
    ini = tmp_path / "config.ini"
    ini.write_text("[app:main]\nuse = egg:pypicloud\npypi.storage = s3\n"
                   "storage.bucket = packages\npypi.db = sql\n"
                   f"db.url = {CACHE_DB['sqlite']['db.url']}\n"
                   "s3sync.function_name = eu_sync\n")
    monkeypatch.chdir(tmp_path)
    assert main(["bundle", str(ini), "--runtime", LOCAL_RUNTIME, "-q"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"handler: {HANDLER}" in out.splitlines()
    assert f"CodeSha256: {reference.sha256}" in out.splitlines()
    assert (tmp_path / "eu_sync.zip").read_bytes() == reference.read_bytes()
    assert 'PYPICLOUD_SETTINGS="{\\"db.url\\": ' in out
    # Rebuilding over our own earlier bundle is fine; progress shows without -q.
    assert main(["bundle", str(ini), "--runtime", LOCAL_RUNTIME]) == 0
    err = capsys.readouterr().err
    assert "using the cached bundle" in err
    # One line per step of ours; pip's own lines stay in its log.
    assert not [line for line in err.splitlines() if "Collecting" in line]


# -- choosing what runs on the target -------------------------------------------------------

def test_code_the_target_python_cannot_run_is_found_by_importing_it(tmp_path: Path) -> None:
    """setuptools 65.5 (what ``python3.11 -m venv`` installs) imported by python3.12, with
    only the tree on the path, fails in ``pkg_resources``; the builder names setuptools."""
    python = interpreter_or_skip("python3.12")
    target = Target.of("python3.12", "x86_64")
    store = WheelStore(target, lambda _: None)
    wheels = store.fetch({"setuptools": ("setuptools", "65.5.0")})
    tree = tmp_path / "tree"
    layout.extract(wheels["setuptools"], ["pkg_resources"], tree)
    closure = Closure(units={"setuptools": ("65.5.0", ["pkg_resources"])},
                      names={"setuptools": "setuptools"}, runtime={},
                      imported_dirs=frozenset(), steps=[["import", "pkg_resources"]])
    failure = builder._verify(tree, closure, python, tmp_path)
    assert failure is not None and failure["type"] == "AttributeError"
    assert "ImpImporter" in failure["message"]
    assert failure["files"][-1].startswith("pkg_resources/")
    assert builder._owner_of(failure, wheels, closure) == "setuptools"
    # The replacement: the newest setuptools that what we bundle (and we) allow.
    assert versions.constraints_on("setuptools", closure, target) == "<82"
    new, wheel = store.newest("setuptools<82,>65.5.0")
    assert new.startswith("81.") and wheel.name.startswith(f"setuptools-{new}-")


def test_a_retired_runtime_is_refused_with_its_date_and_newer_choices() -> None:
    with pytest.raises(BundleError, match=r"python3\.9 on 2026-09-30.*python3\.11, "
                                          r"python3\.12, python3\.13, python3\.14"):
        build_bundle(config_for("sqlite"), runtime="python3.9")
