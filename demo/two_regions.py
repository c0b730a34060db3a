"""Two regions, one package, no AWS account: the whole sync, end to end, on this machine.

What stands in for what:

* a moto server plays AWS for both regions (S3, IAM, Lambda, SQS), with the corrections
  the tests make where moto answers otherwise than S3 for versioned buckets
  (demo/moto_server.py);
* two real pypicloud servers (pserve + waitress) play the regional servers, each with a
  sqlite cache and its own bucket on the moto server;
* one ``ppc-s3sync create a.ini b.ini --allow-versioning`` provisions both regions
  exactly as it would on AWS: the sync in each, versioning, a replication role per
  bucket and each bucket's replication rules to the other, delete markers included;
* moto stores replication configurations but does not replicate, so a replicator
  (demo/replicator.py) copies versions and delete markers as S3 would, reading each
  bucket's replication configuration: the rules create wrote are what move the
  objects.  It sits behind the same interface as real replication (the buckets'
  configuration in, objects and delete markers in the other bucket out), so neither
  the sync nor verify knows it is not S3;
* moto stores Lambda functions but cannot run them (no Docker here): each bucket's
  events go to its region's queue, as create's ``--delivery sqs`` set up, and a poller
  standing in for Lambda's hands each batch to the deployed bundle in an isolated
  interpreter (demo/background.py).  The replicator and the pollers run in background
  threads, since ``ppc-s3sync verify`` waits while they work, as it would on AWS.

After the package's round trip, ``ppc-s3sync verify a.ini b.ini`` sends its canary
through every link, and the demo checks that no canary is left in a bucket or a cache.

Run it with ``make demo`` (or ``python demo/two_regions.py``).  It prints a timeline and
stops everything it started before it exits, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

# pyramid (under pypicloud) imports pkg_resources, whose deprecation notice is about
# pyramid's code, not anything the demo or its reader can act on.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

HERE = Path(__file__).resolve().parent
# The demo's stand-ins for what moto does not do live beside it (demo/) and in the tests'
# support (tests/support/): both are imported from the checkout's root.
sys.path.insert(0, str(HERE.parent))

from demo.background import Background, RegionPoller  # noqa: E402

BIN = Path(sys.executable).parent
FUNCTION = "pypicloud-s3sync-demo"
PACKAGE = "demo-greeting"
VERSION = "0.1.0"
ADMIN = ("admin", "demo-pass")


class Timeline:
    """Prints each step with the seconds since the start, so slow steps show."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Region:
    """One region's pypicloud: its ini, its bucket, its server process."""

    name: str
    bucket: str
    workdir: Path
    endpoint: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def ini(self) -> Path:
        return self.workdir / f"{self.name}.ini"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cache_db(self) -> Path:
        return self.workdir / f"{self.name}-cache.sqlite"

    def write_ini(self) -> None:
        from pypicloud.access import get_pwd_context

        password_hash = get_pwd_context(rounds=1000).hash(ADMIN[1])
        self.ini.write_text(
            textwrap.dedent(
                f"""\
                [app:main]
                use = egg:pypicloud
                pyramid.includes = pypicloud_s3sync
                pypi.default_read = everyone
                pypi.default_write = authenticated
                pypi.fallback = none
                auth.admins = {ADMIN[0]}
                user.{ADMIN[0]} = {password_hash}
                session.encrypt_key = {os.urandom(16).hex()}
                session.validate_key = {os.urandom(16).hex()}
                pypi.storage = s3
                storage.bucket = {self.bucket}
                storage.region_name = {self.name}
                storage.endpoint_url = {self.endpoint}
                pypi.db = sql
                db.url = sqlite:///{self.cache_db}
                s3sync.function_name = {FUNCTION}

                [server:main]
                use = egg:waitress#main
                host = 127.0.0.1
                port = {self.port}

                [loggers]
                keys = root

                [handlers]
                keys = stderr

                [formatters]
                keys = plain

                [logger_root]
                level = WARNING
                handlers = stderr

                [handler_stderr]
                class = StreamHandler
                args = (sys.stderr,)
                formatter = plain

                [formatter_plain]
                format = %%(levelname)s %%(name)s: %%(message)s
                """
            )
        )

    def start(self, env: dict[str, str]) -> None:
        log = open(self.workdir / f"{self.name}-server.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(BIN / "pserve"), str(self.ini)], env=env, stdout=log, stderr=log
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                log = (self.workdir / f"{self.name}-server.log").read_text()
                raise RuntimeError(f"pypicloud {self.name} exited:\n{log[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError(f"pypicloud {self.name} did not answer within {timeout}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """moto's server in a process of its own (demo/moto_server.py), its request log kept
    out of the way."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(workdir / "moto.log", "wb") as log:
        process = subprocess.Popen([sys.executable, str(HERE / "moto_server.py"),
                                    "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start; see moto.log") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


def build_wheel(workdir: Path) -> Path:
    """A real (tiny) project, built into a wheel with pip like any other."""
    project = workdir / "project"
    (project / "demo_greeting").mkdir(parents=True)
    (project / "demo_greeting" / "__init__.py").write_text('def hello():\n    return "hi"\n')
    (project / "setup.py").write_text(
        "from setuptools import setup\n"
        f"setup(name={PACKAGE!r}, version={VERSION!r}, packages=['demo_greeting'],\n"
        "      description='Says hi from another region')\n"
    )
    dist = workdir / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--isolated", "-w", str(dist), str(project)],
        check=True,
    )
    return next(dist.glob("*.whl"))


def aws_env(endpoint: str) -> dict[str, str]:
    """Fake credentials and no config files: nothing here can reach a real account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PPC_"))}
    env.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


def upload(region: Region, wheel: Path) -> None:
    import requests

    with wheel.open("rb") as data:
        reply = requests.post(
            f"{region.url}/api/package/{PACKAGE}/{wheel.name}",
            files={"content": (wheel.name, data)}, auth=ADMIN, timeout=60,
        )
    reply.raise_for_status()


def simple_listing(region: Region, package: str = PACKAGE) -> list[str]:
    """The files the server's ``/simple/`` page lists for ``package`` (its cache's view)."""
    import re

    try:
        with urllib.request.urlopen(f"{region.url}/simple/{package}/", timeout=10) as page:
            return re.findall(r">([^<]+)</a>", page.read().decode())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def s3sync(workdir: Path, env: dict[str, str], command: str, *args: str) -> str:
    """Run ``ppc-s3sync COMMAND ARGS`` as an operator would; its output, also kept in
    ``COMMAND.log``; a failure raises with the output's end."""
    done = subprocess.run([str(BIN / "ppc-s3sync"), command, *args], env=env,
                          capture_output=True, text=True)
    (workdir / f"{command}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"ppc-s3sync {command} exited {done.returncode}:\n"
                           f"{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def plan_summary(output: str) -> str:
    """Of create's printed plans: each ini's header and change count, the steps that
    make replication, and the closing line (the whole output is in create.log)."""
    keep = ("== ", "Plan to create", "Applied ")
    steps = ("versioning of bucket", "replication-", "replication configuration")
    lines = [line for line in output.splitlines()
             if line.startswith(keep) or (line.startswith("  ") and any(
                 s in line for s in steps))]
    return "\n".join(f"           {line}" for line in lines)


def replication_rules(endpoint: str, region: Region) -> str:
    """The bucket's replication rules as S3 stores them: what the replicator obeys."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region.name)
    rules = s3.get_bucket_replication(Bucket=region.bucket)["ReplicationConfiguration"]
    return ", ".join(
        f"{region.bucket} rule {rule['ID']} -> {rule['Destination']['Bucket'].split(':')[-1]}"
        f" (delete markers {rule['DeleteMarkerReplication']['Status']})"
        for rule in rules["Rules"])


def wait_for(background: Background, what: str, ready: Any, timeout: float = 60) -> float:
    """Seconds until ``ready()`` holds, while the background does its work."""
    start = time.monotonic()
    while not ready():
        background.check()
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - start


def since(actions: list[str], mark: int) -> str:
    return ", ".join(actions[mark:]) or "nothing"


def copied(background: Background, mark: int) -> str:
    return "; ".join(f"{kind} {key} {source} -> {target}" for source, target, key, kind
                     in background.replicator.copied[mark:]) or "nothing"


def canaries_left(endpoint: str, regions: list[Region]) -> list[str]:
    """Every canary version or delete marker in the buckets, every canary a server lists."""
    from pypicloud_s3sync.verify.canary import NAME

    found = []
    for region in regions:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region.name)
        versions = s3.list_object_versions(Bucket=region.bucket)
        found += [f"{region.bucket}/{v['Key']}"
                  for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
                  if NAME in v["Key"]]
        found += [f"{region.name}'s cache: {f}" for f in simple_listing(region, NAME)]
    return found


def deployed_functions(regions: list[Region], endpoint: str, env: dict[str, str],
                       workdir: Path, runtime: str) -> dict[str, Any]:
    """Each region's deployed bundle, checked to be the code create deployed, ready to
    run as Lambda would run it (moto stores functions but runs none without Docker)."""
    from pypicloud_s3sync.bundle.builder import build_bundle
    from pypicloud_s3sync.bundle.localrun import LocalFunction, install_runtime_packages, unpack
    from pypicloud_s3sync.config import load_config

    runtime_dir = install_runtime_packages(workdir / "lambda-runtime")
    functions = {}
    for region in regions:
        config = load_config(str(region.ini))
        bundle = build_bundle(config, runtime=runtime, progress=None)
        lam = boto3.client("lambda", endpoint_url=endpoint, region_name=region.name)
        deployed = lam.get_function_configuration(FunctionName=FUNCTION)
        if deployed["CodeSha256"] != bundle.sha256:
            raise RuntimeError("the local bundle is not the code that was deployed")
        code = unpack(bundle.path, workdir / f"task-{region.name}")
        functions[region.name] = LocalFunction(
            code, runtime_dir,
            {**env, **deployed["Environment"]["Variables"],
             "AWS_REGION": region.name, "AWS_DEFAULT_REGION": region.name},
        )
    return functions


def run(workdir: Path, say: Timeline) -> None:
    with moto_server(workdir) as endpoint:
        env = aws_env(endpoint)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        say(f"moto server on {endpoint}, standing in for AWS in us-east-1 and eu-west-1 "
            "(with the tests' corrections for versioned buckets, demo/moto_server.py)")
        regions = [Region("us-east-1", "packages-use1", workdir, endpoint),
                   Region("eu-west-1", "packages-euw1", workdir, endpoint)]
        a, b = regions
        functions: dict[str, Any] = {}
        background = None
        try:
            for region in regions:
                s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region.name)
                extra = ({} if region.name == "us-east-1" else
                         {"CreateBucketConfiguration": {"LocationConstraint": region.name}})
                s3.create_bucket(Bucket=region.bucket, **extra)
                region.write_ini()
                region.start(env)
            for region in regions:
                region.wait_ready()
            say(f"pypicloud A on {a.url} (bucket {a.bucket}, sqlite cache); "
                f"pypicloud B on {b.url} (bucket {b.bucket}, sqlite cache)")

            runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
            inis = [str(region.ini) for region in regions]
            output = s3sync(workdir, env, "create", *inis, "--allow-versioning",
                            "--delivery", "sqs", "--endpoint-url", endpoint,
                            "--runtime", runtime)
            say(f"ppc-s3sync create {a.ini.name} {b.ini.name} --allow-versioning "
                f"--delivery sqs: one plan for both regions (all of it in create.log)\n"
                f"{plan_summary(output)}")

            functions = deployed_functions(regions, endpoint, env, workdir, runtime)
            background = Background(
                {r.bucket: boto3.client("s3", endpoint_url=endpoint, region_name=r.name)
                 for r in regions},
                [RegionPoller(r.name, FUNCTION, functions[r.name], endpoint)
                 for r in regions]).start()
            pollers = {poller.region: poller for poller in background.pollers}
            say("replication: moto does not replicate, so a replicator in the background "
                "copies versions and delete markers as S3 would, by the replication "
                f"configuration create wrote: {replication_rules(endpoint, a)}; "
                f"{replication_rules(endpoint, b)}")
            say("events: each bucket -> its region's SQS queue (create's --delivery sqs) "
                "-> a poller standing in for Lambda's -> the deployed bundle in an isolated "
                "interpreter (python -I -S), as Lambda would run it")

            wheel = build_wheel(workdir)
            say(f"built {wheel.name}")
            actions, replicas = len(pollers[b.name].actions), len(background.replicator.copied)
            upload(a, wheel)
            say(f"uploaded to A through its API; A lists {simple_listing(a)}")
            took = wait_for(background, "B listing the upload", lambda: (
                simple_listing(b) == [wheel.name]
                and any(x.startswith("saved") for x in pollers[b.name].actions[actions:])))
            say(f"B lists {simple_listing(b)} {took:.1f} s later. Replicator: "
                f"{copied(background, replicas)}; B's function: "
                f"{since(pollers[b.name].actions, actions)}")
            got = pip_download(b, workdir)
            say(f"pip download --index-url {b.url}/simple/ {PACKAGE} -> {got}")

            actions, replicas = len(pollers[b.name].actions), len(background.replicator.copied)
            request = urllib.request.Request(
                f"{a.url}/api/package/{PACKAGE}/{wheel.name}", method="DELETE",
                headers={"Authorization": basic_auth_header()})
            urllib.request.urlopen(request, timeout=30).close()
            say(f"deleted in A through its API; A lists {simple_listing(a)}")
            took = wait_for(background, "B dropping the delete", lambda: (
                simple_listing(b) == []
                and any(x.startswith("cleared") for x in pollers[b.name].actions[actions:])))
            say(f"B lists {simple_listing(b)} {took:.1f} s later. Replicator: "
                f"{copied(background, replicas)}; B's function: "
                f"{since(pollers[b.name].actions, actions)}")

            try:
                report = s3sync(workdir, env, "verify", *inis, "--endpoint-url", endpoint,
                                "--timeout", "120")
            finally:  # a stand-in that failed explains a verify that ran out of time
                background.check()
            say(f"ppc-s3sync verify {a.ini.name} {b.ini.name}: a canary through every link "
                "(progress in verify.log)\n"
                + "\n".join(f"           {line}" for line in report.splitlines()))
            wait_for(background, "the queues emptied after verify",
                     lambda: all(poller.idle() for poller in background.pollers))
            left = canaries_left(endpoint, regions)
            if left:
                raise RuntimeError(f"verify left canaries behind: {left}")
            say("no canary left: no version or delete marker of it in either bucket, "
                "neither server lists it")
        finally:
            if background is not None:
                background.stop()
            for function in functions.values():
                function.close()
            for region in regions:
                region.stop()


def basic_auth_header() -> str:
    import base64

    return "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


def pip_download(region: Region, workdir: Path) -> str:
    dest = workdir / "downloads"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--isolated", "--quiet", "--no-deps",
         "--no-cache-dir", "--disable-pip-version-check", "--index-url",
         f"{region.url}/simple/", "-d", str(dest), PACKAGE],
        check=True, env={k: v for k, v in os.environ.items() if not k.startswith("PIP_")},
    )
    return ", ".join(sorted(p.name for p in dest.iterdir()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR",
                        help="work in DIR and keep it (ini files, logs, caches)")
    args = parser.parse_args(argv)
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="s3sync-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    say = Timeline()
    try:
        run(workdir, say)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    say("done: package uploaded in A was installable from B, its delete reached B, "
        "verify passed both ways; everything started has been stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
