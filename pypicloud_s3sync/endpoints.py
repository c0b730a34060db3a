"""The forms an endpoint URL and a region name must have before any client is built.

botocore accepts ``127.0.0.1:5000`` or a URL with a path and fails later, deep inside a
call, with a traceback or an HTML page from the server; an unknown region fails the same
way.  Checking the form where the settings are read turns both into one line that says
what to write instead.  Each check returns the problem in words (or None), so that the
caller can name the setting or flag the value came from.
"""

from __future__ import annotations

import difflib
import functools
import re
from urllib.parse import urlsplit

#: What an endpoint URL looks like, as the messages say it.
ENDPOINT_FORM = ("the server's address only, http://HOST:PORT (a moto server, say) or "
                 "https://HOST[:PORT]")


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint (scheme, host and port only), or None."""
    if "://" not in url:
        return "it has no scheme"
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        return f"its scheme is {parts.scheme!r}, not http or https"
    if not parts.hostname:
        return "it has no host"
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if parts.path not in ("", "/"):
        return f"it has a path ({parts.path})"
    if parts.query or parts.fragment:
        return "it has a query or fragment"
    return None


@functools.cache
def _partitions() -> tuple[tuple[str, frozenset[str]], ...]:
    """(region pattern, known regions) of each AWS partition, from botocore's own data."""
    import botocore.session

    data = botocore.session.get_session().get_data("endpoints")
    return tuple((partition["regionRegex"], frozenset(partition["regions"]))
                 for partition in data["partitions"])


def region_problem(name: str) -> str | None:
    """Why ``name`` is not an AWS region botocore knows, or None.

    botocore's endpoint data lists every region of every partition (aws, aws-cn,
    aws-us-gov...).  A region newer than the installed botocore is refused too; the
    message names botocore's version, as upgrading it is then the fix.
    """
    import botocore

    partitions = _partitions()
    known = frozenset().union(*(regions for _, regions in partitions))
    if name in known:
        return None
    if not any(re.match(pattern, name) for pattern, _ in partitions):
        return "is not the name of an AWS region (such as eu-west-1)"
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    guess = f" (did you mean {close[0]}?)" if close else ""
    return f"is not an AWS region botocore {botocore.__version__} knows{guess}"


@functools.cache
def _partition_data(region: str) -> tuple[str, str]:
    """(partition, DNS suffix) of ``region``, from botocore's endpoint data; a region it
    does not list matches its partition's region pattern, and an unknown one is ``aws``'s
    (as botocore's own ``get_partition_for_region`` answers)."""
    import botocore.session

    session = botocore.session.get_session()
    name = session.get_partition_for_region(region)
    data = session.get_data("endpoints")
    suffix = next(p["dnsSuffix"] for p in data["partitions"] if p["partition"] == name)
    return name, suffix


def partition(region: str) -> str:
    """The ARN partition of ``region``: ``aws``, ``aws-cn`` (cn-north-1), ``aws-us-gov``...

    Every ARN we build for a region starts ``arn:<this>:``; ``arn:aws:`` is wrong in
    China and GovCloud, where IAM then matches nothing.
    """
    return _partition_data(region)[0]


def vpc_service_name(region: str, service: str) -> str:
    """The VPC endpoint service name of ``service`` in ``region``.

    It is the partition's DNS suffix reversed, then region and service:
    ``com.amazonaws.us-east-1.s3``, but ``cn.com.amazonaws.cn-north-1.s3`` in China,
    whose DNS suffix is ``amazonaws.com.cn``.
    """
    prefix = ".".join(reversed(_partition_data(region)[1].split(".")))
    return f"{prefix}.{region}.{service}"
