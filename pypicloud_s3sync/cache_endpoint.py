"""Send a DynamoDB cache's calls to the commands' endpoint (a moto server).

``s3sync.endpoint_url`` / ``--endpoint-url`` is where the commands send every AWS call,
but pypicloud's DynamoDB cache reads no endpoint URL: it connects to ``db.host``,
``db.port`` and ``db.secure``, or, without a host, to AWS in ``db.region_name``.  So a
reconcile pointed at moto would still open the cache in the real account.  The endpoint
is translated into those three settings, on a copy of the settings that only our
commands and the admin endpoint open the cache with; the Lambda function's settings
are built from the originals and never carry it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pypicloud.util import EnvironSettings


def dynamo_host_settings(endpoint_url: str) -> dict[str, str]:
    """``db.host``, ``db.port`` and ``db.secure`` that make pypicloud connect there.

    dynamo3 rebuilds the URL as ``scheme://host:port``, so only those three parts of the
    endpoint survive; a port left out means the scheme's own, not dynamo3's 8000.
    """
    url = urlsplit(endpoint_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"endpoint URL {endpoint_url!r} is not http(s)://host[:port]")
    secure = url.scheme == "https"
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    return {"db.host": host, "db.port": str(url.port or (443 if secure else 80)),
            "db.secure": "true" if secure else "false"}


def at_endpoint(settings: EnvironSettings, backend: str,
                endpoint_url: str | None) -> EnvironSettings:
    """The settings to open the cache with when every AWS call goes to ``endpoint_url``.

    Only a DynamoDB cache is an AWS call; a ``db.host`` already given (in the ini or as
    ``PPC_DB_HOST``) says where that cache is and wins.  Returns ``settings`` itself
    when nothing changes, a clone otherwise.
    """
    if backend != "dynamo" or not endpoint_url or settings.get("db.host"):
        return settings
    moved = settings.clone()
    for key, value in dynamo_host_settings(endpoint_url).items():
        moved[key] = value
    return moved


__all__ = ["at_endpoint", "dynamo_host_settings"]
