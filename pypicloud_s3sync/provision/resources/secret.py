"""``--store-db-password``: the secret create keeps ``db.url`` in, so that the password
never sits in the function's environment.  Its value is never shown in a plan."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import dbstore, tags
from ..aws import error_code
from ..awsfailure import DENIED
from ..desired import stored_db_url
from ..errors import DeployError
from ..plan import ENV_VAR, Check, Step
from .base import Grantee, Planning
from .cfn import Resources, unrendered
from .grants import allow

KIND = "db-secret"


def read(p: Planning) -> None:
    """The secret to compare (create with ``--store-db-password``) or to remove (the
    deployed function names one of ours): so it is read after the function."""
    if p.actual.environment_unreadable and not p.options.store_db_password:
        _find_ours(p)
        return
    p.actual.stored = _stored_secret(p)
    if p.actual.stored is not None:
        p.actual.stored_state = dbstore.read_state(p.actual.stored, p.clients)


def _find_ours(p: Planning) -> None:
    """The function's environment could not say which secret it names: look for ours
    by the name create gives it, in each store, and know it by our tag.  A store the
    caller may not read is noted, for teardown to refuse rather than leave it behind."""
    from botocore.exceptions import ClientError

    clients = p.clients
    for store in dbstore.STORES:
        stored = dbstore.StoredSecret.for_function(store, p.fname, clients.region,
                                                   clients.account, clients.partition)
        try:
            state = dbstore.read_state(stored, clients)
        except ClientError as exc:
            if error_code(exc) not in DENIED:
                raise
            p.actual.stored_unsearched.append(f"{stored.kind} {stored.name}")
            continue
        if state is not None and state.ours:
            p.actual.stored, p.actual.stored_state = stored, state
            return


def _stored_secret(p: Planning) -> dbstore.StoredSecret | None:
    options, clients = p.options, p.clients
    if options.store_db_password:
        return dbstore.StoredSecret.for_function(
            options.store_db_password, options.function_name, clients.region,
            clients.account, clients.partition)
    variables = ((p.actual.function or {}).get("Environment") or {}).get("Variables") or {}
    try:
        settings = json.loads(variables.get(ENV_VAR, "{}"))
    except ValueError:
        return None
    reference = settings.get("s3sync.db_url_secret") if isinstance(settings, dict) else None
    return dbstore.from_reference(reference, options.function_name, clients.region,
                                  clients.account, clients.partition)


def name(p: Planning) -> str:
    return p.desired.stored.name if p.desired.stored else "none"


def plan(p: Planning) -> None:
    """Keep the ini's db.url in the secret create owns."""
    stored, state = p.desired.stored, p.actual.stored_state
    if stored is None:
        _retire(p)
        return
    value = stored_db_url(p.config)
    if state is None:
        p.row(KIND, stored.name, "holds db.url", "missing")
        service, operation, params = dbstore.create_call(stored, value, p.fname)
        p.call(KIND, "create", stored.name,
               f"store db.url in {stored.kind} {stored.name} (tagged {tags.MANAGED_TAG}; "
               "the value is not shown)", f"{service}.{operation}", params)
        return
    if not state.ours:
        raise DeployError(
            f"{stored.kind} {stored.name} exists but was not created by "
            f"pypicloud-s3sync (no {tags.MANAGED_TAG} tag); set s3sync.db_url_secret = "
            f"{state.arn} to use it as it is, or delete it")
    same = state.value == value
    p.row(KIND, stored.name, "holds db.url",
          "holds db.url" if same else "holds another value", same)
    if not same:
        service, operation, params = dbstore.update_call(stored, state, value)
        p.call(KIND, "update", stored.name,
               f"update {stored.kind} {stored.name}: db.url in the ini changed (the value "
               "is not shown)", f"{service}.{operation}", params)


def _retire(p: Planning) -> None:
    """Without ``--store-db-password`` (or with ``off``), the secret of ours that the
    deployed function names goes, after the function is pointed back at db.url: which
    only ``-f`` does, so without it the secret stays while the function reads it."""
    old, state = p.actual.stored, p.actual.stored_state
    if old is None or state is None or not state.ours:
        return
    if old.name in str(p.config.option("db_url_secret") or ""):
        return  # the ini names it with s3sync.db_url_secret: in use, as configured
    if p.actual.environment_unreadable:
        p.notes.append(f"{old.kind} {old.name} stays: function {p.fname}'s environment "
                       "cannot be read, so whether it still reads it cannot be told")
        return
    p.row(KIND, old.name, "none (no --store-db-password)", "holds db.url", False)
    if p.actual.function is not None and not p.options.force:
        p.notes.append(f"{old.kind} {old.name} stays while function {p.fname} reads it; "
                       "run with -f to update the function and delete it")
        return
    service, operation, params = dbstore.delete_call(old, state)
    p.call(KIND, "delete", old.name,
           f"delete {old.kind} {old.name}: --store-db-password is no longer set",
           f"{service}.{operation}", params, last=True)


def teardown(p: Planning) -> None:
    stored, state = p.actual.stored, p.actual.stored_state
    if stored is None and p.actual.stored_unsearched:
        key = (p.actual.function or {}).get("KMSKeyArn") or "the function's KMS key"
        raise DeployError(
            f"function {p.fname}'s environment cannot be read "
            f"({p.actual.environment_unreadable}) and looking for "
            f"{' and '.join(p.actual.stored_unsearched)} was refused, so delete cannot "
            f"tell whether create kept db.url there; allow kms:Decrypt on {key}, or "
            "set s3sync.store_db_password to the store create used, and run delete "
            "again")
    if stored is None or state is None:
        return
    if not state.ours:
        p.notes.append(f"{stored.kind} {stored.name} is not ours; left alone")
        return
    service, operation, params = dbstore.delete_call(stored, state)
    p.call(KIND, "delete", stored.name,
           f"delete {stored.kind} {stored.name} (created to hold db.url)",
           f"{service}.{operation}", params)


def template(p: Planning, created: Sequence[Step]) -> Resources:
    """None: the export refuses ``--store-db-password`` before planning, since the
    template would carry the password; the operator names a secret of theirs instead."""
    for step in created:
        raise unrendered(KIND, step)
    return {}


#: What keeping the secret ``--store-db-password`` names takes, by service (tagged when
#: made, so TagResource / AddTagsToResource come with the create call).
OPERATOR_ACTIONS = {
    "secretsmanager": ["secretsmanager:CreateSecret", "secretsmanager:DeleteSecret",
                       "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                       "secretsmanager:PutSecretValue", "secretsmanager:TagResource"],
    "ssm": ["ssm:AddTagsToResource", "ssm:DeleteParameter", "ssm:GetParameter",
            "ssm:ListTagsForResource", "ssm:PutParameter"],
}


def operator_statements(s: Grantee) -> list[dict[str, Any]]:
    """Only that one secret or parameter, and nothing without the option."""
    if s.store not in OPERATOR_ACTIONS:
        return []
    stored = dbstore.StoredSecret.for_function(s.store, s.function_name, s.region,
                                               s.account, s.partition)
    return [allow("StoredDatabaseSecret", OPERATOR_ACTIONS[s.store],
                  stored.policy_resource)]


def checks(p: Planning) -> list[Check]:
    """None: its row says whether it holds the ini's URL."""
    return []
