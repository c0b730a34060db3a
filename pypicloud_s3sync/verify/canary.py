"""The canary package: a reserved name, a tiny valid wheel, and its key in each bucket.

The canary travels the exact path a real upload takes: pypicloud's own storage object,
built from the region's ini, writes it (so its key and metadata are pypicloud's), and
the sync function turns key and metadata into a cache entry like any other package's.

Every canary key lies under one known key prefix per bucket: the version carries a
nonce chosen so that the 4-hex directory pypicloud prepends (``storage.prepend_hash``)
is always :data:`HASH_DIR`.  A leftover of an interrupted run is then found by listing
that one small prefix instead of the whole bucket.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: The reserved project name.  No real package may use it in a bucket verify runs on:
#: verify deletes every version of every object under :func:`key_prefix`.
NAME = "ppc-s3sync-canary"
#: The name as it appears in wheel file names.
WHEEL_NAME = NAME.replace("-", "_")
#: The directory pypicloud's hash prefix puts every canary in (see the module's text).
HASH_DIR = "c0de"
SUMMARY = "pypicloud-s3sync verify canary; safe to delete"


def key_prefix(prefix: str, prepend_hash: bool) -> str:
    """Where every canary of a bucket with this ``storage.prefix`` lives."""
    return f"{prefix}{HASH_DIR + '/' if prepend_hash else ''}{NAME}/"


def filename_for(version: str) -> str:
    return f"{WHEEL_NAME}-{version}-py3-none-any.whl"


def _hash_dir(filename: str) -> str:
    return hashlib.md5(filename.encode("utf-8"), usedforsecurity=False).hexdigest()[:4]


def version_for(run: int, source: int, prepend_hash: bool = True) -> str:
    """A PEP 440 version unique to this run (``run``: its start in milliseconds) and
    source region (``source``: its position), whose wheel name hashes into
    :data:`HASH_DIR` when the bucket's keys carry the hash: about 65,000 digests,
    a tenth of a second or so, spent once per region and run."""
    stem = f"0.{run}.{source}.post"
    if not prepend_hash:
        return stem + "0"
    head = hashlib.md5(f"{WHEEL_NAME}-{stem}".encode(), usedforsecurity=False)
    tail = filename_for("")[len(WHEEL_NAME) + 1:].encode()
    for nonce in itertools.count():
        digest = head.copy()
        digest.update(str(nonce).encode() + tail)
        if digest.hexdigest().startswith(HASH_DIR):
            assert _hash_dir(filename_for(stem + str(nonce))) == HASH_DIR
            return stem + str(nonce)
    raise AssertionError("unreachable")


def wheel_bytes(version: str) -> bytes:
    """A minimal valid wheel: one module, METADATA, WHEEL and RECORD."""
    dist_info = f"{WHEEL_NAME}-{version}.dist-info"
    files = {
        f"{WHEEL_NAME}.py": '"""pypicloud-s3sync verify canary."""\n',
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: {NAME}\n"
                                  f"Version: {version}\nSummary: {SUMMARY}\n"),
        f"{dist_info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: pypicloud-s3sync\n"
                               "Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in {**files, f"{dist_info}/RECORD": record}.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


@dataclass
class Canary:
    """One source region's canary: the package pypicloud's storage writes and deletes."""

    version: str
    package: Any

    @property
    def filename(self) -> str:
        return self.package.filename

    @property
    def key(self) -> str:
        return self.package.data["path"]


def make(storage: Any, run: int, source: int) -> Canary:
    """The canary package for ``source``, its key computed by ``storage`` as pypicloud
    computes every package's."""
    from pypicloud.models import Package

    version = version_for(run, source, bool(storage.prepend_hash))
    package = Package(NAME, version, filename_for(version), datetime.now(UTC),
                      summary=SUMMARY, uploader="ppc-s3sync verify")
    storage.get_path(package)
    return Canary(version, package)


def open_storage(settings: Any, client: Any, resource: Any) -> Any:
    """pypicloud's own S3 storage for these settings, calling S3 through ``client``.

    pypicloud's ``S3Storage`` class, configured from ``storage.*`` by pypicloud's own
    parsing (prefix, hash layout, encryption, ACL, storage class), so its key and
    metadata are exactly the server's; only its bucket is a boto3 ``Bucket`` of
    ``resource`` on our client, instead of the one pypicloud's ``configure`` builds,
    which HEADs the bucket and creates it when it is missing, in a client of its own.
    """
    from pypicloud.storage import S3Storage

    from ..function.offline_storage import OfflineS3Storage

    kwargs = OfflineS3Storage.configure(settings)
    kwargs["bucket"] = resource.Bucket(kwargs["bucket"], client=client)
    kwargs["sse"] = settings.get("storage.server_side_encryption")
    return S3Storage(request=None, **kwargs)


def upload(storage: Any, canary: Canary) -> None:
    storage.upload(canary.package, io.BytesIO(wheel_bytes(canary.version)))


def delete(storage: Any, canary: Canary) -> None:
    """pypicloud's own delete: in a versioned bucket, a delete marker."""
    storage.delete(canary.package)
