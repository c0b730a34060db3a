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

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import PypicloudConfig
from .archive import check_limits, check_native_files, write_zip, zip_sha256
from .bytecode import compile_tree
from .cachedir import BUILDER_VERSION, cache_root, digest, write_atomic
from .closure import Closure, env_fingerprint, find_closure, site_dirs
from .errors import BundleError
from .layout import extract, wheel_top_levels
from .ours import HANDLER, OWN_PACKAGE, add_own_package
from .runtimes import check_runtime
from .target import DEFAULT_RUNTIME, RUNTIME_DISTRIBUTIONS, Target, find_interpreter
from .versions import KNOWN_FLOORS, older, replace_version, target_only_requirements
from .wheels import WheelStore


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


# -- the public entry point ---------------------------------------------------------------

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
        "own": env_fingerprint()["own"], "bytecode": interpreter and interpreter[1],
    })
    cached = cache_root() / "bundles" / f"{key}.zip"
    if not cached.exists():
        _build(closure, target, include_boto3, extra_requirements, interpreter, cached, say)
    else:
        say(f"using the cached bundle for {target.runtime} on {target.arch}")
    with zipfile.ZipFile(cached) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    check_limits(cached.stat().st_size, unzipped, include_boto3)
    path = cached
    if destination is not None:
        write_atomic(destination, cached.read_bytes())
        path = destination
    return Bundle(path=path, sha256=zip_sha256(path), size=path.stat().st_size,
                  unzipped_size=unzipped, runtime=target.runtime, arch=target.arch,
                  handler=HANDLER, warnings=(retiring,) if retiring else ())


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
        if norm in versions and target.minor >= minor and older(versions[norm], floor):
            reason = f"releases before {floor} do not run on Python 3.{minor}+"
            replace_version(norm, closure, target, store, wheels, versions, reason, say)
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
                compile_tree(interpreter[0], tree)
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
            replace_version(norm, closure, target, store, wheels, versions, why, say)
        else:
            raise BundleError(f"the bundle still does not import on {target.runtime}")
        if not interpreter:
            say(f"no {target.runtime} interpreter here to compile bytecode with: the "
                "function will compile its modules on each cold start (slower)")
        say("writing the zip...")
        scratch = Path(tmp) / "bundle.zip"
        write_zip(tree, scratch, target)
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
        extract(extra[norm], wheel_top_levels(extra[norm]), tree)
    for norm in sorted(wanted):
        if norm in replaced:
            # The probe mapped the server's version; another version lays its files
            # out differently (setuptools 81's pkg_resources imports from
            # setuptools/_vendor), so it comes whole, less what only installers use.
            tops = [top for top in wheel_top_levels(wheels[norm])
                    if top != "_distutils_hack" and not top.endswith(".pth")]
            extract(wheels[norm], tops, tree)
        elif norm in closure.units:
            extract(wheels[norm], closure.units[norm][1], tree, closure.imported_dirs)
        else:  # the runtime's own packages, whole, for --include-boto3
            extract(wheels[norm], closure.runtime[norm][1], tree)
    add_own_package(tree)


def _verify(tree: Path, closure: Closure, python: str, scratch: Path) -> dict | None:
    """Import the handler's modules from the tree with the target's interpreter."""
    request = {
        "mode": "verify", "tree": str(tree), "runtime_stage": str(scratch / "runtime"),
        "site_dirs": site_dirs(), "runtime_dists": list(RUNTIME_DISTRIBUTIONS),
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
    tops = {top: norm for norm, wheel in wheels.items() for top in wheel_top_levels(wheel)}
    tops["pypicloud_s3sync"] = "pypicloud-s3sync"
    for path in reversed(failure["files"]):
        norm = tops.get(path.split("/", 1)[0])
        if norm is not None:
            return norm
    return None
