"""Stand-ins for libraries pypicloud imports at module level that the function never calls.

``pypicloud.storage.s3`` imports ``cryptography`` when it loads, only to sign CloudFront
download URLs for :class:`~pypicloud.storage.CloudFrontS3Storage`.  The Lambda function
reads objects with its own S3 client and hands out no URLs, yet that import alone put
cryptography (and its Rust extension) in every bundle: 4.5 MiB of an 8.5 MiB SQLite
bundle and of a 12.7 MiB PostgreSQL one (psycopg2-binary's libraries are another 3.9),
measured with cryptography 50 on python3.12.  Where cryptography is not installed (the
bundle), the names pypicloud imports are given as placeholders that raise if ever used;
where it is installed (the server, tests), nothing changes.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any, NoReturn

#: What ``pypicloud.storage.s3`` imports from cryptography, module by module.
CLOUDFRONT_SIGNING_NAMES = {
    "cryptography.hazmat.backends": ("default_backend",),
    "cryptography.hazmat.primitives": ("hashes", "serialization"),
    "cryptography.hazmat.primitives.asymmetric": ("padding",),
}


class _Unavailable:
    """A name that exists for ``from x import y`` and fails on any use."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _fail(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(
            f"{self._name} is not in the Lambda bundle: the function never signs CloudFront "
            "URLs, so cryptography is left out"
        )

    __call__ = _fail

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        self._fail()


def without_cloudfront_signing() -> bool:
    """Register the placeholders unless cryptography is importable; True if registered."""
    if "cryptography" in sys.modules or importlib.util.find_spec("cryptography") is not None:
        return False
    names = ["cryptography", "cryptography.hazmat", *CLOUDFRONT_SIGNING_NAMES]
    for name in sorted(set(names), key=len):
        module = ModuleType(name, "placeholder: see pypicloud_s3sync.function.imports")
        module.__path__ = []
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
    for name, attributes in CLOUDFRONT_SIGNING_NAMES.items():
        for attribute in attributes:
            setattr(sys.modules[name], attribute, _Unavailable(f"{name}.{attribute}"))
    return True


__all__ = ["CLOUDFRONT_SIGNING_NAMES", "without_cloudfront_signing"]
