"""Find what the Lambda function really imports, by importing it with nothing else around.

Run by :mod:`pypicloud_s3sync.bundle.closure` as ``python -I -S probe.py REQUEST.json``
with the server's own interpreter, so only the standard library is importable at first.
The function's entry modules are imported from a staging directory that starts with our
package and the runtime's own packages (boto3 and friends).  Each time an import fails
because a module is missing, the piece of the server's site-packages that provides it
(a package directory or a single module file) is linked into the staging directory and
the imports are retried from scratch.

Optional imports (``try: import redis except ImportError``) never fail, so they never
pull anything in: what ends up staged is the smallest set of files that lets the
handler's modules import, which is what the bundle must carry.  Statically reading
``import`` statements cannot tell those two kinds apart; running them can.

This file uses the standard library only: it runs before anything else is importable.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import json
import os
import re
import sys
import warnings

SUFFIXES = tuple(importlib.machinery.all_suffixes())


class ProbeError(Exception):
    """A module the function imports is not installed on the server either."""


def _dist_files(site_dirs: list[str]) -> dict[str, tuple[str, str]]:
    """Relative path in site-packages -> (distribution name, version), from RECORDs."""
    owners: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions(path=site_dirs):
        name, version = dist.metadata["Name"], dist.version
        for file in dist.files or ():
            rel = os.path.normpath(str(file)).replace(os.sep, "/")
            if not rel.startswith(".."):
                owners.setdefault(rel, (name, version))
    return owners


class Stager:
    """Links pieces of the server's site-packages into the staging directory."""

    def __init__(self, staging: str, site_dirs: list[str]) -> None:
        self.staging = staging
        self.site_dirs = site_dirs
        self.owners = _dist_files(site_dirs)
        self.units: dict[str, tuple[str, str]] = {}

    def owner(self, rel: str) -> tuple[str, str] | None:
        if rel in self.owners:
            return self.owners[rel]
        prefix = rel + "/"
        for path, dist in self.owners.items():
            if path.startswith(prefix):
                return dist
        return None

    def link(self, rel: str, source: str) -> None:
        target = os.path.join(self.staging, rel)
        if os.path.lexists(target):
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(source, target)

    def stage_dist(self, name: str) -> list[dict]:
        """Stage every top-level piece of a distribution (the runtime's own packages)."""
        wanted = _normalize(name)
        dist = next((d for d in importlib.metadata.distributions(path=self.site_dirs)
                     if _normalize(d.metadata["Name"]) == wanted), None)
        if dist is None:
            return []
        tops = set()
        for file in dist.files or ():
            parts = os.path.normpath(str(file)).split(os.sep)
            if parts[0].startswith("..") or parts[0].endswith((".dist-info", ".pth")):
                continue
            if parts[0] == "__pycache__":
                continue
            tops.add(parts[0])
        for top in sorted(tops):
            for site in self.site_dirs:
                source = os.path.join(site, top)
                if os.path.lexists(source):
                    self.link(top, source)
                    break
        return [{"dist": dist.metadata["Name"], "version": dist.version,
                 "paths": sorted(tops)}]

    def find(self, name: str) -> bool:
        """Stage whatever provides the missing module ``name``; False if nothing does."""
        parent, _, last = name.rpartition(".")
        if parent:
            module = sys.modules.get(parent)
            search = list(getattr(module, "__path__", None) or [])
        else:
            search = list(sys.path)
        for entry in search:
            entry = os.path.abspath(entry)
            if entry != self.staging and not entry.startswith(self.staging + os.sep):
                continue
            base = os.path.relpath(entry, self.staging)
            base = "" if base == "." else base.replace(os.sep, "/") + "/"
            for site in self.site_dirs:
                directory = os.path.join(site, base)
                if os.path.isdir(os.path.join(directory, last)):
                    rel = base + last
                    if not os.path.exists(os.path.join(directory, last, "__init__.py")):
                        # A namespace package: make it, then the next error names the
                        # portion that is really needed.
                        os.makedirs(os.path.join(self.staging, rel), exist_ok=True)
                        return True
                    self._add(rel, os.path.join(directory, last))
                    return True
                if not os.path.isdir(directory):
                    continue
                for filename in sorted(os.listdir(directory)):
                    stem, dot, _ = filename.partition(".")
                    if stem == last and dot and filename.endswith(SUFFIXES):
                        self._add(base + filename, os.path.join(directory, filename))
                        return True
        return False

    def _add(self, rel: str, source: str) -> None:
        owner = self.owner(rel)
        if owner is None:
            raise ProbeError(f"{rel} in {os.path.dirname(source)} belongs to no installed "
                             "distribution; reinstall the package that provides it")
        self.link(rel, source)
        self.units[rel] = owner


def _normalize(name: str) -> str:
    """PEP 503's name normalisation (``packaging.utils.canonicalize_name``, which this
    script cannot import: it runs with ``-I -S``, without site-packages)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _missing_name(exc: BaseException) -> str | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return exc.name
        exc = exc.__cause__ or exc.__context__
    return None


def _run(step: list[str]) -> None:
    kind, target, *args = step
    if kind == "import":
        importlib.import_module(target)
    elif kind == "call":
        module, _, func = target.partition(":")
        getattr(importlib.import_module(module), func)(*args)
    elif kind == "dbapi":
        from sqlalchemy.engine.url import make_url

        dialect = make_url(target + "://").get_dialect()
        loader = getattr(dialect, "import_dbapi", None) or dialect.dbapi
        loader()
    else:  # pragma: no cover - the caller only sends the kinds above
        raise ValueError(kind)


def probe(request: dict) -> dict:
    staging = os.path.abspath(request["staging"])
    stager = Stager(staging, request["site_dirs"])
    runtime = []
    for name in request["runtime_dists"]:
        runtime += stager.stage_dist(name)
    for rel, source in request["own"].items():
        stager.link(rel, source)
    sys.path.insert(0, staging)
    sys.dont_write_bytecode = True
    warnings.simplefilter("ignore")
    baseline = set(sys.modules)

    def forget(everything: bool) -> None:
        """Drop what this probe imported: all of it, or only orphaned submodules.

        A package whose import failed is gone from ``sys.modules`` while submodules it
        had already imported stay; importing it again would find them and skip setting
        them as attributes.  Everything else that finished importing is kept, which
        saves re-importing the whole stack after each missing module.
        """
        ours = [m for m in set(sys.modules) - baseline
                if m.partition(".")[0] not in sys.stdlib_module_names]
        for module in sorted(ours, key=len):
            parent = module.rpartition(".")[0]
            if everything or (parent and parent not in sys.modules):
                sys.modules.pop(module, None)
        importlib.invalidate_caches()

    missing: list[str] = []
    thorough = verified = False
    for _attempt in range(1000):
        try:
            for step in request["steps"]:
                _run(step)
        except Exception as exc:  # noqa: BLE001 - any failure may be a missing module
            name = _missing_name(exc)
            if name is None or name in missing[-3:] or not stager.find(name):
                if not thorough:
                    # Maybe an artefact of keeping modules: start over from scratch.
                    thorough, verified = True, False
                    forget(everything=True)
                    continue
                raise ProbeError(
                    f"importing the function's modules fails on the server itself: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            missing.append(name)
            verified = False
            forget(everything=thorough)
            continue
        if verified:
            break
        # Everything imported; prove it from a clean slate with exactly these files.
        verified = True
        forget(everything=True)
    modules = sorted(m for m in set(sys.modules) - baseline
                     if m.partition(".")[0] not in sys.stdlib_module_names)
    files = set()
    for name in modules:
        file = getattr(sys.modules[name], "__file__", None)
        if file and os.path.abspath(file).startswith(staging + os.sep):
            files.add(os.path.relpath(os.path.abspath(file), staging).replace(os.sep, "/"))
    return {
        "files": sorted(files),
        "units": [{"path": rel, "dist": dist, "version": version}
                  for rel, (dist, version) in sorted(stager.units.items())],
        "runtime": runtime,
        "modules": modules,
    }


def verify(request: dict) -> dict:
    """Import the function's modules from a built tree, with the target's interpreter.

    The probe ran on the server's Python, which can hide code that the target's Python
    cannot run (setuptools 65's ``pkg_resources`` needs ``pkgutil.ImpImporter``, gone in
    3.12).  Run with ``-I -S`` by the target's interpreter, with only the tree and the
    runtime's own packages on the path, this names the file that failed.
    """
    runtime_dir = os.path.abspath(request["runtime_stage"])
    stager = Stager(runtime_dir, request["site_dirs"])
    for name in request["runtime_dists"]:
        stager.stage_dist(name)
    tree = os.path.abspath(request["tree"])
    sys.path[:0] = [tree, runtime_dir]
    sys.dont_write_bytecode = True
    warnings.simplefilter("ignore")
    try:
        for step in request["steps"]:
            _run(step)
    except Exception as exc:  # noqa: BLE001 - reported to the builder, which decides
        files = []
        tb = exc.__traceback__
        while tb is not None:
            path = os.path.abspath(tb.tb_frame.f_code.co_filename)
            if path.startswith(tree + os.sep):
                files.append(os.path.relpath(path, tree).replace(os.sep, "/"))
            elif path.startswith("/var/task/"):  # bytecode names its file as on Lambda
                files.append(path.removeprefix("/var/task/"))
            tb = tb.tb_next
        return {"failed": {"type": type(exc).__name__, "message": str(exc),
                           "missing": _missing_name(exc), "files": files}}
    return {"ok": True}


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as handle:
        request = json.load(handle)
    if request.get("mode") == "verify":
        print(json.dumps(verify(request)))
        return 0
    try:
        result = probe(request)
    except ProbeError as exc:
        print(json.dumps({"error": str(exc)}))
        return 0
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
