"""Where the builder keeps what it can reuse: probe answers, wheels and finished zips.

Each entry is named by its inputs (a digest of them, or a wheel's name and version), so
an entry is never stale, only no longer asked for, and the directory is safe to delete
at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

#: Bump when the zip's layout changes, so cached bundles are not reused.
BUILDER_VERSION = "9"


def cache_root() -> Path:
    """``$PPC_S3SYNC_CACHE_DIR``, else ``$XDG_CACHE_HOME/pypicloud-s3sync`` (~/.cache)."""
    explicit = os.environ.get("PPC_S3SYNC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "pypicloud-s3sync"


def digest(value: object) -> str:
    """A cache entry's name: the same inputs, in any order, give the same name."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:32]


def write_atomic(path: Path, data: bytes | str) -> None:
    """Another build reading the cache, or the user the output, sees the old file or the
    new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
