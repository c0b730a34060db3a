"""Plan the sync's AWS resources: the drivers behind ``create``, ``delete`` and ``status``.

This works the way Chalice's deployer does: read what exists (:mod:`.snapshot`), compute
what should exist from pypicloud's config and the :class:`DeployOptions`, and turn the
difference into a :class:`Plan` of API calls (:mod:`.planner`).  Printing a plan
changes nothing; :func:`apply` (:mod:`.executor`) executes it.  ``status`` is the
create plan in its reporting mode: the same comparison, with every difference recorded
instead of refused.  :mod:`.operation` is what the command line and the admin API call.

The names below are this package's public API (the CLI, the admin endpoint and the
tests use them); the lower modules never import this one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..bundle.archive import MAX_ZIPPED, built_for, zip_sha256
from ..bundle.ours import HANDLER
from ..bundle.runtimes import RUNTIMES, RuntimeRetired, check_runtime
from ..bundle.target import ARCHITECTURES, DEFAULT_RUNTIME
from ..config import PypicloudConfig
from . import pathchecks, snapshot
from .actual import Actual
from .aws import AwsClients, is_mutating
from .desired import check_cache_reachable, desired_state, function_environment
from .errors import ApplyError, AwsError, DeployError, Fix, OptionsError, ProvisionError
from .executor import apply
from .options import DELIVERIES, DeployOptions
from .peers import Peer
from .plan import ENV_VAR, CodeArtifact, Plan, ResourceStatus, StatusReport, Step, StepResult
from .planner import Planner

__all__ = [
    "ARCHITECTURES", "DEFAULT_RUNTIME", "DELIVERIES", "ENV_VAR", "HANDLER", "RUNTIMES",
    "ApplyError", "AwsClients", "AwsError", "CodeArtifact", "DeployError", "DeployOptions",
    "Fix", "OptionsError", "Plan", "ProvisionError", "ResourceStatus", "StatusReport",
    "Step", "StepResult", "ZipBundle", "apply", "function_environment", "is_mutating",
    "plan_create", "plan_delete", "status",
]

#: Lambda refuses larger zips by direct upload (checked again for a zip given with --bundle).
MAX_ZIP_BYTES = MAX_ZIPPED


@dataclass(frozen=True)
class ZipBundle:
    """A function zip built elsewhere (``--bundle PATH``), deployable like a built one."""

    path: Path
    sha256: str
    size: int
    runtime: str = DEFAULT_RUNTIME
    arch: str = "x86_64"
    handler: str = HANDLER

    @classmethod
    def from_path(cls, path: str | Path, runtime: str = DEFAULT_RUNTIME,
                  arch: str = "x86_64", handler: str = HANDLER) -> ZipBundle:
        path = Path(path)
        try:
            size, sha256 = path.stat().st_size, zip_sha256(path)
        except OSError as exc:
            raise DeployError(f"cannot read the bundle {path}: {exc.strerror}") from exc
        recorded = built_for(path)
        if recorded is not None and recorded != (runtime, arch):
            raise DeployError(
                f"the bundle {path} was built for {recorded[0]} on {recorded[1]}, but the "
                f"function is to run {runtime} on {arch}: rebuild it with "
                f"ppc-build-lambda-bundle --runtime {runtime} --arch {arch}",
                Fix(f"--runtime {recorded[0]} --arch {recorded[1]}",
                    f"s3sync.runtime = {recorded[0]} and s3sync.arch = {recorded[1]}",
                    "or deploy it as built with {}"))
        return cls(path=path, sha256=sha256, size=size, runtime=runtime, arch=arch,
                   handler=handler)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


CodeSource = CodeArtifact | Callable[[], CodeArtifact] | None


def _resolve_code(code: CodeSource, config: PypicloudConfig, options: DeployOptions,
                  progress: Callable[[str], None] | None) -> CodeArtifact:
    if code is not None and not hasattr(code, "sha256"):
        code = code()  # a provider
    if code is None and options.bundle:
        code = ZipBundle.from_path(options.bundle, options.runtime, options.arch)
    if code is None:
        from ..bundle.builder import build_bundle

        code = build_bundle(config, runtime=options.runtime, arch=options.arch,
                            progress=progress)
    if code.size > MAX_ZIP_BYTES:
        raise DeployError(
            f"the function zip {code.path} is {code.size / 2**20:.1f} MiB; Lambda accepts "
            f"at most {MAX_ZIP_BYTES // 2**20} MiB by direct upload. Build it without "
            "boto3 (the runtime has it) or leave out unused cache extras"
        )
    return code


def _code_provider(code: CodeSource, config: PypicloudConfig, options: DeployOptions,
                   progress: Callable[[str], None] | None) -> Callable[[], CodeArtifact]:
    """Build (or read) the zip at most once, and only if the plan needs to compare it."""
    cache: list[CodeArtifact] = []

    def provide() -> CodeArtifact:
        if not cache:
            cache.append(_resolve_code(code, config, options, progress))
        return cache[0]

    return provide


def _planner(config: PypicloudConfig, options: DeployOptions, clients: AwsClients, *,
             strict: bool = True, need_bucket: bool = True,
             peers: Sequence[Peer] = ()) -> Planner:
    desired = desired_state(config, options, clients)
    planner = Planner(config, options, clients, Actual(), desired, strict=strict,
                      peers=tuple(peers))
    snapshot.read(planner, need_bucket=need_bucket)
    return planner


def _compare(config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
             code: CodeSource, progress: Callable[[str], None] | None, *,
             strict: bool, peers: Sequence[Peer] = ()) -> Planner:
    """The create comparison; ``strict=False`` is status mode (see :func:`status`)."""
    warnings: list[str] = []
    check_cache_reachable(config, options, warnings, strict=strict)
    planner = _planner(config, options, clients, strict=strict, peers=peers)
    if strict:
        try:
            retiring = check_runtime(options.runtime,
                                     creating=planner.actual.function is None)
        except RuntimeRetired as exc:
            raise DeployError(f"runtime {options.runtime}: {exc}") from exc
        if retiring:
            warnings.append(retiring)
    planner.warnings[:0] = warnings
    planner.create(_code_provider(code, config, options, progress))
    return planner


def plan_create(config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
                code: CodeSource = None,
                progress: Callable[[str], None] | None = None,
                peers: Sequence[Peer] = ()) -> Plan:
    """The steps that make the account match ``config`` + ``options``; reads only.

    ``code`` is the function zip (a builder ``Bundle``, a :class:`ZipBundle`, or a
    callable returning one); without it the zip is built (or read from
    ``options.bundle``) only when the function is missing or ``force`` is set.
    ``peers``: the buckets this one replicates to, in a plan of several inis.
    Raises :class:`DeployError` for states it must not touch: a foreign role or
    function of the same name, an overlapping foreign notification, a withheld password.
    """
    planner = _compare(config, options, clients, code, progress, strict=True, peers=peers)
    return Plan("create", options.function_name, clients.region, planner.desired.account,
                planner.steps, planner.warnings, planner.notes, planner.drift,
                role_arn=planner.desired.role_arn)


def plan_delete(config: PypicloudConfig, options: DeployOptions,
                clients: AwsClients, peers: Sequence[Peer] = (),
                leaving: Sequence[str] = ()) -> Plan:
    """The steps that remove what ``create`` made, and nothing else; reads only.

    Foreign notification entries stay; the role goes only if it carries our tag, was
    not given with ``-a`` and holds no policies besides ours; EventBridge delivery on
    the bucket is turned off only if our rule recorded that we turned it on and no
    other rule listens to the bucket.  ``peers`` (a plan of several inis) lets the
    kinds between regions remove what is theirs too.  A bucket that no longer exists is no reason to
    keep the rest: everything of ours outside it goes, and a note says so.  ``leaving``
    names the EventBridge rules of other syncs on the same bucket that the same run
    deletes: they no longer keep the bucket's EventBridge delivery on.
    """
    planner = _planner(config, options, clients, need_bucket=False, peers=peers)
    planner.actual.other_bucket_rules = [rule for rule in planner.actual.other_bucket_rules
                                         if rule not in leaving]
    planner.teardown()
    return Plan("delete", options.function_name, clients.region, planner.desired.account,
                planner.steps, planner.warnings, planner.notes)


def status(config: PypicloudConfig, options: DeployOptions, clients: AwsClients,
           code: CodeSource = None,
           progress: Callable[[str], None] | None = None,
           peers: Sequence[Peer] = ()) -> StatusReport:
    """Desired vs actual for every resource; reads only.

    The create plan with ``-f`` in reporting mode: what create would refuse becomes a
    drifted row, and the report's ``steps`` are what ``create -f`` would do about it.
    Its ``checks`` follow the path beyond our resources (:mod:`.pathchecks`).
    """
    forced = replace(options, force=True)
    planner = _compare(config, forced, clients, code, progress, strict=False, peers=peers)
    return StatusReport(forced.function_name, clients.region, planner.desired.account,
                        planner.rows, planner.warnings, planner.steps,
                        pathchecks.plan(planner))
