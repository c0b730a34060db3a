"""The AWS resource kinds a sync is made of, one module each (see :mod:`.base`).

:data:`ORDER` is the order create plans them in, each after what it depends on: the
secret the role's policy names, the role the function runs as, the function before its
settings and before anything may invoke it, the queue of ``--delivery sqs`` with its
policy and the mapping that reads it before the bucket's entry that sends to it, the
delivery before the schedule, and the alarms on a function that exists.  Then, only in a
plan of several inis (with peers), the bucket's versioning, the role S3 replicates as,
and the replication rules that name it (applied after every region's other steps,
since a rule needs the peer's bucket versioned).  Teardown runs
it reversed: nothing points at the function when it goes, and the role goes last but
for the secret.

:data:`READ_ORDER` is the order :mod:`..snapshot` reads them in, each after the kinds
whose state its read depends on: the function's settings once it is known to exist, and
the secret after the function, since without ``--store-db-password`` the secret to read
is the one the deployed function names; the queues first, since the role's policy
depends on whether they still hold events, and the mapping once the function is known.
"""

from __future__ import annotations

from . import (
    alarms,
    async_config,
    concurrency,
    delivery,
    event_source_mapping,
    function,
    queue,
    queue_policy,
    replication,
    replication_role,
    role,
    schedule,
    secret,
    versioning,
)
from .base import Grantee, Kind, Planning

ORDER: tuple[Kind, ...] = (secret, role, function, async_config, concurrency, queue,
                           queue_policy, event_source_mapping, delivery, schedule, alarms,
                           versioning, replication_role, replication)

READ_ORDER: tuple[Kind, ...] = (queue, queue_policy, role, function, async_config,
                                concurrency, secret, event_source_mapping, delivery,
                                schedule, alarms, versioning, replication_role, replication)

__all__ = ["ORDER", "READ_ORDER", "Grantee", "Kind", "Planning"]
