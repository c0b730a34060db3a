"""The admin API's background work: operations that outlive their request, one at a time.

A request may hold a worker only ``s3sync.admin.wait`` seconds, but a provisioning or a
reconcile can take minutes, so the work runs in a thread and its progress and outcome
are kept here for the GET that follows. What the work is and how a failure is worded
come from the views as arguments, so this module imports neither the views nor the
planner.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .security import Busy, provisioning_lock

if TYPE_CHECKING:
    from ..config import PypicloudConfig

LOG = logging.getLogger(__name__)

#: A reconcile's action name, which is also its sub-path: ``/admin/s3sync/reconcile``.
RECONCILE = "reconcile"
#: A redrive's (``--delivery sqs``'s dead letters back to the queue), ``/admin/s3sync/redrive``.
REDRIVE = "redrive"
#: A verify's (a canary through this region and those ``s3sync.verify_with`` names),
#: ``/admin/s3sync/verify``.
VERIFY = "verify"
#: The operations that report rather than plan, each with its own URL to poll.
REPORTING = (RECONCILE, REDRIVE, VERIFY)

#: Turns what the work raised into what the caller is told (already scrubbed and logged).
Explain = Callable[[BaseException], ApiError]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Operation:
    """One provisioning or reconcile started by an admin request, as GET and POST report it."""

    action: str
    dry_run: bool
    user: str | None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "running"
    started_at: str = field(default_factory=_now)
    finished_at: str | None = None
    #: The plan as JSON, and the results of the steps of it carried out (the answer's
    #: ``plan`` and ``applied``).
    plan: Any = None
    applied: list[Any] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)
    failure: ApiError | None = None
    #: A reconcile's, a redrive's or a verify's report (``ReconcileReport.to_dict()``,
    #: ``RedriveReport.to_json()``, ``VerifyReport.to_json()``); None for provisioning.
    report: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def say(self, message: str) -> None:
        """The planner's progress callback, so GET can show a long run as it goes."""
        self.progress.append(message)

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": self.id,
            "action": self.action,
            "dry_run": self.dry_run,
            "user": self.user,
            "state": self.state,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "plan": self.plan,
            "applied": list(self.applied),
            "progress": list(self.progress),
        }
        if self.action in REPORTING:
            answer["report"] = self.report
        if self.failure is not None:
            answer["error"] = self.failure.error
            answer["message"] = self.failure.message
        return answer


class OperationLog:
    """The last operation of this app, so GET can report one that outlived its request."""

    def __init__(self) -> None:
        self._last: Operation | None = None
        #: How many operations have finished: what they changed makes older status stale.
        self.finished = 0
        #: The last reconcile and redrive, kept apart so that a later operation of
        #: another kind does not hide their reports from whoever polls their URL.
        self.last_of: dict[str, Operation] = {}

    @property
    def last(self) -> Operation | None:
        return self._last

    @last.setter
    def last(self, op: Operation | None) -> None:
        self._last = op
        if op is not None and op.action in REPORTING:
            self.last_of[op.action] = op


class LatestLine:
    """A redrive's progress ("moved N of about M") as one line rewritten in place: a
    dead-letter queue of thousands must not grow the operation by a line per batch."""

    def __init__(self, op: Operation) -> None:
        self.op = op

    def __call__(self, line: str) -> None:
        if self.op.progress:
            self.op.progress[-1] = line
        else:
            self.op.progress.append(line)


class WaitingLine:
    """A verify's progress: a line per step, but its "waiting for N link(s)" lines, one
    a second, rewrite each other, so that a five-minute wait stays one line."""

    WAITING = "waiting for "

    def __init__(self, op: Operation, clean: Callable[[str], str]) -> None:
        self.op = op
        self.clean = clean

    def __call__(self, line: str) -> None:
        line = self.clean(line)
        progress = self.op.progress
        if line.startswith(self.WAITING) and progress and progress[-1].startswith(self.WAITING):
            progress[-1] = line
        else:
            progress.append(line)


class ProgressLines:
    """Reconcile's progress as one line per phase, rewritten in place: a poll shows how
    far it got without the operation growing by a line per object read."""

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.phase: str | None = None

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        line = (f"listing bucket: {done} page{'s' * (done != 1)}" if phase == "list"
                else f"reading objects: {done}/{total}")
        if phase == self.phase and self.op.progress:
            self.op.progress[-1] = line
        else:
            self.op.progress.append(line)
        self.phase = phase


def _lock_key(config: PypicloudConfig) -> str:
    """One provisioning per bucket: its notification configuration is one document."""
    return f"s3://{config.target.bucket}"


def run_operation(log: OperationLog, op: Operation, config: PypicloudConfig, *,
                  work: Callable[[], None], explain: Explain, wait: float) -> Operation:
    """Start ``work`` under the provisioning lock and wait at most ``wait`` seconds for it.

    The lock is taken here, in the request, so that a second caller learns at once
    (409) instead of queueing; the background thread releases it when the work ends.
    """
    lock = provisioning_lock(_lock_key(config))
    try:
        lock.__enter__()
    except Busy:
        running = log.last if log.last is not None and log.last.state == "running" else None
        who = (f" ({running.action} started by {running.user} at {running.started_at})"
               if running else " (in this or another server process)")
        raise ApiError(
            409, "busy",
            f"another s3sync operation is running{who}; wait for it to finish "
            "(GET /admin/s3sync shows its progress) and try again",
        ) from None

    def target() -> None:
        state = "failed"
        try:
            work()
            state = "succeeded"
        except Exception as exc:  # noqa: BLE001 - every failure must reach the operator
            op.failure = explain(exc)
        finally:
            op.finished_at = _now()
            log.finished += 1
            lock.__exit__(None, None, None)
            # Only now: a poller that sees the operation finished may start the next one.
            op.state = state
            op.done.set()
            LOG.info("s3sync %s%s by %s: %s, %d step(s) applied", op.action,
                     " (dry run)" if op.dry_run else "", op.user, op.state, len(op.applied))

    log.last = op
    LOG.info("s3sync %s%s started by %s", op.action, " (dry run)" if op.dry_run else "",
             op.user)
    # Not a daemon: a server shutting down waits for AWS changes in flight to finish
    # instead of leaving half a deployment behind.
    try:
        threading.Thread(target=target, name=f"s3sync-{op.action}-{op.id}", daemon=False).start()
    except BaseException:
        lock.__exit__(None, None, None)  # never keep the lock for work that never started
        raise
    op.done.wait(wait)
    return op


@dataclass
class StatusRun:
    """One computation of the status report, shared by the GETs that arrive meanwhile."""

    result: dict[str, Any] | None = None
    failure: ApiError | None = None
    progress: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    #: ``OperationLog.finished`` when it started: a run from before an operation ended
    #: describes a state that no longer exists.
    generation: int = 0
    #: When it finished (``time.monotonic()``), and whether any GET has answered with it.
    finished: float | None = None
    delivered: bool = False

    def usable(self, generation: int, now: float) -> bool:
        """Still running, or finished after every GET waiting for it gave up and recently:
        the next GET gets it instead of starting a run that may outlast its wait too."""
        if self.generation != generation:
            return False
        if not self.done.is_set():
            return True
        return (not self.delivered and self.finished is not None
                and now - self.finished < UNCLAIMED_SECONDS)


#: How long a status nobody has seen yet is kept for the next GET (seconds).
UNCLAIMED_SECONDS = 60.0


class StatusRuns:
    """At most one status computation per app at a time.

    Comparing the function's code means building (or reading the cached) zip, which can
    take long the first time; GETs arriving meanwhile wait for the same run instead of
    starting builds of their own. A run that ends between two polls is kept for the next
    one: otherwise a status that always takes longer than ``s3sync.admin.wait`` would be
    recomputed by every poll and never answered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: StatusRun | None = None

    def get(self, compute: Callable[[Callable[[str], None]], dict[str, Any]],
            explain: Explain, wait: float, generation: int = 0) -> StatusRun:
        """The run in progress, or a new one of ``compute``; waits at most ``wait`` s.

        ``generation`` is the number of operations finished so far: a run begun before
        the last one ended is not reused.
        """
        with self._lock:
            run = self._current
            if run is None or not run.usable(generation, time.monotonic()):
                run = self._current = StatusRun(generation=generation)
                threading.Thread(target=self._compute, args=(run, compute, explain),
                                 name="s3sync-status", daemon=True).start()
        if run.done.wait(wait):
            run.delivered = True
        return run

    @staticmethod
    def _compute(run: StatusRun, compute: Callable[[Callable[[str], None]], dict[str, Any]],
                 explain: Explain) -> None:
        try:
            run.result = compute(run.progress.append)
        except Exception as exc:  # noqa: BLE001 - answered as JSON, logged scrubbed
            run.failure = explain(exc)
        finally:
            run.finished = time.monotonic()
            run.done.set()
