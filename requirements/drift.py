"""Say which installed packages differ from a lock, so that a failing ``make test-latest``
starts from the list of what changed upstream instead of a guess.

Run with the interpreter of the venv to compare: ``python requirements/drift.py LOCK``.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+))?")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, str]:
    """Name -> version for this interpreter: a universal lock may pin one package twice,
    under markers for different Pythons, and only the one whose marker holds counts."""
    from packaging.markers import Marker

    pins = (PIN.match(line) for line in lock.read_text(encoding="utf-8").splitlines())
    return {canonical(m[1]): m[2] for m in pins
            if m and (not m[3] or Marker(m[3].strip()).evaluate())}


def installed() -> dict[str, str]:
    return {canonical(dist.metadata["Name"]): dist.version
            for dist in metadata.distributions() if dist.metadata["Name"]}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python requirements/drift.py LOCKFILE", file=sys.stderr)
        return 2
    lock, here = locked(Path(argv[0])), installed()
    changed = sorted(name for name in lock.keys() & here.keys() if lock[name] != here[name])
    new = sorted(here.keys() - lock.keys() - {"pypicloud-s3sync"})
    for name in changed:
        print(f"differs from the lock: {name} {here[name]} (lock {lock[name]})")
    for name in new:
        print(f"not in the lock: {name} {here[name]}")
    if not changed and not new:
        print(f"same versions as {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
