"""Wheels for the target, at the versions asked for, fetched or built once and kept.

pip downloads them for the target's tags, not this machine's, so an x86_64 server can
build an arm64 zip; it is the server environment's own pip, so the operator's index
and proxy settings apply.  A distribution with no wheel for the target is built here
only when the result is pure Python: compiled code cannot be built for another target.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from packaging.utils import canonicalize_name

from .cachedir import cache_root
from .errors import BundleError
from .target import Target, is_native

#: Distributions whose C extensions are optional speed-ups, with the switch that builds
#: them without: used only when no binary wheel exists for the target (SQLAlchemy 1.4,
#: which pypicloud 1.3.12 needs, has none for Python 3.13+).
PURE_BUILD_ENV = {"sqlalchemy": {"DISABLE_SQLALCHEMY_CEXT": "1"}}


def _wheel_tags(filename: str) -> set[str]:
    from packaging.utils import parse_wheel_filename

    _, _, _, tags = parse_wheel_filename(filename)
    return {str(tag) for tag in tags}


def _supported_tags(target: Target) -> set[str]:
    from packaging import tags

    version = (3, target.minor)
    supported = tags.cpython_tags(version, abis=[target.abi], platforms=target.platforms)
    compatible = tags.compatible_tags(version, interpreter=target.abi,
                                      platforms=target.platforms)
    return {str(tag) for tag in (*supported, *compatible)}


def _wheel_is_pure(path: Path) -> bool:
    with zipfile.ZipFile(path) as wheel:
        return not any(is_native(name) for name in wheel.namelist())


class WheelStore:
    """Wheels by (distribution, version), downloaded or built once and kept."""

    def __init__(self, target: Target, say: Callable[[str], None]) -> None:
        self.target = target
        self.say = say
        self.root = cache_root() / "wheels"
        self.supported = _supported_tags(target)
        self.last_log = ""

    def _slot(self, norm: str, version: str) -> Path:
        return self.root / f"{norm}-{version}"

    def cached(self, norm: str, version: str) -> Path | None:
        slot = self._slot(norm, version)
        for path in sorted(slot.glob("*.whl")):
            if _wheel_tags(path.name) & self.supported:
                return path
        pure = sorted(self._pure_dir(slot).glob("*.whl"))
        return pure[0] if pure else None

    def _pure_dir(self, slot: Path) -> Path:
        """Where wheels we built ourselves go: per target, because a pure build stands in
        for a binary wheel only on a target that has none (SQLAlchemy 1.4 on 3.13+).
        Shared across targets, the same build would replace another target's binary
        wheel depending on what was built first, and identical inputs would no longer
        give identical zips."""
        return slot / "pure" / f"{self.target.abi}-{self.target.arch}"

    def fetch(self, wanted: dict[str, tuple[str, str]]) -> dict[str, Path]:
        """``{norm: (name, version)}`` -> wheel paths; raises BundleError naming a gap."""
        found = {norm: self.cached(norm, version) for norm, (_, version) in wanted.items()}
        missing = {norm: wanted[norm] for norm, path in found.items() if path is None}
        while missing:
            failed = self._download(missing)
            for norm in list(missing):
                if norm != failed:
                    found[norm] = self.cached(norm, missing[norm][1])
            if failed is None:
                break
            name, version = missing[failed]
            found[failed] = self._build_pure(failed, name, version)
            missing = {n: v for n, v in missing.items() if found.get(n) is None}
        return found  # type: ignore[return-value]

    def resolve(self, requirements: list[str], skip: set[str]) -> dict[str, Path]:
        """Wheels for requirements the server has no version of, with their dependencies."""
        from packaging.utils import parse_wheel_filename

        t = self.target
        self.say(f"{t.runtime} also needs {', '.join(requirements)} (not installed here)...")
        platforms = [arg for p in t.platforms for arg in ("--platform", p)]
        with tempfile.TemporaryDirectory(prefix="ppc-s3sync-wheels-") as tmp:
            proc = self._pip(
                "download", "--only-binary=:all:", "--dest", tmp, "--implementation", "cp",
                "--python-version", t.version, "--abi", t.abi, *platforms, *requirements,
            )
            if proc.returncode != 0:
                raise BundleError(
                    f"{', '.join(requirements)} (needed on {t.runtime}) has no wheel for {t}: "
                    + self._pip_error(proc)
                )
            wheels = {}
            for wheel in self._keep(Path(tmp)):
                norm = canonicalize_name(str(parse_wheel_filename(wheel.name)[0]))
                if norm not in skip:
                    wheels[norm] = wheel
        return wheels

    def _pip(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run pip quietly; its whole output goes to a log named in any error.

        The builder's own progress lines are one per step; pip's "Collecting ..." lines
        would bury them, and matter only when pip fails.
        """
        command = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check",
                   "--no-input"]
        logs = cache_root() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        fd, log_name = tempfile.mkstemp(dir=logs, prefix=f"pip-{args[0]}-", suffix=".log")
        with os.fdopen(fd, "w+") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, **(env or {})}, check=False)
            log.seek(0)
            output = log.read()
        if proc.returncode == 0:
            os.unlink(log_name)
        self.last_log = log_name
        return subprocess.CompletedProcess(command, proc.returncode, "", output)

    def _pip_error(self, proc: subprocess.CompletedProcess) -> str:
        """pip's last ERROR line and where its whole output is."""
        tail = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
        return (tail[-1] if tail else "pip failed") + f" (pip's output: {self.last_log})"

    def newest(self, requirement: str) -> tuple[str, Path]:
        """The newest wheel for the target that satisfies ``requirement``: (version, path)."""
        from packaging.utils import parse_wheel_filename

        t = self.target
        platforms = [arg for p in t.platforms for arg in ("--platform", p)]
        with tempfile.TemporaryDirectory(prefix="ppc-s3sync-wheels-") as tmp:
            proc = self._pip(
                "download", "--no-deps", "--only-binary=:all:", "--dest", tmp,
                "--implementation", "cp", "--python-version", t.version, "--abi", t.abi,
                *platforms, requirement,
            )
            if proc.returncode != 0:
                raise BundleError(f"no wheel of {requirement} for {t}: "
                                  + self._pip_error(proc))
            [wheel] = self._keep(Path(tmp))
        return str(parse_wheel_filename(wheel.name)[1]), wheel

    def _download(self, missing: dict[str, tuple[str, str]]) -> str | None:
        """Download what has a wheel; returns the first distribution that has none."""
        t = self.target
        self.say(f"downloading {len(missing)} wheel(s) for {t}...")
        platforms = [arg for p in t.platforms for arg in ("--platform", p)]
        with tempfile.TemporaryDirectory(prefix="ppc-s3sync-wheels-") as tmp:
            proc = self._pip(
                "download", "--no-deps", "--only-binary=:all:", "--dest", tmp,
                "--implementation", "cp", "--python-version", t.version, "--abi", t.abi,
                *platforms, *(f"{name}=={version}" for name, version in missing.values()),
            )
            self._keep(Path(tmp))
        if proc.returncode == 0:
            return None
        match = re.search(r"No matching distribution found for ([A-Za-z0-9_.\-]+)", proc.stderr)
        if not match:
            raise BundleError("pip could not download the wheels: " + self._pip_error(proc))
        failed = canonicalize_name(match.group(1))
        if failed not in missing:
            raise BundleError(f"pip could not download {match.group(1)} for {t}")
        return failed

    def _keep(self, directory: Path, pure: bool = False) -> list[Path]:
        from packaging.utils import parse_wheel_filename

        kept = []
        for wheel in sorted(directory.glob("*.whl")):
            name, version, _, _ = parse_wheel_filename(wheel.name)
            slot = self._slot(canonicalize_name(str(name)), str(version))
            if pure:
                slot = self._pure_dir(slot)
            slot.mkdir(parents=True, exist_ok=True)
            shutil.move(str(wheel), slot / wheel.name)
            kept.append(slot / wheel.name)
        return kept

    def _build_pure(self, norm: str, name: str, version: str) -> Path:
        """No wheel for the target: build one locally, accepted only if it is pure Python."""
        t = self.target
        no_wheel = (
            f"{name} {version} has no wheel for {t}; it has compiled code, so it cannot be "
            f"built here for that target. Choose another runtime or architecture, or "
            f"install a {name} version that publishes wheels for {t.runtime} on the server"
        )
        env = PURE_BUILD_ENV.get(norm)
        if env is None and not _installed_is_pure(name):
            raise BundleError(no_wheel)
        why = "its C speed-ups are optional" if env else "it is pure Python"
        self.say(f"building {name} {version} from source ({why}; no wheel for {t.runtime})...")
        with tempfile.TemporaryDirectory(prefix="ppc-s3sync-build-") as tmp:
            proc = self._pip("wheel", "--no-deps", "--no-binary", name, "--wheel-dir", tmp,
                             f"{name}=={version}", env=env)
            if proc.returncode != 0:
                raise BundleError(f"{no_wheel} ({self._pip_error(proc)})")
            built = sorted(Path(tmp).glob("*.whl"))
            if not built or not _wheel_is_pure(built[0]):
                raise BundleError(no_wheel)
            return self._keep(Path(tmp), pure=True)[0]


def _installed_is_pure(name: str) -> bool:
    from importlib import metadata

    try:
        files = metadata.distribution(name).files or ()
    except metadata.PackageNotFoundError:
        return False
    return not any(is_native(str(file)) for file in files)
