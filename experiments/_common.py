"""What every experiment shares: overrides from the command line, tables, result files.

An experiment module provides ``CLAIM`` (one line: the claim and its course section),
``Config`` (a frozen dataclass of every default), ``QUICK`` (the overrides of the quick
mode the tests run), ``run(config) -> dict`` (no I/O), ``table(config, results) -> str``,
``verdict(config, results) -> Verdict`` (computed from the measurements) and
``plot(config, results) -> Figure``; its ``main`` is :func:`experiment_main`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
import typing
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np


class Verdict(NamedTuple):
    """Whether the measurements support the claim, and the numbers that say so.

    ``holds`` is None when the configuration cannot test the claim (a needed arm was
    left out); the text is then the reason.
    """

    holds: bool | None
    text: str

    def line(self) -> str:
        """``verdict: claim holds: ...`` / ``claim does NOT hold`` / ``cannot tell``."""
        state = {True: "claim holds", False: "claim does NOT hold", None: "cannot tell"}
        return f"verdict: {state[self.holds]}: {self.text}"


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


def subplots(ncols: int = 2, nrows: int = 1):
    """A figure of ``nrows`` x ``ncols`` axes on the Agg canvas, outside pyplot.

    Nothing switches the session's matplotlib backend (a notebook keeps its inline one).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * ncols, 4 * nrows))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols)


def finish(fig, axes) -> Any:
    """Grid and legend on every axis, tight layout; returns the figure."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def experiment_main(module_name: str, argv: Sequence[str] | None) -> int:
    """The ``main`` of every experiment: config from the command line, run, print, write.

    ``results.json`` gets the verdict (``holds``, ``text``), whether the run was the
    quick mode, and its wall-clock seconds.
    """
    module = sys.modules[module_name]
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in argv
    config, out = parse_config(module.Config, argv, module.QUICK)
    start = time.perf_counter()
    results = module.run(config)
    seconds = time.perf_counter() - start
    judged = module.verdict(config, results)
    results = {**results, "verdict": judged._asdict(), "quick": quick,
               "seconds": round(seconds, 1)}
    text = module.table(config, results) + "\n\n" + judged.line()
    print(text)
    write_results(out, config, results, text, module.plot(config, results))
    print(f"results written to {out}/ ({seconds:.0f} s)")
    return 0
