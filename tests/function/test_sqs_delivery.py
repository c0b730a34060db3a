"""``--delivery sqs``: no event is lost while the function is down, and a poison message
ends in the dead-letter queue alone, from where ``redrive`` hands it back.

The queue and its dead-letter queue are made in moto as ``--delivery sqs`` makes them
(provision/names.py's names, RedrivePolicy ``maxReceiveCount`` 5); S3 itself (moto's)
sends the events of 100 uploads and 40 deletes to the queue.  The function runs as
Lambda runs it, under ``awslambdaric`` against the Runtime API emulator, and
tests/support/sqs_poller.py stands in for Lambda's event source mapping (moto runs
none).  SQS's developer guide ("Using dead-letter queues in Amazon SQS"): "The
maxReceiveCount is the number of times a consumer can receive a message from a source
queue before it is moved to a dead-letter queue."

What moto cannot show: Lambda's own poller (its backoff, its concurrency, that it
deletes exactly the messages not reported), and the queue's retention period (4 days
by default) running out during a longer outage.
"""

from __future__ import annotations

import json
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync import cli

from ..support.lambda_runtime_api import RuntimeApi, start_function, stop_function
from ..support.pypicloud_app import write_ini
from ..support.sqs_poller import QueuePoller
from ..support.sqs_queues import make_queues
from ..support.sync_harness import ALL_EVENTS, SyncBucket, cached, filenames
from ..support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

BUCKET = "packages"
FUNCTION = "pypicloud_s3_sync"
#: Seconds a received message stays hidden: small, so that a retry takes a second.
VISIBILITY = 1
MAX_RECEIVES = 5
#: The outage test's: longer than one pass over its 241 messages on a loaded machine.
OUTAGE_VISIBILITY = 20
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LambdaFunction:
    """The function's container, started again on the next invocation after a failed
    init, as Lambda starts a fresh one."""

    env: dict[str, str]
    log: Path
    api: RuntimeApi | None = None
    process: Any = None
    init_errors: list[Any] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> tuple[bool, Any]:
        if self.process is None or self.process.poll() is not None:
            self.stop()
            self.api = RuntimeApi()
            # The development venv's packages, as the bundle's would be; -S as on Lambda.
            self.process = start_function(self.api, sys.executable, ROOT,
                                          Path(sysconfig.get_paths()["purelib"]),
                                          self.env, self.log)
        outcome = self.api.invoke(event, self.process, timeout=60)
        if outcome.kind == "init-error":
            self.init_errors.append(outcome.body)
            self.stop()
        assert self.api is None or self.api.problems == []
        return outcome.kind == "response", outcome.body

    def stop(self) -> None:
        if self.process is not None:
            stop_function(self.process)
            self.process = None
        if self.api is not None:
            self.api.close()
            self.api = None


@dataclass
class World:
    bucket: SyncBucket
    settings: dict[str, str]
    direct: dict[str, str]
    proxy: TcpProxy
    sqs: Any
    queue: str
    dead: str
    poller: QueuePoller
    function: LambdaFunction
    config: str
    endpoint: str

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-letter queue's messages, looked at and left there."""
        found = self.sqs.receive_message(QueueUrl=self.dead, MaxNumberOfMessages=10,
                                         VisibilityTimeout=0).get("Messages", [])
        return found

    def queued(self) -> int:
        return sum(self.poller.counts())

    def drain(self) -> None:
        self.poller.drain(timeout=120, idle=VISIBILITY + 0.5)




@pytest.fixture
def world(moto_server: str, cache_settings: Any, tmp_path: Path) -> Iterator[World]:
    direct = {**cache_settings("redis"), "storage.bucket": BUCKET,
              "storage.region_name": "us-east-1", "storage.endpoint_url": moto_server}
    host, port = direct["db.url"].removeprefix("redis://").split("/", 1)[0].rsplit(":", 1)
    proxy = TcpProxy(host, int(port)).start()
    settings = {**direct, "db.url": direct["db.url"].replace(f"{host}:{port}",
                                                             f"127.0.0.1:{proxy.port}")}
    bucket = SyncBucket.create(direct, endpoint_url=moto_server)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_server)
    url, dead = make_queues(sqs, max_receives=MAX_RECEIVES, VisibilityTimeout=str(VISIBILITY))
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]
                                   )["Attributes"]["QueueArn"]
    bucket.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ALL_EVENTS}]})
    function = LambdaFunction(env={
        "PYPICLOUD_SETTINGS": json.dumps(settings), "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}, log=tmp_path / "function.log")
    ini = tmp_path / "pypicloud.ini"
    write_ini(ini, {"storage.bucket": BUCKET, "pypi.db": "redis", "db.url": direct["db.url"]})
    made = World(bucket, settings, direct, proxy, sqs, url, dead,
                 QueuePoller(sqs, url, function.invoke), function, str(ini), moto_server)
    try:
        yield made
    finally:
        function.stop()
        proxy.stop()


def upload_and_delete(world: World, count: int = 100, deleted: int = 40) -> set[str]:
    """S3 events for ``count`` uploads and ``deleted`` deletes; the keys left."""
    keys = [world.bucket.put_package(f"pkg{n:03d}", "1.0", expect_event=False)[0]
            for n in range(count)]
    for key in keys[:deleted]:
        world.bucket.s3.delete_object(Bucket=BUCKET, Key=key)
    return set(keys[deleted:])


def test_a_cache_outage_loses_no_event(world: World) -> None:
    """While the cache is down every batch fails and goes back whole; once it is back,
    the queue drains into a cache that equals the bucket.

    The visibility timeout is longer than one pass over the queue here, as AWS advises
    for a function's queue ("set the source queue's visibility timeout to at least six
    times the timeout that you configure on your function", Lambda developer guide,
    with-sqs), so that the outage costs each message one receive of its five.
    """
    world.sqs.set_queue_attributes(QueueUrl=world.queue,
                                   Attributes={"VisibilityTimeout": str(OUTAGE_VISIBILITY)})
    world.proxy.stop()  # the cache server is unreachable from the function
    left = upload_and_delete(world)
    total = world.queued()
    assert total >= 141  # the test event, 100 uploads, 40 deletes

    while world.poller.poll_once() is not None:
        pass
    assert cached(world.direct) == {}
    assert world.queued() == total - 1  # only the s3:TestEvent was acknowledged
    assert world.dead_letters() == []

    world.proxy.start()  # fixed
    world.poller.drain(timeout=OUTAGE_VISIBILITY * 4, idle=OUTAGE_VISIBILITY + 1)
    assert set(cached(world.direct)) == filenames(left)
    assert world.queued() == 0
    assert world.dead_letters() == []
    assert world.function.init_errors == []


def test_a_poison_message_alone_reaches_the_dead_letter_queue_and_redrive_returns_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    left = upload_and_delete(world, count=30, deleted=10)
    poison = world.sqs.send_message(QueueUrl=world.queue, MessageBody="{cut off")["MessageId"]
    world.drain()
    assert set(cached(world.direct)) == filenames(left)
    assert world.queued() == 0
    [dead] = world.dead_letters()
    assert dead["MessageId"] == poison and dead["Body"] == "{cut off"
    # Received maxReceiveCount times, then moved by SQS.
    assert sum(poison in run.failed for run in world.poller.history) == MAX_RECEIVES
    log = world.function.log.read_text()
    assert f"names no key (message {poison})" in log

    # redrive: the one message moves back, and an unreadable body stays unreadable.
    assert cli.main(["redrive", world.config, "--endpoint-url", world.endpoint]) == 0
    assert capsys.readouterr().out.startswith("Moved 1 message from ")
    assert world.dead_letters() == []
    assert world.queued() == 1
    world.drain()
    [again] = world.dead_letters()
    assert again["Body"] == "{cut off"
    assert cli.main(["redrive", world.config, "--endpoint-url", world.endpoint,
                     "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("1 message in ")
