"""The IAM policy an operator (or the admin server's credentials) needs for every command:
create, status and delete of one function's sync, and reconcile of its bucket and cache.

Generated, never written by hand, so that docs/resources.rst and the tests read the one
the commands need; every resource is named where AWS allows it.  Each resource kind
grants what its own read, plan and teardown call (``operator_statements``, in
:data:`~.resources.ORDER`); this module adds what belongs to no kind, and merges the
statements kinds make on one shared resource (the function, the bucket, the rules) so
that the policy keeps one statement per resource.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..config import PypicloudConfig
from ..endpoints import partition as partition_of
from .iam import POLICY_VERSION, dynamo_statements, package_statements, secret_statements
from .resources import ORDER, Grantee
from .resources.grants import allow, on_bucket

#: What the checks beyond our resources read of the bucket (status's versioning and
#: replication checks), and its region, which every plan compares with its own (S3
#: notifies only a function in the bucket's region): facts about the bucket, which no
#: kind makes or removes.
OPERATOR_BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:GetBucketVersioning",
                           "s3:GetReplicationConfiguration"]
#: status looks for a VPC function's subnets' route to S3; EC2 names no resource here.
OPERATOR_VPC_ACTIONS = ["ec2:DescribeRouteTables", "ec2:DescribeSubnets",
                        "ec2:DescribeVpcEndpoints"]
#: status reads the function's last day of metrics; CloudWatch names no resource here.
OPERATOR_METRIC_ACTIONS = ["cloudwatch:GetMetricStatistics"]


def operator_policy(
    config: PypicloudConfig,
    *,
    account: str,
    region: str,
    function_name: str,
    given_role: str | None = None,
    subnet_ids: Sequence[str] = (),
    partition: str | None = None,
    store_db_password: str | None = None,
    kms_key_arn: str | None = None,
    replicates: bool = False,
) -> dict[str, Any]:
    """What an operator (or the admin server's credentials) needs for every command.

    ``store_db_password`` (default: the ini's ``s3sync.store_db_password``) adds keeping
    the secret create owns: make, read, update and delete that one secret or parameter.
    ``kms_key_arn`` (default: ``s3sync.kms_key_arn``) adds using that one key, which
    Lambda does with the caller's rights for the function's environment.
    ``replicates`` adds what a plan of several inis does to replicate the bucket: its
    versioning, the role S3 replicates as, and the bucket's replication configuration.

    create (any ``--delivery``, ``--reconcile-every``, ``--on-failure``), delete and
    status for this one function in ``region``, reconcile of this config's bucket and
    cache, and bundle (which calls no AWS API).  ``given_role`` is ``-a``'s role: it is
    then only read and passed to the function, never changed.  Every resource is named;
    only ``events:ListRules``, ``cloudwatch:GetMetricStatistics``,
    ``lambda:GetAccountSettings`` (and a VPC function's EC2 describe calls) take ``"*"``,
    the one form AWS accepts for them.
    """
    partition = partition or partition_of(region)
    grantee = Grantee(config, account, region, function_name, partition, given_role,
                      tuple(subnet_ids),
                      store_db_password or config.option("store_db_password"),
                      kms_key_arn or config.option("kms_key_arn"), replicates)
    statements = [statement for kind in ORDER for statement in kind.operator_statements(grantee)]
    statements += [
        on_bucket(grantee, OPERATOR_BUCKET_ACTIONS),
        allow("Metrics", OPERATOR_METRIC_ACTIONS, "*"),
        # reconcile reads the bucket and writes the cache as the function does.
        *package_statements(config, partition),
    ]
    if config.cache_backend == "dynamo":
        statements += dynamo_statements(config, account, region, partition)
    if subnet_ids:
        statements.append(allow("VpcChecks", OPERATOR_VPC_ACTIONS, "*"))
    # create reads the secret once, to refuse one the function could not use.
    statements += secret_statements(config)
    return {"Version": POLICY_VERSION, "Statement": merged(statements)}


def merged(statements: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One statement per Sid, where its first one was, with every action granted under
    it (sorted) and every resource; statements under one Sid must agree on the rest."""
    found: dict[str, dict[str, Any]] = {}
    for statement in statements:
        sid = statement["Sid"]
        first = found.get(sid)
        if first is None:
            found[sid] = {**statement, "Action": list(statement["Action"])}
            continue
        assert (first["Effect"], first.get("Condition")) == (
            statement["Effect"], statement.get("Condition")), f"{sid} granted two ways"
        first["Action"] = sorted({*first["Action"], *statement["Action"]})
        resources = _listed(first["Resource"])
        resources += [r for r in _listed(statement["Resource"]) if r not in resources]
        if isinstance(first["Resource"], list) or len(resources) > 1:
            first["Resource"] = resources
    return list(found.values())


def _listed(resource: str | list[str]) -> list[str]:
    return [resource] if isinstance(resource, str) else list(resource)


def redrive_statements(*, account: str, region: str, function_name: str,
                       partition: str) -> list[dict[str, Any]]:
    """What ``ppc-s3sync redrive`` calls, on the ``--delivery sqs`` queue and its
    dead-letter queue (see :mod:`.redrive`): kept apart until the queue's kind grants
    them in its own statements."""
    from .names import dead_letter_queue_name, queue_name
    from .redrive import OPERATOR_ACTIONS

    def arn(name: str) -> str:
        return f"arn:{partition}:sqs:{region}:{account}:{name}"

    return [allow("RedriveQueue", sorted(OPERATOR_ACTIONS["queue"]),
                  arn(queue_name(function_name))),
            allow("RedriveDeadLetterQueue", sorted(OPERATOR_ACTIONS["dead_letter_queue"]),
                  arn(dead_letter_queue_name(function_name)))]
