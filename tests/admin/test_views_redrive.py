"""``POST /admin/s3sync/redrive`` in pypicloud's real app, with the queues made in moto.

The queues are what ``--delivery sqs`` makes: provision/names.py's names, the
dead-letter queue named by the queue's RedrivePolicy ``deadLetterTargetArn``. What an
operator checks afterwards is where the messages are, the answer's count, and that the
command line's ``ppc-s3sync redrive`` would have said the same (both call
``operation.redrive``).
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from ..support.aws_gate import Gate, cut_at, in_thread
from ..support.pypicloud_app import ADMIN, USER, Pypicloud, basic_auth, call_api
from ..support.sqs_queues import bodies, make_queues

URL = "/admin/s3sync/redrive"
BUCKET = "packages"
FUNCTION = "pypicloud_s3_sync"
REGION = "us-east-1"


def call(app: Any, method: str = "post", user: tuple[str, str] | None = ADMIN,
         body: Any = None, content_type: str | None = "application/json",
         headers: dict[str, str] | None = None, url: str = URL) -> Any:
    return call_api(app, url, method, user, body, content_type, headers)






@pytest.fixture
def server(aws: None, pypicloud_factory: Callable[..., Pypicloud], tmp_path: Path) -> Pypicloud:
    """With a prebuilt zip (``s3sync.bundle``), so that the status builds none; moto
    stores it unrun, so it only needs to be a zip."""
    bundle = tmp_path / "function.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("pypicloud_s3sync/__init__.py", "")
    return pypicloud_factory(cache="sqlite", bucket=BUCKET, **{"s3sync.bundle": str(bundle)})


@pytest.fixture
def dead_letters(aws: None) -> tuple[Any, str, str, list[str]]:
    """The queues, with 13 messages in the dead-letter queue (more than one batch)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url, dead = make_queues(sqs)
    sent = [json.dumps({"Records": [{"n": n}]}) for n in range(13)]
    for body in sent:
        sqs.send_message(QueueUrl=dead, MessageBody=body)
    return sqs, url, dead, sorted(sent)


@pytest.mark.parametrize("who, status", [(None, 401), (USER, 403)],
                         ids=["anonymous", "non-admin"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_only_admins_get_in(server: Pypicloud, dead_letters: tuple[Any, str, str, list[str]],
                            method: str, who: tuple[str, str] | None, status: int) -> None:
    sqs, url, dead, sent = dead_letters
    res = call(server.app, method, who)
    theirs = getattr(server.app, method)(
        "/admin/rebuild" if method == "post" else "/admin/pending_users", status="*",
        extra_environ=basic_auth(who) if who else {})
    assert res.status_int == theirs.status_int == status
    assert bodies(sqs, dead) == sent and bodies(sqs, url) == []  # nothing moved


def test_without_the_queues_the_answer_says_how_to_make_them(server: Pypicloud) -> None:
    """A state of the account, answered as the planner's refusals are (409), naming the
    setting rather than the command line's flag."""
    res = call(server.app)
    assert res.status_int == 409, res.text
    assert res.json["error"] == "conflict"
    assert res.json["message"] == (
        "no --delivery sqs sync for this config: set s3sync.delivery = sqs in the server's "
        "ini and provision (POST /admin/s3sync)")
    # The status says the same, so the page offers no Redrive button.
    status = call(server.app, "get", url="/admin/s3sync")
    assert status.status_int == 200, status.text
    assert status.json["redrive"] == {"available": False, "error": "conflict",
                                      "message": res.json["message"]}


def test_dry_run_counts_and_moves_nothing(
        server: Pypicloud, dead_letters: tuple[Any, str, str, list[str]]) -> None:
    sqs, url, dead, sent = dead_letters
    res = call(server.app, body={"dry_run": True})

    assert res.status_int == 200, res.text
    assert res.json["state"] == "succeeded" and res.json["dry_run"] is True
    assert res.json["report"]["found"] == 13 and res.json["report"]["moved"] == 0
    assert bodies(sqs, url) == []
    assert bodies(sqs, dead) == sent


def test_admin_moves_every_dead_letter_back_to_the_queue(
        server: Pypicloud, dead_letters: tuple[Any, str, str, list[str]]) -> None:
    from pypicloud_s3sync.provision.names import dead_letter_queue_name, queue_name

    sqs, url, dead, sent = dead_letters
    status = call(server.app, "get", url="/admin/s3sync")
    assert status.json["redrive"]["available"] is True
    assert status.json["redrive"]["found"] == 13

    res = call(server.app, body={})

    assert res.status_int == 200, res.text
    assert res.json["action"] == "redrive" and res.json["state"] == "succeeded"
    assert res.json["report"] == {"queue": queue_name(FUNCTION),
                                  "dead_letter_queue": dead_letter_queue_name(FUNCTION),
                                  "found": 13, "moved": 13, "dry_run": False}
    assert res.json["progress"] == ["moved 13 of about 13"]
    last = call(server.app, "get")
    assert last.status_int == 200 and last.json["id"] == res.json["id"]
    again = call(server.app, body={})
    assert again.json["report"]["moved"] == 0
    assert bodies(sqs, url) == sent
    assert bodies(sqs, dead) == []


def test_form_posts_foreign_origins_bad_bodies_and_other_methods_are_refused(
        server: Pypicloud, dead_letters: tuple[Any, str, str, list[str]]) -> None:
    sqs, url, dead, sent = dead_letters
    app = server.app
    res = app.post("/acct/login", {"username": ADMIN[0], "password": ADMIN[1]})
    assert res.status_int == 200 and app.cookies
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        assert call(app, "post", None, "dry_run=false", content_type=content_type
                    ).status_int == 415
    res = call(app, "post", None, {}, headers={"Origin": "https://evil.example"})
    assert (res.status_int, res.json["error"]) == (403, "cross_origin")
    res = call(app, "post", None, {"deep": True})
    assert res.status_int == 400 and "deep" in res.json["message"]
    res = call(app, "put", ADMIN, {})
    assert (res.status_int, res.headers["Allow"]) == (405, "GET, POST")
    assert bodies(sqs, dead) == sent and bodies(sqs, url) == []  # none of them ran


def test_get_before_any_redrive_says_how_to_start_one(server: Pypicloud) -> None:
    res = call(server.app, "get")
    assert res.status_int == 404
    assert "POST" in res.json["message"]


def test_one_at_a_time_and_a_slow_run_answers_202_with_a_url_to_poll(
        aws: None, pypicloud_factory: Callable[..., Pypicloud], gate: Gate,
        dead_letters: tuple[Any, str, str, list[str]]) -> None:
    sqs, url, dead, sent = dead_letters
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, **{"s3sync.admin.wait": "0.5"})
    gate.operations = {"SendMessageBatch"}

    first, answer = in_thread(lambda: call(server.app, body={}))
    assert gate.reached.wait(30), "the redrive never sent a batch"
    first.join(30)
    assert answer[0].status_int == 202, answer[0].text
    assert answer[0].headers["Location"].endswith(URL)
    for other in (URL, "/admin/s3sync", "/admin/s3sync/reconcile"):
        res = call(server.app, body={}, url=other)
        assert res.status_int == 409 and res.json["error"] == "busy", res.text
    gate.release.set()
    deadline = time.monotonic() + 60
    while (res := call(server.app, "get")).json["state"] == "running":
        assert time.monotonic() < deadline, res.text
        time.sleep(0.1)
    assert res.json["state"] == "succeeded" and res.json["report"]["moved"] == 13
    assert bodies(sqs, url) == sent


def test_an_unreachable_sqs_is_answered_as_the_other_operations_answer_it(
        server: Pypicloud, dead_letters: tuple[Any, str, str, list[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut between the send and the delete, as a network drop would: 504 as for every
    operation, and every message still in the dead-letter queue (sent ones in both)."""
    sqs, url, dead, sent = dead_letters
    cut_at(monkeypatch, "sqs", "DeleteMessageBatch")
    res = call(server.app, body={})
    monkeypatch.undo()

    assert res.status_int == 504, res.text
    assert res.json["error"] == "aws_unreachable" and res.json["state"] == "failed"
    assert "could not reach AWS" in res.json["message"]
    attributes = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert sum(int(count) for count in attributes.values()) == len(sent)
    resent = bodies(sqs, url)
    assert resent and set(resent) <= set(sent)  # the batch sent before the cut
