"""The zip itself: the same bytes for the same tree, what it records, what Lambda refuses.

Entries are sorted, with fixed timestamps and permissions, so a rebuild gives the same
``CodeSha256`` and a deployment can skip an upload that changes nothing.  The zip's
comment records the target (:func:`built_for`), and compiled files and sizes are
checked against the target and Lambda's limits before anyone tries to upload it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..version import __version__
from .errors import BundleError
from .target import Target, is_native

#: Lambda's limits for a function's code: direct upload, and unzipped with layers.
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def write_zip(tree: Path, destination: Path, target: Target | None = None) -> int:
    """Deterministic zip of the tree, recording ``target`` (see :func:`built_for`);
    returns the unzipped size."""
    files = sorted(
        (path.relative_to(tree).as_posix(), path) for path in tree.rglob("*") if path.is_file()
    )
    total = 0
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    os.close(fd)
    with zipfile.ZipFile(tmp, "w") as archive:
        if target is not None:
            archive.comment = json.dumps(
                {"pypicloud-s3sync": __version__, "runtime": target.runtime,
                 "arch": target.arch}, sort_keys=True).encode("utf-8")
        for name, path in files:
            data = path.read_bytes()
            total += len(data)
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.create_system = 3  # unix, so the permission bits below are honoured
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(tmp, destination)
    return total


def zip_sha256(path: Path) -> str:
    """Base64 SHA-256 of the file: Lambda's ``CodeSha256`` for the same bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode()


@dataclass(frozen=True)
class NativeFile:
    """A compiled file in a bundle, as the dynamic loader sees it."""

    name: str
    elf_machine: int | None
    max_glibc: tuple[int, int] | None

    def problems(self, target: Target) -> list[str]:
        found = []
        if self.elf_machine != target.elf_machine:
            found.append(f"{self.name} is not an ELF file for {target.arch}")
        base = self.name.rsplit("/", 1)[-1]
        if ".cpython-" in base and not base.endswith(target.extension_suffix):
            found.append(f"{self.name} is built for another Python than {target.runtime}")
        if self.max_glibc and self.max_glibc > (2, target.glibc_minor):
            found.append(f"{self.name} needs glibc {self.max_glibc[0]}.{self.max_glibc[1]}")
        return found


_GLIBC_VERSION = re.compile(rb"GLIBC_2\.(\d+)")


def native_files(path: Path) -> Iterator[NativeFile]:
    """Every compiled file in a zip, with its CPU and the newest glibc it asks for."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not is_native(info.filename):
                continue
            data = archive.read(info)
            machine = int.from_bytes(data[18:20], "little") if data[:4] == b"\x7fELF" else None
            versions = [int(m) for m in _GLIBC_VERSION.findall(data)]
            yield NativeFile(info.filename, machine, (2, max(versions)) if versions else None)


def check_native_files(path: Path, target: Target) -> None:
    """Refuse a zip with a compiled file the target cannot load (a bug, if it happens)."""
    problems = [problem for native in native_files(path) for problem in native.problems(target)]
    if problems:
        raise BundleError(f"the bundle does not fit {target}: " + "; ".join(problems[:5]))


def built_for(path: str | Path) -> tuple[str, str] | None:
    """``(runtime, arch)`` a zip of ours records, or None for a zip that does not say.

    The record is the zip's comment, so it adds no file to the function and survives a
    copy; a zip made or repacked by other tools has none.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            comment = archive.comment
    except (OSError, zipfile.BadZipFile):
        return None
    try:
        record = json.loads(comment.decode("utf-8"))
        return str(record["runtime"]), str(record["arch"])
    except (ValueError, KeyError, TypeError):
        return None


def check_limits(size: int, unzipped: int, include_boto3: bool) -> None:
    """Lambda refuses bigger code; say so before anyone tries to upload it."""
    if size > MAX_ZIPPED:
        raise BundleError(
            f"the bundle is {size / 2**20:.1f} MiB zipped, over Lambda's 50 MB limit for "
            "a direct upload" + ("; build without --include-boto3" if include_boto3 else "")
        )
    if unzipped > MAX_UNZIPPED:
        raise BundleError(
            f"the bundle is {unzipped / 2**20:.1f} MiB unzipped, over Lambda's 250 MB limit"
        )
