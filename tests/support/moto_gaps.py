"""Corrections to moto, so tests see what AWS returns.

moto 5.2.5 stores a bucket's ``EventBridgeConfiguration`` but leaves it out of
``GetBucketNotificationConfiguration``; AWS returns it.  Code that merges notification
configurations (ours) must see it to keep it, so without this correction every test of
"EventBridge settings survive" would test moto's gap instead of our code.  The patch
adds the stored element to moto's own response and does nothing when moto already
returns it.

moto 5.2.5 also appends every ``PutFunctionEventInvokeConfig`` to a list and answers
``GetFunctionEventInvokeConfig`` with the first entry, so after a change of retries or
on-failure destination it keeps reporting the old settings; AWS overwrites the one
configuration a function has.  The patch makes the put replace what is stored.

moto 5.2.5 answers ``GetBucketReplication`` with every rule's ``Filter`` as prefix ""
and ``DeleteMarkerReplication`` as Disabled, whatever was put; status judges exactly
those two fields, so the patch returns the stored ones, as AWS does.

moto 5.2.6 has no ``GetAccountSettings`` at all (no route: the client gets a 404), while
create reads it before it reserves concurrency.  :func:`account_settings` adds it, from
moto's own model of the rule: ``MOTO_LAMBDA_CONCURRENCY_QUOTA`` (when set) is the
account's concurrency limit, AWS's default of 1000 otherwise, and what is unreserved is
that minus every function's reserved concurrency, as moto's PutFunctionConcurrency
counts it.  The ``aws`` and ``moto_server`` fixtures install it for every test, since it
only answers a call moto would otherwise leave unanswered.

moto 5.2.5's ``SetQueueAttributes`` sets a queue's ``Policy`` to whatever the call
gives, so any call that changes another attribute (a KMS key, a redrive policy) deletes
the queue's policy; AWS "Sets the value of one or more queue attributes" (botocore's
SQS model, SetQueueAttributes) and keeps the rest.  The patch keeps the policy when the
call does not name it.

moto 5.2.6 stores a ``PutBucketReplication`` that AWS refuses (a destination bucket
that is missing or not versioned, a rule with a Filter but no DeleteMarkerReplication
or Priority, two rules of one priority); :func:`replication_checked` refuses them as
AWS does, installed by the ``aws`` and ``moto_server`` fixtures for every test like
:func:`account_settings`, since it only refuses what AWS refuses.

Under IAM enforcement moto is stricter than AWS in two places, and ``for_moto_user``
copes with both in the policy of the IAM user a test runs as, never in the policy we
generate (parliament and the IAM evaluator keep checking that one with AWS's names):

* moto 5 authorizes DynamoDB requests against resource ``"*"`` only, so a table-scoped
  Allow is refused although AWS grants it;
* moto 5.2.6 authorizes a HEAD of an object as ``s3:HeadObject`` and a ``list-type=2``
  listing as ``s3:ListObjectsV2``.  AWS authorizes them as ``s3:GetObject`` and
  ``s3:ListBucket`` (the Amazon S3 API Reference, HeadObject and ListObjectsV2,
  "Permissions"); neither moto name is an IAM action.
"""

from __future__ import annotations

from typing import Any

import pytest

# AWS's action -> the names moto 5.2.6 authorizes the same request under.
MOTO_S3_ACTIONS = {
    "s3:GetObject": ("s3:HeadObject",),
    "s3:ListBucket": ("s3:ListObjectsV2",),
}


def for_moto_user(policy: dict[str, Any]) -> dict[str, Any]:
    """``policy`` as moto must see it to allow and deny exactly what AWS would: each
    statement (Allow or Deny) that names an S3 action also names moto's names for it,
    and DynamoDB-only statements apply to ``"*"``.  The actions stay the policy's."""
    statements = []
    for statement in policy["Statement"]:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else list(actions)
        widened = actions + [alias for action in actions
                             for alias in MOTO_S3_ACTIONS.get(action, ())
                             if alias not in actions]
        statement = {**statement, "Action": widened}
        if all(action.startswith("dynamodb:") for action in actions):
            statement["Resource"] = "*"
        statements.append(statement)
    return {**policy, "Statement": statements}


def _has_eventbridge(response: Any) -> bool:
    config = response.backend.get_bucket_notification_configuration(response.bucket_name)
    return config is not None and getattr(config, "event_bridge", None) is not None


def _replace_invoke_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.awslambda.models import LambdaBackend

    original = LambdaBackend.put_function_event_invoke_config

    def put_function_event_invoke_config(self: Any, function_name: str,
                                         config: dict[str, Any]) -> dict[str, Any]:
        self.get_function(function_name).event_invoke_config = []
        return original(self, function_name, config)

    monkeypatch.setattr(LambdaBackend, "put_function_event_invoke_config",
                        put_function_event_invoke_config)


def _stored_rules(response: Any, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stored = response.backend.get_bucket_replication(response.bucket_name)["Rule"]
    by_id = {rule.get("ID"): rule for rule in (stored if isinstance(stored, list)
                                               else [stored])}
    fixed = []
    for rule in rules:
        put = by_id.get(rule["ID"], {})
        fixed.append({**rule,
                      "Filter": put.get("Filter") or {"Prefix": put.get("Prefix") or ""},
                      "DeleteMarkerReplication": put.get("DeleteMarkerReplication")
                      or rule["DeleteMarkerReplication"]})
    return fixed


def replication_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse a ``PutBucketReplication`` that AWS refuses and moto 5.2.6 stores.

    moto checks only that the source bucket is versioned (and botocore that a Role is
    given).  AWS also documents:

    * "When you add the Filter element in the configuration, you must also add the
      following elements: DeleteMarkerReplication, Status, and Priority" (Amazon S3 API
      Reference, PutBucketReplication);
    * each rule's Priority "indicates which rule has precedence whenever two or more
      replication rules conflict" (botocore's ReplicationRule.Priority): S3 refuses two
      rules of one configuration with the same priority;
    * "The destination bucket must have versioning enabled" (Amazon S3 User Guide,
      "Use PutBucketReplication with an AWS SDK or CLI"), and it must exist
      (DstBucketNotFound, "Amazon S3 is unable to find the destination bucket that's
      specified in the replication configuration", "Amazon S3 replication failure
      reasons").
    """
    from moto.s3.exceptions import MissingBucket, S3ClientError
    from moto.s3.models import S3Backend

    original = S3Backend.put_bucket_replication

    def refused(message: str) -> S3ClientError:
        return S3ClientError("InvalidRequest", message)

    def put_bucket_replication(self: Any, bucket_name: str, replication: dict[str, Any]) -> None:
        rules = replication["Rule"]
        rules = rules if isinstance(rules, list) else [rules]
        priorities = []
        for rule in rules:
            if "Filter" in rule:
                if "DeleteMarkerReplication" not in rule or "Priority" not in rule:
                    raise refused("DeleteMarkerReplication and Priority are required "
                                  "for a rule with a Filter")
                priorities.append(str(rule["Priority"]))
            destination = rule["Destination"]["Bucket"].rsplit(":", 1)[-1]
            try:
                target = self.get_bucket(destination)
            except MissingBucket:
                raise refused("Destination bucket must exist.") from None
            if target.versioning_status != "Enabled":
                raise refused("Destination bucket must have versioning enabled.")
        if len(set(priorities)) != len(priorities):
            raise refused("Found duplicate priority in the replication configuration")
        original(self, bucket_name, replication)

    monkeypatch.setattr(S3Backend, "put_bucket_replication", put_bucket_replication)


#: Lambda's default "Concurrent executions" quota per account and Region.
DEFAULT_CONCURRENCY_QUOTA = 1000


def account_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer ``GetAccountSettings``'s concurrency fields from moto's own state.

    "UnreservedConcurrentExecutions: The maximum number of simultaneous function
    executions, minus the capacity that's reserved for individual functions with
    PutFunctionConcurrency" (botocore's AccountLimit).
    """
    import json
    import os

    from moto.awslambda import urls
    from moto.awslambda.responses import LambdaResponse

    def get_account_settings(self: Any) -> tuple[int, dict[str, str], str]:
        limit = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA")
                    or DEFAULT_CONCURRENCY_QUOTA)
        functions = self.backend.list_functions()
        reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
        return 200, {}, json.dumps({
            "AccountLimit": {"ConcurrentExecutions": limit,
                             "UnreservedConcurrentExecutions": limit - reserved},
            "AccountUsage": {"FunctionCount": len(functions)}})

    monkeypatch.setitem(urls.url_paths, r"{0}/(?P<api_version>[^/]+)/account-settings/?$",
                        LambdaResponse.dispatch)
    monkeypatch.setattr(LambdaResponse, "get_account_settings", get_account_settings,
                        raising=False)


#: "Function environment variables: 4 KB, for all environment variables associated with
#: the function, combined" (Lambda Developer Guide, Lambda quotas).
ENVIRONMENT_LIMIT = 4096


def environment_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse a CreateFunction or UpdateFunctionConfiguration whose environment variables
    (keys and values) total more than 4 KB, as Lambda does; moto stores any size."""
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend

    def check(spec: dict[str, Any]) -> None:
        variables = (spec.get("Environment") or {}).get("Variables") or {}
        size = sum(len(k.encode()) + len(str(v).encode()) for k, v in variables.items())
        if size > ENVIRONMENT_LIMIT:
            raise InvalidParameterValueException(
                "Lambda was unable to configure your environment variables because the "
                "environment variables you have provided exceeded the 4KB limit. String "
                f"measured: {size}")

    create, update = LambdaBackend.create_function, LambdaBackend.update_function_configuration

    def create_function(self: Any, spec: dict[str, Any]) -> Any:
        check(spec)
        return create(self, spec)

    def update_function_configuration(self: Any, function_name: str, qualifier: str,
                                      body: dict[str, Any]) -> Any:
        check(body)
        return update(self, function_name, qualifier, body)

    monkeypatch.setattr(LambdaBackend, "create_function", create_function)
    monkeypatch.setattr(LambdaBackend, "update_function_configuration",
                        update_function_configuration)


def _keep_queue_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sqs.models import Queue

    original = Queue._set_attributes

    def set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        policy = getattr(self, "_policy_json", None)  # none yet while it is created
        original(self, attributes, now)
        if "Policy" not in attributes and policy is not None:
            self._policy_json = policy

    monkeypatch.setattr(Queue, "_set_attributes", set_attributes)


def apply(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto answer as AWS does where our planner compares what it reads back, for
    the test that asks: ``monkeypatch`` undoes it when that test ends, so no other test
    runs against a moto it did not ask for."""
    _replace_invoke_config(monkeypatch)
    _keep_queue_policy(monkeypatch)
    from moto.core.responses import ActionResult
    from moto.s3.responses import S3Response

    original = S3Response.serialized

    def serialized(self: Any, action_result: ActionResult) -> Any:
        result = action_result.result
        if (self.data.get("Action") == "GetBucketNotificationConfiguration"
                and isinstance(result, dict) and "EventBridgeConfiguration" not in result
                and _has_eventbridge(self)):
            action_result = ActionResult({**result, "EventBridgeConfiguration": {}})
        if self.data.get("Action") == "GetBucketReplication" and isinstance(result, dict):
            config = result["ReplicationConfiguration"]
            action_result = ActionResult({"ReplicationConfiguration": {
                **config, "Rules": _stored_rules(self, config["Rules"])}})
        return original(self, action_result)

    monkeypatch.setattr(S3Response, "serialized", serialized)


def tags_withheld_from_get_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer GetFunction as AWS answers a caller not allowed ``lambda:ListTags``.

    "Lambda returns tag data only if you have explicit allow permissions for
    lambda:ListTags" (botocore's GetFunctionResponse, ``Tags``); moto returns the tags
    to anyone, so this drops them from GetFunction alone.
    """
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.get_code

    def get_code(self: Any) -> dict[str, Any]:
        return {k: v for k, v in original(self).items() if k != "Tags"}

    monkeypatch.setattr(LambdaFunction, "get_code", get_code)


def function_in_state(monkeypatch: pytest.MonkeyPatch, state: str, update: str,
                      reason: str) -> None:
    """Answer every function's configuration with ``state`` and last update ``update``.

    moto creates every function Active with its last update Successful; Lambda reports
    "State: Pending | Active | Inactive | Failed" with a ``StateReason``, and
    "LastUpdateStatus: Successful | Failed | InProgress" with a
    ``LastUpdateStatusReason`` (botocore's FunctionConfiguration), which status reads.
    """
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.get_configuration

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = original(self, *args, **kwargs)
        config.update({"State": state, "LastUpdateStatus": update})
        config["StateReason" if state != "Active" else "LastUpdateStatusReason"] = reason
        return config

    monkeypatch.setattr(LambdaFunction, "get_configuration", get_configuration)


def environment_unreadable(monkeypatch: pytest.MonkeyPatch, code: str, message: str) -> None:
    """Answer a function with a customer managed key as Lambda answers a caller who may
    not decrypt with that key: ``Environment.Error`` instead of ``Environment.Variables``.

    "Users without Decrypt permissions can still manage functions, but they can't view
    environment variables" (Lambda developer guide, "Securing environment variables"),
    and botocore's ``EnvironmentResponse`` carries either ``Variables`` or ``Error``
    (``ErrorCode``, ``Message``): "If the operation succeeds, the response contains the
    environment variables. If it fails, the response contains details about the error."
    moto returns the variables to anyone.
    """
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.get_configuration

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = original(self, *args, **kwargs)
        if self.kms_key_arn:
            config["Environment"] = {"Error": {"ErrorCode": code, "Message": message}}
        return config

    monkeypatch.setattr(LambdaFunction, "get_configuration", get_configuration)


#: S3's refusal of a notification document with a destination it could not check.
UNVALIDATED = "Unable to validate the following destination configurations"


def _allows_s3(policy: str | dict[str, Any] | None, action: str, bucket_arn: str) -> bool:
    """Whether a resource policy lets ``s3.amazonaws.com`` call ``action`` for this
    bucket: an Allow naming S3 (or ``*``), the action (or the service's ``*``) and, when
    it has one, a source ARN condition that matches the bucket."""
    import fnmatch
    import json

    document = json.loads(policy) if isinstance(policy, str) else (policy or {})
    for statement in document.get("Statement", []):
        principal = statement.get("Principal")
        services = (principal.get("Service", []) if isinstance(principal, dict)
                    else [principal])
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") != "Allow" or not (
                "s3.amazonaws.com" in services or "*" in services):
            continue
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
            continue
        sources = [value for test, keys in (statement.get("Condition") or {}).items()
                   if test.startswith("Arn") for key, value in keys.items()
                   if key.lower() == "aws:sourcearn"]
        if all(fnmatch.fnmatchcase(bucket_arn, v) for value in sources
               for v in ([value] if isinstance(value, str) else value)):
            return True
    return False


def _destination_refusal(arn: str, bucket_arn: str) -> str | None:
    """Why S3 would refuse ``arn`` as a destination of this bucket, or None."""
    import json

    from moto.awslambda.models import lambda_backends
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends

    _, _, service, region, account, *rest = arn.split(":")
    if service == "lambda":
        try:  # GetPolicy's answer: the policy document is its "Policy", as a string
            policy = json.loads(lambda_backends[account][region].get_policy(arn))["Policy"]
        except Exception:  # noqa: BLE001 - no function, or no policy: both refused
            policy = None
        if not _allows_s3(policy, "lambda:InvokeFunction", bucket_arn):
            return f"Not authorized to invoke function [{arn}]"
    elif service == "sqs":
        queue = sqs_backends[account][region].queues.get(rest[0])
        if queue is None or not _allows_s3(queue.policy, "sqs:SendMessage", bucket_arn):
            return ("Permissions on the destination queue do not allow S3 to publish "
                    "notifications from this bucket")
    elif service == "sns":
        topic = sns_backends[account][region].topics.get(arn)
        if topic is None or not _allows_s3(topic._policy_json, "sns:Publish", bucket_arn):
            return ("Permissions on the destination topic do not allow S3 to publish "
                    "notifications from this bucket")
    return None


def validates_destinations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make PutBucketNotificationConfiguration check every destination, as S3 does.

    "After Amazon S3 receives this request, it first verifies that any Amazon Simple
    Notification Service (Amazon SNS) or Amazon Simple Queue Service (Amazon SQS)
    destination exists, and that the bucket owner has permission to publish to it by
    sending a test notification. In the case of Lambda destinations, Amazon S3 verifies
    that the Lambda function permissions grant Amazon S3 permission to invoke the
    function from the Amazon S3 bucket." and "The PUT notification is an atomic
    operation" (botocore's PutBucketNotificationConfiguration); the request's
    ``SkipDestinationValidation`` "Skips validation of Amazon SQS, Amazon SNS, and Lambda
    destinations".  moto 5.2 stores any document; this refuses it, storing nothing, with
    S3's InvalidArgument "Unable to validate the following destination configurations"
    and the first failing destination's ARN and reason as the error's ArgumentName and
    ArgumentValue (S3 numbers them, ArgumentName1...; the reasons are this patch's
    wording), unless the request skips validation.
    """
    from moto.s3.exceptions import InvalidArgumentError
    from moto.s3.responses import S3Response

    original = S3Response._notification_config_from_body

    def _notification_config_from_body(self: Any) -> dict[str, Any]:
        config = original(self)  # the wire form: TopicConfiguration with its Topic...
        if self.headers.get("x-amz-skip-destination-validation", "").lower() == "true":
            return config
        bucket_arn = f"arn:aws:s3:::{self.bucket_name}"
        for name in ("Topic", "Queue", "CloudFunction"):
            for entry in config.get(f"{name}Configuration") or []:
                why = _destination_refusal(entry[name], bucket_arn)
                if why:
                    raise InvalidArgumentError(UNVALIDATED, entry[name], why)
        return config

    monkeypatch.setattr(S3Response, "_notification_config_from_body",
                        _notification_config_from_body)


def lambda_refuses_role(monkeypatch: pytest.MonkeyPatch, operation: str, message: str,
                        times: int | None = None) -> list[str]:
    """Answer Lambda's ``operation`` (moto's ``LambdaBackend`` method of that name) with
    InvalidParameterValueException ``message`` the first ``times`` calls, or every call
    when ``times`` is None; returns the list of refusals made so far.

    Lambda checks the execution role, and what its policy lets Lambda do for the
    function, on the calls that set or rely on it: "Lambda uses your function's
    permissions to create and manage network interfaces. To connect to a VPC, your
    function's execution role must have the following permissions:
    ec2:CreateNetworkInterface [...]" (the Lambda Developer Guide, "Giving Lambda
    functions access to resources in an Amazon VPC"), and an on-failure destination
    needs the role's sqs:SendMessage or sns:Publish.  Its refusals while IAM has not yet
    shown it a change read "The provided execution role does not have permissions to
    call CreateNetworkInterface on EC2" or "The function's execution role does not have
    permissions to call Publish on arn:aws:sns:..." (quoted in
    hashicorp/terraform-provider-aws#12171, whose fix retries them), and IAM's changes
    are eventually consistent (the IAM User Guide, "Changes that I make are not always
    immediately visible").  moto checks none of these permissions.
    """
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend

    original = getattr(LambdaBackend, operation)
    refused: list[str] = []

    def refusing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if times is None or len(refused) < times:
            refused.append(message)
            raise InvalidParameterValueException(message)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LambdaBackend, operation, refusing)
    return refused


def core_network_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a route's ``CoreNetworkArn``, as EC2 does.

    CreateRoute takes "CoreNetworkArn: The Amazon Resource Name (ARN) of the core
    network" and DescribeRouteTables returns it on the route (botocore's ec2 model,
    ``CreateRouteRequest`` and ``Route``); moto 5.2.6 drops it, leaving a default route
    that goes nowhere.
    """
    from moto.ec2.models.route_tables import Route
    from moto.ec2.responses.route_tables import RouteTables

    original = RouteTables.create_route

    def create_route(self: Any) -> Any:
        result = original(self)
        arn = self._get_param("CoreNetworkArn")
        if arn:
            table = self.ec2_backend.get_route_table(self._get_param("RouteTableId"))
            for route in table.routes:
                if route.destination_cidr_block == self._get_param("DestinationCidrBlock"):
                    route.core_network_arn = arn
        return result

    monkeypatch.setattr(RouteTables, "create_route", create_route)
    monkeypatch.setattr(Route, "core_network_arn", None, raising=False)


def mapping_checks_visibility(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse an SQS event source mapping whose queue's visibility timeout is shorter
    than the function's timeout, as Lambda does: "Your function's timeout must be less
    than or equal to the queue's visibility timeout. Lambda validates this requirement
    when you create or update an event source mapping and will return an error if the
    function timeout exceeds the queue's visibility timeout" (Lambda developer guide,
    "Creating and configuring an Amazon SQS event source mapping").  moto 5.2 maps any
    queue.  The message is this patch's wording."""
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend
    from moto.sqs.models import sqs_backends

    original = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        function = self._lambdas.get_function_by_name_or_arn_with_qualifier(
            spec.get("FunctionName", ""))
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            if queue.queue_arn == spec.get("EventSourceArn") and int(
                    queue.visibility_timeout) < int(function.timeout):
                raise InvalidParameterValueException(
                    f"Queue visibility timeout: {queue.visibility_timeout} seconds is less "
                    f"than Function timeout: {function.timeout} seconds")
        return original(self, spec)

    monkeypatch.setattr(LambdaBackend, "create_event_source_mapping",
                        create_event_source_mapping)


def mapping_reports(monkeypatch: pytest.MonkeyPatch, result: str) -> None:
    """Make every event source mapping report ``result`` as its LastProcessingResult
    ("The result of the event source mapping's last processing attempt", botocore's
    EventSourceMappingConfiguration), which Lambda sets after each poll; moto never
    polls, so it never reports one."""
    from moto.awslambda.models import EventSourceMapping

    original = EventSourceMapping.get_configuration

    def get_configuration(self: Any) -> dict[str, Any]:
        return {**original(self), "LastProcessingResult": result}

    monkeypatch.setattr(EventSourceMapping, "get_configuration", get_configuration)


def delete_marker_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notify a delete marker's creation, and the removal of a key whose last version is
    a marker, as S3 does.

    "You can request notification when an object is deleted or a versioned object is
    permanently deleted by using the s3:ObjectRemoved:Delete event type.  Alternatively,
    you can request notification when a delete marker is created for a versioned object
    using s3:ObjectRemoved:DeleteMarkerCreated" (S3 user guide, "Supported event
    types").  moto 5.2.5 sends nothing when a delete adds a marker, and raises
    AttributeError building the record when a marker is deleted by its version ID (it
    reads the marker's ETag, which a marker has none of).  A marker's record here
    carries its key and version ID, without size or eTag.
    """
    from moto.s3 import models, notifications

    build = notifications._get_s3_event
    set_marker = models.S3Backend._set_delete_marker

    def get_s3_event(event_name: str, bucket: Any, key: Any,
                     notification_id: str) -> dict[str, Any]:
        if not isinstance(key, models.FakeDeleteMarker):
            return build(event_name, bucket, key, notification_id)
        stand_in = type("Marker", (), {"name": key.name, "etag": "", "size": 0})()
        body = build(event_name, bucket, stand_in, notification_id)
        record = body["Records"][0]["s3"]["object"]
        record.pop("size"), record.pop("eTag")
        record["versionId"] = key.version_id
        return body

    def _set_delete_marker(self: Any, bucket_name: str, key_name: str) -> Any:
        marker = set_marker(self, bucket_name, key_name)
        notifications.send_event(
            self.account_id,
            notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
            self.get_bucket(bucket_name), marker)
        return marker

    monkeypatch.setattr(notifications, "_get_s3_event", get_s3_event)
    monkeypatch.setattr(models.S3Backend, "_set_delete_marker", _set_delete_marker)
