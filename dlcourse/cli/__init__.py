"""The ``dlcourse`` console command.

``dlcourse train`` trains a model of the course on a dataset that needs no network and
reports its test accuracy; ``--json`` makes the last line of stdout one JSON object for
scripts.  ``dlcourse summary`` prints an architecture's layer table without allocating
weights; ``dlcourse run`` runs an experiment.  Progress goes to stderr.  A bad argument
exits with status 2 and one line naming it.

The command line only parses, builds from the library's registries (models, datasets,
optimizers, schedules, architectures, experiments) and calls the library.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dlcourse.cli import run, summary, train
from dlcourse.cli._args import Parser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``dlcourse`` argument parser (exposed for the tests and the docs)."""
    parser = Parser(prog="dlcourse", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in (train, summary, run):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlcourse`` console script."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    return args.handler(args)
