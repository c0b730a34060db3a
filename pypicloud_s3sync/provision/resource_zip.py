"""The template's custom resource's own zip: :mod:`.bucket_resource` and what it imports.

The sync function's code in a stack is the built bundle exactly, so the digest Lambda
records is the one status compares with (adding these modules to it would make every
stack-made sync "run other code").  The custom resource's handler goes in a second,
small zip instead, its modules found by following imports as the bundle's are, and
written as reproducibly (fixed order, times and permissions).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..bundle.archive import write_zip
from ..bundle.ours import OWN_PACKAGE, own_files
from .bucket_resource import HANDLER

#: The handler's module, relative to our package: the root whose imports ship.
ROOT = "/".join(HANDLER.split(".")[1:-1]) + ".py"


def write_resource_zip(destination: Path) -> Path:
    """Write the custom resource's zip to ``destination``."""
    with tempfile.TemporaryDirectory(prefix="ppc-s3sync-resource-") as tmp:
        tree = Path(tmp)
        for source in own_files((ROOT,)):
            target = tree / source.relative_to(OWN_PACKAGE.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
        write_zip(tree, destination)
    return destination


__all__ = ["ROOT", "write_resource_zip"]
