"""What every resource kind plans with: the states to compare, and where its rows and
calls go.

A kind is a module of this package with ``KIND`` (its rows' resource name), ``read``
(its part of the actual state, with Get/List/Describe calls only), ``plan``
(create and update, or refuse what is not ours), ``teardown`` (remove what is ours,
leave the rest) and ``template`` (its CloudFormation form, rendered from the calls its
plan made for an empty account), ``operator_statements`` (what the caller's IAM policy
must grant for its read, plan and teardown calls) and ``checks`` (status's checks of its
own resource's health, beyond the rows); the planner, the template's assembly, the
operator's policy and status's checks run them in :data:`~.ORDER` and know none by name.  One
:class:`Planning` is shared by all of them for one plan, so that the plan's order is the
order in which the kinds added their calls, and status and create collect the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..plan import Check, CodeArtifact, ResourceStatus, Step

if TYPE_CHECKING:
    from ...config import PypicloudConfig
    from ..actual import Actual
    from ..aws import AwsClients
    from ..desired import Desired
    from ..options import DeployOptions
    from ..peers import Peer


class Kind(Protocol):
    """One AWS resource kind (a module): its rows are named ``KIND``."""

    KIND: str

    def name(self, p: Planning) -> str: ...

    def read(self, p: Planning) -> None: ...

    def plan(self, p: Planning) -> None: ...

    def teardown(self, p: Planning) -> None: ...

    def template(self, p: Planning, created: Sequence[Step]) -> dict[str, dict[str, Any]]:
        ...

    def operator_statements(self, s: Grantee) -> list[dict[str, Any]]: ...

    def checks(self, p: Planning) -> list[Check]: ...


@dataclass(frozen=True)
class Grantee:
    """Whom the operator's policy is for: one function's sync in one account and region.

    The policy is written before anything exists and without credentials, so the kinds
    get names and ARNs from this rather than from a :class:`Planning`, which needs AWS.
    """

    config: PypicloudConfig
    account: str
    region: str
    function_name: str
    partition: str = "aws"
    #: ``-a``'s role: only read and passed, never changed.
    given_role: str | None = None
    subnet_ids: Sequence[str] = ()
    #: Where ``--store-db-password`` keeps the database URL (``ssm``, ``secretsmanager``).
    store: str | None = None
    #: ``--kms-key-arn``: the customer managed key of the function's environment.
    kms_key_arn: str | None = None
    #: The sync is one region of several inis that replicate to each other: the
    #: replication kinds grant their calls only then (one ini alone makes none).
    replicates: bool = False

    def arn(self, service: str, resource: str) -> str:
        """A regional resource's ARN in this account (IAM and S3 ARNs have no region)."""
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


@dataclass
class Planning:
    """Desired and actual state for one plan, and the rows and calls the kinds add."""

    config: PypicloudConfig
    options: DeployOptions
    clients: AwsClients
    actual: Actual
    desired: Desired
    #: False in status mode: a state create must refuse becomes a drifted row.
    strict: bool = True
    #: The function's zip, built or read at most once and only when a kind asks.
    code: Callable[[], CodeArtifact] | None = None
    steps: list[Step] = field(default_factory=list)
    rows: list[ResourceStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: What differs and stays so without ``force`` (see Plan.drift).
    drift: list[str] = field(default_factory=list)
    #: The steps each kind's plan added, by ``KIND``: each kind renders its own calls
    #: as its template form, whatever resource names its rows use.
    made: dict[str, list[Step]] = field(default_factory=dict)
    #: Steps that go after every kind's: removing what another kind stops using only
    #: in its own step (the function stops reading a secret when it is updated).
    last: list[Step] = field(default_factory=list)
    #: The other regions' buckets this plan's bucket replicates to: only in a plan of
    #: several inis, and only for the first ini naming the bucket (see :mod:`..peers`).
    peers: tuple[Peer, ...] = ()

    @property
    def fname(self) -> str:
        return self.options.function_name

    def call(self, resource: str, action: str, name: str, summary: str, api: str,
             params: dict[str, Any], *, last: bool = False, ahead: bool = False,
             **extra: Any) -> None:
        """Add one AWS call to the plan; ``api`` is ``"service.operation"`` as boto3
        spells it (``"iam.create_role"``).  ``last``: after every kind's steps;
        ``ahead`` (with ``last``): before the other kinds' last steps, for a removal
        that must precede theirs (a queue's reader before the queue)."""
        service, operation = api.split(".")
        step = Step(resource=resource, action=action, name=name, summary=summary,
                    service=service, operation=operation, params=params, **extra)
        if last and ahead:
            self.last.insert(0, step)
        else:
            (self.last if last else self.steps).append(step)

    def row(self, resource: str, name: str, desired: str, actual: str,
            in_sync: bool | None = None) -> None:
        self.rows.append(ResourceStatus(resource, name, desired, actual,
                                        desired == actual if in_sync is None else in_sync))


__all__ = ["Grantee", "Kind", "Planning"]
