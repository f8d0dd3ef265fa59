"""``dlcourse summary MODEL``: an architecture's layer table from shapes only (§3.2)."""

from __future__ import annotations

import argparse
import json
import sys

from dlcourse.cli._args import shape
from dlcourse.layers.summary import format_summary, summary
from dlcourse.nets import ARCHITECTURES


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``summary`` command to the ``dlcourse`` parser."""
    summary = commands.add_parser(
        "summary", help="an architecture's layers, shapes and parameters, without weights")
    summary.add_argument("model", choices=sorted(ARCHITECTURES), help="architecture")
    summary.add_argument("--input-shape", type=shape, default=None, metavar="H,W,C",
                         help="one example's shape: H,W,C for an image, L,C for a signal "
                              "(default: the paper's, as dlcourse list shows)")
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    summary.set_defaults(handler=summary_command)


def summary_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse summary MODEL``: the per-layer table, from shapes only."""
    build, paper_shape = ARCHITECTURES[args.model]
    shape = args.input_shape or paper_shape
    if len(shape) != len(paper_shape):
        kind = {3: "an image H,W,C", 2: "a signal L,C"}.get(len(paper_shape), "")
        print(f"dlcourse summary: error: argument --input-shape: {args.model} takes {kind} "
              f"({len(paper_shape)} numbers, e.g. {','.join(map(str, paper_shape))}), got "
              f"{','.join(map(str, shape))}", file=sys.stderr)
        return 2
    try:
        rows = summary(build(), shape)
    except ValueError as error:  # e.g. an input too small for the architecture
        print(f"dlcourse summary: error: argument --input-shape: {error}", file=sys.stderr)
        return 2
    total = sum(int(r["params"]) for r in rows)
    if args.json:
        print(json.dumps({"model": args.model, "input_shape": list(shape), "layers": rows,
                          "total_params": total}, default=list))
    else:
        print(f"{args.model}, input {'x'.join(map(str, shape))}")
        print(format_summary(rows))
    return 0
