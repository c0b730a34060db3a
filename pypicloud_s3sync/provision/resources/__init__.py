"""The AWS resource kinds a sync is made of, one module each (see :mod:`.base`).

:data:`ORDER` is the order create plans them in, each after what it depends on: the
secret the role's policy names, the role the function runs as, the function before its
settings and before anything may invoke it, the delivery before the schedule, and the
alarms on a function that exists.  Teardown runs it reversed: nothing points at the
function when it goes, and the role goes last but for the secret.
"""

from __future__ import annotations

from . import alarms, async_config, concurrency, delivery, function, role, schedule, secret
from .base import Grantee, Kind, Planning

ORDER: tuple[Kind, ...] = (secret, role, function, async_config, concurrency, delivery,
                           schedule, alarms)

__all__ = ["ORDER", "Grantee", "Kind", "Planning"]
