"""dlcourse list: the models, datasets, experiments and architectures, from the registries."""

from __future__ import annotations

import argparse
import importlib
import json

from dlcourse.cli._build import DATA_HELP, MODELS
from dlcourse.experiments import EXPERIMENTS
from dlcourse.nets import ARCHITECTURES


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``list`` command to the ``dlcourse`` parser."""
    parser = commands.add_parser(
        "list", help="the models, datasets, experiments and architectures",
        description="What dlcourse train, run and summary accept, with a line on each.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=list_command)


def catalogue() -> dict[str, dict[str, str]]:
    """``{"models": {name: about}, "data": ..., "experiments": ..., "architectures": ...}``."""
    models = {name: f"{spec.about}; --data {' or '.join(spec.datasets)} (default "
                    f"{spec.datasets[0]})" for name, spec in MODELS.items()}
    experiments = {name: _claim(name) for name in EXPERIMENTS}
    architectures = {name: "input " + "x".join(map(str, shape))
                     for name, (_, shape) in ARCHITECTURES.items()}
    return {"models": models, "data": dict(DATA_HELP), "experiments": experiments,
            "architectures": architectures}


def _claim(name: str) -> str:
    try:
        return " ".join(importlib.import_module(f"dlcourse.experiments.{name}").CLAIM.split())
    except Exception as error:  # one broken experiment must not hide the others
        return f"(cannot be imported: {type(error).__name__}: {error})"


def list_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse list``."""
    listed = catalogue()
    if args.json:
        print(json.dumps(listed))
        return 0
    titles = {"models": "models (dlcourse train --model NAME)",
              "data": "data (dlcourse train --data NAME)",
              "experiments": "experiments (dlcourse run NAME)",
              "architectures": "architectures (dlcourse summary NAME)"}
    for section, entries in listed.items():
        print(titles[section])
        width = max(map(len, entries))
        for name, text in entries.items():
            print(f"  {name:<{width}}  {text}")
    return 0
