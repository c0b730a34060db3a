"""What kind of failure a botocore exception is, and the line that says what to do.

The command line and the admin API meet the same failures and answer them in their own
terms (an exit status, an HTTP status), so the sorting lives here, beside
:class:`~.errors.AwsError`, and each front end only maps a kind to its status.  Two
kinds are not AWS's doing and say so: missing credentials are a configuration problem
of this machine, and an unreachable endpoint is often one of our own settings, which
the message then names.  :func:`classify` sorts anything an operation raised, in the
words of a caller who sees the server's settings but not its command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..bundle.errors import BundleError
from ..config import ConfigError
from .errors import (
    ApplyError,
    AwsError,
    BlockedNotification,
    DeployError,
    Fix,
    MissingCredentials,
    ProvisionError,
)

DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure",
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId",
    "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
})
THROTTLED = frozenset({
    "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
    "SlowDown", "ServiceUnavailable", "ServiceUnavailableException",
})
CONFLICT = frozenset({
    "ResourceConflictException", "ConcurrentModificationException", "OperationAborted",
    "ConflictException",
})

#: Where boto3's default chain looks, which is where whoever runs a command can add them.
ENVIRONMENT_WAYS = ("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, "
                    "~/.aws/credentials (AWS_PROFILE=NAME picks a profile), or an instance "
                    "or task role")
#: What reads storage.* (reconcile, the admin API) also takes pypicloud's own keys.
STORAGE_KEYS = "storage.aws_access_key_id and storage.aws_secret_access_key in the ini"


def kind(exc: BaseException) -> str:
    """credentials, unreachable, denied, throttled, conflict, refused (AWS said no
    otherwise) or other."""
    from botocore import exceptions as bce

    if isinstance(exc, bce.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        # botocore gives the HTTP status as the code when it cannot read the body's (an
        # XML refusal to a JSON-protocol client): 403 Forbidden is a refusal all the same.
        return ("denied" if code in DENIED or code == "403" else "throttled" if code in THROTTLED
                else "conflict" if code in CONFLICT else "refused")
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError
                  | bce.ProfileNotFound | bce.CredentialRetrievalError):
        return "credentials"
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectTimeoutError
                  | bce.ReadTimeoutError | bce.ConnectionClosedError):
        return "unreachable"
    return "other"


def one_line(text: str) -> str:
    """botocore quotes whole response bodies (an HTML error page...): one line of it."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def endpoint_source(exc: BaseException, sources: Mapping[str, str]) -> str:
    """The flag or setting whose URL ``exc`` could not reach, or "" for AWS's own.

    A bucket may be addressed as a subdomain of the endpoint, so the host matches when
    it is the endpoint's or below it, on the same port.
    """
    failed = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url", "")))
    for url, source in sources.items():
        wanted = urlsplit(url)
        host, port = failed.hostname or "", failed.port
        if (wanted.hostname and (host == wanted.hostname or host.endswith("." + wanted.hostname))
                and port == wanted.port):
            return source
    return ""


def unreachable_hint(exc: BaseException, sources: Mapping[str, str]) -> str:
    source = endpoint_source(exc, sources)
    if source:
        return f"the endpoint is set by {source}: check that it is running there, or correct it"
    host = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url", ""))).hostname or ""
    if host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        return "that is AWS's own endpoint for the region: check this machine's network or proxy"
    return "check that the endpoint is up and its URL right"


def missing_credentials(exc: BaseException, *, storage_keys: bool = False) -> MissingCredentials:
    """``storage_keys``: the command reads pypicloud's ``storage.aws_*`` keys too."""
    ways = f"{ENVIRONMENT_WAYS}, or {STORAGE_KEYS}" if storage_keys else ENVIRONMENT_WAYS
    return MissingCredentials(
        f"no usable AWS credentials ({one_line(str(exc))})",
        Fix(ways, f"{STORAGE_KEYS}, or the server's own: {ENVIRONMENT_WAYS}", "give them as {}"))


def translate(exc: BaseException, sources: Mapping[str, str], *,
              storage_keys: bool = False) -> ProvisionError:
    """The error to raise for botocore's ``exc``: credentials are the config's problem;
    an unreachable endpoint names the setting that gave it.  ``storage_keys`` as for
    :func:`missing_credentials`."""
    what = kind(exc)
    if what == "credentials":
        return missing_credentials(exc, storage_keys=storage_keys)
    if what == "unreachable":
        hint = unreachable_hint(exc, sources)
        return AwsError(f"AWS: {one_line(str(exc))} ({hint})", hint=hint)
    return AwsError(f"AWS: {one_line(str(exc))}")


@dataclass(frozen=True)
class Failure:
    """An operation's failure, sorted: ``kind`` says whose problem it is (a front end maps
    it to its own status), ``message`` says it in settings rather than flags, ``hint`` is
    what to do, kept apart so it can follow another message too."""

    kind: str
    message: str
    hint: str = ""


#: Every :attr:`Failure.kind`: AWS said no (``denied``, ``throttled``, ``conflict``,
#: ``aws``) or did not answer (``unreachable``); this machine has no credentials
#: (``credentials``); the account holds what the planner must not touch (``state``);
#: the zip could not be built here (``bundle``); the settings cannot drive the sync
#: (``config``); or a bug of ours (``internal``).
KINDS = ("denied", "throttled", "conflict", "aws", "unreachable", "credentials", "state",
         "bundle", "config", "internal")


def classify(exc: BaseException) -> Failure:
    """Sort whatever an operation raised, so that AWS's refusals are never mistaken for the
    caller's (a login) or the configuration's fault, and a state of the account the planner
    will not touch is told apart from both."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, BlockedNotification):
        return Failure("state", exc.for_api())  # another team's entry: theirs to fix
    if isinstance(exc, AwsError):
        cause = exc.__cause__
        if not isinstance(cause, ClientError | BotoCoreError):
            return Failure("aws", exc.for_api())
        upstream = _botocore_failure(cause, exc.hint)
        if not isinstance(exc, ApplyError):
            return upstream
        # Which step failed and how many were applied comes first, then what to do.
        hint = f". {upstream.hint}" if upstream.hint else ""
        return Failure(upstream.kind, f"{exc.for_api()}{hint}", upstream.hint)
    if isinstance(exc, MissingCredentials):
        return Failure("credentials", f"the server has {exc.for_api()}")
    if isinstance(exc, DeployError):
        return Failure("state", exc.for_api())
    if isinstance(exc, BundleError):
        return Failure("bundle", f"the server could not build the function's zip: {exc}. Build "
                                 "it elsewhere with ppc-build-lambda-bundle and point "
                                 "s3sync.bundle at it")
    if isinstance(exc, ConfigError):
        text = exc.for_api() if isinstance(exc, ProvisionError) else str(exc)
        return Failure("config", f"the server's configuration cannot drive the sync: {text}")
    if isinstance(exc, ClientError | BotoCoreError):
        return _botocore_failure(exc)
    return Failure("internal",
                   f"unexpected {type(exc).__name__}: {exc}; the server log has the details")


def _botocore_failure(exc: BaseException, endpoint_hint: str = "") -> Failure:
    """botocore's error; ``endpoint_hint`` says which setting named an endpoint that did
    not answer."""
    from botocore.exceptions import ClientError

    what = kind(exc)
    if isinstance(exc, ClientError):
        info = exc.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        detail = f"AWS refused {exc.operation_name} ({code}): {info.get('Message', '')}".rstrip()
        hint = _HINTS.get(what, "")
        if not hint:
            return Failure("aws", detail)
        return Failure(what, f"{detail}. {hint}", hint)
    if what == "credentials":
        return classify(missing_credentials(exc))
    if what == "unreachable":
        return Failure("unreachable", f"could not reach AWS: {exc}"
                       + (f" ({endpoint_hint})" if endpoint_hint else ""))
    return Failure("aws", f"AWS call failed: {exc}")


#: What to do about each kind of refusal that is not the operator's mistake.
_HINTS = {
    "denied": ("The server's AWS credentials lack a permission this needs; see the admin API "
               "documentation for the policy to attach"),
    "throttled": "AWS is throttling the server's calls; try again in a minute",
    "conflict": ("Another change to the same resource is in progress; try again once it has "
                 "finished"),
}
