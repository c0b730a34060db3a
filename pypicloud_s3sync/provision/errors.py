"""What provisioning raises, and the fix each front end shows in its own words.

The planner knows what would help (``-f``, another function name...), but not who is
asking: the command line names a flag, the admin API an ini setting or a request field.
So an error carries its fixes as data (:class:`Fix`) and each front end renders them,
instead of one rewriting the other's text.

Three kinds, because each is somebody else's problem: :class:`OptionsError` (the options
are invalid), :class:`DeployError` (the account holds something the planner must not
touch), :class:`AwsError` (AWS refused or could not be reached: not a config mistake).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import ConfigError

if TYPE_CHECKING:
    from .plan import StepResult


@dataclass(frozen=True)
class Fix:
    """One option that resolves (or names the source of) an error.

    ``text`` holds ``{}`` where the option goes; an empty ``text`` only names the option
    inside the message (whose ``{0}``, ``{1}``... are the fixes in order).
    """

    flag: str
    setting: str
    text: str = ""

    def for_cli(self) -> str:
        return self.flag

    def for_api(self) -> str:
        return self.setting


class ProvisionError(Exception):
    """A provisioning failure whose message may name options and suggest fixes.

    ``str()`` is the command line's rendering; :meth:`for_api` names ini settings.
    """

    def __init__(self, message: str, *fixes: Fix) -> None:
        self.template = message
        self.fixes = fixes
        super().__init__(self.render(Fix.for_cli))

    def render(self, name: Callable[[Fix], str]) -> str:
        """The message with each option named by ``name`` and the fixes appended."""
        names = [name(fix) for fix in self.fixes]
        text = self.template
        for index, option in enumerate(names):  # not str.format: values may hold braces
            text = text.replace(f"{{{index}}}", option)
        advice = [fix.text.replace("{}", option)
                  for fix, option in zip(self.fixes, names, strict=True) if fix.text]
        return f"{text}; {', or '.join(advice)}" if advice else text

    def for_api(self) -> str:
        return self.render(Fix.for_api)


class OptionsError(ProvisionError, ConfigError):
    """A deploy option is missing or out of range."""


class DeployError(ProvisionError, ConfigError):
    """Something in the account or the options stops the deploy; the fixes say what to do."""


class AwsError(ProvisionError):
    """AWS refused a call or could not be reached; ``__cause__`` is botocore's error.

    ``hint`` is what to do about it when that is ours to say (which setting named an
    endpoint that did not answer), kept apart so the admin API can add it to its own
    wording of the cause.
    """

    def __init__(self, message: str, *fixes: Fix, hint: str = "") -> None:
        super().__init__(message, *fixes)
        self.hint = hint


class MissingCredentials(ProvisionError, ConfigError):
    """No AWS credentials where boto3 looks: this machine's configuration, not AWS."""


class ApplyError(AwsError):
    """An AWS call failed while applying; ``done`` holds the steps that completed."""

    def __init__(self, message: str, done: list[StepResult]) -> None:
        super().__init__(message)
        self.done = done


class BlockedNotification(ApplyError):
    """S3 refused the bucket's notification document for a destination that is not ours
    (another team's deleted queue...): the account's state, which no wait fixes."""


#: Fixes the planner suggests, named once for both front ends.
FORCE = "-f", '{"force": true} in the request (or s3sync.force = true)'
FUNCTION_NAME = "-n", "s3sync.function_name"
ROLE_ARN = "-a", "s3sync.role_arn"
REGION = "-r", "s3sync.region"
DELIVERY_EVENTBRIDGE = "--delivery eventbridge", "s3sync.delivery = eventbridge"
#: What makes the queues a redrive needs: a message's own words, "run X" or "set X".
MAKE_QUEUES = ("run ppc-create-s3-sync CONFIG --delivery sqs",
               "set s3sync.delivery = sqs in the server's ini and provision (POST /admin/s3sync)")
ALLOW_VERSIONING = "--allow-versioning", "s3sync.allow_versioning = true"
ALLOW_DB_PASSWORD = "--allow-db-password", "s3sync.db_password = copy"
OMIT_DB_PASSWORD = "--omit-db-password", "s3sync.db_password = omit"
DB_URL_SECRET = "s3sync.db_url_secret (in the ini)", "s3sync.db_url_secret"
VPC = ("--subnet-ids and --security-group-ids",
       "s3sync.subnet_ids and s3sync.security_group_ids")
