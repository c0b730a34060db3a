"""Which files of a wheel the function gets, laid out as an installer would.

Of each distribution only the pieces the probe found (and of a package only the
sub-packages something was imported from), its licence, and the metadata code reads at
run time; never tests, type stubs, C sources or bytecode for another Python.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

_KEEP_DIST_INFO = re.compile(
    r"^(METADATA|entry_points\.txt|(licenses?|LICEN[CS]E|COPYING|NOTICE)\b.*)", re.IGNORECASE
)
#: Bytecode for other Pythons, type stubs, C sources, Windows launchers (distlib).
_SKIP_SUFFIXES = (".pyc", ".pyo", ".pyi", ".c", ".h", ".pyx", ".pxd", ".cpp", ".exe", ".dll")
_TEST_DIRS = {"tests", "test", "__pycache__"}
_MODULE_SUFFIXES = (".py", ".so", ".pyd")


def _wheel_member_path(name: str) -> str | None:
    """A wheel member's path once installed; None for what never reaches site-packages."""
    first, _, rest = name.partition("/")
    if first.endswith(".data"):
        kind, _, inner = rest.partition("/")
        return inner if kind in ("purelib", "platlib") else None
    return name


def _matches_unit(path: str, units: Iterable[str]) -> bool:
    for unit in units:
        if path == unit or path.startswith(unit + "/"):
            return True
        directory, _, module = unit.rpartition("/")
        p_directory, _, p_file = path.rpartition("/")
        stem = module.partition(".")[0]
        if (p_directory == directory and p_file.partition(".")[0] == stem
                and p_file.endswith(_MODULE_SUFFIXES) and "." in module):
            return True
    return False


def _wanted_file(path: str) -> bool:
    parts = path.split("/")
    if any(part in _TEST_DIRS for part in parts[:-1]):
        return False
    base = parts[-1]
    if base in ("conftest.py", "tests.py") or base.startswith("test_") and base.endswith(".py"):
        return False
    return not base.endswith(_SKIP_SUFFIXES)


def extract(wheel: Path, units: list[str], tree: Path,
             imported_dirs: frozenset[str] | None = None) -> None:
    """Copy the wanted part of a wheel into the tree.

    With ``imported_dirs``, a sub-package nothing was imported from stays out (for
    SQLAlchemy the dialects of other databases, its test suite, asyncio; pypicloud's web
    templates), along with data-only directories: the handler never reaches them.
    """
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            path = _wheel_member_path(info.filename)
            if path is None or not _wanted_file(path):
                continue
            first = path.split("/", 1)[0]
            if first.endswith(".dist-info"):
                inner = path.split("/", 1)[1]
                if not _KEEP_DIST_INFO.match(inner.rsplit("/", 1)[-1]):
                    continue
            elif first.endswith(".libs"):
                pass  # shared libraries auditwheel vendored for this wheel's extensions
            elif not _matches_unit(path, units) or (
                imported_dirs is not None and "/" in path
                and path.rpartition("/")[0] not in imported_dirs
            ):
                continue
            destination = tree / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.read(info))


def wheel_top_levels(wheel: Path) -> list[str]:
    """A wheel's importable top-level names: what ships when a distribution comes whole,
    and how a failing file is traced back to its distribution."""
    with zipfile.ZipFile(wheel) as archive:
        paths = (_wheel_member_path(name) for name in archive.namelist())
        return sorted({p.split("/", 1)[0] for p in paths
                       if p and not p.split("/", 1)[0].endswith((".dist-info", ".libs"))})
