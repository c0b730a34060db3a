"""Bundles and runtimes for running every bundle under ``awslambdaric``, prepared once.

Building 30 zips (5 backends x 3 target Pythons x 2 server venvs), making a plain server
venv and installing each target's runtime packages is minutes of work that needs no
test state, so it starts in one background thread when the session starts (only if
those tests were collected; they run last).  The rest of the suite keeps one core busy;
this keeps the other one busy too.  Each piece is a subprocess, so the GIL is no bottleneck.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

from pypicloud_s3sync.bundle import Target, find_interpreter
from pypicloud_s3sync.localrun import install_runtime_packages

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


class Prepared:
    """Zips by (backend, runtime, source venv) and runtime packages by runtime."""

    def __init__(self, root: Path, cache_dir: Path) -> None:
        self.root = root
        self.cache_dir = cache_dir
        self.futures: dict[tuple[str, ...], Future] = {}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-prep")
        self.started = False

    def start(self) -> None:
        """Queue everything, in the order the tests need it."""
        if self.started:
            return
        self.started = True
        runtimes = [r for r in TARGETS if interpreter(r)]
        for runtime in runtimes:
            self.futures[("runtime", runtime)] = self.pool.submit(self._runtime, runtime)
        dev_bin = Path(sys.executable).parent
        for runtime in runtimes:
            for backend in BACKENDS:
                self.futures[(backend, runtime, "dev-venv")] = self.pool.submit(
                    self._build, dev_bin, backend, runtime, "dev-venv")
        venv = self.root / f"plain-venv-py3{sys.version_info.minor}"
        made = self.pool.submit(make_plain_venv, venv)
        for runtime in runtimes:
            for backend in BACKENDS:
                self.futures[(backend, runtime, "plain-venv")] = self.pool.submit(
                    self._after, made, self._build, venv / "bin", backend, runtime,
                    "plain-venv")

    @staticmethod
    def _after(first: Future, then, *args):  # noqa: ANN001, ANN205 - a tiny sequencer
        first.result()
        return then(*args)

    def _runtime(self, runtime: str) -> Path:
        python = interpreter(runtime)
        assert python is not None
        return install_runtime_packages(
            self.root / f"runtime-{runtime}", python=python,
            extra=(f"awslambdaric=={version('awslambdaric')}",))

    def _build(self, bin_dir: Path, backend: str, runtime: str, source: str) -> Path:
        out = self.root / "zips" / f"{backend}-{runtime}-{source}.zip"
        ini = self.root / "ini" / f"{backend}.ini"
        for directory in (out.parent, ini.parent):
            directory.mkdir(parents=True, exist_ok=True)
        ini.write_text("[app:main]\nuse = egg:pypicloud\npypi.storage = s3\n"
                       f"storage.bucket = {BUCKET}\n"
                       + "".join(f"{k} = {v}\n" for k, v in BUILD_DB[backend].items()))
        proc = subprocess.run(
            [str(bin_dir / "ppc-build-lambda-bundle"), str(ini), "--runtime", runtime,
             "-o", str(out)],
            capture_output=True, text=True, check=False,
            env={**os.environ, "PPC_S3SYNC_CACHE_DIR": str(self.cache_dir)},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"ppc-build-lambda-bundle --runtime {runtime} from the "
                               f"{source}: {proc.stderr[-3000:]}")
        return out

    def bundle(self, backend: str, runtime: str, source: str) -> Path:
        self.start()
        return self.futures[(backend, runtime, source)].result()

    def runtime_packages(self, runtime: str) -> Path:
        self.start()
        return self.futures[("runtime", runtime)].result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
