"""The cache class is pypicloud's, found without importing pypicloud's web app or other backends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pypicloud.cache import get_cache_impl
from pypicloud.cache.dynamo import DynamoCache
from pypicloud.cache.redis_cache import RedisCache
from pypicloud.cache.sql import SQLCache
from pypicloud.util import EnvironSettings

from pypicloud_s3sync.backends import BACKENDS, backend_of, cache_class, defer_package_init


def settings(db: str) -> EnvironSettings:
    return EnvironSettings({"pypi.db": db}, {})


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_short_names_give_the_class_pypicloud_gives(name: str) -> None:
    assert cache_class(settings(name)) is get_cache_impl(settings(name))


@pytest.mark.parametrize("dotted", [
    "pypicloud.cache.sql.SQLCache",
    "pypicloud.cache.redis_cache:RedisCache",
    ".dynamo.DynamoCache",  # relative to pypicloud.cache, as pypicloud resolves it
])
def test_dotted_paths_resolve_as_pypicloud_resolves_them(dotted: str) -> None:
    assert cache_class(settings(dotted)) is get_cache_impl(settings(dotted))


def test_an_unknown_name_fails_as_pypicloud_fails() -> None:
    with pytest.raises(ImportError):
        get_cache_impl(settings("no_such_cache.Cache"))
    with pytest.raises(ImportError):
        cache_class(settings("no_such_cache.Cache"))


class MySQLCache(SQLCache):
    """An operator's own subclass still syncs as the backend it extends."""


@pytest.mark.parametrize(("cache", "expected"), [
    (SQLCache, "sql"), (MySQLCache, "sql"), (RedisCache, "redis"), (DynamoCache, "dynamo"),
    (object, None), ("sql", None),
])
def test_backend_of(cache: object, expected: str | None) -> None:
    assert backend_of(cache) == expected


def test_an_imported_package_is_left_alone() -> None:
    import pypicloud

    assert defer_package_init("pypicloud") is False
    assert sys.modules["pypicloud"] is pypicloud and pypicloud.__version__


def test_a_missing_package_is_named() -> None:
    with pytest.raises(ModuleNotFoundError, match="no_such_package"):
        defer_package_init("no_such_package")


FRESH = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from pypicloud_s3sync.backends import backend_of, defer_package_inits
from pypicloud_s3sync.function.cache import open_cache

defer_package_inits()
from pypicloud.util import EnvironSettings

settings = EnvironSettings({"pypi.db": "redis", "db.url": "redis://127.0.0.1:1/0",
                            "storage.bucket": "packages"}, {})
cache = open_cache(settings)
loaded = sorted(m for m in ("sqlalchemy", "pyramid.config", "pyramid_beaker",
                            "pypicloud.cache.sql", "pypicloud.locator") if m in sys.modules)
before = {"backend": backend_of(cache), "loaded": loaded}
# Anything that wants the whole package still gets it, the moment it asks.
from pypicloud import main
import pypicloud.cache
print(json.dumps({**before, "main": callable(main),
                  "get_cache_impl": pypicloud.cache.get_cache_impl(settings).__name__,
                  "sql_after": "sqlalchemy" in sys.modules}))
"""


def test_a_fresh_function_process_imports_only_its_backend() -> None:
    proc = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # A Redis cache, built by pypicloud's own configure(), without SQLAlchemy, pyramid's
    # Configurator, beaker or pypicloud's locator (its package inits import all of them).
    assert result["backend"] == "redis"
    assert result["loaded"] == []
    # The deferred inits ran when asked for: nothing that uses pypicloud whole breaks.
    assert result["main"] is True
    assert result["get_cache_impl"] == "RedisCache"
    assert result["sql_after"] is True
