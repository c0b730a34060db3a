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
    _config_argument(parser)


def run_bundle(args: argparse.Namespace) -> int:
    load(args)
    raise NotImplementedError("ppc-build-lambda-bundle is not built yet")


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


# -- reconcile (issue 7) ----------------------------------------------------------------

#: Exit status when the cache did not match the bucket: it was fixed, or with --dry-run
#: it would have been.  Not 1, which Python uses for an unhandled crash.
EXIT_DRIFT = 3
#: Exit status when the reconcile could not finish (S3 or the cache failed).
EXIT_ERROR = 4


def add_reconcile_arguments(parser: argparse.ArgumentParser) -> None:
    _config_argument(parser)
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
    from .reconcile import check_bucket, open_cache, open_s3_client, reconcile

    config = load(args)
    bar = _ProgressBar() if not args.quiet and sys.stderr.isatty() else None
    try:
        s3_client = open_s3_client(config.settings, config.target, args.workers)
        check_bucket(s3_client, config.target)
        cache = open_cache(config.settings)
        report = reconcile(cache, s3_client, config.target, deep=args.deep,
                           dry_run=args.dry_run, workers=args.workers, progress=bar)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - S3/database failures: one line, own status
        if bar is not None:
            bar.close()
        print(f"ppc-s3sync reconcile: error: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        print("ppc-s3sync reconcile: running it again is safe (SQL caches roll back; "
              "Redis and DynamoDB keep what was fixed before the error)", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if bar is not None:
            bar.close()
    if not (args.quiet and report.in_sync):
        print(report.summary())
    return 0 if report.in_sync else EXIT_DRIFT


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
