"""The comparison that turns desired vs actual into steps: a loop over the resource kinds.

``plan_create``, ``plan_delete`` and ``status`` in :mod:`.deploy` drive it: status is the
create comparison with ``strict=False``, where whatever create would refuse becomes a
drifted row of its kind instead, so its proposed fix is the plan create would apply.
Every remote read happens before, in :mod:`.snapshot`; what each kind reads, compares
and calls is in its module under :mod:`.resources`, and nothing here names one.
"""

from __future__ import annotations

from collections.abc import Callable

from . import guards
from .errors import DeployError
from .plan import CodeArtifact, Step
from .resources import ORDER
from .resources.base import Planning


class Planner(Planning):
    """One plan's comparison: :meth:`create` (or status) and :meth:`teardown`."""

    def create(self, code: Callable[[], CodeArtifact]) -> None:
        """Every kind in dependency order."""
        guards.check_stack(self, "change the stack instead: export a new template with "
                                 "ppc-s3sync export and deploy it")
        guards.check_region(self)
        guards.check_db_secret(self)
        self.code = code
        for kind in ORDER:
            start = len(self.steps)
            try:
                kind.plan(self)
            except DeployError as exc:
                if self.strict:
                    raise
                self.row(kind.KIND, kind.name(self), "as configured", str(exc), False)
            self.made[kind.KIND] = self.steps[start:]
            _mark_after_peers(kind, self.made[kind.KIND])
        self.steps += self.last

    def teardown(self) -> None:
        """Every kind in the reverse order: what points at the function goes before it,
        the role after it."""
        guards.check_stack(self, "delete the stack instead (aws cloudformation "
                                 f"delete-stack --stack-name {self.actual.stack})")
        guards.check_region(self)
        for kind in reversed(ORDER):
            start = len(self.steps)
            kind.teardown(self)
            _mark_after_peers(kind, self.steps[start:])


def _mark_after_peers(kind: object, steps: list[Step]) -> None:
    """A kind that works between regions says so once; its steps carry it to the run
    of several inis, which orders them around every region's other steps."""
    if getattr(kind, "AFTER_PEERS", False):
        for step in steps:
            step.after_peers = True


__all__ = ["Planner"]
