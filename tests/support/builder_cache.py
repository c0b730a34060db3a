"""Builder caches for tests that need a real build from scratch, made fast.

The run's builder cache is shared by every test and every xdist worker: a test must
never delete from it.  A test that must see a build happen starts from a copy instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def cache_copy(cache: Path, to: Path, *, pure_builds: bool) -> Path:
    """A builder cache holding the session's downloaded wheels and nothing built: no
    bundles, no probes and, unless ``pure_builds``, no wheels we built ourselves.

    Downloads are the same bytes whichever cache fetched them, so a test that needs a
    real build from scratch starts from this copy instead of the package index.
    (The session's cache is shared with other workers: never delete from it.)
    """
    to.mkdir(parents=True, exist_ok=True)
    if not (cache / "wheels").exists():  # nothing downloaded yet: as cold as it gets
        return to
    skip = {"logs"} | (set() if pure_builds else {"pure"})
    shutil.copytree(cache / "wheels", to / "wheels",
                    ignore=lambda _, names: [n for n in names if n in skip])
    return to
