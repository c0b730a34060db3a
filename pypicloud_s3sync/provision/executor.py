"""Apply a plan: one AWS call per step, in order, waiting and retrying where AWS lags.

Kept apart from planning so that a plan can be printed, serialised or tested without
anything here, and so that the retry rules live next to the only code that calls AWS
to change something.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from . import iam, notifications
from .aws import AwsClients, error_code
from .errors import ApplyError, BlockedNotification
from .plan import Plan, Step, StepResult

#: Error text S3 returns while a new invoke permission has not propagated yet.
UNVALIDATED = notifications.UNVALIDATED

#: Retry schedules (seconds) for errors that only mean "AWS has not caught up yet".
NOTIFICATION_BACKOFF = notifications.VALIDATION_BACKOFF
ROLE_BACKOFF = (2, 4, 8, 15, 30)
#: The calls for which Lambda checks the function's execution role (and what its policy
#: grants, such as a VPC's network interfaces or the on-failure destination).
ROLE_CHECKED = ("create_function", "update_function_configuration",
                "put_function_event_invoke_config", "update_function_event_invoke_config",
                "create_event_source_mapping", "update_event_source_mapping")


def _retryable(step: Step, exc: Exception) -> bool:
    code, message = error_code(exc), str(exc)
    if step.operation == "put_bucket_notification_configuration":
        # Only our own destination (or none named) can be the permission propagating.
        return code == "InvalidArgument" and UNVALIDATED in message
    if (step.operation in ROLE_CHECKED and code == "InvalidParameterValueException"
            and iam.role_refusal(message)):
        return True  # IAM has not shown Lambda the new role or its new policy yet
    if step.operation.startswith(("update_function", "put_function_event")):
        return code == "ResourceConflictException"  # an update is still in progress
    return False


def _blocked_by_others(step: Step, exc: Exception) -> list[tuple[str, str]]:
    """The others' destinations S3 named as not validating (a deleted queue...), which no
    wait fixes: the write fails at once, naming them."""
    if step.operation != "put_bucket_notification_configuration":
        return []
    failed = notifications.unvalidated(getattr(exc, "response", {}).get("Error", {})) or []
    return notifications.foreign(failed, step.details.get("ours", ""))


def _after_bound(plan: Plan, step: Step, exc: Exception, waited: float) -> str:
    """What to do when a refusal that may be propagation outlasted its retries: for the
    execution role, which role lacks which permission."""
    missing = (iam.role_refusal(str(exc)) if step.operation in ROLE_CHECKED
               and error_code(exc) == "InvalidParameterValueException" else None)
    if not missing:
        return ""
    role = step.params.get("Role") or plan.role_arn or "the function's execution role"
    after = (f" after {waited:g} s of retries, longer than IAM takes to propagate a "
             "change" if waited else "")
    if missing == iam.ASSUME:
        return (f"; Lambda could not assume role {role}{after}: check that it exists and "
                "that its trust policy lets lambda.amazonaws.com assume it")
    return (f"; role {role} needs {missing}: Lambda still refused it{after}, so grant it "
            "in that role's policy")


def apply(plan: Plan, clients: AwsClients, progress: Callable[[str], None] | None = None,
          sleep: Callable[[float], None] = time.sleep) -> list[StepResult]:
    """Run the plan's steps in order; returns what was done.

    Between function changes it waits until Lambda reports the function Active /
    the update Successful, and it retries the errors that only mean "not propagated
    yet" with backoff.  On any other failure it raises :class:`ApplyError`, which says
    which step failed and carries the steps already done (re-running create continues
    from the actual state).
    """
    from botocore.exceptions import ClientError, WaiterError

    say = progress or (lambda message: None)
    done: list[StepResult] = []
    total = len(plan.steps)
    for index, step in enumerate(plan.steps, 1):
        say(f"[{index}/{total}] {step.summary}")
        client = clients.client(step.service)
        params = copy.deepcopy(step.params)
        if step.code is not None:
            data = step.code.read_bytes()
            if "Code" in params:
                params["Code"] = {"ZipFile": data}
            else:
                params["ZipFile"] = data
        schedule = (NOTIFICATION_BACKOFF if step.service == "s3" else ROLE_BACKOFF)
        started, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            try:
                getattr(client, step.operation)(**params)
                break
            except ClientError as exc:
                others = _blocked_by_others(step, exc)
                if others:
                    raise BlockedNotification(
                        f"step {index}/{total} ({step.summary}) failed: "
                        f"{notifications.blocked_message(step.params['Bucket'], others)}; "
                        f"{len(done)} step(s) were applied, run the command again once "
                        "that entry is fixed", done) from exc
                if attempts <= len(schedule) and _retryable(step, exc):
                    delay = schedule[attempts - 1]
                    say(f"      not ready yet ({error_code(exc)}); retrying in {delay} s")
                    sleep(delay)
                    continue
                waited = sum(schedule[:attempts - 1])
                raise ApplyError(
                    f"step {index}/{total} ({step.summary}) failed: {exc}"
                    f"{_after_bound(plan, step, exc, waited)}; "
                    f"{len(done)} step(s) were applied, run the command again to continue",
                    done,
                ) from exc
        if step.wait:
            say(f"      waiting for {plan.function_name} to be "
                f"{'Active' if step.wait == 'function_active_v2' else 'updated'}")
            try:
                client.get_waiter(step.wait).wait(
                    FunctionName=plan.function_name,
                    WaiterConfig={"Delay": 2, "MaxAttempts": 150})
            except WaiterError as exc:
                raise ApplyError(
                    f"{plan.function_name} did not become ready after step {index}/{total}: "
                    f"{exc}", done) from exc
        done.append(StepResult(step, time.monotonic() - started, attempts))
    return done

