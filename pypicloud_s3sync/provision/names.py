"""Names of the AWS resources we create, kept within each service's length limit.

AWS rejects a name past its limit, and a plain cut would let two functions whose names
share a long prefix claim one resource (and delete each other's).  A name that fits is
used as is, so existing resources keep their names; a longer one keeps its start for
readability and ends with a digest of the whole name, so different names stay different.
"""

from __future__ import annotations

import hashlib

#: EventBridge rule and IAM role names.
MAX_NAME = 64
#: Lambda permission statement ids.
MAX_STATEMENT_ID = 100
#: SQS queue names.
MAX_QUEUE_NAME = 80
#: CloudWatch alarm names.
MAX_ALARM_NAME = 255
#: Hex characters of the digest a shortened name ends with.
DIGEST_CHARS = 8


def bounded(name: str, limit: int = MAX_NAME) -> str:
    """``name`` itself when it fits in ``limit``, else its start, ``-`` and a digest."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:DIGEST_CHARS]
    return f"{name[:limit - DIGEST_CHARS - 1]}-{digest}"


#: Our EventBridge rule's target Id.
TARGET_ID = "pypicloud-s3sync"
#: The schedule's invoke permission: one per bucket like the others, apart from the
#: delivery rule's ``events`` statement so that each option removes only its own.
SCHEDULE_PRINCIPAL = "schedule"


def delivery_rule_name(function_name: str) -> str:
    """The EventBridge delivery rule of ``--delivery eventbridge``."""
    return bounded(f"pypicloud-s3sync-{function_name}")


def statement_id(principal: str, bucket: str) -> str:
    """Statement ids stable per bucket (``.`` is not allowed in a Sid; ``_`` not in a bucket)."""
    return bounded(f"pypicloud-s3sync-{principal}-{bucket.replace('.', '_')}",
                   MAX_STATEMENT_ID)


def queue_name(function_name: str) -> str:
    """The queue of ``--delivery sqs``, which the bucket (or its rule) sends to."""
    return bounded(f"pypicloud-s3sync-{function_name}", MAX_QUEUE_NAME)


def dead_letter_queue_name(function_name: str) -> str:
    """Where a message goes once it has failed the redrive policy's number of receives."""
    return bounded(f"pypicloud-s3sync-{function_name}-dlq", MAX_QUEUE_NAME)
