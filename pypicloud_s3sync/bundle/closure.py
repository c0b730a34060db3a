"""What of the server's site-packages the function needs, found by running its imports.

:mod:`.probe` does the running, in a bare interpreter of its own; this module decides
what it runs (the handler's bootstrap, step by step, for the configured cache), keeps
its answer for an unchanged environment, and reads that answer as a :class:`Closure`:
pieces of site-packages grouped by distribution.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from ..config import PypicloudConfig
from .cachedir import BUILDER_VERSION, cache_root, digest, write_atomic
from .errors import BundleError
from .ours import HANDLER, OWN_PACKAGE, own_files
from .target import RUNTIME_DISTRIBUTIONS


def site_dirs() -> list[str]:
    """The server's site-packages: where the probe finds what the function imports, and
    whose listing keys its cached answer."""
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


def env_fingerprint() -> dict:
    """Cheap evidence of what is installed: dist-info names carry versions."""
    listing = {d: sorted(n for n in os.listdir(d) if n.endswith((".dist-info", ".egg-info")))
               for d in site_dirs()}
    own = {str(p.relative_to(OWN_PACKAGE)): hashlib.sha256(p.read_bytes()).hexdigest()
           for p in own_files()}
    return {"python": sys.version, "executable": sys.executable, "site": listing, "own": own}


def find_closure(config: PypicloudConfig, say: Callable[[str], None]) -> Closure:
    """Run the probe (or reuse its answer for an unchanged environment)."""
    steps = _probe_steps(config)
    key = digest({"env": env_fingerprint(), "steps": steps, "builder": BUILDER_VERSION})
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
            "site_dirs": site_dirs(),
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
