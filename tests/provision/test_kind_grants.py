"""Each resource kind's own operator statements allow every call its plan and teardown
make, judged one kind at a time: a kind's grants cannot lean on another kind's, so a
kind whose calls change is the one place its grants change.

The policy as a whole is traced command by command in test_operator_policy; this one
runs each kind's ``plan`` (an empty account, every option at its last value, so that
every kind makes something) and ``teardown`` (of what that plan made), as the planner
does, and judges each kind's steps with aws_trace's table of what AWS requires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pypicloud_s3sync.provision import deploy
from pypicloud_s3sync.provision.iam import POLICY_VERSION
from pypicloud_s3sync.provision.resources import ORDER, Grantee, Kind, Planning

from ..support import account, aws_trace, moto_gaps
from ..support.deploy_helpers import clients_for, make_config, write_zip

#: Every option at its last value: every kind makes something.
EVERYTHING = {option: values[-1] for option, values in account.OPTIONS.items()}


def by_kind(planner: Planning, run: Callable[[Kind], Callable[[Planning], None]],
            kinds: tuple[Kind, ...]) -> dict[str, list[deploy.Step]]:
    """The steps each kind added, the ones it put after every kind's included."""
    found = {}
    for kind in kinds:
        start, last = len(planner.steps), len(planner.last)
        run(kind)(planner)
        found[kind.KIND] = planner.steps[start:] + planner.last[last:]
    return found


def calls(steps: list[deploy.Step], region: str) -> list[aws_trace.Call]:
    """A step as the client makes it (boto3's snake_case operation, AWS's CamelCase)."""
    return [aws_trace.Call(step.service, "".join(w.title() for w in step.operation.split("_")),
                           region, step.params) for step in steps]


def test_each_kind_grants_what_its_own_plan_and_teardown_call(
        aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    moto_gaps.apply(monkeypatch)
    config = make_config(tmp_path)
    clients = clients_for(config, deploy.DeployOptions.from_config(config))
    seeded = account.seed(clients.client)
    # The function's own key: Lambda uses it with the caller's rights.
    key = clients.client("kms").create_key()["KeyMetadata"]["Arn"]
    options = deploy.DeployOptions.from_config(
        config, **account.deploy_options(EVERYTHING, seeded), kms_key_arn=key)
    code = deploy.ZipBundle.from_path(write_zip(tmp_path / "f.zip"))
    peers = account.peers(EVERYTHING)
    # Seeded versioned (delete cannot undo it); suspended, versioning plans its call.
    clients.client("s3").put_bucket_versioning(
        Bucket=config.target.bucket, VersioningConfiguration={"Status": "Suspended"})
    options = replace(options, allow_versioning=True)

    planner = deploy._planner(config, options, clients, peers=peers)
    planner.code = deploy._code_provider(code, config, options, None)
    made = by_kind(planner, lambda kind: kind.plan, ORDER)
    deploy.apply(deploy.plan_create(config, options, clients, code=code, peers=peers),
                 clients, sleep=lambda s: None)
    removed = by_kind(deploy._planner(config, options, clients, peers=peers),
                      lambda kind: kind.teardown, tuple(reversed(ORDER)))

    grantee = Grantee(config, aws_trace.ACCOUNT, clients.region, options.function_name,
                      subnet_ids=options.subnet_ids, store=options.store_db_password,
                      kms_key_arn=options.kms_key_arn, replicates=bool(peers))
    for kind in ORDER:
        assert made[kind.KIND], f"{kind.KIND}: its plan made no step; nothing is judged"
        own: dict[str, Any] = {"Version": POLICY_VERSION,
                               "Statement": kind.operator_statements(grantee)}
        requests = aws_trace.iam_requests(
            calls(made[kind.KIND] + removed[kind.KIND], clients.region))
        refused = aws_trace.denied(own, requests)
        assert not refused, f"{kind.KIND}'s statements refuse:\n" + aws_trace.describe(refused)
