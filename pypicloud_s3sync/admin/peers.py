"""The regions a verify from the admin API runs across: the server's own config, then
each ini ``s3sync.verify_with`` names, read and checked before any job starts.

Checked in the request, not in the job, so that a path to fix is the POST's own answer
(no failed operation to poll for it) and names the setting, not a command-line argument.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..config import PREFIX, ConfigError, load_config
from .errors import ApiError
from .security import secret_values

if TYPE_CHECKING:
    from ..config import PypicloudConfig

SETTING = PREFIX + "verify_with"

#: The server's own ini, as the report and a fix name it: pypicloud's app is never told
#: its ini's path (PasteDeploy keeps it out of the settings).
OWN_INI = "<this server's ini>"

#: What to do when the setting is empty: the answer's message and the page's line.
HOW_TO_ENABLE = (f"set {SETTING} in the server's ini to the other regions' pypicloud inis "
                 "(absolute paths, or %(here)s/eu-west-1.ini for one beside this ini) and "
                 "restart the server")


def peer_configs(own: PypicloudConfig, paths: Sequence[str]) -> list[PypicloudConfig]:
    """``own`` first (named :data:`OWN_INI`), then each of ``paths`` loaded as its
    server would load it.

    Another region's ini gets none of this server's ``PPC_*`` overrides: those are
    meant for this server's settings (a ``PPC_DB_URL`` here is not the other region's
    cache). Raises :class:`ApiError`: 409 when nothing is configured, 500 ``config`` for
    an ini that cannot be used, saying which and how to fix it.
    """
    if not paths:
        raise ApiError(409, "conflict", f"no other region to verify with: {HOW_TO_ENABLE}")
    configs = [dataclasses.replace(own, config_uri=OWN_INI)]
    for path in paths:
        try:
            peer = load_config(path, environ={})
        except ConfigError as exc:
            raise _unusable(path, str(exc)) from None
        if peer.target.bucket == own.target.bucket:
            raise _unusable(path, f"its storage.bucket {peer.target.bucket} is this server's "
                                  "own; list only the other regions' inis")
        if any(peer.target.bucket == seen.target.bucket for seen in configs[1:]):
            raise _unusable(path, f"its storage.bucket {peer.target.bucket} is named by "
                                  "another ini of the list too; give each region once")
        configs.append(peer)
    return configs


def peer_secrets(configs: Sequence[PypicloudConfig]) -> frozenset[str]:
    """The other inis' secret values, to scrub beside the server's own: the report and
    any error may quote them (a cache URL with its password)."""
    found: frozenset[str] = frozenset()
    for config in configs:
        found |= secret_values(dict(config.settings.items()), environ={})
    return found


def _unusable(path: str, problem: str) -> ApiError:
    return ApiError(500, "config", f"{SETTING} names {path}, which cannot be used: {problem}. "
                                   f"Fix that file, or the path in {SETTING} (a change there "
                                   "needs a restart of the server)")
