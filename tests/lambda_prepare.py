"""Bundles and runtimes for running every bundle under ``awslambdaric``, prepared once.

Building 30 zips (5 backends x 3 target Pythons x 2 server venvs), making a plain server
venv and installing each target's runtime packages is minutes of work that needs no
test state, so it starts in one background thread when the session starts (only if
those tests were collected; they run last).  The rest of the suite keeps one core busy;
this keeps the other one busy too.  Each piece is a subprocess, so the GIL is no bottleneck.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

from pypicloud_s3sync.bundle.builder import Target, find_interpreter
from pypicloud_s3sync.bundle.localrun import install_runtime_packages

REPO = Path(__file__).resolve().parent.parent
TARGETS = ("python3.11", "python3.12", "python3.13")
BACKENDS = ("sqlite", "postgresql", "mysql", "redis", "dynamo")
SOURCES = ("dev-venv", "plain-venv")
BUCKET = "packages"

#: The ``db.url`` drivers the bundles are built for (the bundle depends on the driver,
#: not on which database the URL names).
BUILD_DB = {
    "sqlite": {"pypi.db": "sql", "db.url": "sqlite:////tmp/never-opened.sqlite"},
    "postgresql": {"pypi.db": "sql", "db.url": "postgresql://user@db.example/pypi"},
    "mysql": {"pypi.db": "sql", "db.url": "mysql+pymysql://user@db.example/pypi"},
    "redis": {"pypi.db": "redis", "db.url": "redis://127.0.0.1:6379/15"},
    "dynamo": {"pypi.db": "dynamo", "db.region_name": "us-east-1"},
}


def interpreter(runtime: str) -> str | None:
    found = find_interpreter(Target.of(runtime, "x86_64"))
    return found[0] if found else None


def make_plain_venv(venv: Path) -> Path:
    """A server venv made as the install docs say, with nothing upgraded: for Python
    3.11 that is pip 23.2 and setuptools 65.5, whose pkg_resources cannot run on 3.12+."""
    marker = venv / ".installed"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        proc = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "-e", f"{REPO}[all]"],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"making {venv} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        marker.touch()
    return venv


#: Builds zips as ``ppc-build-lambda-bundle`` does (the same two calls), one JSON job
#: per stdin line, one JSON answer per stdout line.
_BATCH = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from pypicloud_s3sync.bundle.builder import build_bundle
from pypicloud_s3sync.config import load_config
for line in sys.stdin:
    job = json.loads(line)
    try:
        build_bundle(load_config(job["ini"]), runtime=job["runtime"], output=job["out"])
        answer = {"key": job["key"], "out": job["out"]}
    except Exception as exc:
        answer = {"key": job["key"], "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer), flush=True)
"""


class Prepared:
    """Zips by (backend, runtime, source venv) and runtime packages by runtime."""

    def __init__(self, root: Path, cache_dir: Path) -> None:
        self.root = root
        self.cache_dir = cache_dir
        self.futures: dict[tuple[str, ...], Future] = {}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-prep")
        self.started = False

    def start(self, wanted: set[tuple[str, str, str]] | None = None) -> None:
        """Queue what the selected tests need ((backend, runtime, source); all by
        default), in the order they run."""
        if self.started:
            return
        self.started = True
        runtimes = [r for r in TARGETS if interpreter(r)]
        if wanted is None:
            wanted = {(b, r, s) for b in BACKENDS for r in TARGETS for s in SOURCES}
        wanted = {w for w in wanted if w[1] in runtimes}
        for runtime in sorted({w[1] for w in wanted}):
            self.futures[("runtime", runtime)] = self.pool.submit(self._runtime, runtime)
        venv = self.root / f"plain-venv-py3{sys.version_info.minor}"
        for source in SOURCES:
            jobs = [(backend, runtime, source) for runtime in runtimes for backend in BACKENDS
                    if (backend, runtime, source) in wanted]
            if not jobs:
                continue
            for job in jobs:
                self.futures[job] = Future()
            if source == "dev-venv":
                self.pool.submit(self._batch, Path(sys.executable), jobs)
            else:
                self.pool.submit(self._batch_in_plain_venv, venv, jobs)

    def _batch_in_plain_venv(self, venv: Path, jobs: list[tuple[str, str, str]]) -> None:
        try:
            make_plain_venv(venv)
        except BaseException as exc:
            for job in jobs:
                self.futures[job].set_exception(exc)
            raise
        self._batch(venv / "bin" / "python", jobs)

    def _runtime(self, runtime: str) -> Path:
        python = interpreter(runtime)
        assert python is not None
        return install_runtime_packages(
            self.root / f"runtime-{runtime}", python=python,
            extra=(f"awslambdaric=={version('awslambdaric')}",))

    def _batch(self, python: Path, jobs: list[tuple[str, str, str]]) -> None:
        """Build ``jobs`` in one process of that venv's Python (one import of pypicloud
        for all of them), resolving each future as its zip is written."""
        lines = []
        for backend, runtime, source in jobs:
            out = self.root / "zips" / f"{backend}-{runtime}-{source}.zip"
            ini = self.root / "ini" / f"{backend}.ini"
            for directory in (out.parent, ini.parent):
                directory.mkdir(parents=True, exist_ok=True)
            ini.write_text("[app:main]\nuse = egg:pypicloud\npypi.storage = s3\n"
                           f"storage.bucket = {BUCKET}\n"
                           + "".join(f"{k} = {v}\n" for k, v in BUILD_DB[backend].items()))
            lines.append(json.dumps({"key": [backend, runtime, source], "ini": str(ini),
                                     "runtime": runtime, "out": str(out)}))
        log = (self.root / f"build-{jobs[0][2]}.log").open("ab")
        process = subprocess.Popen(
            [str(python), "-c", _BATCH], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, text=True,
            env={**os.environ, "PPC_S3SYNC_CACHE_DIR": str(self.cache_dir)},
        )
        log.close()
        assert process.stdin and process.stdout
        process.stdin.write("\n".join(lines) + "\n")
        process.stdin.close()
        for line in process.stdout:
            answer = json.loads(line)
            future = self.futures[tuple(answer["key"])]
            if "error" in answer:
                future.set_exception(RuntimeError(
                    f"building {answer['key']} failed: {answer['error']}"))
            else:
                future.set_result(Path(answer["out"]))
        process.wait()
        for job in jobs:
            if not self.futures[job].done():
                self.futures[job].set_exception(RuntimeError(
                    f"the build process for {job} exited ({process.returncode}); "
                    f"see {self.root / f'build-{job[2]}.log'}"))

    def bundle(self, backend: str, runtime: str, source: str) -> Path:
        self.start({(backend, runtime, source)})
        return self.futures[(backend, runtime, source)].result()

    def plain_venv_version(self, distribution: str) -> str:
        """The version of ``distribution`` installed in the plain venv."""
        venv = self.root / f"plain-venv-py3{sys.version_info.minor}"
        [info] = venv.glob(f"lib/python3.*/site-packages/{distribution}-*.dist-info")
        return info.name.removeprefix(f"{distribution}-").removesuffix(".dist-info")

    def runtime_packages(self, runtime: str) -> Path:
        return self.futures[("runtime", runtime)].result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
