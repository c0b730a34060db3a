"""pypicloud 1.3.12 runs, with every cache backend, once our plugin is included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

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
    from .pypicloud_app import write_ini

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
