"""``/admin/s3sync``: inspect, provision and tear down the sync from the running server.

The views sit in pypicloud's own admin tree (``AdminResource``, permission ``admin``),
so pypicloud's security policy answers anonymous callers with 401 and other users with
403 before any code here runs. What the views add is what pypicloud's admin API lacks
and a mutating endpoint that talks to AWS needs (the mechanics live in
:mod:`~pypicloud_s3sync.admin.security` and :mod:`~pypicloud_s3sync.admin.jobs`):

* CSRF: pypicloud logs admins in with a cookie and has no CSRF tokens, so POST and
  DELETE demand a JSON body (a browser cannot send one cross-site without a CORS
  preflight pypicloud never grants) and refuse a foreign ``Origin``.
* One provisioning at a time: a second one gets 409 instead of racing the first.
* Bounded worker time: the planner runs in a background thread; the request waits at
  most ``s3sync.admin.wait`` seconds, then answers 202 and GET shows the progress.
* Errors as JSON with a status that says whose problem it is, and no secret in any
  answer or log line.

This module is HTTP only. The work is the CLI's own, in
:mod:`pypicloud_s3sync.provision.operation` (``run`` plans and applies; ``reconcile``, for
``POST /admin/s3sync/reconcile``, writes the cache, so it runs under the same guards, with
``GET`` on the same URL to poll it; ``redrive``, for ``POST /admin/s3sync/redrive``, moves
a ``--delivery sqs`` sync's dead letters back to its queue, guarded and polled the same
way; ``verify``, for ``POST /admin/s3sync/verify``, sends a canary package between this
region and those ``s3sync.verify_with`` names, guarded and polled the same way too), and
which kind of failure an error is comes from
:func:`pypicloud_s3sync.provision.awsfailure.classify`; the views pick the status. A
browser asking for HTML gets the sync page (:mod:`~pypicloud_s3sync.admin.page`) from
``GET /admin/s3sync``, which calls these views like any other client.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyramid.httpexceptions import HTTPMethodNotAllowed
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from ..config import PypicloudConfig, load_config
from . import page, peers
from .errors import ApiError
from .jobs import (
    RECONCILE,
    REDRIVE,
    VERIFY,
    LatestLine,
    Operation,
    OperationLog,
    ProgressLines,
    StatusRuns,
    WaitingLine,
    run_operation,
)
from .security import AdminSettings, check_same_origin, read_json_body, scrub, secret_values

if TYPE_CHECKING:
    from pyramid.config import Configurator

    from ..provision.options import DeployOptions
    from ..provision.plan import Plan

LOG = logging.getLogger(__name__)

#: The view name under ``/admin``.
VIEW_NAME = "s3sync"

#: Keys a POST body may hold; everything else comes from the server's ini.
POST_KEYS = frozenset({"dry_run", "force"})
DELETE_KEYS = frozenset({"dry_run"})
RECONCILE_KEYS = frozenset({"dry_run", "deep"})
REDRIVE_KEYS = frozenset({"dry_run"})
VERIFY_KEYS = frozenset({"timeout"})

#: The longest ``timeout`` a verify may ask for (seconds): Replication Time Control's
#: 15 minutes, during which the verify holds the one-operation lock.
MAX_VERIFY_TIMEOUT = 900.0

#: What an operation's thread runs, given the operation to record into.
Work = Callable[[Operation], None]


# -- failures as HTTP answers -----------------------------------------------------------

#: Each kind of failure (:data:`~pypicloud_s3sync.provision.awsfailure.KINDS`) as status,
#: error code and headers. AWS's own refusals are 502 (the server is fine, its upstream
#: said no), never 401/403: those mean "log in again" to pypicloud's UI and to pip. A
#: state of the account the planner will not touch is 409: the request conflicts with
#: what exists, and resolving that is the operator's call.
ANSWERS: dict[str, tuple[int, str, dict[str, str]]] = {
    "denied": (502, "aws_access_denied", {}),
    "throttled": (503, "aws_throttled", {"Retry-After": "30"}),
    "conflict": (409, "aws_conflict", {}),
    "aws": (502, "aws_error", {}),
    "unreachable": (504, "aws_unreachable", {}),
    "credentials": (500, "aws_credentials", {}),
    "state": (409, "conflict", {}),
    "bundle": (500, "bundle", {}),
    "config": (500, "config", {}),
    "internal": (500, "internal", {}),
}


def error_for(exc: BaseException) -> ApiError:
    """The answer for whatever the work raised: sorted beside the errors themselves, so
    that this only picks the HTTP status."""
    from ..provision.awsfailure import classify

    if isinstance(exc, ApiError):
        return exc
    failure = classify(exc)
    status, error, headers = ANSWERS[failure.kind]
    return ApiError(status, error, failure.message, dict(headers), failure.hint)


# -- the operations, as the CLI runs them ------------------------------------------------

def _config(request: Request) -> PypicloudConfig:
    return load_config(request.registry.settings)


def _options(config: PypicloudConfig, **overrides: Any) -> DeployOptions:
    """The server's ``s3sync.*`` settings, with what the request may override on top."""
    from ..provision.options import DeployOptions

    return DeployOptions.from_config(config, **overrides)


def _status(config: PypicloudConfig, progress: Callable[[str], None]) -> dict[str, Any]:
    from ..provision.operation import run, server_session

    answer = run(config, _options(config), "status", progress=progress,
                 session=server_session(config)).to_json()
    return {**answer, "redrive": _dead_letters(config)}


def _dead_letters(config: PypicloudConfig) -> dict[str, Any]:
    """Whether there is a dead-letter queue to redrive, and how full it is: what the page
    shows its Redrive button by.

    It is the redrive's own dry run (two queue lookups and a count, no lock needed as it
    changes nothing), so the button is offered exactly when the redrive would find its
    queues. A failure here (no ``--delivery sqs`` sync, SQS denied to the server) is
    reported in this key only: the rest of the status stands without it.
    """
    from ..provision import operation

    try:
        report = operation.redrive(config, _options(config), dry_run=True,
                                   session=operation.server_session(config))
    except Exception as exc:  # noqa: BLE001 - reported in the answer, like the others
        error = error_for(exc)
        return {"available": False, "error": error.error, "message": error.message}
    return {"available": True, **report.to_json()}


def _provision(config: PypicloudConfig, op: Operation, overrides: dict[str, Any]) -> None:
    """What the matching command does: the same operation, its result kept for pollers."""
    from ..provision import operation
    from ..provision.errors import ApplyError

    if op.action == RECONCILE:
        op.report = operation.reconcile(config, deep=bool(overrides.get("deep")),
                                        dry_run=op.dry_run, progress=ProgressLines(op)).to_dict()
        return
    if op.action == REDRIVE:
        op.report = operation.redrive(config, _options(config), dry_run=op.dry_run,
                                      progress=LatestLine(op),
                                      session=operation.server_session(config)).to_json()
        return

    def show(plan: Plan) -> None:
        op.plan = plan.to_json()  # pollers see the plan while it is applied

    try:
        outcome = operation.run(config, _options(config, **overrides), op.action,
                                dry_run=op.dry_run, progress=op.say, on_plan=show,
                                session=operation.server_session(config))
    except ApplyError as exc:
        op.applied = [result.to_json() for result in exc.done]
        raise
    op.applied = outcome.to_json()["applied"]


# -- failures, as answered and logged ----------------------------------------------------

def _scrub_error(error: ApiError, secrets: frozenset[str]) -> ApiError:
    return ApiError(error.status, error.error, scrub(error.message, secrets), error.headers,
                    scrub(error.hint, secrets))


def _log_failure(what: str, error: ApiError, exc: BaseException,
                 secrets: frozenset[str]) -> None:
    """Log a failure scrubbed (logs are read by more people than the admin API is); the
    traceback only for errors that are ours or AWS's, not for a refusal the operator
    must resolve."""
    if error.status < 500 and error.error != "internal":
        LOG.warning("%s refused: %s", what, error.message)
        return
    trace = scrub("".join(traceback.format_exception(exc)), secrets)
    LOG.error("%s failed: %s\n%s", what, error.message, trace)


def _report_failure(what: str, exc: BaseException, secrets: frozenset[str]) -> ApiError:
    """What the caller is told about ``exc``: translated, scrubbed, and logged once."""
    error = _scrub_error(error_for(exc), secrets)
    _log_failure(what, error, exc, secrets)
    return error


def _secrets(request: Request) -> frozenset[str]:
    return secret_values(request.registry.settings)


# -- views -------------------------------------------------------------------------------

def _answer(request: Request, body: dict[str, Any], status: int = 200,
            headers: dict[str, str] | None = None) -> dict[str, Any]:
    request.response.status_int = status
    request.response.headers.update(headers or {})
    request.response.cache_control = "no-store"
    return scrub(body, _secrets(request))


def _fail(request: Request, error: ApiError, **extra: Any) -> dict[str, Any]:
    return _answer(request, {"error": error.error, "message": error.message, **extra},
                   error.status, error.headers)


def _wait_seconds(request: Request) -> float:
    return request.registry.s3sync_admin.wait_seconds


def _operation_answer(request: Request, op: Operation) -> dict[str, Any]:
    body = op.to_json()
    if op.state == "running":
        body["message"] = (f"still running after {_wait_seconds(request):g} s; "
                           f"GET {request.path} shows its progress and result")
        return _answer(request, body, 202, {"Location": request.path_url})
    if op.failure is not None:
        return _answer(request, body, op.failure.status, op.failure.headers)
    return _answer(request, body)


def get_status(request: Request) -> dict[str, Any]:
    """Desired vs actual per resource, as ``ppc-s3sync status --json`` prints it.

    Reads only, so it takes no lock and needs no CSRF check; during a provisioning it
    shows the half-done state, and ``operation`` says what is running.
    """
    log: OperationLog = request.registry.s3sync_operations
    operation = log.last.to_json() if log.last is not None else None
    secrets = _secrets(request)
    try:
        config = _config(request)
    except Exception as exc:  # noqa: BLE001 - answered as JSON, logged scrubbed
        return _fail(request, _report_failure("s3sync status", exc, secrets),
                     operation=operation)
    runs: StatusRuns = request.registry.s3sync_status
    run = runs.get(lambda progress: _status(config, progress),
                   lambda exc: _report_failure("s3sync status", exc, secrets),
                   _wait_seconds(request), log.finished)
    if not run.done.is_set():
        return _answer(request, {
            "state": "computing", "progress": list(run.progress), "operation": operation,
            "message": f"the status is still being computed after {_wait_seconds(request):g}"
                       " s (the function's zip is built to compare its code); ask again",
        }, 202, {"Retry-After": "5"})
    if run.failure is not None:
        return _fail(request, run.failure, operation=operation)
    return _answer(request, {**(run.result or {}), "operation": operation})


def _start(request: Request, config: PypicloudConfig, action: str, dry_run: bool,
           work: Work, secrets: frozenset[str]) -> Operation:
    """Run ``work`` (the planner, a reconcile...) as this app's background operation."""
    op = Operation(action=action, dry_run=dry_run, user=request.authenticated_userid)
    return run_operation(
        request.registry.s3sync_operations, op, config,
        work=lambda: work(op),
        explain=lambda exc: _report_failure(f"s3sync {op.action}", exc, secrets),
        wait=_wait_seconds(request),
    )


#: Turns a request's checked body into the work to run and the secrets beyond the
#: server's own that its answers must not show.
Prepare = Callable[[Request, PypicloudConfig, dict[str, Any]], tuple[Work, frozenset[str]]]


def _provision_work(request: Request, config: PypicloudConfig,
                    body: dict[str, Any]) -> tuple[Work, frozenset[str]]:
    overrides = {key: True for key in ("force", "deep") if body.get(key)}
    return (lambda op: _provision(config, op, overrides)), frozenset()


def _mutate(request: Request, action: str, allowed: frozenset[str],
            prepare: Prepare = _provision_work) -> dict[str, Any]:
    secrets = _secrets(request)
    try:
        check_same_origin(request, request.registry.s3sync_admin)
        body = read_json_body(request, allowed)
        config = _config(request)
        work, more = prepare(request, config, body)
        secrets |= more
        op = _start(request, config, action, bool(body.get("dry_run", False)), work, secrets)
    except Exception as exc:  # noqa: BLE001 - answered as JSON, logged scrubbed
        error = _report_failure(f"s3sync {action}", exc, secrets)
        if error.error == "busy":
            last: Operation | None = request.registry.s3sync_operations.last
            running = last.to_json() if last is not None and last.state == "running" else None
            return _fail(request, error, operation=running)
        return _fail(request, error)
    return _operation_answer(request, op)


def post_provision(request: Request) -> dict[str, Any]:
    """Provision (create or bring up to date) the sync; ``{"dry_run": true}`` only plans."""
    return _mutate(request, "create", POST_KEYS)


def delete_teardown(request: Request) -> dict[str, Any]:
    """Remove what provisioning made; ``{"dry_run": true}`` only plans."""
    return _mutate(request, "delete", DELETE_KEYS)


def post_reconcile(request: Request) -> dict[str, Any]:
    """Make the cache list exactly the bucket's packages, as ``ppc-s3sync reconcile`` does.

    A reconcile writes the cache, so it gets the provisioning guards: JSON only and
    same-origin (a cross-site page must not make an admin's browser run it), one
    operation at a time (409), and a bounded wait (202, then GET this URL to poll).
    ``{"dry_run": true}`` reports without writing; ``{"deep": true}`` re-reads metadata.
    """
    return _mutate(request, RECONCILE, RECONCILE_KEYS)


def post_redrive(request: Request) -> dict[str, Any]:
    """Move a ``--delivery sqs`` sync's dead letters back to its queue, as
    ``ppc-s3sync redrive`` does.

    It sends messages to the function again, so it gets the provisioning guards: JSON
    only and same-origin, one operation at a time (409), a bounded wait (202, then GET
    this URL). ``{"dry_run": true}`` only counts them. A config without the queues is a
    state of the account (409, saying how to make them), as the planner's refusals are.
    """
    return _mutate(request, REDRIVE, REDRIVE_KEYS)


def _verify_timeout(body: dict[str, Any]) -> float | None:
    """The body's ``timeout`` (``--timeout``); None: the command's default."""
    value = body.get("timeout")
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 < value <= MAX_VERIFY_TIMEOUT):
        raise ApiError(400, "bad_request", "timeout must be the seconds the whole run may "
                                           f"take, above 0 and at most {MAX_VERIFY_TIMEOUT:g}")
    return float(value)


def _verify_work(request: Request, config: PypicloudConfig,
                 body: dict[str, Any]) -> tuple[Work, frozenset[str]]:
    """The regions checked now, so that a path to fix is this request's answer; the run
    itself, with the server's credentials for what the diagnosis reads, in the job."""
    timeout = _verify_timeout(body)
    configs = peers.peer_configs(config, request.registry.s3sync_admin.verify_with)
    secrets = _secrets(request) | peers.peer_secrets(configs[1:])

    def work(op: Operation) -> None:
        from ..provision import operation

        report = operation.verify(configs, timeout=timeout,
                                  progress=WaitingLine(op, lambda line: scrub(line, secrets)),
                                  session=operation.server_session(config))
        op.report = scrub(report.to_json(), secrets)

    return work, secrets


def post_verify(request: Request) -> dict[str, Any]:
    """Send a canary package between this region and every one ``s3sync.verify_with``
    names, as ``ppc-s3sync verify --json`` does: the lags per pair and direction, or the
    first broken link with its fix.

    It uploads and deletes a package in every bucket, so it gets the provisioning guards:
    JSON only and same-origin, one operation at a time (409), a bounded wait (202, then
    GET this URL). ``{"timeout": seconds}`` is ``--timeout``. A broken link is the
    report's finding, not a failure: the operation succeeds with ``report.ok`` false.
    """
    return _mutate(request, VERIFY, VERIFY_KEYS, _verify_work)


def _get_last(request: Request, action: str) -> dict[str, Any]:
    """The last ``action`` started through its endpoint: what a 202 tells callers to poll.

    Cheap on purpose (no AWS call, unlike ``GET /admin/s3sync``), so polling costs nothing.
    """
    log: OperationLog = request.registry.s3sync_operations
    last = log.last_of.get(action)
    if last is None:
        return _answer(request, {"error": "not_found",
                                 "message": f"no {action} has run in this server process; "
                                            "POST to this URL to start one"}, 404)
    return _answer(request, last.to_json())


def get_reconcile(request: Request) -> dict[str, Any]:
    """The last reconcile started through the endpoint (see :func:`_get_last`)."""
    return _get_last(request, RECONCILE)


def get_redrive(request: Request) -> dict[str, Any]:
    """The last redrive started through the endpoint (see :func:`_get_last`)."""
    return _get_last(request, REDRIVE)


def get_verify(request: Request) -> dict[str, Any]:
    """The last verify started through the endpoint (see :func:`_get_last`)."""
    return _get_last(request, VERIFY)


def get_page(request: Request) -> Response:
    """The sync page, for a browser that asks for HTML; it calls the views above.

    It carries no permission of its own so that an anonymous browser can be sent to
    pypicloud's login page instead of getting the 401 meant for pip and scripts; the
    ``admin`` permission is then checked here, against pypicloud's own policy.
    """
    if request.authenticated_userid is None:
        return page.login_redirect(request)
    if not request.has_permission("admin"):
        return page.forbidden(request)
    secrets = _secrets(request)
    try:
        target, problem = scrub(page.target(_config(request)), secrets), None
    except Exception as exc:  # noqa: BLE001 - shown on the page, logged scrubbed
        target, problem = None, _report_failure("s3sync page", exc, secrets).message
    verify_with = list(request.registry.s3sync_admin.verify_with)
    return page.page(request, f"{request.script_name}/admin/{VIEW_NAME}", target, problem,
                     scrub(verify_with, secrets))


def method_not_allowed(request: Request) -> HTTPMethodNotAllowed:
    """PUT, PATCH...: say which methods exist instead of a bare 404."""
    response = HTTPMethodNotAllowed(headers={"Allow": "GET, POST, DELETE"})
    response.content_type = "application/json"
    response.json_body = {"error": "method_not_allowed",
                          "message": "use GET (status), POST (provision) or DELETE (teardown)"}
    return response


def add_views(config: Configurator, settings: AdminSettings) -> None:
    """Register ``/admin/s3sync`` the way pypicloud registers its own admin views."""
    from pypicloud.route import AdminResource

    config.registry.s3sync_admin = settings
    config.registry.s3sync_operations = OperationLog()
    config.registry.s3sync_status = StatusRuns()
    common = {"context": AdminResource, "name": VIEW_NAME, "permission": "admin",
              "subpath": ()}
    config.add_view(get_status, request_method="GET", renderer="json", **common)
    config.add_view_predicate(page.PREDICATE, page.PagePredicate)
    config.add_view(get_page, request_method="GET",
                    **{**common, "permission": NO_PERMISSION_REQUIRED, page.PREDICATE: True})
    config.add_view(post_provision, request_method="POST", renderer="json", **common)
    config.add_view(delete_teardown, request_method="DELETE", renderer="json", **common)
    config.add_view(method_not_allowed, **common)
    # The operations that run as a job: POST starts one, GET polls it.
    for action, get, post in ((RECONCILE, get_reconcile, post_reconcile),
                              (REDRIVE, get_redrive, post_redrive),
                              (VERIFY, get_verify, post_verify)):
        sub = {**common, "subpath": (action,)}
        config.add_view(get, request_method="GET", renderer="json", **sub)
        config.add_view(post, request_method="POST", renderer="json", **sub)
        config.add_view(_sub_method_not_allowed(action), **sub)


def _sub_method_not_allowed(action: str) -> Callable[[Request], HTTPMethodNotAllowed]:
    """PUT, DELETE... on a job's URL: name the two methods that exist."""
    def not_allowed(request: Request) -> HTTPMethodNotAllowed:
        response = HTTPMethodNotAllowed(headers={"Allow": "GET, POST"})
        response.content_type = "application/json"
        response.json_body = {"error": "method_not_allowed",
                              "message": f"use POST (run a {action}) or GET (the last "
                                         "one's progress and report)"}
        return response

    return not_allowed
