"""Facts that stop a whole plan before any kind is planned: the sync belongs to a
CloudFormation stack, the bucket is in another region, the database secret cannot work.

Each would otherwise surface halfway through an apply, with some resources made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..urlsecrets import without_secrets
from .errors import DB_URL_SECRET, REGION, DeployError, Fix
from .iam import secret_resource
from .resources.base import Planning

if TYPE_CHECKING:
    from ..function.dbsecret import SecretRef


def check_stack(p: Planning, instead: str) -> None:
    """Leave a stack's resources to the stack: refuse (saying what to do ``instead``),
    or in status mode report the stack and compare as usual.

    A change made here would be drift the stack reverts on its next update, and a
    delete would leave the stack failing to delete what is gone.
    """
    stack = p.actual.stack
    if stack is None:
        return
    managed_by = f"managed by CloudFormation stack {stack}"
    if p.strict:
        raise DeployError(f"function {p.fname} is {managed_by}; {instead}")
    p.row("cloudformation-stack", stack, "left to the stack", managed_by, True)
    p.warnings.append(
        f"{p.fname} is {managed_by}: change it by deploying a new template "
        "(ppc-s3sync export), remove it with aws cloudformation delete-stack "
        f"--stack-name {stack}")


def check_region(p: Planning) -> None:
    """Refuse a plan for another region than the bucket's, before any step.

    S3 notifies only functions in the bucket's own region: on AWS such a plan would
    create the role and the function, then fail at the notification.
    """
    bucket_region, region = p.actual.bucket_region, p.clients.region
    if bucket_region is None or bucket_region == region:
        return
    raise DeployError(
        f"bucket {p.config.target.bucket} is in {bucket_region}, but the sync "
        f"would be set up in {region}; S3 only notifies functions in the bucket's own "
        "region",
        Fix(*REGION, f"set storage.region_name = {bucket_region} in the ini, or "
                     f"{{}} {bucket_region}"))


def check_db_secret(p: Planning) -> None:
    """Refuse a ``s3sync.db_url_secret`` the function could not use, before any step:
    on AWS the function would be deployed and then fail every cold start.

    The messages never quote the secret's value (it may be the password).
    """
    from ..function.dbsecret import SecretError, database_url, parse_ref
    from .actual import MISSING

    reference = p.config.option("db_url_secret")
    if not reference:
        return
    try:
        ref = parse_ref(str(reference))
        if ref.region != p.clients.region:
            raise SecretError(
                f"{ref.kind} {ref.arn} is in {ref.region}, but the function would be in "
                f"{p.clients.region}; copy the secret to {p.clients.region} (a "
                "function reads its secret in its own region)")
        if p.actual.db_secret is None:
            return  # not read: a template is rendered without calling AWS
        if p.actual.db_secret == MISSING:
            raise SecretError(f"{ref.kind} {ref.arn} does not exist; correct the ARN "
                              f"or create it: {_create_secret_command(ref)}")
        db = p.config.settings.clone()
        db.read_prefix_from_environ("db.")
        database_url(p.actual.db_secret or "",
                     without_secrets(str(db.get("db.url") or "")) or None, ref)
    except SecretError as exc:
        raise DeployError(str(exc), Fix(*DB_URL_SECRET)) from None


def _create_secret_command(ref: SecretRef) -> str:
    """The command that makes the missing secret, since the message is all an operator
    with an installed wheel has to go on (no docs ship with it)."""
    if ref.service == "ssm":
        name = ref.arn.split(":parameter", 1)[1]
        return (f"aws ssm put-parameter --region {ref.region} --name {name} "
                "--type SecureString --value DATABASE_URL")
    name = ref.arn.split(":secret:", 1)[1]
    if secret_resource(ref.arn) == ref.arn:
        name = name[:-7]  # without the six characters AWS appends
    return (f"aws secretsmanager create-secret --region {ref.region} --name {name} "
            "--secret-string DATABASE_URL, then set s3sync.db_url_secret to the ARN it "
            "prints (AWS gives the name a new suffix)")


__all__ = ["check_db_secret", "check_region", "check_stack"]
