"""Make pypicloud 1.3.12 run on Python 3.11+ with the dependencies pip resolves today.

pypicloud, pyramid_duh and flywheel have had no release since 2022, so four things
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
   which Python 3.10+ rejects, so every DynamoDB read fails.  We read the seconds and
   microseconds from the ``Decimal`` itself: going through a float would bring about
   half of all timestamps back one microsecond early.
4. ``pkg_resources.parse_version`` raises for versions that are not PEP 440 (``2004d``)
   since packaging 22 dropped ``LegacyVersion``; pypicloud sorts every package listing
   with it, so one such upload makes ``/simple/<name>/``, ``/pypi/<name>/json`` and the
   web interface's API fail for the whole package.  pypicloud's two callers get a
   ``pkg_resources`` whose ``parse_version`` ranks such versions below every valid one.
"""

from __future__ import annotations

import functools
import inspect
import logging
import operator
import re
import types
import warnings
from collections import namedtuple
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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


#: Timestamps whose microseconds a float cannot carry at this magnitude; a ``ddb_load``
#: that goes through ``float`` brings at least one of them back a microsecond early.
_FLYWHEEL_PROBES = (
    datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC),
    datetime(2023, 11, 14, 22, 13, 20, 999999, tzinfo=UTC),
    datetime(2033, 5, 18, 3, 33, 20, 500001, tzinfo=UTC),
)
_EPOCH = datetime(1970, 1, 1)


def _flywheel_datetime_broken(type_cls: type) -> bool:
    field = type_cls()
    try:
        return any(field.ddb_load(field.ddb_dump(dt)) != dt for dt in _FLYWHEEL_PROBES)
    except TypeError:
        return True


def _exact_ddb_load(self, value):  # noqa: ANN001, ANN202 - flywheel's own signature
    """The exact inverse of flywheel's ``ddb_dump``, which writes ``"<seconds>.<%f>"``.

    Seconds and microseconds come straight from the ``Decimal`` digits, so nothing is
    rounded, and no ``utcfromtimestamp`` (deprecated in 3.12) is needed.
    """
    from flywheel.fields.types import UTC as flywheel_utc

    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    seconds = int(value)
    microseconds = int(abs(value - seconds) * 1_000_000)
    loaded = (_EPOCH + timedelta(seconds=seconds)).replace(microsecond=microseconds)
    return loaded if self.naive else loaded.replace(tzinfo=flywheel_utc)


def fix_flywheel() -> bool:
    """Make flywheel load DynamoDB timestamps exactly on Python 3.10+; True if patched.

    The check round-trips timestamps through ``ddb_dump``/``ddb_load``, so it also
    replaces a ``ddb_load`` that no longer raises but loses microseconds (as a
    float-based fix does); a correct one is left alone.
    """
    try:
        from flywheel.fields.types import DateTimeType
    except ImportError:
        return False
    if not _flywheel_datetime_broken(DateTimeType):
        return False
    DateTimeType.ddb_load = _exact_ddb_load
    return True


_VERSION_PIECES = re.compile(r"[0-9]+|[a-z]+")


class NonPep440Version:
    """A version that PEP 440 rejects (``2004d``), ranked below every valid version.

    That is where pip ranked them while packaging had ``LegacyVersion`` (pip 24.1 and
    later skip them instead), so the newest valid release stays what ``/pypi/<name>/json``
    reports as the latest.  Among themselves, runs of digits compare as numbers and
    runs of letters as text, case-insensitively.  Comparing with a valid version works
    from either side because packaging's ``Version`` defers to us for unknown types.
    """

    __slots__ = ("_key", "_version")

    #: The classes of valid parsed versions, filled in by :func:`fix_version_parsing`.
    valid_types: tuple[type, ...] = ()

    def __init__(self, version: str) -> None:
        self._version = version
        pieces = tuple((1, int(p)) if p.isdigit() else (0, p)
                       for p in _VERSION_PIECES.findall(version.lower()))
        self._key = (pieces, version)

    def __str__(self) -> str:
        return self._version

    def __repr__(self) -> str:
        return f"<NonPep440Version({self._version!r})>"

    def __hash__(self) -> int:
        return hash(self._key)

    def _compare(self, other: object, op: Callable[[object, object], bool],
                 if_valid: bool) -> bool:
        if isinstance(other, NonPep440Version):
            return op(self._key, other._key)
        if isinstance(other, self.valid_types):
            return if_valid
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        return self._compare(other, operator.eq, False)

    def __ne__(self, other: object) -> bool:
        return self._compare(other, operator.ne, True)

    def __lt__(self, other: object) -> bool:
        return self._compare(other, operator.lt, True)

    def __le__(self, other: object) -> bool:
        return self._compare(other, operator.le, True)

    def __gt__(self, other: object) -> bool:
        return self._compare(other, operator.gt, False)

    def __ge__(self, other: object) -> bool:
        return self._compare(other, operator.ge, False)


def _rejects_legacy_versions(parse_version: Callable[[str], object]) -> bool:
    """Whether the fix is needed.  A setuptools that still accepts such versions (65.5,
    what ``python3.11 -m venv`` installs) warns about each one; that warning is about
    our probe, not the user's packages, so it must not reach the user's terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parse_version("2004d")
        except ValueError:  # packaging's InvalidVersion, whichever copy raised it
            return True
    return False


def _tolerant_pkg_resources(pkg_resources: types.ModuleType) -> types.ModuleType:
    original = pkg_resources.parse_version
    NonPep440Version.valid_types = tuple({*NonPep440Version.valid_types, type(original("0"))})

    def parse_version(version: str) -> object:
        try:
            return original(version)
        except ValueError:
            return NonPep440Version(version)

    shim = types.ModuleType("pkg_resources", "pkg_resources, tolerant of non-PEP 440 versions")
    shim.parse_version = parse_version
    shim.__getattr__ = functools.partial(getattr, pkg_resources)  # everything else: the real one
    return shim


def fix_version_parsing(views: bool = True) -> bool:
    """Let pypicloud list packages holding non-PEP 440 versions; True if patched.

    pypicloud calls ``pkg_resources.parse_version`` in ``Package.parsed_version`` (the
    sort key of every cache's ``all()``) and in the ``/pypi/<name>/json`` view; those
    two modules get the tolerant ``pkg_resources``.  ``views=False`` leaves the view
    module unimported (the Lambda function has no web app).
    """
    try:
        import pypicloud.models
    except ImportError:
        return False
    modules = [pypicloud.models]
    if views:
        import pypicloud.views.simple

        modules.append(pypicloud.views.simple)
    patched = False
    for module in modules:
        if not _rejects_legacy_versions(module.pkg_resources.parse_version):
            continue
        module.pkg_resources = _tolerant_pkg_resources(module.pkg_resources)
        patched = True
    return patched


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
    fixes.append(("versions", functools.partial(fix_version_parsing, views=cache is None)))
    applied = [name for name, fix in fixes if fix()]
    if applied:
        LOG.debug("pypicloud compatibility fixes applied: %s", ", ".join(applied))


__all__ = ["ArgSpec", "CompatError", "NonPep440Version", "apply", "check_sqlalchemy",
           "fix_flywheel", "fix_pyramid_duh", "fix_version_parsing"]
