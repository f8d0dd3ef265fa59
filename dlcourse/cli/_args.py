"""What every dlcourse command shares: the parser, its help format, the argument types.

A usage error is one line on stderr and exit status 2, from any command.  Help is plain
text, and an option's default is shown only where it is a real value: a default that
depends on the model says so in the option's help.
"""

from __future__ import annotations

import argparse
import math
import pathlib
from collections.abc import Callable
from typing import Any, NoReturn

from dlcourse._checks import check_seed


class UsageError(Exception):
    """A bad combination of arguments: one line, exit status 2."""


class UsageExit(SystemExit):
    """Exit status 2 once the one-line error is printed; ``str()`` is the message."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


class HelpFormatter(argparse.HelpFormatter):
    """Plain help that appends ``(default: X)`` only where X is a real default.

    argparse's ``ArgumentDefaultsHelpFormatter`` prints ``(default: None)`` for an
    option whose default the model decides, and ``(default: False)`` for every flag.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default:" in text or default in (None, False, True)
                or default is argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: {_show(default)})"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def number(text: str, kind: type, test: Callable[[Any], bool], expect: str) -> Any:
    """``kind(text)`` if it passes ``test``; finite numbers only (``inf``, ``1e400``,
    ``nan`` are refused)."""
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, {expect}, got {text!r}")
    if not test(value):
        raise argparse.ArgumentTypeError(f"must be {expect}, got {text}")
    return value


def positive_float(text: str) -> float:
    return number(text, float, lambda v: v > 0, "a number > 0")


def nonnegative_float(text: str) -> float:
    return number(text, float, lambda v: v >= 0, "a number >= 0")


def probability(text: str) -> float:
    return number(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def positive_int(text: str) -> int:
    return number(text, int, lambda v: v > 0, "a positive integer")


def nonnegative_int(text: str) -> int:
    return number(text, int, lambda v: v >= 0, "an integer >= 0")


def seed(text: str) -> int:
    """An integer in [0, 2**32): the seeds ``jax.random.key`` tells apart
    (:func:`dlcourse._checks.check_seed`)."""
    value = number(text, int, lambda v: True, "an integer in [0, 4294967295]")
    try:
        return check_seed("--seed", value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer in [0, 4294967295] (2**32 - 1), got {text}; larger or "
            f"negative seeds would repeat the run of another seed"
        ) from None


def widths(text: str) -> tuple[int, ...]:
    """``"100,100"`` -> ``(100, 100)``; ``""`` -> no hidden layer."""
    if not text.strip():
        return ()
    widths = []
    for part in text.split(","):
        try:
            width = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers like 100,100, got {text!r}"
            ) from None
        if width <= 0:
            raise argparse.ArgumentTypeError(f"every width must be >= 1, got {width} in {text!r}")
        widths.append(width)
    return tuple(widths)


def shape(text: str) -> tuple[int, ...]:
    shape = widths(text)
    if not shape:
        raise argparse.ArgumentTypeError(f"expected a shape like 224,224,3, got {text!r}")
    return shape


def path(text: str) -> pathlib.Path:
    """A path; checked for writing by the command, before any compute."""
    if not text.strip() or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return pathlib.Path(text).expanduser()
