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


def apply(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto answer as AWS does where our planner compares what it reads back, for
    the test that asks: ``monkeypatch`` undoes it when that test ends, so no other test
    runs against a moto it did not ask for."""
    _replace_invoke_config(monkeypatch)
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
