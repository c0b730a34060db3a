"""What of ours the function ships: the handler's package and the modules it imports.

They are found by reading import statements, not listed, so a module added to the
function ships without anyone naming it, and server code stays out.  The same files key
the bundle cache, so a change to any of them builds a new zip.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from ..version import __version__

#: What to give Lambda as the function's handler.
HANDLER = "pypicloud_s3sync.handler.handle_event"

OWN_PACKAGE = Path(__file__).resolve().parent.parent

#: What the function runs of ours: the handler's package, plus the handler string that
#: deployed functions name.  Everything else of ours it needs is found by following their
#: imports, so the commands, the planner, the admin views and this builder stay on the
#: server (the import contract in .importlinter keeps the function package from reaching
#: them), and a module added to the function ships without anyone listing it.
FUNCTION_ROOTS = ("function", "handler.py")
#: CPython 3.11 keeps the AST constructor's recursion count in state the threads share
#: (python/cpython gh-106905 and the reports around it), so two threads parsing at once
#: can fail with "SystemError: AST constructor recursion depth mismatch".  The admin
#: endpoint builds and compares zips in worker threads, so our parses take turns.
_PARSING = threading.Lock()


def own_files(roots: tuple[str, ...] = FUNCTION_ROOTS) -> list[Path]:
    """The modules of ours that go into the zip (and key its cache): ``roots`` (files or
    packages, relative to ours) and what they import.  Other roots serve code of ours
    that ships in a zip of its own (the template's custom resource)."""
    queue = [path for root in roots for path in
             ((OWN_PACKAGE / root).rglob("*.py") if (OWN_PACKAGE / root).is_dir()
              else [OWN_PACKAGE / root])]
    found: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in found or not path.is_file():
            continue
        found.add(path)
        queue.extend(_own_imports(path))
    # Package __init__ files make the modules importable: they ship with what they
    # import when imported, but not what their functions import (the top one's
    # includeme is the server plugin).
    for path in list(found):
        for parent in path.relative_to(OWN_PACKAGE).parents:
            init = OWN_PACKAGE / parent / "__init__.py"
            if init not in found:
                found.add(init)
                found.update(_own_imports(init, module_level_only=True))
    return sorted(found)


def _own_imports(path: Path, module_level_only: bool = False) -> list[Path]:
    """Files of our package that ``path`` imports, at module level or inside functions."""
    package = ".".join(path.relative_to(OWN_PACKAGE.parent).parent.parts)
    with _PARSING:
        tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in tree.body if module_level_only else ast.walk(tree):
        if not isinstance(node, ast.ImportFrom | ast.Import):
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] != OWN_PACKAGE.name or "." not in name:
                continue
            relative = Path(*name.split(".")[1:])
            for candidate in (OWN_PACKAGE / relative.with_suffix(".py"),
                              OWN_PACKAGE / relative / "__init__.py"):
                if candidate.is_file():
                    found.append(candidate)
    return found


def add_own_package(tree: Path) -> None:
    """Our modules as this server has them: the function runs the code the server runs."""
    for source in own_files():
        rel = source.relative_to(OWN_PACKAGE.parent)
        destination = tree / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(source.read_bytes())
    info = tree / f"pypicloud_s3sync-{__version__}.dist-info" / "METADATA"
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text(f"Metadata-Version: 2.1\nName: pypicloud-s3sync\nVersion: {__version__}\n")
