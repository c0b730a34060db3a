"""pypicloud 1.3.12 runs, with every cache backend, once our plugin is included."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import types
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypicloud_s3sync import compat


@pytest.mark.usefixtures("aws")
def test_pypicloud_serves_upload_simple_download_delete(pypicloud_factory, cache_backend):
    server = pypicloud_factory(cache=cache_backend)

    server.upload("hello-world", "1.0", summary="Says hello")
    assert server.simple("hello-world") == ["hello-world-1.0.tar.gz"]
    assert server.download("hello-world", "hello-world-1.0.tar.gz")[:2] == b"\x1f\x8b"
    assert [p.filename for p in server.cache().all("hello-world")] == ["hello-world-1.0.tar.gz"]

    server.delete("hello-world", "hello-world-1.0.tar.gz")
    assert server.simple("hello-world") == []
    assert server.cache().all("hello-world") == []


def test_without_the_plugin_pypicloud_fails_as_the_notes_say(tmp_path):
    """Proof that the fix is the cause: a fresh interpreter, same ini, no include."""
    from ..support.pypicloud_app import write_ini

    ini = tmp_path / "bare.ini"
    write_ini(
        ini,
        {"pypi.storage": "file", "storage.dir": str(tmp_path / "files"),
         "pypi.db": "sql", "db.url": f"sqlite:///{tmp_path / 'c.sqlite'}"},
        include_plugin=False,
    )
    script = textwrap.dedent(
        f"""
        from pyramid.paster import get_app
        get_app({str(ini)!r})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode != 0
    assert "module 'inspect' has no attribute 'getargspec'" in result.stderr


def test_fixes_are_idempotent_and_only_applied_when_needed():
    compat.apply()
    import pyramid_duh.params
    import pyramid_duh.view

    # After applying, nothing is left to fix: a second round patches nothing.
    assert compat.fix_pyramid_duh() is False
    assert compat.fix_flywheel() is False
    assert compat.fix_version_parsing() is False
    spec = pyramid_duh.view.inspect.getargspec(lambda a, b=1, *c, **d: None)
    assert (spec.args, spec.varargs, spec.keywords, spec.defaults) == (["a", "b"], "c", "d", (1,))
    assert pyramid_duh.params.inspect.getargspec is pyramid_duh.view.inspect.getargspec
    import inspect

    assert not hasattr(inspect, "getargspec"), "the stdlib module itself is left alone"


def test_flywheel_datetime_loads_decimal_timestamps():
    pytest.importorskip("flywheel")
    from flywheel.fields.types import DateTimeType

    compat.apply()
    loaded = DateTimeType().ddb_load(Decimal("1700000000.25"))
    assert loaded.year == 2023 and loaded.microsecond == 250000


def test_sqlalchemy_2_is_refused_with_the_fix_in_the_message(monkeypatch):
    import sqlalchemy

    monkeypatch.setattr(sqlalchemy, "__version__", "2.0.36")
    with pytest.raises(compat.CompatError, match=r"pip install 'SQLAlchemy>=1.4,<2'"):
        compat.check_sqlalchemy()


# --- DynamoDB timestamps: read back exactly as written ---------------------------------

#: Any timestamp pypicloud could write (aware, UTC), down to the microsecond.
timestamps = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31),
                          timezones=st.just(UTC))


def _float_based_ddb_load(self, value):  # noqa: ANN001, ANN202
    """How a fix that converts the Decimal to float loads a timestamp (what we replace)."""
    value = float(value)
    loaded = datetime.fromtimestamp(int(value), UTC).replace(
        microsecond=int(1000000 * (value - int(value))))
    return loaded if self.naive else loaded.replace(tzinfo=UTC)


@settings(max_examples=2000, deadline=None)
@given(st.datetimes(timezones=st.just(UTC)), st.booleans())
def test_flywheel_loads_what_it_dumped_to_the_microsecond(moment, naive):
    """Every datetime Python has, even before 1970, comes back from its stored form."""
    pytest.importorskip("flywheel")
    from flywheel.fields.types import DateTimeType

    compat.apply()
    field = DateTimeType(naive=naive)
    stored = field.ddb_dump(moment)
    assert isinstance(stored, Decimal)
    expected = moment.replace(tzinfo=None) if naive else moment
    assert field.ddb_load(stored) == expected


@pytest.mark.usefixtures("aws")
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moments=st.lists(timestamps, min_size=1, max_size=25))
def test_dynamodb_cache_reads_back_the_exact_timestamps(cache_settings, tmp_path, moments):
    """Through pypicloud's own DynamoCache on moto: fetch, all() and the summary.

    pypicloud's graceful reload compares these with S3's LastModified and the API shows
    them, so a microsecond off is a wrong answer.  The cache is shared by the examples;
    each example writes a package name of its own.
    """
    from ..support.pypicloud_app import build_cache

    cache = build_cache({**cache_settings("dynamo"),
                         "pypi.storage": "file", "storage.dir": str(tmp_path)})
    name = f"pkg-{uuid.uuid4().hex[:12]}"
    written = {}
    for i, moment in enumerate(moments):
        package = cache.new_package(name, f"1.{i}", f"{name}-1.{i}.tar.gz", moment)
        cache.save(package)
        written[package.filename] = moment

    assert {f: cache.fetch(f).last_modified for f in written} == written
    assert {p.filename: p.last_modified for p in cache.all(name)} == written
    summary = next(s for s in cache.summary() if s["name"] == name)
    assert summary["last_modified"] == moments[-1]  # DynamoCache keeps the last save's


def test_fix_flywheel_replaces_a_load_that_loses_microseconds(monkeypatch):
    """Detection is a round trip, so a float-based ``ddb_load`` counts as broken."""
    pytest.importorskip("flywheel")
    from flywheel.fields.types import DateTimeType

    compat.apply()
    monkeypatch.setattr(DateTimeType, "ddb_load", _float_based_ddb_load)
    field = DateTimeType()
    moment = datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC)
    assert field.ddb_load(field.ddb_dump(moment)) != moment  # the problem is there

    assert compat.fix_flywheel() is True
    assert field.ddb_load(field.ddb_dump(moment)) == moment
    assert compat.fix_flywheel() is False


# --- versions that are not PEP 440 --------------------------------------------------------

def _pep440(release: list[int], pre: tuple[str, int] | None, post: int | None) -> str:
    version = ".".join(map(str, release))
    if pre:
        version += f"{pre[0]}{pre[1]}"
    if post is not None:
        version += f".post{post}"
    return version


valid_versions = st.builds(
    _pep440,
    st.lists(st.integers(0, 30), min_size=1, max_size=4),
    st.none() | st.tuples(st.sampled_from(["a", "b", "rc"]), st.integers(0, 5)),
    st.none() | st.integers(0, 5),
)
#: Shapes seen in old uploads: dates with a letter, words, mixed separators.
invalid_versions = st.from_regex(r"\A[0-9]{1,4}[a-z]{1,3}[0-9]{0,2}\Z|\A[a-z]{3,8}\Z|"
                                 r"\A[0-9]\.[0-9]-[a-z]{4,6}\Z").filter(
    lambda v: not _is_pep440(v))


def _is_pep440(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.lists(valid_versions, max_size=8), st.lists(invalid_versions, min_size=1, max_size=4),
       st.randoms())
def test_pypicloud_sorts_invalid_versions_below_every_valid_one(valid, invalid, rnd):
    """pypicloud's own sort (``Package.__lt__``): valid versions keep packaging's order."""
    from packaging.version import Version
    from pypicloud.models import Package

    compat.apply()
    versions = valid + invalid
    rnd.shuffle(versions)
    packages = [Package("pkg", v, f"pkg-{v}-{i}.tar.gz") for i, v in enumerate(versions)]

    ordered = [p.version for p in sorted(packages)]

    assert set(ordered[:len(invalid)]) == set(invalid)
    # Compared as versions: "0" and "0.0" are the same release, in either order.
    assert [Version(v) for v in ordered[len(invalid):]] == sorted(map(Version, valid))
    # and pypicloud's "latest" (base.summary compares with >) is a valid one when any is
    newest = max(packages)
    if valid:
        assert Version(newest.version) == max(map(Version, valid))
    else:
        assert newest.version == ordered[-1]


def test_invalid_versions_order_among_themselves_and_against_valid_ones():
    from packaging.version import Version

    compat.apply()
    old = compat.NonPep440Version
    assert old("2004d") < old("2004e") < old("2004e1") < old("2005a") < Version("0.0.1")
    assert Version("0") > old("9999z") and not Version("0") < old("9999z")
    assert old("2004d") == old("2004d") and old("2004d") != Version("2004")
    assert str(old("2004d")) == "2004d"


def test_version_fix_is_narrow_and_idempotent():
    import pkg_resources
    import pypicloud.models
    import pypicloud.views.simple

    compat.apply()
    assert compat.fix_version_parsing() is False
    for module in (pypicloud.models, pypicloud.views.simple):
        assert str(module.pkg_resources.parse_version("2004d")) == "2004d"
        assert module.pkg_resources.parse_version("1.0") == pkg_resources.parse_version("1.0")
        assert module.pkg_resources.working_set is pkg_resources.working_set
    with pytest.raises(ValueError):
        pkg_resources.parse_version("2004d")  # pkg_resources itself is left alone


def test_version_fix_leaves_a_parser_that_accepts_legacy_versions_alone(monkeypatch):
    """Where setuptools still has LegacyVersion, there is nothing to fix."""
    import pypicloud.models
    import pypicloud.views.simple

    def tolerant(version: str) -> str:
        return version

    for module in (pypicloud.models, pypicloud.views.simple):
        monkeypatch.setattr(module, "pkg_resources",
                            types.SimpleNamespace(parse_version=tolerant))
    assert compat.fix_version_parsing() is False
    assert pypicloud.models.pkg_resources.parse_version is tolerant


def test_checking_a_parser_that_warns_about_legacy_versions_prints_nothing(monkeypatch):
    """setuptools 65.5's parse_version accepts ``2004d`` with a warning; checking it is
    ours to do, so every command in a fresh venv would otherwise print that warning."""
    import warnings

    import pypicloud.models
    import pypicloud.views.simple

    def warns(version: str) -> str:
        warnings.warn(f"{version} is an invalid version", UserWarning, stacklevel=2)
        return version

    for module in (pypicloud.models, pypicloud.views.simple):
        monkeypatch.setattr(module, "pkg_resources", types.SimpleNamespace(parse_version=warns))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compat.fix_version_parsing() is False


LEGACY_PACKAGE = ("old-tool", ["1.0", "2004d", "2.0"])


def _assert_serves_legacy_package(app, auth):
    """What pip and the web interface see for a package with 1.0, 2.0 and 2004d."""
    name, versions = LEGACY_PACKAGE
    files = {f"{name}-{v}.tar.gz" for v in versions}

    simple = app.get(f"/simple/{name}/", extra_environ=auth)
    assert set(re.findall(r">([^<]+)</a>", simple.text)) == files

    info = app.get(f"/pypi/{name}/json", extra_environ=auth).json
    assert set(info["releases"]) == set(versions)
    assert info["info"]["version"] == "2.0"
    assert [u["filename"] for u in info["urls"]] == [f"{name}-2.0.tar.gz"]

    listing = app.get(f"/api/package/{name}/", extra_environ=auth).json
    assert [p["version"] for p in listing["packages"]] == ["2.0", "1.0", "2004d"]


@pytest.mark.usefixtures("aws")
def test_pypicloud_serves_a_package_with_a_non_pep440_version(pypicloud_factory, cache_backend):
    """/simple/, /pypi/<name>/json and the web interface's API, before and after an
    admin rebuilds the cache from storage."""
    from ..support.pypicloud_app import ADMIN, basic_auth

    server = pypicloud_factory(cache=cache_backend)
    name, versions = LEGACY_PACKAGE
    for version in versions:
        server.upload(name, version)

    _assert_serves_legacy_package(server.app, basic_auth(ADMIN))
    server.app.get("/admin/rebuild", extra_environ=basic_auth(ADMIN))
    _assert_serves_legacy_package(server.app, basic_auth(ADMIN))


def test_a_fresh_server_gets_the_version_fix_from_the_plugin_alone(tmp_path):
    """Nothing but ``pyramid.includes = pypicloud_s3sync`` applies it: a new interpreter."""
    from ..support.pypicloud_app import write_ini

    ini = tmp_path / "server.ini"
    write_ini(ini, {"pypi.storage": "file", "storage.dir": str(tmp_path / "files"),
                    "pypi.db": "sql", "db.url": f"sqlite:///{tmp_path / 'c.sqlite'}"})
    script = textwrap.dedent(
        f"""
        import sys
        from pyramid.paster import get_app
        from webtest import TestApp

        app = TestApp(get_app({str(ini)!r}))
        assert "pypicloud_s3sync.compat" in sys.modules  # included, so applied
        from tests.support.pypicloud_app import ADMIN, basic_auth, sdist_bytes
        from tests.shared.test_compat import LEGACY_PACKAGE, _assert_serves_legacy_package

        name, versions = LEGACY_PACKAGE
        for version in versions:
            filename = f"{{name}}-{{version}}.tar.gz"
            app.post(f"/api/package/{{name}}/{{filename}}", extra_environ=basic_auth(ADMIN),
                     upload_files=[("content", filename, sdist_bytes(name, version))])
        _assert_serves_legacy_package(app, basic_auth(ADMIN))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
