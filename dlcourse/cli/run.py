"""``dlcourse run NAME``: run one of the experiments, each a claim of the course."""

from __future__ import annotations

import argparse
import importlib
import sys

from dlcourse.cli._args import UsageExit
from dlcourse.experiments import EXPERIMENTS


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``run`` command to the ``dlcourse`` parser."""
    run = commands.add_parser(
        "run", help="run an experiment that reproduces a claim of the course",
        description="Run experiments/NAME.py: prints its table and writes config.json, "
                    "results.json, table.md and plot.png to results/NAME/ (or --out=DIR). "
                    "Other arguments (--quick, --FIELD=VALUE) go to the experiment. "
                    "'dlcourse run list' lists the experiments with their claims; "
                    "'dlcourse run all [--quick] [--out=DIR]' runs every one, each into "
                    "DIR/NAME.",
    )
    run.add_argument("name", help=f"list, all, or one of: {', '.join(EXPERIMENTS)}")
    run.set_defaults(handler=run_command)


def _module(name: str):
    return importlib.import_module(f"dlcourse.experiments.{name}")


def _run_all(rest: list[str]) -> int:
    """Every experiment in turn, each into ``<out>/<name>`` (``results/<name>`` by default)."""
    out = next((a.split("=", 1)[1] for a in rest if a.startswith("--out=")), "results")
    rest = [a for a in rest if not a.startswith("--out=")]
    failed = [name for name in EXPERIMENTS
              if _module(name).main([*rest, f"--out={out}/{name}"]) != 0]
    if failed:
        print(f"dlcourse run all: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def run_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse run NAME [experiment arguments]``; returns the exit status."""
    if args.name == "list":
        for name in EXPERIMENTS:
            print(f"{name:28} {_module(name).CLAIM}")
        return 0
    if args.name == "all":
        return _run_all(list(args.rest))
    if args.name not in EXPERIMENTS:
        print(f"dlcourse run: error: argument name: unknown experiment {args.name!r}; "
              f"expected one of {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    try:
        return _module(args.name).main(args.rest)
    except SystemExit as exit_:  # the experiment's own argument error: a usage error, 2
        if exit_.code is None or isinstance(exit_.code, int):
            raise
        print(f"dlcourse run: error: {exit_.code}", file=sys.stderr)
        raise UsageExit(str(exit_.code)) from None
