"""Promises of create, status and delete that hold for every resource kind and every
combination of options, tested once, generically.

None of these tests names a resource kind: they drive the commands' public functions
with the options an operator has (:data:`.account.OPTIONS`) and read the whole account
back (:func:`.account.snapshot`), so a kind added to ``provision/resources`` is covered
by them as soon as create makes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypicloud_s3sync.provision import deploy

from ..support import account, moto_gaps
from ..support.aws_gate import FailAt
from ..support.deploy_helpers import BUCKET, clients_for, make_config, write_zip

#: Few examples: each builds a whole deployment in moto (a quarter to half a second).
EXAMPLES = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

choices = st.fixed_dictionaries({option: st.sampled_from(values)
                                 for option, values in account.OPTIONS.items()})
#: Every option at its last value: the most resources create can make at once.
EVERYTHING = {option: values[-1] for option, values in account.OPTIONS.items()}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One ini for the module: reading it (pyramid's loader) costs more than a deploy."""
    return make_config(tmp_path_factory.mktemp("properties"))


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> deploy.ZipBundle:
    return deploy.ZipBundle.from_path(write_zip(tmp_path_factory.mktemp("zip") / "f.zip"))


@dataclass
class World:
    """One account at a time, emptied and seeded again by :meth:`fresh`; every command
    and every read shares one set of clients (making clients costs more than moto's
    answers)."""

    config: Any
    code: deploy.ZipBundle
    clients: deploy.AwsClients
    seeded: account.Seeded | None = None

    def fresh(self) -> account.Seeded:
        account.reset_account()
        self.seeded = account.seed(self.clients.client)
        return self.seeded

    def snapshot(self, *, bucket: bool = True) -> dict[str, Any]:
        return account.snapshot(self.clients.client, bucket=bucket)

    def options(self, choice: dict[str, Any], **extra: Any) -> deploy.DeployOptions:
        assert self.seeded is not None
        return deploy.DeployOptions.from_config(
            self.config, **account.deploy_options(choice, self.seeded), **extra)

    def plan(self, choice: dict[str, Any], **extra: Any) -> deploy.Plan:
        return deploy.plan_create(self.config, self.options(choice, **extra), self.clients,
                                  code=self.code, peers=account.peers(choice))

    def create(self, choice: dict[str, Any], **extra: Any) -> deploy.Plan:
        """``ppc-create-s3-sync`` with these options."""
        plan = self.plan(choice, **extra)
        deploy.apply(plan, self.clients, sleep=lambda s: None)
        account.consume_our_queues(self.clients.client)
        return plan

    def interrupted(self, choice: dict[str, Any], k: int) -> None:
        """A create whose AWS call k+1 failed: the first k steps are applied."""
        fail = FailAt(k)
        # A client copies the session's handlers when it is made: hook both.
        hooked = [self.clients.session.events,
                  *(c.meta.events for c in self.clients._clients.values())]
        for events in hooked:
            events.register("before-call.*.*", fail, unique_id="fail-at")
        try:
            with pytest.raises(deploy.ApplyError, match="interrupted by the test"):
                self.create(choice)
        finally:
            for events in hooked + [c.meta.events for c in self.clients._clients.values()]:
                events.unregister("before-call.*.*", unique_id="fail-at")
        assert len(fail.passed) == k

    def status(self, choice: dict[str, Any]) -> deploy.StatusReport:
        return deploy.status(self.config, self.options(choice), self.clients,
                             code=self.code, peers=account.peers(choice))

    def delete(self, choice: dict[str, Any]) -> deploy.Plan:
        plan = deploy.plan_delete(self.config, self.options(choice), self.clients,
                                  peers=account.peers(choice))
        deploy.apply(plan, self.clients, sleep=lambda s: None)
        return plan


@pytest.fixture
def world(aws: None, monkeypatch: pytest.MonkeyPatch, config: Any,
          code: deploy.ZipBundle) -> Iterator[World]:
    moto_gaps.apply(monkeypatch)
    options = deploy.DeployOptions.from_config(config)
    yield World(config, code, clients_for(config, options))


def proposed(steps: list[deploy.Step]) -> list[dict[str, Any]]:
    """Steps as a user reads them in ``--json``: each call and its parameters."""
    return [step.to_json() for step in steps]


def full_length(world: World, choice: dict[str, Any]) -> int:
    """How many steps create takes from the seeded, empty account."""
    world.fresh()
    return len(world.plan(choice).steps)


# -- 1. status proposes what create -f would apply --------------------------------------------

@EXAMPLES
@given(deployed=choices, wanted=st.one_of(st.none(), choices),
       state=st.sampled_from(["nothing", "partial", "drifted", "complete"]),
       k=st.integers(0, 30), change=st.integers(0, 30))
def test_status_proposes_exactly_what_create_f_would_apply(
        world: World, deployed: dict[str, Any], wanted: dict[str, Any] | None, state: str,
        k: int, change: int) -> None:
    """An operator who reads ``status`` and then runs ``create -f`` gets exactly the
    fix status showed, whatever state the account is in: nothing deployed, an apply
    that stopped halfway, a deployment changed by hand, or one in sync (with the same
    options or new ones); and after that one run, status shows no drift."""
    wanted = wanted or deployed
    world.fresh()
    if state == "partial":
        steps = len(world.plan(deployed).steps)
        world.interrupted(deployed, k % steps)
    elif state != "nothing":
        world.create(deployed)
    if state == "drifted":
        changes = account.by_hand_changes(world.clients.client)
        for index in range(len(changes)):
            _what, apply_change = changes[(change + index) % len(changes)]
            if apply_change():
                break
    report = world.status(wanted)
    plan = world.plan(wanted, force=True)
    assert proposed(report.steps) == proposed(plan.steps), account.describe(wanted)
    assert report.in_sync == plan.is_empty, report.describe()
    # ... and that fix, applied, is all it takes: one run of create -f, and status agrees.
    deploy.apply(plan, world.clients, sleep=lambda s: None)
    after = world.status(wanted)
    assert after.in_sync and after.steps == [], after.describe()


# -- 2. every option that makes something has a value that removes it ------------------------

@pytest.mark.parametrize("others", ["alone", "with-everything"])
@pytest.mark.parametrize("case", sorted(account.REMOVABLE))
def test_each_option_has_a_value_that_removes_exactly_what_it_made(
        world: World, case: str, others: str) -> None:
    """An operator who turns an option on and then off again (``off``, or the other
    delivery) is back where they started: what the option made is gone, and nothing
    else changed; status is in sync and a re-run plans nothing."""
    option, on, off = account.REMOVABLE[case]
    base = {o: values[0] for o, values in account.OPTIONS.items()}
    if others == "with-everything":
        base = {**EVERYTHING, "delivery": "direct"}
    world.fresh()
    world.create({**base, option: off}, force=True)
    before = world.snapshot()
    world.create({**base, option: on}, force=True)
    assert world.snapshot() != before, f"{option}={on} made nothing"
    world.create({**base, option: off}, force=True)
    after = world.snapshot()
    assert after == before, account.differences(before, after)
    assert world.status({**base, option: off}).in_sync
    assert world.plan({**base, option: off}, force=True).is_empty


# -- 3. an interrupted apply is continued by create and undone by delete ----------------------

@pytest.mark.parametrize("delivery", ["direct", "eventbridge", "sqs"])
def test_an_apply_interrupted_after_any_step_converges_or_is_removed(
        world: World, delivery: str) -> None:
    """Whatever step AWS refuses, running create again ends with the same resources
    as a create that was never interrupted, and delete from the same state removes
    everything of ours and leaves everyone else's as it was."""
    choice = {**EVERYTHING, "delivery": delivery}
    world.fresh()
    seeded = world.snapshot()
    reference_plan = world.create(choice)
    reference = world.snapshot()
    for k in range(len(reference_plan.steps)):
        for then, expected in ((world.delete, seeded), (world.create, reference)):
            world.fresh()
            world.interrupted(choice, k)
            then(choice)
            after = world.snapshot()
            assert after == expected, (f"{then.__name__} after {k} steps",
                                       account.differences(expected, after))
        assert world.plan(choice, force=True).is_empty  # create's world is converged


# -- 4. delete works when the bucket is gone -------------------------------------------------



@EXAMPLES
@given(deployed=choices)
def test_delete_without_the_bucket_removes_everything_else_of_ours(
        world: World, deployed: dict[str, Any]) -> None:
    """A sync whose bucket was deleted first can still be removed: delete takes away
    every resource of ours outside the bucket, leaves everyone else's, and says that
    it could not reach the bucket."""
    world.fresh()
    seeded = world.snapshot(bucket=False)
    world.create(deployed)
    world.clients.client("s3").delete_bucket(Bucket=BUCKET)
    plan = world.delete(deployed)
    assert world.snapshot(bucket=False) == seeded
    assert any(f"bucket {BUCKET} does not exist" in note for note in plan.notes), plan.notes


def test_every_kind_is_read_once() -> None:
    """The snapshot reads in its own order (a kind after those its read depends on): a
    kind left out of it would plan against an empty state and recreate what exists."""
    from pypicloud_s3sync.provision.resources import ORDER, READ_ORDER

    assert sorted(k.KIND for k in READ_ORDER) == sorted(k.KIND for k in ORDER)
    assert len(set(READ_ORDER)) == len(READ_ORDER)
