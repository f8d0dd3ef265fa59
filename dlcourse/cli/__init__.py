"""The dlcourse console command.

dlcourse train trains a model of the course on a dataset and reports its test accuracy
(--json makes the last line of stdout one JSON object for scripts); dlcourse summary
prints an architecture's layer table without allocating weights; dlcourse run runs an
experiment; dlcourse list lists the models, datasets, experiments and architectures.
Progress goes to stderr.  A usage error exits with status 2 and one line naming the
argument, the value and the fix.

The command line only parses, builds from the library's registries (models, datasets,
optimizers, schedules, architectures, experiments) and calls the library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dlcourse.cli import listing, run, summary, train
from dlcourse.cli._args import Parser

__all__ = ["build_parser", "main"]

DESCRIPTION = ("The course 'Neural Networks and Introduction to Deep Learning' from the "
               "command line: train its models, print its architectures' tables, rerun "
               "its experiments.")


def build_parser() -> argparse.ArgumentParser:
    """The ``dlcourse`` argument parser (exposed for the tests and the docs)."""
    from dlcourse import __version__

    parser = Parser(prog="dlcourse", description=DESCRIPTION,
                    epilog="dlcourse COMMAND --help describes each command.")
    parser.add_argument("--version", action="version", version=f"dlcourse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                     metavar="COMMAND")
    for command in (train, summary, run, listing):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlcourse`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, rest = parser.parse_known_args(argv)
        if args.command != "run" and rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.rest, args.argv = rest, argv
        return args.handler(args)
    except KeyboardInterrupt:  # outside a training run: nothing to save
        print("dlcourse: interrupted", file=sys.stderr)
        return 130
