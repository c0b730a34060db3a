"""Desired state, and the comparison that turns desired vs actual into steps.

:class:`Planner` walks the resources in dependency order (role, function, async
settings, permissions, delivery) and for each one records a status row and, when the
two sides differ, the call that fixes it.  ``plan_create``, ``plan_delete`` and
``status`` in :mod:`pypicloud_s3sync.provision.deploy` are thin drivers around it: status
is the create comparison with ``strict=False``, which records what create would refuse
as a drifted row.  Every remote read happens before, in :mod:`.actual`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..bundle.ours import HANDLER
from ..urlsecrets import without_secrets
from . import alarms, concurrency, dbstore, iam, notifications
from .actual import BUCKET_EVENTBRIDGE_TAG, Actual, parse_role_arn
from .aws import tag_dict
from .errors import (
    ALLOW_DB_PASSWORD,
    DB_URL_SECRET,
    DELIVERY_EVENTBRIDGE,
    FORCE,
    FUNCTION_NAME,
    OMIT_DB_PASSWORD,
    REGION,
    ROLE_ARN,
    VPC,
    DeployError,
    Fix,
)
from .names import MAX_STATEMENT_ID, bounded
from .plan import ENV_VAR, CodeArtifact, ResourceStatus, Step
from .schedule import schedule_rule_name

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from ..function.dbsecret import SecretRef
    from .aws import AwsClients
    from .options import DeployOptions

DESCRIPTION = "pypicloud-s3sync: applies S3 package events to the pypicloud cache"
#: Our EventBridge rule's target Id.
TARGET_ID = "pypicloud-s3sync"
__all__ = ["BUCKET_EVENTBRIDGE_TAG", "Desired", "Planner", "check_cache_reachable",
           "delivery_rule_name", "desired_state", "function_environment", "rule_name",
           "statement_id"]


def rule_name(options: DeployOptions) -> str:
    return delivery_rule_name(options.function_name)


def delivery_rule_name(function_name: str) -> str:
    """The EventBridge delivery rule of ``--delivery eventbridge``."""
    return bounded(f"pypicloud-s3sync-{function_name}")


def statement_id(principal: str, bucket: str) -> str:
    """Statement ids stable per bucket (``.`` is not allowed in a Sid; ``_`` not in a bucket)."""
    return bounded(f"pypicloud-s3sync-{principal}-{bucket.replace('.', '_')}",
                   MAX_STATEMENT_ID)


#: The schedule's invoke permission: one per bucket like the others, apart from the
#: delivery rule's ``events`` statement so that each option removes only its own.
SCHEDULE_PRINCIPAL = "schedule"


def managed(tags: Mapping[str, str]) -> bool:
    return tags.get(iam.MANAGED_TAG) == iam.MANAGED_VALUE


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


def _create_secret_command(ref: SecretRef) -> str:
    """The command that makes the missing secret, since the message is all an operator
    with an installed wheel has to go on (no docs ship with it)."""
    if ref.service == "ssm":
        name = ref.arn.split(":parameter", 1)[1]
        return (f"aws ssm put-parameter --region {ref.region} --name {name} "
                "--type SecureString --value DATABASE_URL")
    name = ref.arn.split(":secret:", 1)[1][:-7]  # without the six characters AWS appends
    return (f"aws secretsmanager create-secret --region {ref.region} --name {name} "
            "--secret-string DATABASE_URL, then set s3sync.db_url_secret to the ARN it "
            "prints (AWS gives the name a new suffix)")


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
        rule_arn=f"arn:{partition}:events:{clients.region}:{account}:rule/{rule_name(options)}",
        env=function_environment(config, options, stored.reference if stored else None),
    )


class Planner:
    """Collects steps and per-resource status rows while comparing desired and actual."""

    def __init__(self, config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
                 actual: Actual, desired: Desired, *, strict: bool = True):
        self.config, self.options, self.clients = config, options, clients
        self.actual, self.desired = actual, desired
        self.steps: list[Step] = []
        self.rows: list[ResourceStatus] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        #: What differs and stays so without ``force`` (see Plan.drift).
        self.drift: list[str] = []
        self.fname = options.function_name
        #: False in status mode: a state create must refuse becomes a drifted row.
        self.strict = strict

    def step(self, *, resource: str, action: str, name: str, summary: str, service: str,
             operation: str, params: dict[str, Any], **extra: Any) -> None:
        """Record one call; keywords only, so a step reads the same wherever it is built."""
        self.steps.append(Step(resource=resource, action=action, name=name, summary=summary,
                               service=service, operation=operation, params=params, **extra))

    def row(self, resource: str, name: str, desired: str, actual: str,
            in_sync: bool | None = None) -> None:
        self.rows.append(ResourceStatus(resource, name, desired, actual,
                                        desired == actual if in_sync is None else in_sync))

    def check_stack(self, instead: str) -> None:
        """Leave a stack's resources to the stack: refuse (saying what to do ``instead``),
        or in status mode report the stack and compare as usual.

        A change made here would be drift the stack reverts on its next update, and a
        delete would leave the stack failing to delete what is gone.
        """
        stack = self.actual.stack
        if stack is None:
            return
        managed_by = f"managed by CloudFormation stack {stack}"
        if self.strict:
            raise DeployError(f"function {self.fname} is {managed_by}; {instead}")
        self.row("cloudformation-stack", stack, "left to the stack", managed_by, True)
        self.warnings.append(
            f"{self.fname} is {managed_by}: change it by deploying a new template "
            "(ppc-s3sync export), remove it with aws cloudformation delete-stack "
            f"--stack-name {stack}")

    def check_region(self) -> None:
        """Refuse a plan for another region than the bucket's, before any step.

        S3 notifies only functions in the bucket's own region: on AWS such a plan would
        create the role and the function, then fail at the notification.
        """
        bucket_region, region = self.actual.bucket_region, self.clients.region
        if bucket_region is None or bucket_region == region:
            return
        raise DeployError(
            f"bucket {self.config.target.bucket} is in {bucket_region}, but the sync "
            f"would be set up in {region}; S3 only notifies functions in the bucket's own "
            "region",
            Fix(*REGION, f"set storage.region_name = {bucket_region} in the ini, or "
                         f"{{}} {bucket_region}"))

    def check_db_secret(self) -> None:
        """Refuse a ``s3sync.db_url_secret`` the function could not use, before any step:
        on AWS the function would be deployed and then fail every cold start.

        The messages never quote the secret's value (it may be the password).
        """
        from ..function.dbsecret import SecretError, database_url, parse_ref
        from .actual import MISSING

        reference = self.config.option("db_url_secret")
        if not reference:
            return
        try:
            ref = parse_ref(str(reference))
            if ref.region != self.clients.region:
                raise SecretError(
                    f"{ref.kind} {ref.arn} is in {ref.region}, but the function would be in "
                    f"{self.clients.region}; copy the secret to {self.clients.region} (a "
                    "function reads its secret in its own region)")
            if self.actual.db_secret is None:
                return  # not read: a template is rendered without calling AWS
            if self.actual.db_secret == MISSING:
                raise SecretError(f"{ref.kind} {ref.arn} does not exist; correct the ARN "
                                  f"or create it: {_create_secret_command(ref)}")
            db = self.config.settings.clone()
            db.read_prefix_from_environ("db.")
            database_url(self.actual.db_secret or "",
                         without_secrets(str(db.get("db.url") or "")) or None, ref)
        except SecretError as exc:
            raise DeployError(str(exc), Fix(*DB_URL_SECRET)) from None

    def create(self, code: Callable[[], CodeArtifact]) -> None:
        """Walk every resource create manages, in dependency order."""
        self.check_stack("change the stack instead: export a new template with "
                         "ppc-s3sync export and deploy it")
        self.check_region()
        self.check_db_secret()
        self.db_store()
        if self.strict:
            self.role()
        else:
            try:
                self.role()
            except DeployError as exc:
                self.row("role", self.options.role_name(self.clients.region),
                         "created by pypicloud-s3sync", str(exc), False)
        if self.actual.function is None and not self.strict:
            self.row("function", self.fname, "exists", "missing", False)
        else:
            self.function(code)
        self.delivery()
        self.schedule()
        alarms.plan(self)

    # stored secret ------------------------------------------------------------
    def db_store(self) -> None:
        """Keep the ini's db.url in the secret create owns; never show its value."""
        stored, state = self.desired.stored, self.actual.stored_state
        if stored is None:
            return
        value = stored_db_url(self.config)
        if state is None:
            self.row("db-secret", stored.name, "holds db.url", "missing")
            service, operation, params = dbstore.create_call(stored, value, self.fname)
            self.step(resource="db-secret", action="create", name=stored.name,
                      summary=f"store db.url in {stored.kind} {stored.name} (tagged "
                      f"{iam.MANAGED_TAG}; the value is not shown)",
                      service=service, operation=operation, params=params)
            return
        if not state.ours:
            raise DeployError(
                f"{stored.kind} {stored.name} exists but was not created by "
                f"pypicloud-s3sync (no {iam.MANAGED_TAG} tag); set s3sync.db_url_secret = "
                f"{state.arn} to use it as it is, or delete it")
        same = state.value == value
        self.row("db-secret", stored.name, "holds db.url",
                 "holds db.url" if same else "holds another value", same)
        if not same:
            service, operation, params = dbstore.update_call(stored, state, value)
            self.step(resource="db-secret", action="update", name=stored.name,
                      summary=f"update {stored.kind} {stored.name}: db.url in the ini "
                      "changed (the value is not shown)",
                      service=service, operation=operation, params=params)

    # role ------------------------------------------------------------------
    def role(self) -> None:
        o, a, d = self.options, self.actual, self.desired
        if o.role_arn:
            self.notes.append(f"using role {o.role_arn} as given (-a); its policy is yours")
            self._check_given_role(o.role_arn)
            return
        name = o.role_name(self.clients.region)
        policy = iam.role_policy(self.config, account=d.account, region=self.clients.region,
                                 function_name=self.fname, subnet_ids=o.subnet_ids,
                                 security_group_ids=o.security_group_ids,
                                 on_failure=o.on_failure, partition=d.partition,
                                 stored_db_secret=(d.stored.store, d.stored.policy_resource)
                                 if d.stored else None, environment_key=o.kms_key_arn)
        if a.role is None:
            self.row("role", name, "exists, trusts lambda.amazonaws.com", "missing")
            self.step(
                resource="role",
                action="create",
                name=name,
                summary=f"create IAM role {name} (trusted by lambda.amazonaws.com, "
                f"tagged {iam.MANAGED_TAG})",
                service="iam",
                operation="create_role",
                params={
                    "RoleName": name,
                    "Path": iam.ROLE_PATH,
                    "AssumeRolePolicyDocument": json.dumps(iam.trust_policy()),
                    "Description": f"pypicloud-s3sync function {self.fname}",
                    "Tags": [{"Key": iam.MANAGED_TAG, "Value": iam.MANAGED_VALUE}],
                },
            )
        else:
            if not managed(tag_dict(a.role.get("Tags"))):
                raise DeployError(
                    f"IAM role {name} exists but was not created by pypicloud-s3sync "
                    f"(no {iam.MANAGED_TAG} tag)",
                    Fix(*ROLE_ARN, "give its ARN as {} to use it as is"),
                    Fix(*FUNCTION_NAME, "choose another function name with {}"),
                )
            trust_ok = iam.same_policy(a.role["AssumeRolePolicyDocument"], iam.trust_policy())
            self.row("role", name, "trusts lambda.amazonaws.com",
                     "trusts lambda.amazonaws.com" if trust_ok else "different trust policy")
            if not trust_ok:
                self.step(
                    resource="role",
                    action="update",
                    name=name,
                    summary=f"reset the trust policy of role {name} to lambda.amazonaws.com",
                    service="iam",
                    operation="update_assume_role_policy",
                    params={"RoleName": name, "PolicyDocument": json.dumps(iam.trust_policy())},
                )
        in_sync = a.role_policy is not None and iam.same_policy(a.role_policy, policy)
        self.row("role-policy", f"{name}/{iam.POLICY_NAME}", "least-privilege policy",
                 "as desired" if in_sync else ("missing" if a.role_policy is None
                                               else "differs"), in_sync)
        if not in_sync:
            self.step(
                resource="role-policy",
                action="update" if a.role_policy else "create",
                name=f"{name}/{iam.POLICY_NAME}",
                summary=f"{'update' if a.role_policy else 'put'} inline policy "
                f"{iam.POLICY_NAME} on role {name} ({len(policy['Statement'])} "
                "statements, no wildcard S3/DynamoDB resources)",
                service="iam",
                operation="put_role_policy",
                params={
                    "RoleName": name,
                    "PolicyName": iam.POLICY_NAME,
                    "PolicyDocument": json.dumps(policy),
                },
            )

    def _check_given_role(self, arn: str) -> None:
        """A missing ``-a`` role would only show up as Lambda retrying "cannot be assumed"."""
        if parse_role_arn(arn) is None:
            raise DeployError(f"{{0}} {arn} is not an IAM role ARN "
                              "(arn:aws:iam::ACCOUNT:role/NAME)", Fix(*ROLE_ARN))
        if self.actual.given_role_exists is False:
            raise DeployError(f"the role given with {{0}} ({arn}) does not exist; create it "
                              "first, or leave out {0} to let this command create one",
                              Fix(*ROLE_ARN))

    # function --------------------------------------------------------------
    def function_config(self, code_handler: str) -> dict[str, Any]:
        o, d = self.options, self.desired
        params: dict[str, Any] = {
            "FunctionName": self.fname,
            "Runtime": o.runtime,
            "Handler": code_handler,
            "Role": d.role_arn,
            "Timeout": o.timeout,
            "MemorySize": o.memory,
            "Description": DESCRIPTION,
            "Environment": {"Variables": {ENV_VAR: json.dumps(d.env, sort_keys=True)}},
        }
        if o.kms_key_arn:
            params["KMSKeyArn"] = o.kms_key_arn
        if o.vpc:
            params["VpcConfig"] = {"SubnetIds": list(o.subnet_ids),
                                   "SecurityGroupIds": list(o.security_group_ids)}
        return params

    def config_drift(self, want: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """Fields that differ, and the update call's parameters (other env vars kept)."""
        have = self.actual.function or {}
        changed = [k for k in ("Runtime", "Handler", "Role", "Timeout", "MemorySize",
                               "Description") if have.get(k) != want[k]]
        have_vars = dict(have.get("Environment", {}).get("Variables", {}) or {})
        try:
            have_env = json.loads(have_vars.get(ENV_VAR, "null"))
        except ValueError:
            have_env = None
        if have_env != self.desired.env:
            changed.append("Environment")
        if (have.get("KMSKeyArn") or "") != want.get("KMSKeyArn", ""):
            changed.append("KMSKeyArn")
            # "" goes back to Lambda's own key when the option was dropped.
            want = {**want, "KMSKeyArn": want.get("KMSKeyArn", "")}
        have_vpc = have.get("VpcConfig") or {}
        want_vpc = want.get("VpcConfig", {})
        if (sorted(have_vpc.get("SubnetIds") or []) != sorted(want_vpc.get("SubnetIds", []))
                or sorted(have_vpc.get("SecurityGroupIds") or [])
                != sorted(want_vpc.get("SecurityGroupIds", []))):
            changed.append("VpcConfig")
            want = {**want, "VpcConfig": want_vpc or {"SubnetIds": [], "SecurityGroupIds": []}}
        update = {k: v for k, v in want.items() if k in changed or k == "FunctionName"}
        if "Environment" in changed:
            have_vars[ENV_VAR] = want["Environment"]["Variables"][ENV_VAR]
            update["Environment"] = {"Variables": have_vars}
        return changed, update

    def function(self, code: Callable[[], CodeArtifact]) -> None:
        o, a = self.options, self.actual
        tags = {iam.MANAGED_TAG: iam.MANAGED_VALUE}
        if a.function is None:
            artifact = code()
            want = self.function_config(artifact.handler)
            self.row("function", self.fname, f"{o.runtime} {o.arch}", "missing")
            self.row("function-code", self.fname, artifact.sha256, "missing")
            self.step(
                resource="function",
                action="create",
                name=self.fname,
                summary=f"create function {self.fname} ({o.runtime}, {o.arch}, {o.memory} MB, "
                f"{o.timeout} s; code {artifact.size / 2**20:.1f} MiB "
                f"sha256 {artifact.sha256})",
                service="lambda",
                operation="create_function",
                params={
                    **want,
                    "Code": {"ZipFile": None},
                    "Architectures": [o.arch],
                    "PackageType": "Zip",
                    "Publish": False,
                    "Tags": tags,
                },
                wait="function_active_v2",
                code=artifact,
            )
            self.invoke_config()
            return
        ours = managed(a.function_tags)
        if not ours and not o.force:
            raise DeployError(
                f"function {self.fname} exists but was not created by pypicloud-s3sync "
                f"(runtime {a.function.get('Runtime')})",
                Fix(*FORCE, "pass {} to update its code and configuration in place"),
                Fix(*FUNCTION_NAME, "choose another name with {}"),
            )
        artifact = code() if o.force else None
        handler = artifact.handler if artifact else a.function.get("Handler", HANDLER)
        want = self.function_config(handler)
        changed, update = self.config_drift(want)
        have_arch = (a.function.get("Architectures") or ["x86_64"])[0]
        code_changed = bool(artifact) and (
            a.function.get("CodeSha256") != artifact.sha256 or have_arch != o.arch)
        self.row("function", self.fname, "as configured",
                 "as configured" if not changed else "differs: " + ", ".join(changed))
        if artifact:
            self.row("function-code", self.fname, f"{artifact.sha256} ({o.arch})",
                     f"{a.function.get('CodeSha256')} ({have_arch})")
        if not o.force:
            if changed:
                self.drift.append(f"function {self.fname}: {', '.join(changed)}")
                self.warnings.append(
                    f"function {self.fname} differs from the config ({', '.join(changed)}); "
                    "run with -f to update it in place"
                )
            self.notes.append(f"function {self.fname} exists; its code is not compared "
                              "without -f")
        else:
            if not ours:
                self.step(
                    resource="function",
                    action="update",
                    name=self.fname,
                    summary=f"tag function {self.fname} as managed by pypicloud-s3sync",
                    service="lambda",
                    operation="tag_resource",
                    params={"Resource": self.desired.function_arn, "Tags": tags},
                )
            if changed:
                self.step(
                    resource="function",
                    action="update",
                    name=self.fname,
                    summary=f"update configuration of {self.fname}: {', '.join(changed)}",
                    service="lambda",
                    operation="update_function_configuration",
                    params=update,
                    wait="function_updated_v2",
                    details={"changed": changed},
                )
            if code_changed:
                assert artifact is not None
                self.step(
                    resource="function-code",
                    action="update",
                    name=self.fname,
                    summary=f"update code of {self.fname} to sha256 {artifact.sha256} "
                    f"({artifact.size / 2**20:.1f} MiB, {o.arch})",
                    service="lambda",
                    operation="update_function_code",
                    params={
                        "FunctionName": self.fname,
                        "ZipFile": None,
                        "Architectures": [o.arch],
                        "Publish": False,
                    },
                    wait="function_updated_v2",
                    code=artifact,
                    details={"from": a.function.get("CodeSha256"), "to": artifact.sha256},
                )
        self.invoke_config()

    def invoke_config(self) -> None:
        o, have = self.options, self.actual.invoke_config or {}
        want: dict[str, Any] = {"MaximumRetryAttempts": o.retry_attempts,
                                "MaximumEventAgeInSeconds": o.max_event_age}
        if o.on_failure:
            want["DestinationConfig"] = {"OnFailure": {"Destination": o.on_failure}}
        have_dest = (have.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        same = (have.get("MaximumRetryAttempts") == o.retry_attempts
                and have.get("MaximumEventAgeInSeconds") == o.max_event_age
                and (have_dest or None) == o.on_failure)
        show = (f"retries {o.retry_attempts}, max age {o.max_event_age} s"
                + (f", on failure -> {o.on_failure}" if o.on_failure else ""))
        have_show = ("missing" if not have else
                     f"retries {have.get('MaximumRetryAttempts')}, max age "
                     f"{have.get('MaximumEventAgeInSeconds')} s"
                     + (f", on failure -> {have_dest}" if have_dest else ""))
        self.row("async-config", self.fname, show, have_show, same)
        if not same:
            self.step(
                resource="async-config",
                action="update" if have else "create",
                name=self.fname,
                summary=f"set async invocation of {self.fname}: {show}",
                service="lambda",
                operation="put_function_event_invoke_config",
                params={"FunctionName": self.fname, **want},
            )
        concurrency.plan(self)

    # permissions -----------------------------------------------------------
    def permission(self, principal: str, source_arn: str, wanted: bool,
                   source_account: str | None, sid: str | None = None) -> None:
        sid = sid or statement_id(principal.split(".")[0], self.config.target.bucket)
        have = self.actual.statements.get(sid)
        condition: dict[str, Any] = {"ArnLike": {"AWS:SourceArn": source_arn}}
        if source_account:
            condition["StringEquals"] = {"AWS:SourceAccount": source_account}
        if have is None and self.actual.stack:  # CloudFormation picks its own Sids
            sid, have = next(((k, s) for k, s in self.actual.statements.items()
                              if (s.get("Principal") or {}).get("Service") == principal
                              and iam.normalize(s.get("Condition", {}))
                              == iam.normalize(condition)), (sid, None))
        matches = bool(have) and (
            (have.get("Principal") or {}).get("Service") == principal
            and iam.normalize(have.get("Condition", {})) == iam.normalize(condition))
        if wanted:
            self.row("permission", sid, f"{principal} from {source_arn}",
                     "as desired" if matches else ("missing" if not have else "differs"),
                     matches)
        if have and (not wanted or not matches) and self.actual.function is not None:
            self.step(
                resource="permission",
                action="delete",
                name=sid,
                summary=f"remove invoke permission {sid} ({principal}) from {self.fname}",
                service="lambda",
                operation="remove_permission",
                params={"FunctionName": self.fname, "StatementId": sid},
            )
        if wanted and not matches:
            params = {"FunctionName": self.fname, "StatementId": sid,
                      "Action": "lambda:InvokeFunction", "Principal": principal,
                      "SourceArn": source_arn}
            if source_account:
                params["SourceAccount"] = source_account
            self.step(
                resource="permission",
                action="create",
                name=sid,
                summary=f"allow {principal} to invoke {self.fname} for {source_arn}",
                service="lambda",
                operation="add_permission",
                params=params,
            )

    # delivery --------------------------------------------------------------
    def _eventbridge_pattern(self) -> dict[str, Any]:
        target = self.config.target
        detail: dict[str, Any] = {"bucket": {"name": [target.bucket]}}
        if target.prefix:
            detail["object"] = {"key": [{"prefix": target.prefix}]}
        return {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"],
                "detail": detail}

    def delivery(self) -> None:
        o, a, d, target = self.options, self.actual, self.desired, self.config.target
        direct = o.delivery == "direct"
        current = a.notification
        ours_now = notifications.find_ours(current, self.fname, d.function_arn)
        entry = notifications.our_entry(d.function_arn, self.fname, target.prefix)
        # The S3 permission comes before the notification: S3 validates it on write.
        self.permission("s3.amazonaws.com", f"arn:{d.partition}:s3:::{target.bucket}",
                        direct, d.account)
        eb_on = notifications.EVENTBRIDGE in current
        if direct:
            clashes = notifications.overlaps(current, target.prefix, self.fname, d.function_arn)
            if clashes:
                if self.strict:
                    raise DeployError(
                        f"bucket {target.bucket} already sends overlapping events to "
                        f"{clashes[0].describe()}; S3 does not allow two notifications for "
                        "the same events and prefix",
                        Fix(*DELIVERY_EVENTBRIDGE, "use {} (no overlap rule), or narrow "
                                                   "that notification's prefix"),
                    )
                self.row("notification", notifications.entry_id(self.fname),
                         "our entry", "conflict: " + clashes[0].describe(), False)
                return
            in_sync = len(ours_now) == 1 and notifications.same_entry(ours_now[0], entry)
            want = notifications.with_ours(current, entry, self.fname, d.function_arn)
        else:
            in_sync = not ours_now
            want = notifications.without_ours(current, self.fname, d.function_arn)
        eb_by_us = a.rule_tags.get(BUCKET_EVENTBRIDGE_TAG) == "enabled-by-us"
        if not direct:
            want = notifications.with_eventbridge(want, True)
        elif a.rule is not None and eb_by_us and not a.other_bucket_rules:
            want = notifications.with_eventbridge(want, False)
        changed = want != current
        if direct:
            self.row("notification", notifications.entry_id(self.fname),
                     f"{', '.join(notifications.OUR_EVENTS)} prefix '{target.prefix}'",
                     "as desired" if in_sync else ("missing" if not ours_now else "differs"),
                     in_sync)
        else:
            self.row("bucket-eventbridge", target.bucket, "EventBridge delivery on",
                     "on" if eb_on else "off", eb_on)
        if changed:
            what = []
            if direct and not in_sync:
                what.append(f"{'replace' if ours_now else 'add'} our entry "
                            f"{entry['Id']} ({', '.join(entry['Events'])}, "
                            f"prefix '{target.prefix}')")
            if not direct and ours_now:
                what.append(f"remove our entry {notifications.entry_id(self.fname)}")
            if notifications.EVENTBRIDGE in want and not eb_on:
                what.append("turn on EventBridge delivery")
            if notifications.EVENTBRIDGE not in want and eb_on:
                what.append("turn off EventBridge delivery (we turned it on)")
            kept = sum(len(want.get(k, [])) for k in notifications.KINDS) - (1 if direct else 0)
            self._notification_step(what, kept, want, current)
        if direct:  # tear down the EventBridge path first, then its permission
            self.rule(wanted=False, enabled_by_us=False)
            self.permission("events.amazonaws.com", d.rule_arn, False, None)
        else:  # the permission exists before the rule can invoke the function
            self.permission("events.amazonaws.com", d.rule_arn, True, None)
            self.rule(wanted=True, enabled_by_us=(not eb_on) or eb_by_us)

    def _notification_step(self, what: list[str], kept: int, want: dict[str, Any],
                           before: dict[str, Any]) -> None:
        """Put the bucket's whole notification configuration: S3 has no call that changes
        one entry, so the summary says what changes and that the others are kept."""
        bucket = self.config.target.bucket
        self.step(
            resource="notification",
            action="update",
            name=bucket,
            summary=f"bucket {bucket} notifications: {'; '.join(what)}; {kept} other "
            f"entr{'y' if kept == 1 else 'ies'} kept as they are",
            service="s3",
            operation="put_bucket_notification_configuration",
            params={"Bucket": bucket, "NotificationConfiguration": want},
            details={"before": before},
        )

    def rule(self, wanted: bool, enabled_by_us: bool) -> None:
        a, name = self.actual, rule_name(self.options)
        pattern = self._eventbridge_pattern()
        if not wanted:
            if a.rule is not None and managed(a.rule_tags):
                self._delete_rule("eventbridge-rule", name, a.rule_targets)
            return
        have_pattern = json.loads(a.rule["EventPattern"]) if a.rule else None
        rule_ok = a.rule is not None and have_pattern == pattern and (
            a.rule.get("State") == "ENABLED")
        self.row("eventbridge-rule", name, json.dumps(pattern, sort_keys=True),
                 json.dumps(have_pattern, sort_keys=True) if a.rule else "missing", rule_ok)
        if a.rule is not None and not managed(a.rule_tags):
            raise DeployError(
                f"EventBridge rule {name} exists but was not created by pypicloud-s3sync",
                Fix(*FUNCTION_NAME, "delete or rename it, or choose another function name "
                                    "with {}"),
            )
        if not rule_ok:
            tags = {iam.MANAGED_TAG: iam.MANAGED_VALUE,
                    BUCKET_EVENTBRIDGE_TAG: a.rule_tags.get(
                        BUCKET_EVENTBRIDGE_TAG,
                        "enabled-by-us" if enabled_by_us else "already-on")}
            self.step(
                resource="eventbridge-rule",
                action="update" if a.rule else "create",
                name=name,
                summary=f"{'update' if a.rule else 'create'} EventBridge rule {name} for "
                f"bucket {self.config.target.bucket} prefix "
                f"'{self.config.target.prefix}'",
                service="events",
                operation="put_rule",
                params={
                    "Name": name,
                    "EventPattern": json.dumps(pattern, sort_keys=True),
                    "State": "ENABLED",
                    "Description": DESCRIPTION,
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                },
            )
        self._rule_targets("eventbridge-rule", "eventbridge-target", name, a.rule_targets)

    def _rule_targets(self, resource: str, row: str, name: str,
                      current: list[dict[str, Any]]) -> None:
        """Point rule ``name`` at the function alone.  Only Id and Arn are compared, so an
        Input an operator added to our target by hand (a deep reconcile, say) is kept."""
        targets = [{"Id": TARGET_ID, "Arn": self.desired.function_arn}]
        have = [{"Id": t["Id"], "Arn": t["Arn"]} for t in current]
        ok = have == targets
        self.row(row, name, self.desired.function_arn,
                 ", ".join(t["Arn"] for t in have) or "missing", ok)
        if not ok:
            self.step(
                resource=resource,
                action="update",
                name=name,
                summary=f"point rule {name} at {self.fname}",
                service="events",
                operation="put_targets",
                params={"Rule": name, "Targets": targets},
            )

    def _delete_rule(self, resource: str, name: str, current: list[dict[str, Any]],
                     what: str = "") -> None:
        """Remove rule ``name``: its targets first, as EventBridge requires."""
        if current:
            self.step(
                resource=resource,
                action="delete",
                name=name,
                summary=f"remove the targets of EventBridge rule {name}",
                service="events",
                operation="remove_targets",
                params={"Rule": name, "Ids": [t["Id"] for t in current]},
            )
        self.step(
            resource=resource,
            action="delete",
            name=name,
            summary=f"delete EventBridge rule {name}{what}",
            service="events",
            operation="delete_rule",
            params={"Name": name},
        )

    # reconcile schedule ----------------------------------------------------
    def schedule(self) -> None:
        """The ``--reconcile-every`` rule: permission first (the rule may fire at once),
        then rule and target; without the option, remove exactly what we made."""
        a, d, o = self.actual, self.desired, self.options
        name = schedule_rule_name(self.fname)
        arn = f"arn:{d.partition}:events:{self.clients.region}:{d.account}:rule/{name}"
        sid = statement_id(SCHEDULE_PRINCIPAL, self.config.target.bucket)
        expression = o.reconcile_schedule
        if a.schedule is not None and not managed(a.schedule_tags):
            raise DeployError(
                f"EventBridge rule {name} exists but was not created by pypicloud-s3sync",
                Fix(*FUNCTION_NAME, "delete or rename it, or choose another function name "
                                    "with {}"),
            )
        if expression is None:
            if a.schedule is not None:
                self.row("reconcile-schedule", name, "none",
                         a.schedule.get("ScheduleExpression") or "a rule", False)
                self._delete_schedule(name)
            self.permission("events.amazonaws.com", arn, False, None, sid=sid)
            return
        have = a.schedule.get("ScheduleExpression") if a.schedule else None
        rule_ok = have == expression and a.schedule.get("State") == "ENABLED"
        self.row("reconcile-schedule", name, expression,
                 (have or "a rule without schedule") if a.schedule else "missing", rule_ok)
        self.permission("events.amazonaws.com", arn, True, None, sid=sid)
        if not rule_ok:
            self.step(
                resource="reconcile-schedule",
                action="update" if a.schedule else "create",
                name=name,
                summary=f"{'update' if a.schedule else 'create'} EventBridge rule {name}: "
                f"reconcile {self.fname} on {expression}",
                service="events",
                operation="put_rule",
                params={
                    "Name": name,
                    "ScheduleExpression": expression,
                    "State": "ENABLED",
                    "Description": "pypicloud-s3sync: reconcile the pypicloud cache with "
                    "its bucket on a schedule",
                    "Tags": [{"Key": iam.MANAGED_TAG, "Value": iam.MANAGED_VALUE}],
                },
                details={"from": have, "to": expression} if a.schedule else {},
            )
        # We set no Input (EventBridge's own scheduled-event document is what the handler
        # recognises), but one an operator added by hand, e.g. {"detail": {"deep": true}}
        # for deep runs, is theirs and stays.
        self._rule_targets("reconcile-schedule", "reconcile-target", name, a.schedule_targets)

    def _delete_schedule(self, name: str) -> None:
        self._delete_rule("reconcile-schedule", name, self.actual.schedule_targets,
                          " (scheduled reconcile)")

    # teardown --------------------------------------------------------------
    def _delete_stored_secret(self) -> None:
        stored, state = self.actual.stored, self.actual.stored_state
        if stored is None or state is None:
            return
        if not state.ours:
            self.notes.append(f"{stored.kind} {stored.name} is not ours; left alone")
            return
        service, operation, params = dbstore.delete_call(stored, state)
        self.step(resource="db-secret", action="delete", name=stored.name,
                  summary=f"delete {stored.kind} {stored.name} (created to hold db.url)",
                  service=service, operation=operation, params=params)

    def teardown(self) -> None:
        """Steps that remove what create made: our entry or rule, the function (and with it
        its permissions), the role if it is ours and holds nothing of anyone else's."""
        self.check_stack("delete the stack instead (aws cloudformation delete-stack "
                         f"--stack-name {self.actual.stack})")
        self.check_region()
        a, d, fname, target = self.actual, self.desired, self.fname, self.config.target
        options = self.options
        ours = notifications.find_ours(a.notification, fname, d.function_arn)
        want = notifications.without_ours(a.notification, fname, d.function_arn)
        eb_by_us = a.rule is not None and a.rule_tags.get(BUCKET_EVENTBRIDGE_TAG) == "enabled-by-us"
        if eb_by_us and notifications.EVENTBRIDGE in want:
            others = a.other_bucket_rules
            if others:
                self.notes.append(f"EventBridge delivery on {target.bucket} stays on: "
                                     f"rule(s) {', '.join(others)} use it")
            else:
                want = notifications.with_eventbridge(want, False)
        elif a.rule is not None and notifications.EVENTBRIDGE in want:
            self.notes.append(f"EventBridge delivery on {target.bucket} stays on: it was on "
                                 "before the sync was created")
        if want != a.notification:
            kept = sum(len(want.get(k, [])) for k in notifications.KINDS)
            what = [f"remove our entry {', '.join(e.get('Id', '?') for e in ours)}"] if ours else []
            eventbridge = notifications.EVENTBRIDGE
            if eventbridge in a.notification and eventbridge not in want:
                what.append("turn off EventBridge delivery (we turned it on)")
            self._notification_step(what, kept, want, a.notification)
        if a.rule is not None:
            if managed(a.rule_tags):
                self._delete_rule("eventbridge-rule", rule_name(options), a.rule_targets)
            else:
                self.notes.append(f"EventBridge rule {rule_name(options)} is not ours; left alone")
        if a.schedule is not None:
            name = schedule_rule_name(fname)
            if managed(a.schedule_tags):
                self._delete_schedule(name)
            else:
                self.notes.append(f"EventBridge rule {name} is not ours; left alone")
        alarms.teardown(self)
        self._delete_stored_secret()
        if a.function is not None:
            if managed(a.function_tags):
                self.step(
                    resource="function",
                    action="delete",
                    name=fname,
                    summary=f"delete function {fname} (its invoke permissions and async "
                    "settings go with it)",
                    service="lambda",
                    operation="delete_function",
                    params={"FunctionName": fname},
                )
            else:
                self.notes.append(f"function {fname} was not created by pypicloud-s3sync; "
                                     "only our permissions are removed from it")
                for principal in ("s3", "events", SCHEDULE_PRINCIPAL):
                    sid = statement_id(principal, target.bucket)
                    if sid in a.statements:
                        self.step(
                            resource="permission",
                            action="delete",
                            name=sid,
                            summary=f"remove invoke permission {sid} from {fname}",
                            service="lambda",
                            operation="remove_permission",
                            params={"FunctionName": fname, "StatementId": sid},
                        )
        if options.role_arn:
            self.notes.append(f"role {options.role_arn} was given with -a; left alone")
        elif a.role is not None:
            role = options.role_name(self.clients.region)
            if not managed(tag_dict(a.role.get("Tags"))):
                self.notes.append(f"role {role} was not created by pypicloud-s3sync; left alone")
            else:
                foreign = [p for p in a.role_inline if p != iam.POLICY_NAME] + a.role_attached
                if iam.POLICY_NAME in a.role_inline:
                    self.step(
                        resource="role-policy",
                        action="delete",
                        name=f"{role}/{iam.POLICY_NAME}",
                        summary=f"delete inline policy {iam.POLICY_NAME} from role {role}",
                        service="iam",
                        operation="delete_role_policy",
                        params={"RoleName": role, "PolicyName": iam.POLICY_NAME},
                    )
                if foreign:
                    self.notes.append(f"role {role} keeps policies added by someone else "
                                         f"({', '.join(foreign)}), so it is not deleted")
                else:
                    self.step(
                        resource="role",
                        action="delete",
                        name=role,
                        summary=f"delete IAM role {role}",
                        service="iam",
                        operation="delete_role",
                        params={"RoleName": role},
                    )
