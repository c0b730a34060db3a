"""What the kinds' CloudFormation forms share: the names one kind's resource is known by
to another's, the zips' parameters, and the account's values as the template spells them.

Each kind renders the calls its own plan made for an empty account (``template`` in its
module); :mod:`..cloudformation` assembles them.  Kinds never import each other, so the
logical ids that cross kinds live here: the function (which the settings, permissions,
rules and alarms refer to) and the role (which the function runs as).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..plan import Step

if TYPE_CHECKING:
    from .base import Planning

#: CloudFormation's pseudo parameters, so one template serves any account.
ACCOUNT = "${AWS::AccountId}"
PARTITION = "${AWS::Partition}"
REGION = "${AWS::Region}"
#: The logical ids other kinds' resources refer to.
FUNCTION, ROLE = "Function", "Role"
#: ``--delivery sqs``'s queues, which the queue policy, the mapping and the alarms name.
QUEUE, DEAD_LETTER_QUEUE = "DeliveryQueue", "DeadLetterQueue"
#: The queue's policy, which S3 checks when the bucket's entry is written.
QUEUE_POLICY = "DeliveryQueuePolicy"
#: Template parameters: where the operator uploaded the two zips (see the export).
CODE_BUCKET, CODE_KEY, NOTIFICATION_CODE_KEY = "CodeBucket", "CodeKey", "NotificationCodeKey"

#: A template form: logical id -> resource (``Type``, ``Properties``, maybe ``DependsOn``).
Resources = dict[str, dict[str, Any]]


def resource(kind: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One resource as the template holds it."""
    return {"Type": kind, **extra, "Properties": properties}


def code(key: str) -> dict[str, Any]:
    """A function's ``Code``: the operator's upload, named by the template's parameters."""
    return {"S3Bucket": {"Ref": CODE_BUCKET}, "S3Key": {"Ref": key}}


def function_ref() -> dict[str, str]:
    """The function's name as the template knows it: a reference, so a dependency too."""
    return {"Ref": FUNCTION}


def substitute(value: Any, p: Planning) -> Any:
    """Our own resources' ARNs become references (and so dependencies); any other string
    holding a pseudo parameter becomes a ``Fn::Sub``.  The plan spells the ARNs out, as
    create needs them; the stack only knows them once it made the resource."""
    refs: dict[str, Any] = {p.desired.function_arn: {"Fn::GetAtt": [FUNCTION, "Arn"]}}
    if p.options.delivery == "sqs":
        refs[p.desired.queue_arn] = {"Fn::GetAtt": [QUEUE, "Arn"]}
        refs[p.desired.dead_letter_queue_arn] = {"Fn::GetAtt": [DEAD_LETTER_QUEUE, "Arn"]}
    if not p.options.role_arn:
        refs[p.desired.role_arn] = {"Fn::GetAtt": [ROLE, "Arn"]}
    return _substitute(value, refs)


def _substitute(value: Any, refs: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, refs) for v in value]
    if isinstance(value, str):
        if value in refs:
            return refs[value]
        if "${AWS::" in value:
            return {"Fn::Sub": value}
    return value


def api(step: Step) -> str:
    """The step's call as boto3 spells it (``"iam.create_role"``)."""
    return f"{step.service}.{step.operation}"


def unrendered(kind: str, step: Step) -> AssertionError:
    """A call a kind's template form does not know: it must be rendered, never dropped."""
    return AssertionError(f"{kind}: no CloudFormation form for "
                          f"{step.service}.{step.operation}")


__all__ = ["ACCOUNT", "CODE_BUCKET", "CODE_KEY", "DEAD_LETTER_QUEUE", "FUNCTION",
           "NOTIFICATION_CODE_KEY", "QUEUE", "QUEUE_POLICY",
           "PARTITION", "REGION", "ROLE", "Resources", "api", "code", "function_ref", "resource",
           "substitute", "unrendered"]
