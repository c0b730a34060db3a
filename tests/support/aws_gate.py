"""Hold a real AWS call made by the admin endpoint's worker thread until a test lets go.

Tests of "one operation at a time" need the first operation to be inside AWS while the
second request arrives; a botocore ``before-call`` handler (the hook moto itself uses)
stops it there, with the real planner and moto underneath.  The ``gate`` fixture in
conftest.py installs one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Gate:
    """Holds a provisioning's first mutating AWS call until the test releases it.

    Installed as a botocore ``before-call`` handler (the way moto hooks in), so the real
    planner runs and really stops inside an AWS call; nothing is faked.
    """

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        #: Which calls to hold: the first mutating call of a provisioning by default.
        self.operations: set[str] | None = None
        self.held: list[str] = []

    def __call__(self, model: Any, **kwargs: Any) -> None:
        from pypicloud_s3sync.provision.deploy import is_mutating

        if not threading.current_thread().name.startswith("s3sync-"):
            return
        if model.name in self.operations if self.operations else is_mutating(model.name):
            self.held.append(model.name)
            self.reached.set()
            assert self.release.wait(60), "the test never released the gate"


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    return thread, result


class FailAt:
    """Lets a provisioning's first ``after`` mutating AWS calls through and makes the
    next one fail, the way an interrupted apply (a throttle, a network drop, Ctrl-C)
    stops: AWS holds exactly the first ``after`` changes.

    Registered on one session's ``before-call`` (as :class:`Gate` is), so the real
    planner and executor run against moto and nothing else is faked.
    """

    def __init__(self, after: int) -> None:
        self.after = after
        self.passed: list[str] = []

    def __call__(self, model: Any, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        from pypicloud_s3sync.provision.deploy import is_mutating

        if not is_mutating(model.name):
            return
        if len(self.passed) == self.after:
            raise ClientError({"Error": {"Code": "ServiceUnavailable",
                                         "Message": "interrupted by the test"}}, model.name)
        self.passed.append(model.name)


def cut_at(monkeypatch: Any, service: str, operation: str) -> None:
    """Every client made from now on loses the network at ``service.operation``, as a
    dropped connection would (botocore's own ``EndpointConnectionError``), so a test can
    show what a cut between two calls leaves behind.  ``monkeypatch.undo()`` ends it."""
    import boto3
    from botocore.exceptions import EndpointConnectionError

    def cut(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://{service}.us-east-1.amazonaws.com/")

    real_client = boto3.session.Session.client

    def client(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = real_client(self, *args, **kwargs)
        made.meta.events.register(f"before-call.{service}.{operation}", cut)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
