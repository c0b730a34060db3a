"""Which pypicloud cache class ``pypi.db`` names, importing no other backend.

pypicloud picks the cache class in ``pypicloud.cache.get_cache_impl``, but the package
that defines it imports the SQL backend (SQLAlchemy) whatever ``pypi.db`` says, and the
top-level ``pypicloud`` package imports the web application (pyramid's Configurator,
beaker sessions, requests).  The Lambda function needs neither: they cost a Redis or
DynamoDB function 0.15-0.35 s of its cold start (measured: 0.71 -> 0.56 s, 0.99 -> 0.65 s)
and SQLAlchemy made up a quarter of those bundles.  So this module names the class by the
module that defines it and imports only that module.  Both the config reader and the
function need that answer, so it sits below both.

:func:`defer_package_inits` is for a process that is the function's alone: it registers
those two packages without running their ``__init__`` until something asks for a name
that only the ``__init__`` defines, so nothing that wants the whole of pypicloud breaks.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

#: ``pypi.db``'s short names, as ``get_cache_impl`` reads them, by defining module.
BACKENDS = {
    "sql": ("pypicloud.cache.sql", "SQLCache"),
    "redis": ("pypicloud.cache.redis_cache", "RedisCache"),
    "dynamo": ("pypicloud.cache.dynamo", "DynamoCache"),
}

#: Packages whose ``__init__`` imports more than the function uses (see the docstring).
HEAVY_PACKAGE_INITS = ("pypicloud", "pypicloud.cache")


def defer_package_init(name: str) -> bool:
    """Make package ``name`` importable without running its ``__init__`` yet.

    Its submodules import as usual (the package's ``__path__`` is set); the ``__init__``
    runs the first time anyone reads an attribute the package does not have yet, such as
    ``pypicloud.main`` or ``pypicloud.cache.get_cache_impl``.  False if the package was
    already imported, which leaves it alone.
    """
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"No package named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attribute: str) -> Any:  # noqa: N807 - PEP 562's module hook
        del module.__getattr__
        spec.loader.exec_module(module)
        return getattr(module, attribute)

    module.__getattr__ = __getattr__
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return True


def defer_package_inits() -> None:
    """Defer pypicloud's heavy package inits; a no-op once pypicloud is imported."""
    if "pypicloud" in sys.modules:
        return
    for name in HEAVY_PACKAGE_INITS:
        defer_package_init(name)


def cache_class(settings: Any) -> type:
    """The class ``get_cache_impl`` would return for ``pypi.db``, importing no other backend.

    A dotted path is resolved as pypicloud resolves it (relative to ``pypicloud.cache``).
    Raises ImportError, ValueError or AttributeError as pypicloud's resolver does.
    """
    name = settings.get("pypi.db", "sql")
    if name in BACKENDS:
        module, attribute = BACKENDS[name]
        return getattr(importlib.import_module(module), attribute)
    from pyramid.path import DottedNameResolver

    return DottedNameResolver("pypicloud.cache").resolve(name)


def backend_of(cache: Any) -> str | None:
    """``sql``, ``redis`` or ``dynamo`` for a cache (or cache class) of that family.

    A backend whose module was never imported cannot have made this object, so modules
    that are not loaded are skipped rather than imported: a Redis cache must not pull in
    SQLAlchemy just to be told it is not a SQL cache.
    """
    cls = cache if isinstance(cache, type) else type(cache)
    for backend, (module_name, attribute) in BACKENDS.items():
        module: ModuleType | None = sys.modules.get(module_name)
        base = getattr(module, attribute, None) if module is not None else None
        if isinstance(base, type) and issubclass(cls, base):
            return backend
    return None


__all__ = ["BACKENDS", "backend_of", "cache_class", "defer_package_init",
           "defer_package_inits"]
