"""How the plugin refuses to start on a setting it cannot use: one line, not a traceback.

A Pyramid plugin's way to refuse bad settings is to raise from ``includeme``; Pyramid
and PasteDeploy add nothing to the message, but ``pserve`` lets the exception reach the
interpreter, which prints some 40 frames of loader code above the one line that
matters.  The refusal is therefore Pyramid's own :class:`ConfigurationError` (what
servers and tools embedding the app expect, still catchable by whoever loads it), and,
for the case where nobody catches it, the process prints just its line.
"""

from __future__ import annotations

import sys
from types import TracebackType

from pyramid.exceptions import ConfigurationError

from ..config import ConfigError


class SettingsRefused(ConfigError, ConfigurationError):
    """The server's ini (or ``PPC_S3SYNC_*`` environment) holds a setting that cannot work."""

    def __str__(self) -> str:
        return f"pypicloud-s3sync: {super().__str__()}"


def refuse(error: ConfigError) -> SettingsRefused:
    """The error to raise from ``includeme``; an uncaught one prints as its line alone."""
    _print_refusals_as_one_line()
    return SettingsRefused(str(error))


def _print_refusals_as_one_line() -> None:
    """Wrap ``sys.excepthook`` once: our refusal gets one line on stderr, every other
    exception goes to the hook that was there before, unchanged."""
    previous = sys.excepthook
    if getattr(previous, "_s3sync_refusal", False):
        return

    def hook(kind: type[BaseException], error: BaseException,
             tb: TracebackType | None) -> None:
        if isinstance(error, SettingsRefused):
            print(f"{error}", file=sys.stderr)
        else:
            previous(kind, error, tb)

    hook._s3sync_refusal = True  # type: ignore[attr-defined]
    sys.excepthook = hook
