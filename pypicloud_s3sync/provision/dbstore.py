"""The secret create keeps for the function (``--store-db-password``): its name, its ARN,
how to read it, and what the planner does with it.

The secret holds the ini's whole ``db.url``; the function's environment then names it
as ``s3sync.db_url_secret`` like a secret the operator made (see
:mod:`..function.dbsecret`).  It is named after the function and its region, and tagged
as ours: create updates only a tagged one, and delete removes it only when the deployed
function names it and it carries the tag, so a secret the operator created is never
touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import tags
from .aws import read_or_none
from .iam import secret_resource
from .tags import tag_dict

if TYPE_CHECKING:
    from .aws import AwsClients

#: ``--store-db-password`` choices.
STORES = ("secretsmanager", "ssm")



def secret_name(function_name: str, region: str) -> str:
    """The secret's name (the SSM parameter's, with a leading ``/``)."""
    return f"pypicloud-s3sync/{function_name}/{region}/db-url"


@dataclass(frozen=True)
class StoredSecret:
    """Where create keeps the password for one function."""

    store: str
    name: str
    region: str
    account: str
    partition: str

    @classmethod
    def for_function(cls, store: str, function_name: str, region: str, account: str,
                     partition: str) -> StoredSecret:
        name = secret_name(function_name, region)
        return cls(store, name if store == "secretsmanager" else "/" + name, region, account,
                   partition)

    @property
    def reference(self) -> str:
        """What the function's ``s3sync.db_url_secret`` says: the parameter's ARN, or the
        secret's ARN without the suffix Secrets Manager adds (GetSecretValue takes it)."""
        if self.store == "ssm":
            return (f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter"
                    f"{self.name}")
        return (f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:"
                f"{self.name}")

    @property
    def policy_resource(self) -> str:
        """The one resource the role may read."""
        return secret_resource(self.reference)

    @property
    def kind(self) -> str:
        return "secret" if self.store == "secretsmanager" else "SSM parameter"


@dataclass
class SecretState:
    """The stored secret as it is: its ARN, tags and value (None: it does not exist)."""

    arn: str
    tags: dict[str, str]
    value: str | None

    @property
    def ours(self) -> bool:
        return tags.managed(self.tags)


def read_state(stored: StoredSecret, clients: AwsClients) -> SecretState | None:
    """Read the secret (tags and value) if it exists."""
    if stored.store == "secretsmanager":
        sm = clients.client("secretsmanager")
        described = read_or_none(sm.describe_secret, SecretId=stored.name)
        if described is None or described.get("DeletedDate"):
            return None
        value = read_or_none(sm.get_secret_value, SecretId=described["ARN"])
        return SecretState(described["ARN"], tag_dict(described.get("Tags")),
                           None if value is None else value.get("SecretString"))
    ssm = clients.client("ssm")
    found = read_or_none(ssm.get_parameter, Name=stored.name, WithDecryption=True)
    if found is None:
        return None
    listed = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=stored.name)
    return SecretState(found["Parameter"]["ARN"], tag_dict(listed.get("TagList")),
                       found["Parameter"]["Value"])


def create_call(stored: StoredSecret, value: str, function_name: str) -> tuple[str, str,
                                                                                dict[str, Any]]:
    """(service, operation, params) that make the secret, tagged as ours."""
    ours = [{"Key": tags.MANAGED_TAG, "Value": tags.MANAGED_VALUE}]
    description = f"db.url of the pypicloud-s3sync function {function_name}"
    if stored.store == "secretsmanager":
        return "secretsmanager", "create_secret", {
            "Name": stored.name, "SecretString": value, "Description": description,
            "Tags": ours}
    return "ssm", "put_parameter", {
        "Name": stored.name, "Value": value, "Type": "SecureString",
        "Description": description, "Tags": ours}


def update_call(stored: StoredSecret, state: SecretState, value: str) -> tuple[str, str,
                                                                               dict[str, Any]]:
    if stored.store == "secretsmanager":
        return "secretsmanager", "put_secret_value", {"SecretId": state.arn,
                                                      "SecretString": value}
    return "ssm", "put_parameter", {"Name": stored.name, "Value": value,
                                    "Type": "SecureString", "Overwrite": True}


def delete_call(stored: StoredSecret, state: SecretState) -> tuple[str, str, dict[str, Any]]:
    """Without a recovery window: a later create must be able to make it again."""
    if stored.store == "secretsmanager":
        return "secretsmanager", "delete_secret", {"SecretId": state.arn,
                                                   "ForceDeleteWithoutRecovery": True}
    return "ssm", "delete_parameter", {"Name": stored.name}


def from_reference(reference: str | None, function_name: str, region: str, account: str,
                   partition: str) -> StoredSecret | None:
    """The stored secret a deployed function names, if it names ours (by name)."""
    if not reference:
        return None
    for store in STORES:
        stored = StoredSecret.for_function(store, function_name, region, account, partition)
        if reference == stored.reference:
            return stored
    return None


#: Parameters that carry the secret's value: masked wherever a step is shown.
VALUE_PARAMS = ("SecretString", "Value")

__all__ = ["STORES", "SecretState", "StoredSecret", "VALUE_PARAMS", "create_call",
           "delete_call", "from_reference", "read_state", "secret_name", "update_call"]
