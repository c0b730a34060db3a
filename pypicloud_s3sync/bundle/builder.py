"""Build the Lambda function's zip: small, right for its runtime, the same bytes every time.

What goes in is decided by experiment, not by reading requirements: the handler's
modules and the configured cache backend are imported in a bare interpreter that grows
only by the files each failing import asks for (:mod:`.probe`).  pypicloud's
declared dependencies include a web stack, optional cache clients and C extensions the
function never touches; the probe leaves them out, and it leaves out every optional
import (Redis for a DynamoDB cache, greenlet for SQLAlchemy...).

Those pieces are then taken from wheels for the target (Lambda's CPython version, its
glibc and CPU), at the versions the server has installed, so the function runs the code
the server runs.  boto3 and its dependencies come from the Lambda runtime unless asked
for.  The zip has fixed timestamps, permissions and order, so the same inputs give the
same bytes (and the same ``CodeSha256``); finished zips are cached by their inputs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from ..config import PypicloudConfig
from ..version import __version__
from .cachedir import BUILDER_VERSION, cache_root, digest, write_atomic
from .errors import BundleError
from .ours import HANDLER, OWN_PACKAGE, add_own_package, own_files
from .runtimes import check_runtime
from .target import (
    DEFAULT_RUNTIME,
    RUNTIME_DISTRIBUTIONS,
    Target,
    find_interpreter,
    is_native,
    target_environment,
)

#: Lambda's limits for a function's code: direct upload, and unzipped with layers.
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024


#: Distributions whose C extensions are optional speed-ups, with the switch that builds
#: them without: used only when no binary wheel exists for the target (SQLAlchemy 1.4,
#: which pypicloud 1.3.12 needs, has none for Python 3.13+).
PURE_BUILD_ENV = {"sqlalchemy": {"DISABLE_SQLALCHEMY_CEXT": "1"}}


_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_KEEP_DIST_INFO = re.compile(
    r"^(METADATA|entry_points\.txt|(licenses?|LICEN[CS]E|COPYING|NOTICE)\b.*)", re.IGNORECASE
)
#: Bytecode for other Pythons, type stubs, C sources, Windows launchers (distlib).
_SKIP_SUFFIXES = (".pyc", ".pyo", ".pyi", ".c", ".h", ".pyx", ".pxd", ".cpp", ".exe", ".dll")
_TEST_DIRS = {"tests", "test", "__pycache__"}
_MODULE_SUFFIXES = (".py", ".so", ".pyd")


@dataclass(frozen=True)
class Bundle:
    """A built zip and what Lambda needs to know about it."""

    path: Path
    sha256: str
    size: int
    unzipped_size: int
    runtime: str
    arch: str
    handler: str
    #: Things the user should know before deploying it (a runtime AWS is retiring).
    warnings: tuple[str, ...] = ()

    def read_bytes(self) -> bytes:
        """The zip's bytes, as ``ZipFile=`` for Lambda's CreateFunction/UpdateFunctionCode."""
        return self.path.read_bytes()


# -- what the function imports ------------------------------------------------------------

def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    dirs = []
    for key in ("purelib", "platlib"):
        path = paths.get(key)
        if path and os.path.isdir(path) and path not in dirs:
            dirs.append(path)
    return dirs


def _probe_steps(config: PypicloudConfig) -> list[list[str]]:
    """What the function does on its first call, as far as imports go: the handler's
    bootstrap (``Runtime.from_settings``) step by step, so that the modules pypicloud's
    package inits would import, and the other cache backends, stay out of the zip."""
    steps = [["call", "pypicloud_s3sync.backends:defer_package_inits"],
             ["call", "pypicloud_s3sync.function.imports:without_cloudfront_signing"],
             ["call", "pypicloud_s3sync.compat:apply", config.settings.get("pypi.db", "sql")],
             ["import", "pypicloud.storage.s3"]]
    backend = config.cache_backend
    if backend == "sql":
        steps.append(["import", "pypicloud.cache.sql"])
        from sqlalchemy.engine.url import make_url

        url = str(config.settings.get("db.url") or "sqlite://")
        try:
            driver = make_url(url).drivername
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several kinds
            raise BundleError(
                f"db.url is not a database URL SQLAlchemy understands: {exc}"
            ) from exc
        steps.append(["dbapi", driver])
    elif backend == "redis":
        steps += [["import", "pypicloud.cache.redis_cache"], ["import", "redis"]]
    else:
        steps.append(["import", "pypicloud.cache.dynamo"])
    if (OWN_PACKAGE / "handler.py").exists():
        steps.append(["import", HANDLER.rpartition(".")[0]])
    return steps


@dataclass(frozen=True)
class Closure:
    """The pieces of site-packages the function needs, grouped by distribution."""

    units: dict[str, tuple[str, list[str]]]  # normalised name -> (version, paths)
    names: dict[str, str]  # normalised name -> the distribution's own spelling
    runtime: dict[str, tuple[str, list[str]]]
    imported_dirs: frozenset[str]  # directories the probe imported a module from
    steps: list = field(default_factory=list)  # what the probe ran, to run again on the target

    def key(self) -> dict:
        return {"units": self.units, "runtime": self.runtime,
                "dirs": sorted(self.imported_dirs)}


def _env_fingerprint() -> dict:
    """Cheap evidence of what is installed: dist-info names carry versions."""
    listing = {d: sorted(n for n in os.listdir(d) if n.endswith((".dist-info", ".egg-info")))
               for d in _site_dirs()}
    own = {str(p.relative_to(OWN_PACKAGE)): hashlib.sha256(p.read_bytes()).hexdigest()
           for p in own_files()}
    return {"python": sys.version, "executable": sys.executable, "site": listing, "own": own}


def find_closure(config: PypicloudConfig, say: Callable[[str], None]) -> Closure:
    """Run the probe (or reuse its answer for an unchanged environment)."""
    steps = _probe_steps(config)
    key = digest({"env": _env_fingerprint(), "steps": steps, "builder": BUILDER_VERSION})
    cached = cache_root() / "probe" / f"{key}.json"
    if cached.exists():
        result = json.loads(cached.read_text())
    else:
        say(f"finding what the {config.cache_backend} cache and the handler import...")
        result = _run_probe(steps)
        write_atomic(cached, json.dumps(result, indent=1, sort_keys=True))
    units: dict[str, tuple[str, list[str]]] = {}
    names: dict[str, str] = {}
    for unit in result["units"]:
        norm = canonicalize_name(unit["dist"])
        names[norm] = unit["dist"]
        units.setdefault(norm, (unit["version"], []))[1].append(unit["path"])
    runtime = {}
    for dist in result["runtime"]:
        norm = canonicalize_name(dist["dist"])
        names[norm] = dist["dist"]
        runtime[norm] = (dist["version"], dist["paths"])
    imported_dirs = set()
    for file in result["files"]:
        directory = file
        while "/" in directory:
            directory = directory.rpartition("/")[0]
            imported_dirs.add(directory)
    return Closure(units=units, names=names, runtime=runtime,
                   imported_dirs=frozenset(imported_dirs), steps=steps)


def _run_probe(steps: list[list[str]]) -> dict:
    with tempfile.TemporaryDirectory(prefix="ppc-s3sync-probe-") as tmp:
        request = {
            "staging": os.path.join(tmp, "stage"),
            "site_dirs": _site_dirs(),
            "runtime_dists": list(RUNTIME_DISTRIBUTIONS),
            "own": {"pypicloud_s3sync": str(OWN_PACKAGE)},
            "steps": steps,
        }
        request_file = os.path.join(tmp, "request.json")
        Path(request_file).write_text(json.dumps(request))
        proc = subprocess.run(
            [sys.executable, "-I", "-S", str(OWN_PACKAGE / "bundle" / "probe.py"), request_file],
            capture_output=True, text=True, check=False,
        )
    if proc.returncode != 0 or not proc.stdout.strip():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BundleError(f"could not work out the function's imports: {last}")
    result = json.loads(proc.stdout)
    if "error" in result:
        raise BundleError(result["error"])
    return result


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


# -- wheels for the target ----------------------------------------------------------------

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


# -- assembling the tree ------------------------------------------------------------------

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


def _extract(wheel: Path, units: list[str], tree: Path,
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


def _wheel_top_levels(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        paths = (_wheel_member_path(name) for name in archive.namelist())
        return sorted({p.split("/", 1)[0] for p in paths
                       if p and not p.split("/", 1)[0].endswith((".dist-info", ".libs"))})


# -- bytecode -----------------------------------------------------------------------------

#: Compiles every module for the target Python.  /var/task is read-only on Lambda, so
#: without bytecode each cold start compiles every module it imports again (measured
#: here: 1.4 s instead of 0.55 s to import the SQL cache).  Hashes, not timestamps, tie
#: bytecode to source, so the zip's fixed timestamps do not invalidate it.  Third-party
#: modules ship as bytecode only, which keeps the zip under 10 MiB; our package and
#: pypicloud keep their sources so that tracebacks show the lines that matter.
_COMPILE = r"""
import os, py_compile, sys
root, keep_source = sys.argv[1], tuple(sys.argv[2:])
for directory, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(files):
        if not name.endswith(".py"):
            continue
        source = os.path.join(directory, name)
        rel = os.path.relpath(source, root).replace(os.sep, "/")
        sourceless = not rel.startswith(keep_source)
        try:
            py_compile.compile(
                source, cfile=source + "c" if sourceless else None,
                dfile="/var/task/" + rel, doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError:
            continue  # a file this Python cannot parse is never imported by it either
        if sourceless:
            os.remove(source)
"""
#: Packages whose sources stay in the bundle next to their bytecode.
KEEP_SOURCE = ("pypicloud_s3sync/", "pypicloud/")


# -- the zip ------------------------------------------------------------------------------

def _write_zip(tree: Path, destination: Path, target: Target | None = None) -> int:
    """Deterministic zip of the tree, recording ``target`` (see :func:`built_for`);
    returns the unzipped size."""
    files = sorted(
        (path.relative_to(tree).as_posix(), path) for path in tree.rglob("*") if path.is_file()
    )
    total = 0
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    os.close(fd)
    with zipfile.ZipFile(tmp, "w") as archive:
        if target is not None:
            archive.comment = json.dumps(
                {"pypicloud-s3sync": __version__, "runtime": target.runtime,
                 "arch": target.arch}, sort_keys=True).encode("utf-8")
        for name, path in files:
            data = path.read_bytes()
            total += len(data)
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.create_system = 3  # unix, so the permission bits below are honoured
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(tmp, destination)
    return total


def zip_sha256(path: Path) -> str:
    """Base64 SHA-256 of the file: Lambda's ``CodeSha256`` for the same bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode()


@dataclass(frozen=True)
class NativeFile:
    """A compiled file in a bundle, as the dynamic loader sees it."""

    name: str
    elf_machine: int | None
    max_glibc: tuple[int, int] | None

    def problems(self, target: Target) -> list[str]:
        found = []
        if self.elf_machine != target.elf_machine:
            found.append(f"{self.name} is not an ELF file for {target.arch}")
        base = self.name.rsplit("/", 1)[-1]
        if ".cpython-" in base and not base.endswith(target.extension_suffix):
            found.append(f"{self.name} is built for another Python than {target.runtime}")
        if self.max_glibc and self.max_glibc > (2, target.glibc_minor):
            found.append(f"{self.name} needs glibc {self.max_glibc[0]}.{self.max_glibc[1]}")
        return found


_GLIBC_VERSION = re.compile(rb"GLIBC_2\.(\d+)")


def native_files(path: Path) -> Iterator[NativeFile]:
    """Every compiled file in a zip, with its CPU and the newest glibc it asks for."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not is_native(info.filename):
                continue
            data = archive.read(info)
            machine = int.from_bytes(data[18:20], "little") if data[:4] == b"\x7fELF" else None
            versions = [int(m) for m in _GLIBC_VERSION.findall(data)]
            yield NativeFile(info.filename, machine, (2, max(versions)) if versions else None)


def check_native_files(path: Path, target: Target) -> None:
    """Refuse a zip with a compiled file the target cannot load (a bug, if it happens)."""
    problems = [problem for native in native_files(path) for problem in native.problems(target)]
    if problems:
        raise BundleError(f"the bundle does not fit {target}: " + "; ".join(problems[:5]))


# -- the public entry point ---------------------------------------------------------------

def built_for(path: str | Path) -> tuple[str, str] | None:
    """``(runtime, arch)`` a zip of ours records, or None for a zip that does not say.

    The record is the zip's comment, so it adds no file to the function and survives a
    copy; a zip made or repacked by other tools has none.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            comment = archive.comment
    except (OSError, zipfile.BadZipFile):
        return None
    try:
        record = json.loads(comment.decode("utf-8"))
        return str(record["runtime"]), str(record["arch"])
    except (ValueError, KeyError, TypeError):
        return None


def default_output(config: PypicloudConfig) -> Path:
    """``<function name>.zip`` in the current directory."""
    return Path(f"{config.option('function_name', 'pypicloud_s3_sync')}.zip")


def build_bundle(
    config: PypicloudConfig,
    *,
    runtime: str = DEFAULT_RUNTIME,
    arch: str = "x86_64",
    include_boto3: bool = False,
    output: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Bundle:
    """Build (or reuse) the function's zip for one runtime and architecture.

    ``output=None`` leaves the zip in the cache (shared: read it, do not change it);
    otherwise it is copied to ``output``, replacing only an earlier bundle.  Everything
    that can make the zip unusable (unsupported target, a dependency with no wheel for
    it, Lambda's size limits) raises :class:`BundleError` before anything is written.
    """
    target = Target.of(runtime, arch)
    say = progress or (lambda message: None)
    retiring = check_runtime(target.runtime, creating=False)
    destination = Path(output) if output is not None else None
    if destination is not None:
        _check_output(destination)
    closure = find_closure(config, say)
    interpreter = find_interpreter(target)
    extra_requirements = target_only_requirements(closure, target)
    key = digest({
        "builder": BUILDER_VERSION, "target": [target.runtime, target.arch],
        "closure": closure.key(), "include_boto3": include_boto3,
        "extra": extra_requirements,
        "own": _env_fingerprint()["own"], "bytecode": interpreter and interpreter[1],
    })
    cached = cache_root() / "bundles" / f"{key}.zip"
    if not cached.exists():
        _build(closure, target, include_boto3, extra_requirements, interpreter, cached, say)
    else:
        say(f"using the cached bundle for {target.runtime} on {target.arch}")
    with zipfile.ZipFile(cached) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    _check_limits(cached.stat().st_size, unzipped, include_boto3)
    path = cached
    if destination is not None:
        write_atomic(destination, cached.read_bytes())
        path = destination
    return Bundle(path=path, sha256=zip_sha256(path), size=path.stat().st_size,
                  unzipped_size=unzipped, runtime=target.runtime, arch=target.arch,
                  handler=HANDLER, warnings=(retiring,) if retiring else ())


def _check_limits(size: int, unzipped: int, include_boto3: bool) -> None:
    """Lambda refuses bigger code; say so before anyone tries to upload it."""
    if size > MAX_ZIPPED:
        raise BundleError(
            f"the bundle is {size / 2**20:.1f} MiB zipped, over Lambda's 50 MB limit for "
            "a direct upload" + ("; build without --include-boto3" if include_boto3 else "")
        )
    if unzipped > MAX_UNZIPPED:
        raise BundleError(
            f"the bundle is {unzipped / 2**20:.1f} MiB unzipped, over Lambda's 250 MB limit"
        )


def _check_output(destination: Path) -> None:
    """Replace an earlier bundle, never some other file of the user's."""
    if destination.is_dir():
        raise BundleError(f"{destination} is a directory; give -o a file name ending in .zip")
    if not destination.exists():
        return
    ours = False
    if zipfile.is_zipfile(destination):
        with zipfile.ZipFile(destination) as archive:
            ours = "pypicloud_s3sync/__init__.py" in archive.namelist()
    if not ours:
        raise BundleError(
            f"{destination} exists and is not a bundle built by this command; "
            "remove it or choose another output file"
        )


#: Versions known not to run on a Python (minor version and newer), for targets whose
#: interpreter is not on this machine to find out: setuptools before 66.1 calls
#: ``pkgutil.ImpImporter`` in ``pkg_resources``, which Python 3.12 removed.
KNOWN_FLOORS = {"setuptools": (12, "66.1")}

#: Distributions the builder never swaps for another version: the function must run
#: the code the server runs.
NEVER_REPLACED = ("pypicloud", "pypicloud-s3sync")


def _build(closure: Closure, target: Target, include_boto3: bool,
           extra_requirements: list[str], interpreter: tuple[str, str] | None,
           cached: Path, say: Callable[[str], None]) -> None:
    wanted = {norm: (closure.names[norm], version)
              for norm, (version, _) in closure.units.items()}
    if include_boto3:
        wanted.update({norm: (closure.names[norm], version)
                       for norm, (version, _) in closure.runtime.items()})
    store = WheelStore(target, say)
    wheels = store.fetch(wanted)
    extra = store.resolve(extra_requirements, set(wanted)) if extra_requirements else {}
    versions = {norm: version for norm, (_, version) in wanted.items()}
    original = dict(versions)
    for norm, (minor, floor) in KNOWN_FLOORS.items():
        if norm in versions and target.minor >= minor and _older(versions[norm], floor):
            reason = f"releases before {floor} do not run on Python 3.{minor}+"
            _replace(norm, closure, target, store, wheels, versions, reason, say)
    can_run = interpreter is not None and target.machine == os.uname().machine
    with tempfile.TemporaryDirectory(prefix="ppc-s3sync-bundle-") as tmp:
        tree = Path(tmp) / "tree"
        for _attempt in range(4):
            replaced = {norm for norm in versions if versions[norm] != original[norm]}
            _assemble(tree, closure, wanted, wheels, extra, replaced)
            if interpreter:
                # Compiled first, so that the check below imports bytecode, as the
                # function will, instead of compiling every module a second time.
                say(f"compiling bytecode with {target.runtime} ({interpreter[0]})...")
                subprocess.run([interpreter[0], "-I", "-S", "-c", _COMPILE, str(tree),
                                *KEEP_SOURCE], check=True, capture_output=True)
            if not can_run:
                break
            assert interpreter is not None
            say(f"importing the bundle with {target.runtime} ({interpreter[0]})...")
            failure = _verify(tree, closure, interpreter[0], Path(tmp))
            if failure is None:
                break
            norm = _owner_of(failure, wheels, closure)
            why = f"{failure['type']}: {failure['message']}"
            if norm is None or norm in NEVER_REPLACED:
                raise BundleError(f"the bundle does not import on {target.runtime}: {why}"
                                  + (f" (in {failure['files'][-1]})" if failure["files"] else ""))
            _replace(norm, closure, target, store, wheels, versions, why, say)
        else:
            raise BundleError(f"the bundle still does not import on {target.runtime}")
        if not interpreter:
            say(f"no {target.runtime} interpreter here to compile bytecode with: the "
                "function will compile its modules on each cold start (slower)")
        say("writing the zip...")
        scratch = Path(tmp) / "bundle.zip"
        _write_zip(tree, scratch, target)
        check_native_files(scratch, target)
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(scratch), cached)


def _assemble(tree: Path, closure: Closure, wanted: dict[str, tuple[str, str]],
              wheels: dict[str, Path], extra: dict[str, Path], replaced: set[str]) -> None:
    """Lay out the function's files from the chosen wheels (from scratch each time)."""
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir()
    for norm in sorted(extra):
        _extract(extra[norm], _wheel_top_levels(extra[norm]), tree)
    for norm in sorted(wanted):
        if norm in replaced:
            # The probe mapped the server's version; another version lays its files
            # out differently (setuptools 81's pkg_resources imports from
            # setuptools/_vendor), so it comes whole, less what only installers use.
            tops = [top for top in _wheel_top_levels(wheels[norm])
                    if top != "_distutils_hack" and not top.endswith(".pth")]
            _extract(wheels[norm], tops, tree)
        elif norm in closure.units:
            _extract(wheels[norm], closure.units[norm][1], tree, closure.imported_dirs)
        else:  # the runtime's own packages, whole, for --include-boto3
            _extract(wheels[norm], closure.runtime[norm][1], tree)
    add_own_package(tree)


def _verify(tree: Path, closure: Closure, python: str, scratch: Path) -> dict | None:
    """Import the handler's modules from the tree with the target's interpreter."""
    request = {
        "mode": "verify", "tree": str(tree), "runtime_stage": str(scratch / "runtime"),
        "site_dirs": _site_dirs(), "runtime_dists": list(RUNTIME_DISTRIBUTIONS),
        "steps": closure.steps,
    }
    request_file = scratch / "verify.json"
    request_file.write_text(json.dumps(request))
    proc = subprocess.run([python, "-I", "-S", str(OWN_PACKAGE / "bundle" / "probe.py"),
                           str(request_file)], capture_output=True, text=True, check=False)
    shutil.rmtree(scratch / "runtime", ignore_errors=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BundleError(f"could not import the bundle with {python}: {last}")
    return json.loads(proc.stdout).get("failed")


def _owner_of(failure: dict, wheels: dict[str, Path], closure: Closure) -> str | None:
    """The bundled distribution whose file failed (innermost frame first)."""
    tops = {top: norm for norm, wheel in wheels.items() for top in _wheel_top_levels(wheel)}
    tops["pypicloud_s3sync"] = "pypicloud-s3sync"
    for path in reversed(failure["files"]):
        norm = tops.get(path.split("/", 1)[0])
        if norm is not None:
            return norm
    return None


def _older(version: str, than: str) -> bool:
    from packaging.version import Version

    return Version(version) < Version(than)


def _replace(norm: str, closure: Closure, target: Target, store: WheelStore,
             wheels: dict[str, Path], versions: dict[str, str], why: str,
             say: Callable[[str], None]) -> None:
    """Swap the server's version of ``norm`` for the newest one that the other bundled
    distributions (and ours) allow and that is newer than the one that failed."""
    name, old = closure.names.get(norm, norm), versions[norm]
    requirement = f"{name}{_constraints_on(norm, closure, target)}"
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


def _constraints_on(norm: str, closure: Closure, target: Target) -> str:
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
