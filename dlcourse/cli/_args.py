"""What every ``dlcourse`` command shares: the parser class and the argument types.

A usage error is one line on stderr and exit status 2, from any command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn


class UsageError(Exception):
    """A bad combination of arguments: one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def number(text: str, kind: type, test: Callable[[Any], bool], expect: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}") from None
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
