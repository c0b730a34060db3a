"""Console scripts: ``ppc-s3sync`` and the stand-alone names pypicloud's own script had.

Every command takes pypicloud's own ini (``config.ini`` or ``config.ini#name``) and goes
through :func:`pypicloud_s3sync.config.load_config`.  Bad input ends with one line on
stderr that says what to change, and exit status 2; nothing here prints a traceback for
a mistake the user can fix.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

# pyramid (under pypicloud) imports pkg_resources, whose deprecation warning would open
# every command's output; it says nothing the operator can act on.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

from .config import ConfigError, PypicloudConfig, load_config  # noqa: E402
from .urlsecrets import redact_text  # noqa: E402
from .version import __version__  # noqa: E402 - after the filter, which must precede pyramid

if TYPE_CHECKING:
    from .provision.operation import SiteOutcome
    from .provision.options import DeployOptions, Flag
    from .provision.plan import Plan

#: Exit status for a config or usage error the user can fix.
EXIT_CONFIG = 2
#: Exit status when AWS refused a call or the account is not reachable.
EXIT_AWS = 1
#: Exit status when what exists differs from what should: ``status`` found drift in the
#: account, ``reconcile`` in the cache (fixed, or with --dry-run found).  Not 1, which
#: Python uses for an unhandled crash.
EXIT_DRIFT = 3
#: Exit status when the reconcile could not finish (S3 or the cache failed).
EXIT_ERROR = 4


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit 2) like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _config_argument(parser: argparse.ArgumentParser, several: bool = False) -> None:
    if several:
        parser.add_argument(
            "config", metavar="CONFIG_URI", nargs="+",
            help="pypicloud's ini file, as given to pserve (config.ini or config.ini#name); "
                 "several: one deploy of every region's sync and the replication between "
                 "their buckets, each ini with its own settings and the flags applied to all",
        )
        return
    parser.add_argument(
        "config", metavar="CONFIG_URI",
        help="pypicloud's ini file, as given to pserve (config.ini or config.ini#name)",
    )


def load(args: argparse.Namespace) -> PypicloudConfig:
    """The command's pypicloud config, with the ini's logging set up as pserve would."""
    return load_config(args.config, configure_logging=True)


# -- bundle ------------------------------------------------------------------------------

def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    from .bundle.runtimes import RUNTIMES
    from .bundle.target import ARCHITECTURES, DEFAULT_RUNTIME

    _config_argument(parser)
    parser.add_argument(
        "-o", "--output", metavar="FILE",
        help="where to write the zip (default: <s3sync.function_name>.zip, "
             "pypicloud_s3_sync.zip unless set)",
    )
    parser.add_argument(
        "--runtime", metavar="RUNTIME",
        help=f"Lambda runtime: {', '.join(RUNTIMES)} (or just 3.12...; "
             f"default s3sync.runtime, else {DEFAULT_RUNTIME}, whose bytecode is "
             "compiled only if this machine has that Python: without it the zip holds "
             "sources and every cold start compiles them)",
    )
    parser.add_argument(
        "--arch", metavar="ARCH",
        help=f"Lambda architecture: {' or '.join(ARCHITECTURES)} "
             "(default s3sync.arch, else x86_64)",
    )
    parser.add_argument(
        "--include-boto3", action="store_true",
        help="bundle boto3/botocore too instead of using the runtime's (bigger zip)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def run_bundle(args: argparse.Namespace) -> int:
    import json

    from .bundle.builder import build_bundle, default_output
    from .bundle.target import DEFAULT_RUNTIME, arch_name, runtime_name

    config = load(args)
    # The same precedence create uses, so that create --bundle finds the zip it expects.
    runtime = runtime_name(args.runtime or config.option("runtime") or DEFAULT_RUNTIME)
    arch = arch_name(args.arch or config.option("arch") or "x86_64")

    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    bundle = build_bundle(
        config, runtime=runtime, arch=arch, include_boto3=args.include_boto3,
        output=args.output or default_output(config), progress=progress,
    )
    mib = 1024 * 1024
    print(f"wrote {bundle.path}: {bundle.size / mib:.1f} MiB "
          f"({bundle.unzipped_size / mib:.1f} MiB unzipped) for {bundle.runtime} "
          f"on {bundle.arch}")
    print(f"CodeSha256: {bundle.sha256}")
    print(f"handler: {bundle.handler}")
    print("environment: PYPICLOUD_SETTINGS="
          + json.dumps(json.dumps(config.function.values, sort_keys=True)))
    for reason in config.function.withheld.values():
        progress(f"note: {reason}")
    for warning in bundle.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


# -- create / delete / status -------------------------------------------------------------


def _flag_type(flag: Flag) -> Callable[[str], Any] | None:
    """The flag's own conversion, whose ConfigError is a usage error like argparse's own;
    named as the conversion, which argparse's "invalid int value" quotes."""
    convert = flag.type
    if convert is None:
        return None

    @functools.wraps(convert)
    def checked(value: str) -> Any:
        try:
            return convert(value)
        except ConfigError as exc:
            prefix = f"{flag.names[-1]} = "
            raise argparse.ArgumentTypeError(str(exc).removeprefix(prefix)) from exc

    return checked


def _add_flag(container: Any, name: str, flag: Flag, command: str) -> None:
    """One deploy option's flag exactly as :class:`~.provision.options.DeployOptions`
    declares it; its ``dest`` is the option, so :func:`_options` reads it back by name."""
    text = flag.help_for.get(command, flag.help)
    if flag.const is not None:
        container.add_argument(*flag.names, dest=name, action="store_const", const=flag.const,
                               help=text)
        return
    container.add_argument(*flag.names, dest=name, metavar=flag.metavar, type=_flag_type(flag),
                           choices=flag.choices, help=text)


def _option_argument(parser: argparse.ArgumentParser, name: str, command: str) -> None:
    from .provision.options import flags

    for field, flag in flags():
        if field == name:
            _add_flag(parser, name, flag, command)


def _target_arguments(parser: argparse.ArgumentParser, command: str,
                      several: bool = False) -> None:
    """Flags that say which function, where: every command that names one."""
    _config_argument(parser, several)
    for name in ("function_name", "role_arn", "region", "endpoint_url"):
        _option_argument(parser, name, command)
    parser.add_argument("--json", action="store_true",
                        help="print the plan / report as JSON on stdout (progress on stderr)")


def _function_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Flags that describe the desired function, one section each: create, status, export."""
    from .provision.options import flags

    sections: dict[str, Any] = {}
    exclusive: dict[str, Any] = {}
    for name, flag in flags():
        if flag.section is None:
            continue
        if flag.section not in sections:
            sections[flag.section] = parser.add_argument_group(flag.section)
        container: Any = sections[flag.section]
        if flag.exclusive is not None:
            if flag.exclusive not in exclusive:
                exclusive[flag.exclusive] = container.add_mutually_exclusive_group()
            container = exclusive[flag.exclusive]
        _add_flag(container, name, flag, command)


def _options(args: argparse.Namespace, config: PypicloudConfig) -> DeployOptions:
    """Ini settings (``s3sync.*``) first, then every flag the user gave."""
    from .provision.options import DeployOptions, flags

    overrides = {name: getattr(args, name, None) for name, _ in flags()}
    return DeployOptions.from_config(config, **overrides)


def _several(args: argparse.Namespace) -> bool:
    """Several inis given: one deploy of them all.  One is the command it always was."""
    if isinstance(args.config, list) and len(args.config) == 1:
        args.config = args.config[0]
    return isinstance(args.config, list)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_json(document: object) -> None:
    import json

    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def _aws_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """AWS refusing a call or being unreachable is one line and exit 1, not a traceback."""
    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        from .provision.awsfailure import one_line, translate
        from .provision.errors import AwsError

        command = getattr(args, "command", None)
        prog = f"ppc-s3sync {command}" if command else args.prog
        try:
            try:
                return run(args)
            except (BotoCoreError, ClientError) as exc:
                raise translate(exc, {}) from exc  # no credentials: a config error, exit 2
        except AwsError as exc:
            print(f"{prog}: error: {redact_text(one_line(str(exc)))}", file=sys.stderr)
            return EXIT_AWS

    return wrapper


def _plan_and_apply(args: argparse.Namespace, action: str) -> int:
    """Print the plan before anything changes; stop there on --dry-run or nothing to do."""
    from .provision.operation import run

    if _several(args):
        return _plan_and_apply_many(args, action)

    def show(plan: Plan) -> None:
        if not args.json:
            print(plan.describe(), flush=True)

    config = load(args)
    outcome = run(config, _options(args, config), action, dry_run=args.dry_run,
                  progress=_progress, on_plan=show)
    assert outcome.plan is not None
    if args.json:
        _print_json(outcome.to_json())
    elif args.dry_run and not outcome.plan.is_empty:
        print("Dry run: nothing was changed.")
    elif outcome.changed:
        results = outcome.applied
        seconds = sum(result.seconds for result in results)
        print(f"Applied {len(results)} change{'s' * (len(results) != 1)} in {seconds:.1f} s.")
    return 0


def _load_many(args: argparse.Namespace) -> tuple[list[PypicloudConfig], list[DeployOptions]]:
    """Every ini given, each with its own settings and the flags on top; a mistake in
    one names it."""
    configs, options = [], []
    for index, uri in enumerate(args.config):
        try:
            config = load_config(uri, configure_logging=index == 0)
            configs.append(config)
            options.append(_options(args, config))
        except ConfigError as exc:
            if uri not in str(exc):
                exc.args = (f"{uri}: {exc}", *exc.args[1:])
            raise
    return configs, options


def _site_header(section: SiteOutcome) -> str:
    site = section.site
    lines = [f"== {site.ini}: {site.region}, bucket {site.bucket}, "
             f"function {site.function_name} =="]
    return "\n".join(lines + [f"note: {note}" for note in site.notes])


def _plan_and_apply_many(args: argparse.Namespace, action: str) -> int:
    """Every region's plan under its ini's header before any change, then one line for
    the whole run."""
    from .provision.operation import run_many

    def show(section: SiteOutcome) -> None:
        if not args.json:
            assert section.outcome.plan is not None
            print(_site_header(section), section.outcome.plan.describe(), sep="\n",
                  flush=True)

    configs, options = _load_many(args)
    outcome = run_many(configs, options, action, dry_run=args.dry_run, progress=_progress,
                       on_plan=show)
    regions = len({section.site.region for section in outcome.sections})
    where = (f"{len(outcome.sections)} inis in {regions} "
             f"region{'s' * (regions != 1)}")
    if args.json:
        _print_json(outcome.to_json())
    elif outcome.is_empty:
        print(f"Nothing to {action} for {where}.")
    elif args.dry_run:
        print(f"Dry run: nothing was changed ({where}).")
    else:
        results = outcome.applied
        seconds = sum(result.seconds for result in results)
        print(f"Applied {len(results)} change{'s' * (len(results) != 1)} for {where} "
              f"in {seconds:.1f} s.")
    return 0


def _status_many(args: argparse.Namespace) -> int:
    from .provision.operation import run_many

    configs, options = _load_many(args)
    outcome = run_many(configs, options, "status", progress=_progress)
    if args.json:
        _print_json(outcome.to_json())
    else:
        for section in outcome.sections:
            assert section.outcome.report is not None
            print(_site_header(section), section.outcome.report.describe(), sep="\n")
        unhealthy = [section.site.ini for section in outcome.sections
                     if not (section.outcome.report and section.outcome.report.healthy)]
        print(f"{len(outcome.sections)} inis: "
              + (f"DRIFT or a failed check in {', '.join(unhealthy)}" if unhealthy
                 else "all in sync"))
    return 0 if outcome.healthy else EXIT_DRIFT


def add_create_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser, "create", several=True)
    _option_argument(parser, "force", "create")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan and change nothing")
    _function_arguments(parser, "create")
    parser.set_defaults(prog="ppc-create-s3-sync")


@_aws_errors
def run_create(args: argparse.Namespace) -> int:
    return _plan_and_apply(args, "create")


def add_delete_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser, "delete", several=True)
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be removed and change nothing")
    parser.set_defaults(prog="ppc-delete-s3-sync")


@_aws_errors
def run_delete(args: argparse.Namespace) -> int:
    return _plan_and_apply(args, "delete")


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser, "status", several=True)
    _function_arguments(parser, "status")
    parser.set_defaults(prog="ppc-s3sync status")


@_aws_errors
def run_status(args: argparse.Namespace) -> int:
    from .provision.operation import run

    if _several(args):
        return _status_many(args)
    config = load(args)
    report = run(config, _options(args, config), "status", progress=_progress).report
    assert report is not None
    if args.json:
        _print_json(report.to_json())
    else:
        print(report.describe())
    return 0 if report.healthy else EXIT_DRIFT


# -- reconcile ---------------------------------------------------------------------------


def add_reconcile_arguments(parser: argparse.ArgumentParser) -> None:
    _config_argument(parser)
    _option_argument(parser, "endpoint_url", "reconcile")
    parser.add_argument("--dry-run", action="store_true",
                        help="report what would change; change nothing")
    parser.add_argument("--deep", action="store_true",
                        help="also re-read every object's metadata (one HEAD per object)")
    parser.add_argument("--workers", type=_positive_int, default=16, metavar="N",
                        help="HEAD requests in flight at once (default 16)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar; print the summary only when something changed")
    parser.epilog = (f"exit status: 0 in sync, {EXIT_DRIFT} the cache differed (fixed, or "
                     f"with --dry-run found), {EXIT_CONFIG} config error, {EXIT_ERROR} "
                     "S3 or the cache failed")


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


class _ProgressBar:
    """One self-overwriting line on stderr; only used when stderr is a terminal."""

    def __init__(self, stream=sys.stderr, width: int = 30) -> None:  # noqa: ANN001
        self.stream = stream
        self.width = width
        self.shown = False

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase == "list":
            line = f"listing bucket: {done} page{'s' if done != 1 else ''}"
        elif total:
            filled = self.width * done // total
            line = (f"reading objects [{'#' * filled}{'.' * (self.width - filled)}] "
                    f"{done}/{total}")
        else:
            return
        self.stream.write("\r" + line.ljust(60))
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


def run_reconcile(args: argparse.Namespace) -> int:
    from .provision.operation import reconcile

    config = load(args)
    bar = _ProgressBar() if not args.quiet and sys.stderr.isatty() else None
    try:
        report = reconcile(config, endpoint_url=args.endpoint_url, deep=args.deep,
                           dry_run=args.dry_run, workers=args.workers, progress=bar)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - S3/database failures: one line, own status
        if bar is not None:
            bar.close()
        print(redact_text(_reconcile_failure(exc)), file=sys.stderr)
        print("ppc-s3sync reconcile: running it again is safe (SQL caches roll back; "
              "Redis and DynamoDB keep what was fixed before the error)", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if bar is not None:
            bar.close()
    if not (args.quiet and report.in_sync):
        print(report.summary())
    return 0 if report.in_sync else EXIT_DRIFT


def _reconcile_failure(exc: Exception) -> str:
    """Names the exception that stopped the run (botocore's own, behind an AwsError), since
    which of S3 or the cache's database failed is what the operator looks for first."""
    from .provision.errors import AwsError

    aws = exc if isinstance(exc, AwsError) else None
    cause = aws.__cause__ if aws is not None and aws.__cause__ is not None else exc
    line = f"ppc-s3sync reconcile: error: {type(cause).__name__}: {cause}".splitlines()[0]
    return line + (f" ({aws.hint})" if aws is not None and aws.hint else "")


# -- redrive ----------------------------------------------------------------------------


def add_redrive_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser, "redrive")
    parser.add_argument("--dry-run", action="store_true",
                        help="count the dead-letter queue's messages and move none")
    parser.set_defaults(prog="ppc-s3sync redrive")


@_aws_errors
def run_redrive(args: argparse.Namespace) -> int:
    """After a fix, hand the ``--delivery sqs`` sync's dead letters to the function again."""
    from .provision.operation import redrive

    config = load(args)
    report = redrive(config, _options(args, config), dry_run=args.dry_run,
                     progress=_progress)
    if args.json:
        _print_json(report.to_json())
    else:
        print(report.describe())
    return 0


# -- verify ------------------------------------------------------------------------------


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    from .verify.canary import NAME
    from .verify.run import DEFAULT_TIMEOUT

    parser.add_argument(
        "configs", metavar="CONFIG_URI", nargs="+",
        help="every region's pypicloud ini (at least two, each with its own bucket)")
    _option_argument(parser, "endpoint_url", "verify")
    parser.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT,
                        metavar="SECONDS",
                        help=f"the whole run's limit (default {DEFAULT_TIMEOUT:.0f})")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON on stdout (progress on stderr)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.epilog = (f"uploads and deletes the reserved package {NAME} in every bucket. "
                     f"exit status: 0 every link holds, {EXIT_DRIFT} a link is broken (named, "
                     f"with its fix), {EXIT_CONFIG} config error, {EXIT_AWS} AWS refused a "
                     "call, 130 interrupted (every canary removed all the same)")
    parser.set_defaults(prog="ppc-s3sync verify")


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return number


@_aws_errors
def run_verify(args: argparse.Namespace) -> int:
    """Send a canary between every pair of regions; the lags, or the first broken link."""
    from .provision.operation import verify

    configs = [load_config(uri, configure_logging=True) for uri in args.configs]
    report = verify(configs, endpoint_url=args.endpoint_url, timeout=args.timeout,
                    progress=None if args.quiet else _progress)
    if args.json:
        _print_json(report.to_json())
    else:
        print(report.describe())
    return report.exit_code


# -- export ------------------------------------------------------------------------------

EXPORT_FORMATS = ("cloudformation",)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser, "export")
    _function_arguments(parser, "export")
    parser.add_argument("--format", dest="export_format", choices=EXPORT_FORMATS,
                        default="cloudformation",
                        help="what to write: a CloudFormation template (the default)")
    parser.add_argument("-o", "--output", dest="output", metavar="DIR", required=True,
                        help="directory for the template and the function's zip")
    parser.set_defaults(prog="ppc-s3sync export")


def run_export(args: argparse.Namespace) -> int:
    """Write what create would make as a template, for a reviewed deploy; no AWS call."""
    from .provision.operation import export

    config = load(args)
    written = export(config, _options(args, config), args.output, progress=_progress)
    for warning in written.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Wrote {written.template} and {written.bundle}. Deploy them with:")
    for command in written.commands():
        print(f"  {command}")
    print("(CODE_BUCKET: any bucket of yours in the same region to hold the zip)")
    return 0


# -- wiring ------------------------------------------------------------------------------

Command = tuple[str, Callable[[argparse.ArgumentParser], None],
                Callable[[argparse.Namespace], int]]

COMMANDS: dict[str, Command] = {
    "create": ("Provision the sync for a pypicloud config (plan, then apply)",
               add_create_arguments, run_create),
    "delete": ("Remove exactly what create made", add_delete_arguments, run_delete),
    "status": ("Compare desired and actual state; non-zero on drift",
               add_status_arguments, run_status),
    "bundle": ("Build the Lambda function's zip", add_bundle_arguments, run_bundle),
    "reconcile": ("Make the cache list exactly the packages in the bucket",
                  add_reconcile_arguments, run_reconcile),
    "redrive": ("Move a --delivery sqs sync's dead-letter messages back to its queue",
                add_redrive_arguments, run_redrive),
    "export": ("Write what create would make as a template, for a reviewed deploy",
               add_export_arguments, run_export),
    "verify": ("Send a canary package between every pair of regions and report the lags",
               add_verify_arguments, run_verify),
}


def _execute(prog: str, run: Callable[[argparse.Namespace], int],
             args: argparse.Namespace) -> int:
    """Run a command; a mistake the user can fix becomes one line and exit status 2."""
    try:
        return run(args)
    except ConfigError as exc:
        print(f"{prog}: error: {redact_text(' '.join(str(exc).splitlines()))}",
              file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as other shell tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def main(argv: Sequence[str] | None = None) -> int:
    """``ppc-s3sync COMMAND config.ini [options]``."""
    parser = _Parser(
        prog="ppc-s3sync",
        description="Keep a pypicloud cache in sync with its S3 bucket through AWS Lambda.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    args = parser.parse_args(argv)
    return _execute(f"ppc-s3sync {args.command}", args.run, args)


def _standalone(name: str, command: str) -> Callable[[Sequence[str] | None], int]:
    help_text, add_arguments, run = COMMANDS[command]

    def entry(argv: Sequence[str] | None = None) -> int:
        parser = _Parser(prog=name, description=help_text)
        add_arguments(parser)
        return _execute(name, run, parser.parse_args(argv))

    entry.__doc__ = f"``{name}``: the same as ``ppc-s3sync {command}``."
    return entry


create_main = _standalone("ppc-create-s3-sync", "create")
delete_main = _standalone("ppc-delete-s3-sync", "delete")
bundle_main = _standalone("ppc-build-lambda-bundle", "bundle")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
