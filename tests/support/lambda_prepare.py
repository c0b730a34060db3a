"""Bundles and runtimes for running every bundle under ``awslambdaric``, prepared once.

Building 30 zips (5 backends x 3 target Pythons x 2 server venvs), making a plain server
venv and installing each target's runtime packages is minutes of work that needs no
test state, so it starts in background threads when the session starts (only if
those tests were collected; they run last).  Each piece is a subprocess, so the GIL is
no bottleneck.

Under pytest-xdist one worker of the run prepares (the first to claim it) and publishes
each result as a file in the shared directory; the other workers wait for those files
rather than building the same 30 zips again.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

from pypicloud_s3sync.bundle.localrun import install_runtime_packages
from pypicloud_s3sync.bundle.target import Target, find_interpreter

REPO = Path(__file__).resolve().parents[2]
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
    3.11 that is pip 23.2 and setuptools 65.5, whose pkg_resources cannot run on 3.12+.
    pip resolves the package's own ranges, as it does for operators, and pypicloud's
    ``server`` extra brings the WSGI server ``pserve`` needs.  (``--no-compile``: the
    builder compiles bytecode for the target itself.)  Several workers may ask at once:
    the first makes it, the others wait on the lock."""
    marker = venv / ".installed"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return venv
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        proc = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "--no-compile", "-e", f"{REPO}[all]",
             "pypicloud[server]"],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"making {venv} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        marker.touch()
    return venv


def plain_venv_path(root: Path) -> Path:
    return root / f"plain-venv-py3{sys.version_info.minor}"


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

    #: How long a worker waits for another worker's preparation before giving up.
    WAIT = 30 * 60

    def __init__(self, root: Path, cache_dir: Path, run_id: str) -> None:
        self.root = root
        self.cache_dir = cache_dir
        self.results = root / "results" / run_id
        self.results.mkdir(parents=True, exist_ok=True)
        self.futures: dict[tuple[str, ...], Future] = {}
        # Two lanes: the plain venv's pip install and builds need not wait for the
        # development venv's builds, and the run ends when the last zip is ready.
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lambda-prep")
        self.started = False
        self.owner = False

    def _claim(self) -> bool:
        """True for the one worker of the run that prepares."""
        try:
            os.close(os.open(self.results / "owner", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def start(self, wanted: set[tuple[str, str, str]] | None = None) -> None:
        """Queue what the selected tests need ((backend, runtime, source); all by
        default), in the order they run; nothing if another worker already does."""
        if self.started:
            return
        self.started = True
        self.owner = self._claim()
        if not self.owner:
            return
        runtimes = [r for r in TARGETS if interpreter(r)]
        if wanted is None:
            wanted = {(b, r, s) for b in BACKENDS for r in TARGETS for s in SOURCES}
        wanted = {w for w in wanted if w[1] in runtimes}
        for runtime in sorted({w[1] for w in wanted}):
            self.futures[("runtime", runtime)] = self.pool.submit(self._runtime, runtime)
            self._publish_when_done(("runtime", runtime))
        venv = plain_venv_path(self.root)
        for source in SOURCES:
            jobs = [(backend, runtime, source) for runtime in runtimes for backend in BACKENDS
                    if (backend, runtime, source) in wanted]
            if not jobs:
                continue
            for job in jobs:
                self.futures[job] = Future()
                self._publish_when_done(job)
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
            out = self.results / "zips" / f"{backend}-{runtime}-{source}.zip"
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

    def _result_file(self, key: tuple[str, ...]) -> Path:
        return self.results / ("-".join(key) + ".json")

    def _publish_when_done(self, key: tuple[str, ...]) -> None:
        def publish(future: Future) -> None:
            if future.cancelled():
                return
            exc = future.exception()
            answer = ({"error": f"{type(exc).__name__}: {exc}"} if exc is not None
                      else {"path": str(future.result())})
            scratch = self._result_file(key).with_suffix(".tmp")
            scratch.write_text(json.dumps(answer))
            scratch.replace(self._result_file(key))

        self.futures[key].add_done_callback(publish)

    def _result(self, key: tuple[str, ...]) -> Path:
        """Ours if this worker prepares it, else the preparing worker's, once published."""
        if key in self.futures:
            return self.futures[key].result()
        if not self.owner:
            deadline = time.monotonic() + self.WAIT
            while not self._result_file(key).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no other worker prepared {key} within {self.WAIT}s")
                time.sleep(0.2)
            answer = json.loads(self._result_file(key).read_text())
            if "error" in answer:
                raise RuntimeError(f"preparing {key} failed: {answer['error']}")
            return Path(answer["path"])
        raise KeyError(f"{key} was not prepared: it was not among the collected tests")

    def bundle(self, backend: str, runtime: str, source: str) -> Path:
        self.start({(backend, runtime, source)})
        return self._result((backend, runtime, source))

    def plain_venv_version(self, distribution: str) -> str:
        """The version of ``distribution`` installed in the plain venv."""
        venv = plain_venv_path(self.root)
        [info] = venv.glob(f"lib/python3.*/site-packages/{distribution}-*.dist-info")
        return info.name.removeprefix(f"{distribution}-").removesuffix(".dist-info")

    def runtime_packages(self, runtime: str) -> Path:
        return self._result(("runtime", runtime))

    def close(self) -> None:
        # Other workers may still be waiting for what this one prepares.
        waited_for = self.owner and bool(os.environ.get("PYTEST_XDIST_WORKER"))
        self.pool.shutdown(wait=True, cancel_futures=not waited_for)
