"""Where the target gets another version than the server has, and which one.

The server's versions are the rule: the function runs the code the server runs.  Two
things override it, both read from the installed distributions' requirements with the
target's markers: a dependency only the target's Python needs, and a version that
cannot run on the target's Python, replaced by the newest release the other bundled
distributions allow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from packaging.utils import canonicalize_name

from .closure import Closure
from .errors import BundleError
from .target import Target, target_environment
from .wheels import WheelStore

#: Versions known not to run on a Python (minor version and newer), for targets whose
#: interpreter is not on this machine to find out: setuptools before 66.1 calls
#: ``pkgutil.ImpImporter`` in ``pkg_resources``, which Python 3.12 removed.
KNOWN_FLOORS = {"setuptools": (12, "66.1")}


def target_only_requirements(closure: Closure, target: Target) -> list[str]:
    """Dependencies the bundled distributions need on the target but not on the server.

    The probe runs on the server's Python, so it cannot see a requirement such as
    WebOb's ``legacy-cgi; python_version >= "3.13"`` (the stdlib lost ``cgi``).  Those
    come at the newest version their requirement allows: the server has none to match.
    """
    from importlib import metadata

    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    server = {**default_environment(), "extra": ""}
    on_target = target_environment(target)
    present = set(closure.units) | set(closure.runtime)
    found = set()
    for norm in closure.units:
        try:
            lines = metadata.requires(closure.names[norm]) or []
        except metadata.PackageNotFoundError:
            continue
        for line in lines:
            requirement = Requirement(line)
            marker = requirement.marker
            if (marker is None or canonicalize_name(requirement.name) in present
                    or not marker.evaluate(on_target) or marker.evaluate(server)):
                continue
            requirement.marker = None
            found.add(str(requirement))
    return sorted(found)


def older(version: str, than: str) -> bool:
    """Compared as versions, not as strings: 9.0 is older than 10.0."""
    from packaging.version import Version

    return Version(version) < Version(than)


def replace_version(norm: str, closure: Closure, target: Target, store: WheelStore,
                    wheels: dict[str, Path], versions: dict[str, str], why: str,
                    say: Callable[[str], None]) -> None:
    """Swap the server's version of ``norm`` for the newest one that the other bundled
    distributions (and ours) allow and that is newer than the one that failed."""
    name, old = closure.names.get(norm, norm), versions[norm]
    requirement = f"{name}{constraints_on(norm, closure, target)}"
    requirement += ("," if requirement != name else "") + f">{old}"
    try:
        new, wheel = store.newest(requirement)
    except BundleError as exc:
        raise BundleError(f"{name} {old} cannot run on {target.runtime} ({why}), and "
                          f"{exc}") from exc
    say(f"{name} {old} (the server's) cannot run on {target.runtime} ({why}); "
        f"bundling {name} {new} instead")
    wheels[norm] = wheel
    versions[norm] = new


def constraints_on(norm: str, closure: Closure, target: Target) -> str:
    """The version specifiers the bundled distributions (and ours) put on ``norm``."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    environment = target_environment(target)
    specifiers = SpecifierSet()
    for other in [*closure.names.values(), "pypicloud-s3sync"]:
        try:
            lines = metadata.requires(other) or []
        except metadata.PackageNotFoundError:
            continue
        for line in lines:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) != norm:
                continue
            if requirement.marker is None or requirement.marker.evaluate(environment):
                specifiers &= requirement.specifier
    return str(specifiers)
