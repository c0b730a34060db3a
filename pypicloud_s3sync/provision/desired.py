"""What the account should hold, computed once per plan from pypicloud's config and the
options: the ARNs every kind refers to, and the function's settings.

Kept apart from the kinds so that each of them reads the same desired state, and from
the reads (:mod:`.actual`) so that a template can be rendered without calling AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..urlsecrets import without_secrets
from . import dbstore, iam
from .errors import ALLOW_DB_PASSWORD, OMIT_DB_PASSWORD, VPC, DeployError, Fix
from .names import dead_letter_queue_name, delivery_rule_name, queue_name

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .aws import AwsClients
    from .options import DeployOptions

DESCRIPTION = "pypicloud-s3sync: applies S3 package events to the pypicloud cache"


def function_environment(config: PypicloudConfig, options: DeployOptions,
                         stored_reference: str | None = None) -> dict[str, str]:
    """``PYPICLOUD_SETTINGS`` values: the loader's credential-free settings, plus a
    withheld ``db.url`` only when the operator chose to copy it.

    ``stored_reference`` names the secret create keeps ``db.url`` in: the function reads
    the password from there, so the URL goes without it.
    """
    values = dict(config.function.values)
    db = config.settings.clone()
    db.read_prefix_from_environ("db.")
    if stored_reference:
        values["s3sync.db_url_secret"] = stored_reference
        for key in config.function.withheld:
            values[key] = without_secrets(str(db[key]))
    elif options.db_password == "copy":
        for key in config.function.withheld:
            values[key] = str(db[key])
    return values


def stored_db_url(config: PypicloudConfig) -> str:
    """What ``--store-db-password`` keeps: ``db.url`` as the server uses it."""
    db = config.settings.clone()
    db.read_prefix_from_environ("db.")
    return str(db.get("db.url") or "")


def _local_stand_in(endpoint_url: str | None) -> bool:
    """True when every AWS call goes to this machine (a moto server, as in the demo):
    such a function is run locally, where a SQLite file or a local database is reachable."""
    from urllib.parse import urlsplit

    if not endpoint_url:
        return False
    host = urlsplit(endpoint_url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def check_cache_reachable(config: PypicloudConfig, options: DeployOptions,
                          warnings: list[str], *, strict: bool = True) -> None:
    """Stop on a withheld password (unless chosen), warn about caches Lambda cannot reach."""
    withheld = config.function.withheld
    if options.store_db_password and config.option("db_url_secret"):
        raise DeployError("s3sync.db_url_secret names a secret of yours and "
                          "--store-db-password asks create to keep one; choose one")
    if options.store_db_password and not str(config.settings.get("db.url") or ""):
        raise DeployError("--store-db-password keeps db.url in a secret, but this cache "
                          "has no db.url")
    if withheld and options.db_password == "refuse" and strict \
            and not options.store_db_password:
        key, reason = next(iter(withheld.items()))
        raise DeployError(
            reason.split(";")[0],
            Fix(*ALLOW_DB_PASSWORD, "pass {} to copy it into the function's environment"),
            Fix(*OMIT_DB_PASSWORD, f"pass {{}} and set PPC_{key.upper().replace('.', '_')} "
                                   "on the function yourself"),
        )
    if withheld and options.db_password == "copy":
        warnings.append(
            f"copying {', '.join(withheld)} with its password into the function's "
            "environment (visible to anyone who can read the function's configuration)"
        )
    if withheld and options.db_password == "omit":
        warnings.append(
            f"{', '.join(withheld)} is not in the function's settings; set "
            + ", ".join(f"PPC_{k.upper().replace('.', '_')}" for k in withheld)
            + " on the function yourself or it cannot open the cache"
        )
    url = str(config.settings.get("db.url", ""))
    if _local_stand_in(options.endpoint_url):
        return  # AWS played on this machine (moto): its function runs here too
    if config.sqlite_cache:
        warnings.append(
            f"db.url = {url} is a SQLite file on this machine; the Lambda function cannot "
            "reach it and will fail on every event. Use PostgreSQL, MySQL, Redis or DynamoDB"
        )
    elif config.cache_backend in ("sql", "redis") and not options.vpc:
        warnings.append(
            f"the {config.cache_backend} cache must be reachable from Lambda; if it is in a "
            f"VPC, pass {VPC[0]}"
        )


@dataclass
class Desired:
    account: str
    partition: str
    role_arn: str
    function_arn: str
    rule_arn: str
    env: dict[str, str]
    #: Where create keeps db.url (``--store-db-password``), else None.
    stored: dbstore.StoredSecret | None = None
    #: ``--delivery sqs``'s queue and dead-letter queue (named whatever the delivery,
    #: so that switching away finds them to remove).
    queue_arn: str = ""
    dead_letter_queue_arn: str = ""


def desired_state(config: PypicloudConfig, options: DeployOptions, clients: AwsClients) -> Desired:
    account, partition = clients.account, clients.partition
    stored = (dbstore.StoredSecret.for_function(options.store_db_password,
                                                options.function_name, clients.region,
                                                account, partition)
              if options.store_db_password else None)
    return Desired(
        stored=stored,
        account=account,
        partition=partition,
        role_arn=options.role_arn
        or iam.role_arn(account, options.role_name(clients.region), partition),
        function_arn=(f"arn:{partition}:lambda:{clients.region}:{account}:"
                      f"function:{options.function_name}"),
        rule_arn=f"arn:{partition}:events:{clients.region}:{account}:rule/{delivery_rule_name(options.function_name)}",
        env=function_environment(config, options, stored.reference if stored else None),
        queue_arn=f"arn:{partition}:sqs:{clients.region}:{account}:"
                  f"{queue_name(options.function_name)}",
        dead_letter_queue_arn=f"arn:{partition}:sqs:{clients.region}:{account}:"
                              f"{dead_letter_queue_name(options.function_name)}",
    )


__all__ = ["DESCRIPTION", "Desired", "check_cache_reachable", "desired_state",
           "function_environment", "stored_db_url"]
