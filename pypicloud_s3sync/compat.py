"""Make pypicloud 1.3.12 run on Python 3.11+ with the dependencies pip resolves today.

pypicloud, pyramid_duh and flywheel have had no release since 2022, so three things
break under them.  Each fix here first checks that the problem is really present, so
it does nothing on an environment that is already fine, and applying it twice is
harmless.  Nothing outside the broken call sites is touched.

1. SQLAlchemy 2 removed ``String(convert_unicode=...)``, which ``pypicloud.cache.sql``
   uses at import time for every cache backend.  That cannot be patched from outside,
   so setup.py pins ``SQLAlchemy<2``; :func:`check_sqlalchemy` turns a wrong install
   into an error that says what to do.
2. ``inspect.getargspec`` is gone in Python 3.11; ``pyramid_duh`` calls it when
   pypicloud's views are scanned (``@addslash``) and when params are parsed.  We give
   pyramid_duh's modules an ``inspect`` that has it again, leaving the stdlib alone.
3. flywheel's ``DateTimeType.ddb_load`` passes a ``Decimal`` to ``utcfromtimestamp``,
   which Python 3.10+ rejects, so every DynamoDB read fails.  We convert to float.
"""

from __future__ import annotations

import functools
import inspect
import logging
import types
from collections import namedtuple
from collections.abc import Callable
from decimal import Decimal

LOG = logging.getLogger(__name__)

#: pyramid_duh reads ``.keywords`` (the pre-3.0 name of ``varkw``).
ArgSpec = namedtuple("ArgSpec", ["args", "varargs", "keywords", "defaults"])


class CompatError(RuntimeError):
    """The environment has a problem we cannot patch; the message says how to fix it."""


def _getargspec(func):  # noqa: ANN001 - mirrors the removed stdlib signature
    spec = inspect.getfullargspec(func)
    return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


def check_sqlalchemy() -> None:
    """Refuse SQLAlchemy 2 with the fix in the message instead of a TypeError deep inside."""
    import sqlalchemy

    major = int(sqlalchemy.__version__.split(".")[0])
    if major >= 2:
        raise CompatError(
            f"pypicloud 1.3.12 needs SQLAlchemy 1.4, but {sqlalchemy.__version__} is "
            "installed; run: pip install 'SQLAlchemy>=1.4,<2'"
        )


def fix_pyramid_duh() -> bool:
    """Give pyramid_duh an ``inspect`` with ``getargspec``; True if a patch was needed."""
    try:
        import pyramid_duh.params
        import pyramid_duh.view
    except ImportError:
        return False
    patched = False
    for module in (pyramid_duh.view, pyramid_duh.params):
        if hasattr(module.inspect, "getargspec"):
            continue
        shim = types.ModuleType("inspect", "stdlib inspect plus getargspec, for pyramid_duh")
        shim.__dict__.update(vars(inspect))
        shim.getargspec = _getargspec
        module.inspect = shim
        patched = True
    return patched


def _flywheel_datetime_broken(type_cls: type) -> bool:
    try:
        type_cls().ddb_load(Decimal("1.5"))
    except TypeError:
        return True
    return False


def fix_flywheel() -> bool:
    """Make flywheel load DynamoDB timestamps on Python 3.10+; True if a patch was needed."""
    try:
        from flywheel.fields.types import DateTimeType
    except ImportError:
        return False
    if not _flywheel_datetime_broken(DateTimeType):
        return False
    original = DateTimeType.ddb_load

    @functools.wraps(original)
    def ddb_load(self, value):  # noqa: ANN001, ANN202 - flywheel's own signature
        return original(self, float(value) if isinstance(value, Decimal) else value)

    DateTimeType.ddb_load = ddb_load
    return True


@functools.cache
def apply(cache: str | None = None) -> None:
    """Apply the fixes this environment needs; cheap and safe to call repeatedly.

    ``cache`` is ``pypi.db`` when only that cache's code will run (the Lambda function):
    then pyramid_duh's argument parsing, which only pypicloud's views call, is left as it
    is, and a Redis or DynamoDB cache does not import SQLAlchemy just to check its
    version.  None (the server) applies every fix.
    """
    fixes: list[tuple[str, Callable[[], bool]]] = []
    if cache is None:
        fixes.append(("pyramid_duh", fix_pyramid_duh))
    if cache not in ("redis", "dynamo"):
        check_sqlalchemy()
    if cache not in ("redis", "sql"):
        fixes.append(("flywheel", fix_flywheel))
    applied = [name for name, fix in fixes if fix()]
    if applied:
        LOG.debug("pypicloud compatibility fixes applied: %s", ", ".join(applied))


__all__ = ["ArgSpec", "CompatError", "apply", "check_sqlalchemy", "fix_flywheel",
           "fix_pyramid_duh"]
