"""Console scripts: ``ppc-s3sync`` and the seed's stand-alone names.

Every command takes pypicloud's own ini (``config.ini`` or ``config.ini#name``) and goes
through :func:`pypicloud_s3sync.settings.load_config`.  Bad input ends with one line on
stderr that says what to change, and exit status 2; nothing here prints a traceback for
a mistake the user can fix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .settings import ConfigError, PypicloudConfig, load_config

#: Exit status for a config or usage error the user can fix.
EXIT_CONFIG = 2


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", metavar="CONFIG_URI",
        help="pypicloud's ini file, as given to pserve (config.ini or config.ini#name)",
    )


def load(args: argparse.Namespace) -> PypicloudConfig:
    """The command's pypicloud config, with the ini's logging set up as pserve would."""
    return load_config(args.config, configure_logging=True)


# -- bundle (issue 4) -------------------------------------------------------------------

def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    from .bundle import ARCHITECTURES, DEFAULT_RUNTIME, RUNTIMES

    _config_argument(parser)
    parser.add_argument(
        "-o", "--output", metavar="FILE",
        help="where to write the zip (default: <s3sync.function_name>.zip, "
             "pypicloud_s3_sync.zip unless set)",
    )
    parser.add_argument(
        "--runtime", default=DEFAULT_RUNTIME, metavar="RUNTIME",
        help=f"Lambda runtime: {', '.join(RUNTIMES)} (or just 3.12...; "
             f"default {DEFAULT_RUNTIME})",
    )
    parser.add_argument(
        "--arch", default="x86_64", metavar="ARCH",
        help=f"Lambda architecture: {' or '.join(ARCHITECTURES)} (default x86_64)",
    )
    parser.add_argument(
        "--include-boto3", action="store_true",
        help="bundle boto3/botocore too instead of using the runtime's (bigger zip)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def run_bundle(args: argparse.Namespace) -> int:
    import json

    from .bundle import build_bundle, default_output

    config = load(args)
    runtime = args.runtime if args.runtime.startswith("python") else f"python{args.runtime}"
    arch = {"aarch64": "arm64", "amd64": "x86_64"}.get(args.arch, args.arch)

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
    return 0


# -- create / delete / status (issue 5) -------------------------------------------------

def add_create_arguments(parser: argparse.ArgumentParser) -> None:
    _config_argument(parser)


def run_create(args: argparse.Namespace) -> int:
    load(args)
    raise NotImplementedError("ppc-create-s3-sync is not built yet")


def add_delete_arguments(parser: argparse.ArgumentParser) -> None:
    _config_argument(parser)


def run_delete(args: argparse.Namespace) -> int:
    load(args)
    raise NotImplementedError("ppc-delete-s3-sync is not built yet")


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    _config_argument(parser)


def run_status(args: argparse.Namespace) -> int:
    load(args)
    raise NotImplementedError("ppc-s3sync status is not built yet")


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
}


def _execute(prog: str, run: Callable[[argparse.Namespace], int],
             args: argparse.Namespace) -> int:
    """Run a command; a mistake the user can fix becomes one line and exit status 2."""
    try:
        return run(args)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """``ppc-s3sync COMMAND config.ini [options]``."""
    parser = argparse.ArgumentParser(
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
        parser = argparse.ArgumentParser(prog=name, description=help_text)
        add_arguments(parser)
        return _execute(name, run, parser.parse_args(argv))

    entry.__doc__ = f"``{name}``: the same as ``ppc-s3sync {command}``."
    return entry


create_main = _standalone("ppc-create-s3-sync", "create")
delete_main = _standalone("ppc-delete-s3-sync", "delete")
bundle_main = _standalone("ppc-build-lambda-bundle", "bundle")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
