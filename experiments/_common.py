"""What every experiment shares: overrides from the command line, tables, result files."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import typing
from collections.abc import Sequence
from typing import Any

import numpy as np


def parse_config(config_cls: type, argv: Sequence[str] | None, quick: dict[str, Any]) -> tuple[
    Any, pathlib.Path
]:
    """Build a frozen config from ``--field=value`` overrides, ``--quick`` and ``--out=DIR``.

    ``--quick`` applies the experiment's ``quick`` overrides first (the mode the tests
    run); explicit ``--field=value`` overrides win over it.  Tuples are given
    comma-separated: ``--seeds=0,1,2``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    values: dict[str, Any] = {}
    out = None
    if "--quick" in argv:
        values.update(quick)
        argv.remove("--quick")
    for arg in argv:
        name, sep, text = arg.removeprefix("--").partition("=")
        name = name.replace("-", "_")
        if name == "out" and sep:
            out = pathlib.Path(text)
            continue
        if not arg.startswith("--") or not sep or name not in fields:
            raise SystemExit(
                f"{config_cls.__module__}: unknown argument {arg!r}; expected --quick, "
                f"--out=DIR or --FIELD=VALUE with FIELD in {sorted(fields)}"
            )
        values[name] = _convert(hints[name], text, name)
    config = config_cls(**values)
    module = config_cls.__module__.rsplit(".", 1)[-1]
    return config, out or pathlib.Path("results") / module


def _convert(hint: Any, text: str, name: str) -> Any:
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
            return tuple(item(part) for part in text.split(",") if part)
        if hint is bool:
            return text.lower() in ("1", "true", "yes")
        return hint(text)
    except (TypeError, ValueError):
        raise SystemExit(f"--{name}: cannot read {text!r} as {hint}") from None


def mean_std(values: Sequence[float], fmt: str = ".3f") -> str:
    """``"0.712 ± 0.015"`` over seeds (sample standard deviation; ``± 0`` for one seed)."""
    values = np.asarray(values, float)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():{fmt}} ± {std:{fmt}}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(
    out: pathlib.Path, config: Any, results: dict[str, Any], table: str, figure: Any
) -> pathlib.Path:
    """Write ``config.json``, ``results.json``, ``table.md`` and ``plot.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    (out / "table.md").write_text(table + "\n")
    figure.savefig(out / "plot.png", dpi=120, bbox_inches="tight")
    return out


def subplots(ncols: int = 2):
    """A figure of ``ncols`` axes side by side, drawn with the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(5.5 * ncols, 4))


def finish(fig, axes) -> Any:
    """Grid and legend on every axis, tight layout; returns the figure."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def experiment_main(module_name: str, argv: Sequence[str] | None) -> int:
    """The ``main`` of every experiment: config from the command line, run, print, write.

    The experiment module provides ``Config``, ``QUICK``, ``run(config)``,
    ``table(config, results)``, ``verdict(config, results)`` and ``plot(config, results)``.
    """
    module = sys.modules[module_name]
    config, out = parse_config(module.Config, argv, module.QUICK)
    results = module.run(config)
    text = module.table(config, results) + "\n\n" + module.verdict(config, results)
    print(text)
    write_results(out, config, results, text, module.plot(config, results))
    print(f"results written to {out}/")
    return 0
