"""After a wait ran out: read what explains it and name the first broken link, with the
fix.  Reads only (Get, Head, Describe and queue attribute calls).

The links, in the order a package travels them: the source bucket's replication rule
to the destination (:data:`NO_RULE`), its delete-marker replication for a delete
(:data:`NO_DELETE_MARKERS`), the objects actually arriving (:data:`NOT_REPLICATED`),
the destination's sync function (:data:`FUNCTION_FAILING`), the destination's cache
(:data:`CACHE_UNREACHABLE`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..provision.pathchecks import replication_command
from ..provision.replication_rules import covers, replicates_deletes
from ..provision.replication_rules import destination as destination_of

if TYPE_CHECKING:
    from .sites import Site

NO_RULE = "no replication rule"
NO_DELETE_MARKERS = "no delete-marker replication"
NOT_REPLICATED = "replication not arriving"
FUNCTION_FAILING = "function failing"
CACHE_UNREACHABLE = "cache unreachable"
LINKS = (NO_RULE, NO_DELETE_MARKERS, NOT_REPLICATED, FUNCTION_FAILING, CACHE_UNREACHABLE)
#: The links whose configuration alone shows they cannot work, however long one waits.
CONFIGURED_WRONG = (NO_RULE, NO_DELETE_MARKERS)


@dataclass(frozen=True)
class BrokenLink:
    """The first link that did not hold: what it is, between which regions, what was
    read about it, and what fixes it."""

    link: str
    message: str
    fix: str
    source: str | None = None
    destination: str | None = None

    def describe(self) -> str:
        where = " -> ".join(part for part in (self.source, self.destination) if part)
        return f"broken link: {self.link} ({where}): {self.message}\n  fix: {self.fix}"

    def to_json(self) -> dict[str, Any]:
        return {"link": self.link, "source": self.source, "destination": self.destination,
                "message": self.message, "fix": self.fix}


def _create_both(source: Site, destination: Site) -> str:
    return f"ppc-s3sync create {source.config.config_uri} {destination.config.config_uri}"


def _rules_to(source: Site, destination: Site) -> list[dict[str, Any]] | None:
    """The source's enabled rules covering its prefix whose destination is
    ``destination``'s bucket; None when the bucket has no replication configuration."""
    from botocore.exceptions import ClientError

    from ..provision.aws import error_code

    try:
        config = source.s3.get_bucket_replication(Bucket=source.bucket)
    except ClientError as exc:
        if error_code(exc) != "ReplicationConfigurationNotFoundError":
            raise
        return None
    prefix = source.config.target.prefix
    return [rule for rule in config["ReplicationConfiguration"]["Rules"]
            if rule.get("Status") == "Enabled" and covers(rule, prefix)
            and destination_of(rule) == destination.bucket]


def replication(source: Site, destination: Site, *, delete: bool) -> BrokenLink:
    """Why the canary (``delete``: its delete marker) did not reach the destination."""
    rules = _rules_to(source, destination)
    where = {"source": source.label, "destination": destination.label}
    if not rules:
        prefix = source.config.target.prefix
        command = replication_command(source.bucket, prefix, source.region).replace(
            "OTHER_REGION_BUCKET", destination.bucket)
        said = ("has no replication configuration" if rules is None else
                f"has no enabled replication rule covering {prefix or 'the whole bucket'!r} "
                f"to bucket {destination.bucket}")
        return BrokenLink(NO_RULE, f"bucket {source.bucket} {said}",
                          f"{_create_both(source, destination)} (or: {command})", **where)
    if delete and not any(replicates_deletes(rule) for rule in rules):
        ids = ", ".join(rule.get("ID", "(unnamed)") for rule in rules)
        return BrokenLink(
            NO_DELETE_MARKERS,
            f"rule {ids} of bucket {source.bucket} replicates uploads to "
            f"{destination.bucket} but not delete markers: a package deleted in "
            f"{source.region} stays listed in {destination.region}",
            f"set DeleteMarkerReplication Status=Enabled on rule {ids} "
            f"(aws s3api put-bucket-replication --bucket {source.bucket}), or "
            f"{_create_both(source, destination)}", **where)
    return BrokenLink(NOT_REPLICATED, _why_not_arrived(source, destination, rules),
                      "check the rule's IAM role (S3 must be able to read the source "
                      "and write the destination, and use their KMS keys) and the "
                      f"source object's ReplicationStatus; {_create_both(source, destination)}"
                      " sets up both buckets' rules", **where)


def _why_not_arrived(source: Site, destination: Site, rules: list[dict[str, Any]]) -> str:
    unversioned = [site.bucket for site in (source, destination)
                   if site.s3.get_bucket_versioning(Bucket=site.bucket).get("Status")
                   != "Enabled"]
    if unversioned:
        return (f"versioning is not enabled on {', '.join(unversioned)}: S3 replicates "
                "only between versioned buckets")
    from botocore.exceptions import ClientError

    status = ""
    if source.canary is not None:
        with contextlib.suppress(ClientError):  # already deleted: nothing more to read
            status = source.s3.head_object(Bucket=source.bucket, Key=source.canary.key).get(
                "ReplicationStatus") or ""
    ids = ", ".join(rule.get("ID", "(unnamed)") for rule in rules)
    return (f"rule {ids} of bucket {source.bucket} covers the canary, but it did not reach "
            f"{destination.bucket} in time"
            + (f" (its ReplicationStatus in the source: {status})" if status else ""))


def cache(site: Site, source: Site | None = None) -> BrokenLink:
    """The site's cache raised when opened or read."""
    backend = site.config.cache_backend
    return BrokenLink(
        CACHE_UNREACHABLE,
        f"the {backend} cache of {site.bucket} ({site.config.config_uri}) raised "
        f"{site.cache_error}",
        f"check pypi.db and db.* in {site.config.config_uri}, and that this machine and "
        "the region's function can reach that database",
        source=source.label if source else None, destination=site.label)


def function(source: Site, destination: Site, session: Any = None,
             watch: Callable[[Any], Any] = lambda client: client) -> BrokenLink:
    """The object is in the destination bucket, but its cache never listed (or never
    dropped) it: the destination's sync, as far as it can be read.  ``watch`` sees
    each client made (the run counts their calls)."""
    from ..provision.aws import AwsClients
    from ..provision.options import DeployOptions

    options = DeployOptions.from_config(destination.config,
                                        endpoint_url=destination.endpoint_url)
    name = options.function_name
    clients = AwsClients.from_config(destination.config, options, session=session)
    logs = (f"its log group /aws/lambda/{name} in {clients.region} "
            f"(aws logs tail /aws/lambda/{name} --region {clients.region})")
    lam, sqs = watch(clients.client("lambda")), watch(clients.client("sqs"))
    found = _function_state(lam, name)
    where = {"source": source.label, "destination": destination.label}
    ini = destination.config.config_uri
    if found is None:
        return BrokenLink(FUNCTION_FAILING,
                          f"no sync function {name} in {clients.region}: nothing writes "
                          f"replicated packages into the cache of {destination.bucket}",
                          f"ppc-s3sync create {ini}", **where)
    said = [found, *_queue_state(sqs, name)]
    return BrokenLink(
        FUNCTION_FAILING,
        f"the object reached {destination.bucket} but function {name} did not update its "
        f"cache: {'; '.join(said)}",
        f"read {logs}, fix what it reports, then ppc-s3sync redrive {ini} (for "
        f"--delivery sqs) and ppc-s3sync status {ini}", **where)


def _function_state(lam: Any, name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        found = lam.get_function_configuration(FunctionName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    state = f"state {found.get('State', '?')}, last update {found.get('LastUpdateStatus', '?')}"
    reason = found.get("StateReason") or found.get("LastUpdateStatusReason")
    return state + (f" ({reason})" if reason else "")


def _queue_state(sqs: Any, name: str) -> list[str]:
    """A ``--delivery sqs`` sync's queue: messages waiting or in flight, and the
    dead-letter queue's depth; nothing for another delivery."""
    from botocore.exceptions import ClientError

    from ..provision.names import dead_letter_queue_name, queue_name

    said = []
    for label, queue in (("queue", queue_name(name)),
                         ("dead-letter queue", dead_letter_queue_name(name))):
        try:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        except ClientError:
            return said
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])[
            "Attributes"]
        said.append(f"{label} {queue}: {counts['ApproximateNumberOfMessages']} waiting, "
                    f"{counts['ApproximateNumberOfMessagesNotVisible']} in flight")
    return said

