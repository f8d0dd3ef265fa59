"""``dlcourse run NAME``: run one of the experiments, each a claim of the course."""

from __future__ import annotations

import argparse
import importlib
import sys

from dlcourse.experiments import EXPERIMENTS


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``run`` command to the ``dlcourse`` parser."""
    run = commands.add_parser(
        "run", help="run an experiment that reproduces a claim of the course",
        description="Run experiments/NAME.py: prints its table and writes config.json, "
                    "results.json, table.md and plot.png to results/NAME/ (or --out=DIR). "
                    "Other arguments (--quick, --FIELD=VALUE) go to the experiment.",
    )
    run.add_argument("name", help=f"one of: {', '.join(EXPERIMENTS)}")
    run.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse run NAME [experiment arguments]``; returns the exit status."""
    if args.name not in EXPERIMENTS:
        print(f"dlcourse run: error: argument name: unknown experiment {args.name!r}; "
              f"expected one of {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"dlcourse.experiments.{args.name}")
    return module.main(args.rest)
