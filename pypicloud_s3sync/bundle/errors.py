"""The one error the bundle builder raises for a zip it cannot make.

Every cause is something the operator can change (the runtime, the architecture, the
server's packages, the output file), so it is a
:class:`~pypicloud_s3sync.config.ConfigError`: the commands print its message as they
print any configuration mistake, and the admin endpoint tells it apart to suggest
building the zip elsewhere.
"""

from __future__ import annotations

from ..config import ConfigError


class BundleError(ConfigError):
    """The bundle cannot be built for this target; the message says what and how to fix."""
