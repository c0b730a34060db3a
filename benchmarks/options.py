"""The command line the benchmarks share, so that one spelling works for all of them.

Every benchmark takes ``-n`` for the size of its workload and ``--backends`` as a
space-separated list of cache backends (``--backends sqlite redis``); the rest of its
options are its own.
"""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a workload of 0 measures nothing)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def benchmark_parser(doc: str, *, n: int, n_help: str, backends: list[str],
                     default_backends: list[str] | None = None,
                     several_n: bool = False) -> argparse.ArgumentParser:
    """A parser with the shared ``-n`` and ``--backends``; ``doc``'s first paragraph
    describes the benchmark.  With ``several_n``, ``-n`` takes sizes space-separated
    (``-n 1000 10000 100000``) and gives a list: how a cost grows is read off sizes
    measured side by side in one run."""
    default_backends = list(default_backends or backends)
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0].strip())
    if several_n:
        parser.add_argument("-n", type=positive, nargs="+", default=[n], metavar="N",
                            help=f"{n_help}; several sizes, space-separated, are measured "
                                 "one after the other (default: %(default)s)")
    else:
        parser.add_argument("-n", type=positive, default=n, metavar="N",
                            help=f"{n_help} (default: %(default)s)")
    parser.add_argument(
        "--backends", nargs="+", choices=backends, metavar="BACKEND", default=default_backends,
        help=f"cache backends to measure, space-separated, from: {' '.join(backends)} "
             f"(default: {' '.join(default_backends)})")
    return parser
