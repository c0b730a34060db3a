"""Two regions, one package, no AWS account: the whole sync, end to end, on this machine.

What stands in for what:

* a moto server plays AWS for both regions (S3, IAM, Lambda, SQS);
* two real pypicloud servers (pserve + waitress) play the regional servers, each with a
  sqlite cache and its own bucket on the moto server;
* ``ppc-create-s3-sync`` provisions each region exactly as it would on AWS;
* moto stores Lambda functions but cannot run them (no Docker here) and does not
  replicate buckets, so the demo copies the object to the second bucket itself, and the
  bucket's events go to an SQS queue from which a local runner hands them to the
  deployed bundle in an isolated interpreter, as Lambda would.

Run it with ``make demo`` (or ``python demo/two_regions.py``).  It prints a timeline and
stops everything it started before it exits, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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

BIN = Path(sys.executable).parent
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
                s3sync.function_name = pypicloud-s3sync-demo

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
    """moto's own server in a process of its own, its request log kept out of the way."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(workdir / "moto.log", "wb") as log:
        process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
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


def route_events_to_queue(endpoint: str, region: Region) -> str:
    """S3 -> SQS next to the function's own entry, since moto cannot invoke Lambda.

    The notification is merged like ppc-create-s3-sync merges its own: read, add, write.
    """
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region.name)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region.name)
    queue_url = sqs.create_queue(QueueName=f"{region.bucket}-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    config = s3.get_bucket_notification_configuration(Bucket=region.bucket)
    config.pop("ResponseMetadata", None)
    config.setdefault("QueueConfigurations", []).append({
        "Id": "demo-local-lambda-runner", "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
    })
    s3.put_bucket_notification_configuration(
        Bucket=region.bucket, NotificationConfiguration=config)
    return queue_url


def drain(endpoint: str, region: Region, queue_url: str, function: Any) -> list[str]:
    """Hand every queued S3 event to the function as SQS would, one batch at a time."""
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region.name)
    actions = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return actions
        event = {"Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
             "body": m["Body"], "eventSource": "aws:sqs",
             "eventSourceARN": f"arn:aws:sqs:{region.name}:123456789012:events"}
            for m in messages]}
        answer = function.invoke(event)
        if "error" in answer:
            raise RuntimeError(f"the function failed in {region.name}: {answer['error']}")
        failed = {f["itemIdentifier"] for f in
                  (answer["result"] or {}).get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        for line in function.logs:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if "action" in entry:
                    detail = entry.get("key") or entry.get("reason") or ""
                    actions.append(f"{entry['action']} {detail}".strip())
        function.logs.clear()


def upload(region: Region, wheel: Path) -> None:
    import requests

    with wheel.open("rb") as data:
        reply = requests.post(
            f"{region.url}/api/package/{PACKAGE}/{wheel.name}",
            files={"content": (wheel.name, data)}, auth=ADMIN, timeout=60,
        )
    reply.raise_for_status()


def simple_listing(region: Region) -> list[str]:
    import re

    try:
        with urllib.request.urlopen(f"{region.url}/simple/{PACKAGE}/", timeout=10) as page:
            return re.findall(r">([^<]+)</a>", page.read().decode())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def run(workdir: Path, say: Timeline) -> None:
    from pypicloud_s3sync.bundle.builder import build_bundle
    from pypicloud_s3sync.bundle.localrun import (
        LocalFunction,
        install_runtime_packages,
        unpack,
    )
    from pypicloud_s3sync.config import load_config

    with moto_server(workdir) as endpoint:
        env = aws_env(endpoint)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        say(f"moto server on {endpoint}, standing in for AWS in us-east-1 and eu-west-1")
        regions = [Region("us-east-1", "packages-use1", workdir, endpoint),
                   Region("eu-west-1", "packages-euw1", workdir, endpoint)]
        a, b = regions
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
            for region in regions:
                subprocess.run(
                    [str(BIN / "ppc-create-s3-sync"), str(region.ini), "--endpoint-url",
                     endpoint, "--runtime", runtime],
                    env=env, check=True,
                )
                say(f"ppc-create-s3-sync {region.ini.name}: role, function, permission and "
                    f"notification created in {region.name}")

            queues = {r.name: route_events_to_queue(endpoint, r) for r in regions}
            runtime_dir = install_runtime_packages(workdir / "lambda-runtime")
            functions = {}
            for region in regions:
                config = load_config(str(region.ini))
                bundle = build_bundle(config, runtime=runtime, progress=None)
                lam = boto3.client("lambda", endpoint_url=endpoint, region_name=region.name)
                deployed = lam.get_function_configuration(
                    FunctionName=config.option("function_name"))
                if deployed["CodeSha256"] != bundle.sha256:
                    raise RuntimeError("the local bundle is not the code that was deployed")
                code = unpack(bundle.path, workdir / f"task-{region.name}")
                functions[region.name] = LocalFunction(
                    code, runtime_dir,
                    {**env, **deployed["Environment"]["Variables"],
                     "AWS_REGION": region.name, "AWS_DEFAULT_REGION": region.name},
                )
            say("events: S3 -> SQS -> the deployed bundle in an isolated interpreter "
                "(python -I -S), as Lambda would run it")

            wheel = build_wheel(workdir)
            say(f"built {wheel.name}")
            upload(a, wheel)
            say(f"uploaded to A; A lists {simple_listing(a)}, B lists {simple_listing(b)}")
            drain(endpoint, a, queues[a.name], functions[a.name])

            replicate(endpoint, a, b)
            say("replicated the object to B's bucket with its metadata")
            actions = drain(endpoint, b, queues[b.name], functions[b.name])
            say(f"B's function: {', '.join(actions)}; B lists {simple_listing(b)}")
            got = pip_download(b, workdir)
            say(f"pip download --index-url {b.url}/simple/ {PACKAGE} -> {got}")

            reply = urllib.request.Request(
                f"{a.url}/api/package/{PACKAGE}/{wheel.name}", method="DELETE",
                headers={"Authorization": basic_auth_header()})
            urllib.request.urlopen(reply, timeout=30).close()
            drain(endpoint, a, queues[a.name], functions[a.name])
            replicate(endpoint, a, b)
            actions = drain(endpoint, b, queues[b.name], functions[b.name])
            say(f"deleted in A and replicated; B's function: {', '.join(actions)}; "
                f"B lists {simple_listing(b)}")
            if simple_listing(b):
                raise RuntimeError("the delete did not reach B's cache")
        finally:
            for function in locals().get("functions", {}).values():
                function.close()
            for region in regions:
                region.stop()


def basic_auth_header() -> str:
    import base64

    return "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


def replicate(endpoint: str, source: Region, dest: Region) -> None:
    """What S3 replication does for us on AWS: copy new objects, delete removed ones.

    A plain copy rather than ``replicator.py`` (the stand-in that honours the buckets'
    replication rules, which the tests use): that one needs versioned buckets, and
    moto's server sends no event when a delete marker is created there (the tests
    patch moto in-process for it, ``tests/support/moto_gaps.py``), so B's function
    would never hear of the delete.
    """
    src = boto3.client("s3", endpoint_url=endpoint, region_name=source.name)
    dst = boto3.client("s3", endpoint_url=endpoint, region_name=dest.name)
    have = {o["Key"] for o in src.list_objects_v2(Bucket=source.bucket).get("Contents", [])}
    there = {o["Key"] for o in dst.list_objects_v2(Bucket=dest.bucket).get("Contents", [])}
    for key in sorted(have - there):
        dst.copy_object(Bucket=dest.bucket, Key=key,
                        CopySource={"Bucket": source.bucket, "Key": key},
                        MetadataDirective="COPY")
    for key in sorted(there - have):
        dst.delete_object(Bucket=dest.bucket, Key=key)


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
    say("done: package uploaded in A was installable from B, and its delete reached B; "
        "everything started has been stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
