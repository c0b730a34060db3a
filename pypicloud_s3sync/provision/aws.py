"""boto3 clients for one account and region, and how to read botocore's errors.

Planning and applying share one :class:`AwsClients`, so callers (and tests) can hook
every call in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..endpoints import region_problem
from .errors import REGION, Fix, OptionsError

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .options import DeployOptions

#: Operation-name prefixes that never change anything (for dry runs and call counting).
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head")
#: Error codes that mean "does not exist" rather than "refused".
MISSING_CODES = frozenset({"NoSuchEntity", "ResourceNotFoundException",
                           "NoSuchEntityException", "NoSuchBucket", "ParameterNotFound"})


def error_code(exc: Exception) -> str:
    """botocore's ``Error.Code`` of a refusal, or "" for any other exception."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def is_missing(exc: Exception) -> bool:
    return error_code(exc) in MISSING_CODES


def read_or_none(call: Callable[..., Any], **kwargs: Any) -> Any:
    """A read that returns None for "does not exist" and raises anything else."""
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def is_mutating(operation_name: str) -> bool:
    """True for API operations that change something (used by dry runs and tests)."""
    return not operation_name.startswith(READ_ONLY_PREFIXES)



@dataclass
class AwsClients:
    """boto3 clients for one account and region, created on first use.

    One object is shared by planning and applying, so callers (and tests) can hook
    every call in one place: register on ``session.events`` before the first call.
    """

    session: Any
    region: str
    endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    #: Each endpoint URL and the flag or setting that gave it, for errors to name.
    endpoint_sources: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _account: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: PypicloudConfig, options: DeployOptions,
                    session: Any = None) -> AwsClients:
        """Clients in ``-r`` / ``storage.region_name`` / the AWS profile's region."""
        import boto3

        session = session or boto3.Session()
        region = options.region or config.target.region or session.region_name
        fix = Fix(*REGION, "set storage.region_name in the ini or {} REGION")
        if not region:
            raise OptionsError("no AWS region", fix)
        problem = region_problem(region)
        if problem:
            # Lambda, IAM and the rest exist in AWS's regions only (moto knows the same);
            # botocore would build a client anyway and fail on its first call.
            raise OptionsError(f"region {region!r} ({_region_source(options, config)}) "
                               f"{problem}", fix)
        return cls(
            session=session,
            region=region,
            endpoint_url=options.endpoint_url,
            s3_endpoint_url=options.endpoint_url or config.target.endpoint_url,
            endpoint_sources=config.endpoint_sources(options.endpoint_url),
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            endpoint = self.s3_endpoint_url if service == "s3" else self.endpoint_url
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=endpoint
            )
        return self._clients[service]

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    @property
    def partition(self) -> str:
        return self.session.get_partition_for_region(self.region)


def _region_source(options: DeployOptions, config: PypicloudConfig) -> str:
    if options.region:
        return f"from {REGION[0]} or {REGION[1]}"
    if config.target.region:
        return "from storage.region_name"
    return "the AWS profile's, from AWS_DEFAULT_REGION or ~/.aws/config"


