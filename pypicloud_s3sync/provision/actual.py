"""What exists in the account: the planner's "actual" side.

Everything is read up front into one :class:`Actual` (by :mod:`.snapshot`, each kind's
fields by that kind's ``read``), so planning is a pure comparison and a dry run provably
changes nothing.  It stays one record rather than a state per kind because kinds plan
with each other's facts (the secret goes only once the function stops naming it, the
permissions need the function to exist, the stack is found in several kinds' tags): one
record lets them do so without any kind importing or naming another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .tags import tag_dict

if TYPE_CHECKING:
    from .dbstore import SecretState, StoredSecret


#: ``Actual.db_secret`` of a secret that does not exist.
MISSING = "\0missing"

#: The tag CloudFormation puts on what a stack made (the function always; IAM roles not).
STACK_TAG = "aws:cloudformation:stack-name"


@dataclass
class RoleState:
    """An IAM role as read: the role, its inline policies' names, its attached
    policies' ARNs, and our one inline policy (None when it has none)."""

    role: dict[str, Any]
    inline: list[str] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    policy: dict[str, Any] | None = None


@dataclass
class Actual:
    """What exists now, read once per plan with Get/List calls only; empty for a
    template, which is rendered without calling AWS."""

    role: dict[str, Any] | None = None
    role_policy: dict[str, Any] | None = None
    role_inline: list[str] = field(default_factory=list)
    role_attached: list[str] = field(default_factory=list)
    function: dict[str, Any] | None = None
    function_tags: dict[str, str] = field(default_factory=dict)
    #: Why the function's environment could not be read (Lambda's ``Environment.Error``
    #: for a caller who may not decrypt with its key); None when it was read.
    environment_unreadable: str | None = None
    #: The CloudFormation stack that made these resources, from their tags: a stack
    #: undoes by-hand changes on its next update, so create and delete leave them alone.
    stack: str | None = None
    invoke_config: dict[str, Any] | None = None
    #: The ARN of the customer managed KMS key that encrypts the ``--on-failure`` queue
    #: or topic (its ``KmsMasterKeyId``), which the role must be allowed to use.
    on_failure_key: str | None = None
    #: The function's reserved concurrency; None when it has none.
    reserved_concurrency: int | None = None
    #: GetAccountSettings' ``AccountLimit`` (the Region's concurrency limit and what is
    #: unreserved of it), read only when the plan may reserve concurrency.
    account_limit: dict[str, Any] | None = None
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)
    notification: dict[str, Any] = field(default_factory=dict)
    #: The region the bucket is in (GetBucketLocation), which the plan's must match.
    bucket_region: str | None = None
    #: True when the bucket does not exist (read for delete only: create and status
    #: refuse a missing bucket).
    bucket_missing: bool = False
    rule: dict[str, Any] | None = None
    rule_tags: dict[str, str] = field(default_factory=dict)
    rule_targets: list[dict[str, Any]] = field(default_factory=list)
    #: The reconcile schedule rule (``--reconcile-every``), read whether wanted or not
    #: so that dropping the option removes it.
    schedule: dict[str, Any] | None = None
    schedule_tags: dict[str, str] = field(default_factory=dict)
    schedule_targets: list[dict[str, Any]] = field(default_factory=list)
    #: Whether the role given with ``-a`` exists; None when it was not looked up (no
    #: ``-a``, not a role ARN, or another account's role, which we cannot read).
    given_role_exists: bool | None = None
    #: Other EventBridge rules that mention the bucket (they still need its delivery);
    #: listed only when our rule says we turned that delivery on.
    other_bucket_rules: list[str] = field(default_factory=list)
    #: The value of ``s3sync.db_url_secret`` (read once, never shown); None when there
    #: is none to read, and :data:`MISSING` when the secret does not exist.
    db_secret: str | None = field(default=None, repr=False)
    #: The secret create keeps db.url in (``--store-db-password``, or the one the
    #: deployed function names by our naming), and its state (None: missing).
    stored: StoredSecret | None = None
    stored_state: SecretState | None = field(default=None, repr=False)
    #: Secrets of our naming that could not be looked for (the caller may not read
    #: them), when the function's environment could not say which one it names.
    stored_unsearched: list[str] = field(default_factory=list)
    #: Our CloudWatch alarms by name (read whether wanted or not, so that dropping
    #: ``--alarm-topic`` removes them), and each one's tags.
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarm_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    #: ``--delivery sqs``'s queues (read whatever the delivery, so that switching away
    #: removes them): each one's attributes (All) and tags; None when missing.
    queue: dict[str, str] | None = None
    queue_url: str = ""
    queue_tags: dict[str, str] = field(default_factory=dict)
    dead_letter_queue: dict[str, str] | None = None
    dead_letter_queue_url: str = ""
    dead_letter_queue_tags: dict[str, str] = field(default_factory=dict)
    #: The event source mappings from our queue to our function.
    mappings: list[dict[str, Any]] = field(default_factory=list)
    #: Read only when the plan has peers (another region's bucket to replicate to):
    #: the bucket's versioning status ("" when it was never enabled), the replication
    #: role of our naming, and the bucket's replication configuration (None: none).
    bucket_versioning: str | None = None
    replication_role: RoleState | None = None
    replication: dict[str, Any] | None = None

    def find_stack(self) -> str | None:
        """The stack named in the first tags that name one: the function's, which a
        stack always tags, before the role's, which IAM leaves untagged."""
        return next((tags[STACK_TAG] for tags in (
            self.function_tags, tag_dict((self.role or {}).get("Tags")), self.rule_tags,
            self.schedule_tags) if tags.get(STACK_TAG)), None)
