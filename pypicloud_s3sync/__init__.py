"""Keep a pypicloud cache in sync with its (replicated) S3 bucket.

As a Pyramid plugin (``pyramid.includes = pypicloud_s3sync`` in pypicloud's ini) it makes
pypicloud 1.3.12 run on today's Python and dependencies, and adds the admin endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .version import __version__

if TYPE_CHECKING:
    from pyramid.config import Configurator

__all__ = ["__version__", "includeme"]


def includeme(config: Configurator) -> None:
    """The plugin's whole surface: compatibility fixes first, then the admin endpoint.

    The fixes must be in place before pypicloud scans its views (which this runs ahead
    of, as ``pyramid.includes`` are processed first); the ``s3sync.*`` names, the
    endpoint URL and the ``s3sync.admin.*`` settings are checked now so that a typo
    stops the server at startup, with one line, not at the first request.
    """
    from . import compat
    from .admin.refusal import refuse
    from .admin.security import AdminSettings
    from .admin.views import add_views
    from .config import ConfigError

    compat.apply()
    try:
        settings = AdminSettings.from_settings(config.get_settings())
    except ConfigError as exc:
        raise refuse(exc) from None
    add_views(config, settings)
