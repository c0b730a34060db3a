"""``ppc-s3sync redrive``: a ``--delivery sqs`` sync's dead letters back on its queue.

The queues are made as ``--delivery sqs`` makes them (provision/names.py's names; the
dead-letter queue named by the queue's RedrivePolicy ``deadLetterTargetArn``).  The
ordering that keeps a message from being lost is "sent, then deleted": SQS's
"DeleteMessage: Deletes the specified message from the specified queue" (botocore's
model) is final, while a message sent twice is applied idempotently by the function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pypicloud_s3sync import cli
from pypicloud_s3sync.provision.names import dead_letter_queue_name, queue_name
from pypicloud_s3sync.provision.operator_policy import redrive_statements

from ..support import aws_trace
from ..support.aws_gate import cut_at
from ..support.deploy_helpers import BUCKET, PREFIX, REDIS, REGION
from ..support.pypicloud_app import write_ini
from ..support.sqs_queues import bodies, make_queues

FUNCTION = "pypicloud_s3_sync"


@pytest.fixture
def config(aws: None, tmp_path: Path) -> str:
    path = tmp_path / "pypicloud.ini"
    write_ini(path, {"storage.bucket": BUCKET, "storage.prefix": PREFIX, **REDIS})
    return str(path)






def test_without_the_queue_it_says_how_to_make_it(config: str, capsys: Any) -> None:
    assert cli.main(["redrive", config]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err == ("ppc-s3sync redrive: error: no --delivery sqs sync for this config: "
                   "run ppc-create-s3-sync CONFIG --delivery sqs\n")


def test_moves_every_dead_letter_back_once(config: str, capsys: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url, dead = make_queues(sqs)
    sent = [json.dumps({"Records": [{"n": n}]}) for n in range(23)]
    for body in sent:
        sqs.send_message(QueueUrl=dead, MessageBody=body)

    assert cli.main(["redrive", config, "--dry-run"]) == 0
    assert capsys.readouterr().out == (
        f"23 messages in {dead_letter_queue_name(FUNCTION)} would be moved back to "
        f"{queue_name(FUNCTION)}.\n")

    assert cli.main(["redrive", config]) == 0
    captured = capsys.readouterr()
    assert captured.out == (f"Moved 23 messages from {dead_letter_queue_name(FUNCTION)} "
                            f"back to {queue_name(FUNCTION)}.\n")
    assert "moved 23 of about 23" in captured.err
    assert cli.main(["redrive", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["moved"] == 0
    assert bodies(sqs, url) == sorted(sent)
    assert bodies(sqs, dead) == []


def test_a_failed_delete_leaves_the_message_in_both_queues_never_in_neither(
    config: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a crash between the send and the delete would."""
    sqs = boto3.client("sqs", region_name=REGION)
    url, dead = make_queues(sqs)
    sqs.send_message(QueueUrl=dead, MessageBody='{"Records": []}')
    cut_at(monkeypatch, "sqs", "DeleteMessageBatch")
    assert cli.main(["redrive", config]) == cli.EXIT_AWS
    assert "ppc-s3sync redrive: error: AWS: Could not connect" in capsys.readouterr().err
    monkeypatch.undo()
    assert bodies(sqs, url) == ['{"Records": []}']
    attributes = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 1


def test_the_redrive_statements_allow_every_call_it_makes(config: str) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    _, dead = make_queues(sqs)
    for n in range(12):
        sqs.send_message(QueueUrl=dead, MessageBody=str(n))
    with aws_trace.tracing() as tracer, tracer.recording() as calls:
        assert cli.main(["redrive", config]) == 0
    requests = aws_trace.iam_requests(calls)
    policy = {"Version": "2012-10-17", "Statement": redrive_statements(
        account=aws_trace.ACCOUNT, region=REGION, function_name=FUNCTION, partition="aws")}
    assert aws_trace.denied(policy, requests) == []
    assert aws_trace.unused_grants(policy, requests) == []
