"""The sync as a CloudFormation template: create's desired state, rendered for review.

Teams that change production only through reviewed templates get the same resources
``create`` makes, from the same code: the planner is run against an empty account, and
the calls each kind's plan made (every one a "create") become that kind's resources, by
the kind's own ``template`` (:mod:`.resources`).  So the role policy, the function's
configuration and environment, the invoke permissions, the rules and the async settings
cannot drift from what ``create`` would do.  The account and partition are
CloudFormation's pseudo parameters, so one template serves any account; the region is
the bucket's, which the role's name already depends on.

This module is the assembly (parameters, the kinds' resources in :data:`~.ORDER`,
outputs) and the export to files; it names no kind.  The function's code is the built
bundle as it is, so the stack's function runs the digest status expects; the bucket's
notification custom resource runs from a small zip of its own (:mod:`.resource_zip`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundle.ours import HANDLER
from .actual import Actual
from .desired import DESCRIPTION, check_cache_reachable, desired_state
from .errors import DeployError
from .planner import Planner
from .resource_zip import write_resource_zip
from .resources import ORDER
from .resources.cfn import (
    ACCOUNT,
    CODE_BUCKET,
    CODE_KEY,
    FUNCTION,
    NOTIFICATION_CODE_KEY,
    PARTITION,
    Resources,
    substitute,
)

if TYPE_CHECKING:
    from ..config import PypicloudConfig
    from .options import DeployOptions
    from .plan import CodeArtifact, Step

TEMPLATE_NAME = "pypicloud-s3sync.template.json"
#: Where the operator uploaded the two zips (``aws s3 cp``, as the export prints).
PARAMETERS = {
    CODE_BUCKET: {"Type": "String",
                  "Description": "S3 bucket holding both zips, in the stack's region"},
    CODE_KEY: {"Type": "String", "Description": "key of the function's zip"},
    NOTIFICATION_CODE_KEY: {"Type": "String", "Description": "key of the bucket "
                            "notification custom resource's zip"},
}


@dataclass(frozen=True)
class _Placeholders:
    """What :func:`desired_state` asks of the AWS clients, as the template's own values."""

    region: str
    account: str = ACCOUNT
    partition: str = PARTITION


@dataclass(frozen=True)
class _NoCode:
    """The zip's place in the plan: the template refers to it by parameters instead."""

    path: Path = Path()
    sha256: str = "(uploaded separately)"
    size: int = 0
    runtime: str = ""
    arch: str = ""
    handler: str = HANDLER

    def read_bytes(self) -> bytes:  # pragma: no cover - never uploaded from here
        raise NotImplementedError


def create_steps(config: PypicloudConfig, options: DeployOptions, region: str,
                 warnings: list[str] | None = None) -> tuple[list[Step], Planner]:
    """Create's plan for an account where nothing exists yet: the desired state as calls."""
    found: list[str] = [] if warnings is None else warnings
    check_cache_reachable(config, options, found)
    clients: Any = _Placeholders(region)
    planner = Planner(config, options, clients, Actual(),
                      desired_state(config, options, clients))
    planner.create(lambda: _NoCode())
    found.extend(planner.warnings)
    return planner.steps, planner


def render(config: PypicloudConfig, options: DeployOptions, region: str,
           warnings: list[str] | None = None) -> dict[str, Any]:
    """The template for ``config`` + ``options`` in ``region``."""
    if options.store_db_password:
        raise DeployError(
            "export cannot keep db.url in a secret for you: the template would carry the "
            "password; create the secret yourself (aws secretsmanager create-secret "
            "--name NAME --secret-string DATABASE_URL) and set s3sync.db_url_secret to "
            "the ARN it prints")
    _, planner = create_steps(config, options, region, warnings)
    resources: Resources = {}
    for kind in ORDER:
        _merge(resources, kind.template(planner, planner.made.get(kind.KIND, [])))
    target = config.target
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{DESCRIPTION} (bucket {target.bucket}, "
                       f"function {options.function_name})",
        "Parameters": PARAMETERS,
        "Rules": region_rule(target.bucket, region),
        "Resources": substitute(resources, planner),
        "Outputs": {"FunctionArn": {"Value": {"Fn::GetAtt": [FUNCTION, "Arn"]}}},
    }


def region_rule(bucket: str, region: str) -> dict[str, Any]:
    """Refuse the stack in another region than the bucket's, before anything is made.

    S3 sends a bucket's events only to a function in the bucket's region, and the role's
    name and the template's region-bound values were chosen for it: a stack elsewhere
    would be made in full and never receive an event.
    """
    return {"BucketRegion": {"Assertions": [{
        "Assert": {"Fn::Equals": [{"Ref": "AWS::Region"}, region]},
        "AssertDescription": f"deploy this stack in {region}, the region of bucket "
                             f"{bucket}: S3 notifies functions in the bucket's region "
                             f"only (export again with --region for another bucket)",
    }]}}


def _merge(resources: Resources, added: Resources) -> None:
    """Add one kind's resources.  A kind whose template form is a property of another
    kind's resource (reserved concurrency is the function's) gives that resource with
    only its properties; a property two kinds both set is a bug, never overwritten."""
    for logical, resource in added.items():
        if logical not in resources:
            if "Type" not in resource:
                raise AssertionError(f"{logical}: properties of a resource not rendered")
            resources[logical] = resource
            continue
        have = resources[logical]["Properties"]
        clash = set(have) & set(resource.get("Properties", {}))
        if set(resource) != {"Properties"} or clash:
            raise AssertionError(f"{logical} rendered twice ({', '.join(sorted(clash))})")
        have.update(resource["Properties"])


# -- export --------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """What ``export`` wrote, and how to deploy it."""

    template: Path
    #: The function's zip: the built bundle, byte for byte.
    bundle: Path
    stack: str
    warnings: list[str]
    #: The bucket notification custom resource's zip.
    notification: Path
    #: The two zips' S3 keys, each named by its digest (see :func:`code_key`).
    key: str = ""
    notification_key: str = ""

    def commands(self, code_bucket: str = "CODE_BUCKET") -> list[str]:
        """Upload both zips to ``code_bucket``, then deploy with their keys."""
        key, notification_key = self.key, self.notification_key
        return [
            f"aws s3 cp {self.bundle} s3://{code_bucket}/{key}",
            f"aws s3 cp {self.notification} s3://{code_bucket}/{notification_key}",
            f"aws cloudformation deploy --stack-name {self.stack} --template-file "
            f"{self.template} --capabilities CAPABILITY_NAMED_IAM --parameter-overrides "
            f"{CODE_BUCKET}={code_bucket} {CODE_KEY}={key} "
            f"{NOTIFICATION_CODE_KEY}={notification_key}",
        ]


def code_key(function_name: str, zipped: Path, kind: str = "") -> str:
    """The S3 key a zip is uploaded to: named by its digest, so new code is a new key.

    CloudFormation compares a function's ``Code`` as the template spells it, not the
    object's bytes: a new zip uploaded under the old key is a stack update that changes
    nothing, and the function keeps running the old code.
    """
    digest = hashlib.sha256(zipped.read_bytes()).hexdigest()[:16]
    return f"{function_name}/pypicloud-s3sync{'-' + kind if kind else ''}-{digest}.zip"


def stack_name(function_name: str) -> str:
    """Stack names allow letters, digits and ``-`` only."""
    return "pypicloud-s3sync-" + function_name.replace("_", "-")


def export(config: PypicloudConfig, options: DeployOptions, region: str,
           code: CodeArtifact, directory: str | Path) -> Export:
    """Write the template and the two zips it references into ``directory``.

    The template is rendered before anything is written, so an export the config makes
    impossible leaves no trace; a write that fails midway takes back the files and
    directories this call made, and only those (a directory that was there stays).
    """
    directory = Path(directory)
    warnings: list[str] = []
    template = render(config, options, region, warnings)
    if options.db_password == "copy" and config.function.withheld:
        warnings.append("the template holds that password in plain text: keep it out of "
                        "version control, or keep db.url in a secret and name it with "
                        "s3sync.db_url_secret")
    made = [parent for parent in (directory, *directory.parents) if not parent.exists()]
    bundle = directory / f"{options.function_name}.zip"
    notification = directory / f"{options.function_name}-bucket-notification.zip"
    path = directory / TEMPLATE_NAME
    written = [p for p in (bundle, notification, path) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(code.path), bundle)
        write_resource_zip(notification)
        key = code_key(options.function_name, bundle)
        notification_key = code_key(options.function_name, notification,
                                    "bucket-notification")
        template["Parameters"] = {
            **PARAMETERS,
            CODE_KEY: {**PARAMETERS[CODE_KEY], "Default": key},
            NOTIFICATION_CODE_KEY: {**PARAMETERS[NOTIFICATION_CODE_KEY],
                                    "Default": notification_key}}
        path.write_text(json.dumps(template, indent=2, sort_keys=True) + "\n")
    except BaseException:
        for file in written:
            file.unlink(missing_ok=True)
        for folder in made:  # deepest first
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return Export(path, bundle, stack_name(options.function_name), warnings, notification,
                  key, notification_key)


__all__ = ["PARAMETERS", "TEMPLATE_NAME", "Export", "code_key", "create_steps", "export",
           "region_rule", "render", "stack_name"]
